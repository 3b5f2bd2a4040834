"""Schedule expressions of the emulated DataSync: EventBridge's grammar, DataSync's rule.

DataSync takes a task schedule as an Amazon EventBridge schedule expression
(https://docs.aws.amazon.com/datasync/latest/userguide/API_TaskSchedule.html,
grammar: https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-scheduled-rule-pattern.html
and https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rate-expressions.html):

* ``rate(value unit)``: value a positive integer, unit ``minute|minutes|hour|
  hours|day|days``, singular when the value is 1 and plural otherwise
  (``rate(1 hours)`` and ``rate(5 hour)`` are refused). A rate runs from the
  moment the schedule is set.
* ``cron(minutes hours day-of-month month day-of-week year)``: exactly six
  fields, in UTC. Minutes 0-59 and hours 0-23 take ``, - * /``; day-of-month
  1-31 takes ``, - * ? / L W``; month 1-12 or JAN-DEC takes ``, - * /``;
  day-of-week 1-7 or SUN-SAT (1 = Sunday) takes ``, - * ? L #``; year
  1970-2199 takes ``, - * /``. One of day-of-month and day-of-week must be
  ``?`` and the other must not (``*`` in both is refused).

On top of the grammar DataSync refuses schedules more frequent than once an
hour ("You can't schedule a task to run at an interval faster than 1 hour",
https://docs.aws.amazon.com/datasync/latest/userguide/task-scheduling.html):
a rate below 60 minutes, or a cron whose minutes field names more than one
minute (two runs in the same hour).

``parse`` returns a schedule with ``next_after(t)`` (epoch seconds, UTC);
``validate_for_datasync`` adds the hourly rule. Both raise ``ScheduleError``
with a message for the caller's InvalidRequestException.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass, field

# ScheduleExpressionCron in DataSync's API model.
MAX_LENGTH = 256
ALLOWED_CHARACTERS = re.compile(r"^[a-zA-Z0-9 _*?,|^\-/#\s()+]*$")
MINIMUM_INTERVAL_SECONDS = 3600

_UNITS = {"minute": 60, "hour": 3600, "day": 86400}
_MONTHS = {name: i + 1 for i, name in enumerate(
    ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"])}
_DAYS = {name: i + 1 for i, name in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])}
_FIELD_NAMES = ("Minutes", "Hours", "Day-of-month", "Month", "Day-of-week", "Year")
_LAST_YEAR = 2199


class ScheduleError(ValueError):
    """A schedule expression DataSync would refuse; str() is the reason."""


# --- rate --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RateSchedule:
    expression: str
    value: int
    unit: str  # minute, hour or day

    @property
    def interval_seconds(self) -> int:
        return self.value * _UNITS[self.unit]

    def next_after(self, t: float, anchor: float | None = None) -> float | None:
        """The first run after ``t`` of a rate started at ``anchor`` (default: ``t``)."""
        start = t if anchor is None else anchor
        step = self.interval_seconds
        if t < start + step:
            return start + step
        periods = int((t - start) // step) + 1
        return start + periods * step

    def min_interval_seconds(self) -> int:
        return self.interval_seconds


def _parse_rate(expression: str, body: str) -> RateSchedule:
    parts = body.split()
    if len(parts) != 2:
        raise ScheduleError(
            f"Invalid schedule expression {expression!r}: a rate expression has two fields, rate(value unit)."
        )
    value_text, unit = parts
    if not value_text.isdigit() or int(value_text) < 1:
        raise ScheduleError(
            f"Invalid schedule expression {expression!r}: the rate value must be a positive whole number."
        )
    value = int(value_text)
    singular = unit[:-1] if unit.endswith("s") else unit
    if singular not in _UNITS:
        raise ScheduleError(
            f"Invalid schedule expression {expression!r}: the rate unit must be one of "
            "minute, minutes, hour, hours, day, days."
        )
    if value == 1 and unit != singular:
        raise ScheduleError(
            f"Invalid schedule expression {expression!r}: use the singular unit for a value of 1 "
            f"(rate(1 {singular}))."
        )
    if value > 1 and unit == singular:
        raise ScheduleError(
            f"Invalid schedule expression {expression!r}: use the plural unit for a value greater than 1 "
            f"(rate({value} {singular}s))."
        )
    return RateSchedule(expression, value, singular)


# --- cron --------------------------------------------------------------------------------


@dataclass
class CronField:
    """One cron field: a set of plain values plus the day-only specials."""

    values: set[int] = field(default_factory=set)
    any: bool = False  # '*' (or a range covering everything) or '?'
    question: bool = False
    last_day: bool = False  # day-of-month 'L'
    last_weekday_of_month: bool = False  # day-of-month 'LW'
    nearest_weekday: set[int] = field(default_factory=set)  # day-of-month '15W'
    last_of_week: set[int] = field(default_factory=set)  # day-of-week '6L'
    nth_of_week: set[tuple[int, int]] = field(default_factory=set)  # day-of-week '3#2'


def _value(text: str, lo: int, hi: int, names: dict[str, int] | None, expression: str, name: str) -> int:
    upper = text.upper()
    if names and upper in names:
        return names[upper]
    if not text.isdigit():
        raise ScheduleError(f"Invalid schedule expression {expression!r}: {text!r} is not valid in the {name} field.")
    number = int(text)
    if not lo <= number <= hi:
        raise ScheduleError(
            f"Invalid schedule expression {expression!r}: {number} is out of range for the {name} field ({lo}-{hi})."
        )
    return number


def _span(a: int, b: int, lo: int, hi: int) -> list[int]:
    """a..b inclusive; wraps past the end of the range (FRI-MON)."""
    if a <= b:
        return list(range(a, b + 1))
    return list(range(a, hi + 1)) + list(range(lo, b + 1))


def _parse_field(text: str, index: int, expression: str) -> CronField:
    name = _FIELD_NAMES[index]
    lo, hi = [(0, 59), (0, 23), (1, 31), (1, 12), (1, 7), (1970, _LAST_YEAR)][index]
    names = _MONTHS if index == 3 else _DAYS if index == 4 else None
    out = CronField()
    if text == "?":
        if index not in (2, 4):
            raise ScheduleError(
                f"Invalid schedule expression {expression!r}: '?' is only allowed in the "
                "Day-of-month and Day-of-week fields."
            )
        out.any = out.question = True
        return out
    for item in text.split(","):
        if not item:
            raise ScheduleError(f"Invalid schedule expression {expression!r}: empty value in the {name} field.")
        upper = item.upper()
        # Day specials.
        if index == 2 and upper in ("L", "LW"):
            if upper == "L":
                out.last_day = True
            else:
                out.last_weekday_of_month = True
            continue
        if index == 2 and upper.endswith("W"):
            out.nearest_weekday.add(_value(item[:-1], lo, hi, None, expression, name))
            continue
        if index == 4 and upper == "L":
            out.values.add(7)  # 'L' alone in day-of-week: the last day of the week, Saturday
            continue
        if index == 4 and upper.endswith("L"):
            out.last_of_week.add(_value(item[:-1], lo, hi, names, expression, name))
            continue
        if index == 4 and "#" in item:
            day, _, nth = item.partition("#")
            if not nth.isdigit() or not 1 <= int(nth) <= 5:
                raise ScheduleError(
                    f"Invalid schedule expression {expression!r}: '#' takes a week number from 1 to 5 ({item!r})."
                )
            out.nth_of_week.add((_value(day, lo, hi, names, expression, name), int(nth)))
            continue
        if ("L" in upper and index in (2, 4)) or "W" in upper and index == 2 or "#" in item:
            raise ScheduleError(f"Invalid schedule expression {expression!r}: {item!r} is not valid in the {name} field.")
        if "/" in item:
            if index == 4:
                raise ScheduleError(
                    f"Invalid schedule expression {expression!r}: '/' is not allowed in the Day-of-week field."
                )
            base, _, step_text = item.partition("/")
            if not step_text.isdigit() or int(step_text) < 1:
                raise ScheduleError(
                    f"Invalid schedule expression {expression!r}: the increment in {item!r} must be a positive number."
                )
            step = int(step_text)
            if base == "*":
                start, end = lo, hi
            elif "-" in base:
                a, _, b = base.partition("-")
                start, end = _value(a, lo, hi, names, expression, name), _value(b, lo, hi, names, expression, name)
            else:
                start, end = _value(base, lo, hi, names, expression, name), hi
            out.values.update(_span(start, end, lo, hi)[::step])
            continue
        if item == "*":
            out.any = True
            out.values.update(range(lo, hi + 1))
            continue
        if "-" in item:
            a, _, b = item.partition("-")
            out.values.update(_span(_value(a, lo, hi, names, expression, name),
                                    _value(b, lo, hi, names, expression, name), lo, hi))
            continue
        out.values.add(_value(item, lo, hi, names, expression, name))
    return out


def _last_day_of_month(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


def _aws_weekday(day: dt.date) -> int:
    """1 = Sunday ... 7 = Saturday."""
    return (day.weekday() + 1) % 7 + 1


def _nearest_weekday(year: int, month: int, dom: int) -> int | None:
    last = _last_day_of_month(year, month)
    if dom > last:
        return None
    weekday = dt.date(year, month, dom).weekday()  # Monday 0 .. Sunday 6
    if weekday < 5:
        return dom
    if weekday == 5:  # Saturday: the Friday before, or the Monday after on the 1st
        return dom - 1 if dom > 1 else dom + 2
    return dom + 1 if dom < last else dom - 2  # Sunday


@dataclass
class CronSchedule:
    expression: str
    minutes: CronField
    hours: CronField
    day_of_month: CronField
    month: CronField
    day_of_week: CronField
    year: CronField

    def _day_matches(self, day: dt.date) -> bool:
        if day.month not in self.month.values or day.year not in self.year.values:
            return False
        if self.day_of_month.question:
            dow = self.day_of_week
            weekday = _aws_weekday(day)
            if weekday in dow.values:
                return True
            last = _last_day_of_month(day.year, day.month)
            if weekday in dow.last_of_week and day.day + 7 > last:
                return True
            return any(weekday == w and (day.day - 1) // 7 + 1 == n for w, n in dow.nth_of_week)
        dom = self.day_of_month
        if day.day in dom.values:
            return True
        last = _last_day_of_month(day.year, day.month)
        if dom.last_day and day.day == last:
            return True
        if dom.last_weekday_of_month and day.day == _nearest_weekday(day.year, day.month, last):
            return True
        return any(_nearest_weekday(day.year, day.month, d) == day.day for d in dom.nearest_weekday)

    def next_after(self, t: float, anchor: float | None = None) -> float | None:
        """The first run strictly after ``t`` (None when the expression never runs again)."""
        moment = dt.datetime.fromtimestamp(int(t) // 60 * 60 + 60, dt.timezone.utc)
        day = moment.date()
        hours = sorted(self.hours.values)
        minutes = sorted(self.minutes.values)
        years = sorted(self.year.values)
        if not hours or not minutes or not years:
            return None
        first = True
        while day.year <= years[-1]:
            if day.year not in self.year.values:
                later = [y for y in years if y > day.year]
                if not later:
                    return None
                day, first = dt.date(later[0], 1, 1), False
                continue
            if self._day_matches(day):
                for hour in hours:
                    if first and hour < moment.hour:
                        continue
                    for minute in minutes:
                        if first and hour == moment.hour and minute < moment.minute:
                            continue
                        return dt.datetime(day.year, day.month, day.day, hour, minute,
                                           tzinfo=dt.timezone.utc).timestamp()
            day, first = day + dt.timedelta(days=1), False
        return None

    def min_interval_seconds(self) -> int | None:
        """Shortest gap between two runs: two minute values mean two runs in an hour."""
        minutes = sorted(self.minutes.values)
        if len(minutes) > 1:
            gaps = [b - a for a, b in zip(minutes, minutes[1:])]
            return min(gaps) * 60
        return None


def _parse_cron(expression: str, body: str) -> CronSchedule:
    fields = body.split()
    if len(fields) != 6:
        raise ScheduleError(
            f"Invalid schedule expression {expression!r}: a cron expression has six fields "
            f"(minutes hours day-of-month month day-of-week year), not {len(fields)}."
        )
    parsed = [_parse_field(text, i, expression) for i, text in enumerate(fields)]
    dom, dow = parsed[2], parsed[4]
    if dom.question and dow.question:
        raise ScheduleError(
            f"Invalid schedule expression {expression!r}: use '?' in only one of the Day-of-month "
            "and Day-of-week fields."
        )
    if not dom.question and not dow.question:
        raise ScheduleError(
            f"Invalid schedule expression {expression!r}: the Day-of-month and Day-of-week fields can't "
            "both be specified; use '?' in one of them."
        )
    return CronSchedule(expression, *parsed)


# --- entry points --------------------------------------------------------------------------


def parse(expression: str) -> RateSchedule | CronSchedule:
    """EventBridge's grammar; raises ScheduleError."""
    if not isinstance(expression, str):
        raise ScheduleError("ScheduleExpression must be a string.")
    if len(expression) > MAX_LENGTH:
        raise ScheduleError(f"ScheduleExpression must be at most {MAX_LENGTH} characters long.")
    if not ALLOWED_CHARACTERS.match(expression):
        raise ScheduleError(f"Invalid schedule expression {expression!r}: it contains characters that are not allowed.")
    match = re.fullmatch(r"\s*(rate|cron)\((.*)\)\s*", expression)
    if not match:
        raise ScheduleError(
            f"Invalid schedule expression {expression!r}: use cron(minutes hours day-of-month month "
            "day-of-week year) or rate(value unit)."
        )
    kind, body = match.group(1), match.group(2).strip()
    return _parse_rate(expression, body) if kind == "rate" else _parse_cron(expression, body)


def validate_for_datasync(expression: str) -> RateSchedule | CronSchedule:
    """The grammar plus DataSync's rule of at most one run an hour."""
    schedule = parse(expression)
    gap = schedule.min_interval_seconds()
    if gap is not None and gap < MINIMUM_INTERVAL_SECONDS:
        raise ScheduleError(
            f"Invalid schedule expression {expression!r}: the task would run more often than once an hour. "
            "You can't schedule a task to run at an interval faster than 1 hour."
        )
    return schedule
