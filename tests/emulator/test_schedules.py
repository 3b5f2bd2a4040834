"""Schedules, queueing, task reports and execution listing of the emulated DataSync.

Driven with boto3 against a real emulator process (one per module, phases of
0.1 s). Schedules follow the emulator's clock, which the tests speed up through
/ferry-emulator/config (clockSpeed: emulated seconds per real second; clockTime:
the emulated now), so an hourly schedule runs every second or less.

AWS references: TaskSchedule / TaskScheduleDetails / Options.TaskQueueing /
TaskReportConfig in the DataSync API reference, "Scheduling when your task runs"
and "Monitoring your transfers with task reports" in the user guide, and
EventBridge's schedule expressions (see schedules.py and reports.py).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any, Iterator

import pytest
from botocore.exceptions import ClientError

import schedules  # (pure grammar, tested directly too)
from emulator_testkit import Account, control, refused, run_to_end, unique_name, wait_for


@pytest.fixture(autouse=True)
def normal_clock(endpoint: str) -> Iterator[None]:
    """Every test starts and ends with the real clock and short phases."""
    control(endpoint, "POST", "config", {"clockSpeed": 1, "clockTime": time.time(), "phaseSeconds": 0.1})
    yield
    control(endpoint, "POST", "config", {"clockSpeed": 1, "clockTime": time.time(), "phaseSeconds": 0.1})


# --- schedule expressions ----------------------------------------------------------------------

# (refused, nearby accepted) pairs: EventBridge's grammar plus DataSync's once-an-hour rule.
EXPRESSION_PAIRS = [
    ("rate(1 hours)", "rate(1 hour)"),  # singular unit for 1
    ("rate(2 hour)", "rate(2 hours)"),  # plural otherwise
    ("rate(30 minutes)", "rate(60 minutes)"),  # faster than once an hour
    ("rate(0 days)", "rate(1 day)"),  # a positive value
    ("rate(1 week)", "rate(7 days)"),  # units: minute(s), hour(s), day(s)
    ("cron(0 8 * * ?)", "cron(0 8 * * ? *)"),  # six fields
    ("cron(0 8 * * 3#1)", "cron(0 8 ? * 3#1 *)"),  # the API reference's own example has five
    ("cron(0 * * * * *)", "cron(0 * * * ? *)"),  # '*' in both day fields
    ("cron(0 8 ? * ? *)", "cron(0 8 ? * MON-FRI *)"),  # '?' in only one of them
    ("cron(0/30 * * * ? *)", "cron(0 0/2 * * ? *)"),  # two runs an hour
    ("cron(0,30 8 * * ? *)", "cron(30 8,9 * * ? *)"),
    ("cron(0 24 * * ? *)", "cron(0 23 L * ? *)"),  # hours 0-23
    ("cron(0 8 ? * 6L 1969)", "cron(15 10 ? * 6L 2026-2030)"),  # years 1970-2199
    ("every hour", "rate(12 hours)"),
]


def test_expression_grammar_pure() -> None:
    at = dt.datetime(2026, 11, 29, 5, 37, 30, tzinfo=dt.timezone.utc).timestamp()

    def iso(expression: str, t: float = at) -> str:
        nxt = schedules.validate_for_datasync(expression).next_after(t, t)
        return dt.datetime.fromtimestamp(nxt, dt.timezone.utc).strftime("%Y-%m-%d %H:%M")

    assert iso("rate(1 hour)") == "2026-11-29 06:37"
    assert iso("cron(0 * * * ? *)") == "2026-11-29 06:00"
    assert iso("cron(0 2 * * ? *)") == "2026-11-30 02:00"
    assert iso("cron(0 12 ? * WED *)") == "2026-12-02 12:00"  # 1 = SUN ... 4 = WED
    assert iso("cron(0 8 ? * 3#1 *)") == "2026-12-01 08:00"  # first Tuesday
    assert iso("cron(0 0 L * ? *)") == "2026-11-30 00:00"
    assert iso("cron(15 10 ? * 6L 2026-2030)") == "2026-12-25 10:15"  # last Friday
    for bad, good in EXPRESSION_PAIRS:
        with pytest.raises(schedules.ScheduleError):
            schedules.validate_for_datasync(bad)
        schedules.validate_for_datasync(good)


def test_create_and_update_task_refuse_invalid_schedules(endpoint: str) -> None:
    a = Account(endpoint)
    task, _, _ = a.task()
    src_loc, dst_loc = a.last_locations
    for bad, good in EXPRESSION_PAIRS:
        code, message = refused(lambda: a.ds.create_task(SourceLocationArn=src_loc, DestinationLocationArn=dst_loc,
                                                         Schedule={"ScheduleExpression": bad}))
        assert code == "InvalidRequestException", (bad, code, message)
        assert bad in message
        code, _ = refused(lambda: a.ds.update_task(TaskArn=task, Schedule={"ScheduleExpression": bad}))
        assert code == "InvalidRequestException", bad
        a.ds.update_task(TaskArn=task, Schedule={"ScheduleExpression": good, "Status": "DISABLED"})
        assert a.ds.describe_task(TaskArn=task)["Schedule"] == {"ScheduleExpression": good, "Status": "DISABLED"}
    hourly = a.task(Schedule={"ScheduleExpression": "rate(1 hour)"})[0]
    assert a.ds.describe_task(TaskArn=hourly)["Schedule"] == {"ScheduleExpression": "rate(1 hour)", "Status": "ENABLED"}
    assert "hour" in refused(lambda: a.task(Schedule={"ScheduleExpression": "rate(59 minutes)"}))[1]
    for arn in (task, hourly):
        a.ds.delete_task(TaskArn=arn)


def test_user_disables_and_enables_schedule(endpoint: str) -> None:
    a = Account(endpoint)
    task, _, _ = a.task(Schedule={"ScheduleExpression": "cron(0 2 * * ? *)"})
    described = a.ds.describe_task(TaskArn=task)
    created = described["ScheduleDetails"]["StatusUpdateTime"]
    assert set(described["ScheduleDetails"]) == {"StatusUpdateTime"}

    a.ds.update_task(TaskArn=task, Schedule={"ScheduleExpression": "cron(0 2 * * ? *)", "Status": "DISABLED"})
    described = a.ds.describe_task(TaskArn=task)
    assert described["Schedule"]["Status"] == "DISABLED"
    assert described["ScheduleDetails"]["DisabledBy"] == "USER"
    assert described["ScheduleDetails"]["DisabledReason"] == "Manually disabled by user."
    assert described["ScheduleDetails"]["StatusUpdateTime"] >= created

    a.ds.update_task(TaskArn=task, Schedule={"ScheduleExpression": "cron(0 2 * * ? *)"})  # Status defaults to ENABLED
    described = a.ds.describe_task(TaskArn=task)
    assert described["Schedule"]["Status"] == "ENABLED"
    assert "DisabledBy" not in described["ScheduleDetails"] and "DisabledReason" not in described["ScheduleDetails"]

    a.ds.update_task(TaskArn=task, Schedule={"ScheduleExpression": ""})  # an empty expression removes it
    described = a.ds.describe_task(TaskArn=task)
    assert "Schedule" not in described and "ScheduleDetails" not in described


# --- schedules that fire -------------------------------------------------------------------


def test_rate_schedule_fires_on_the_fast_clock(endpoint: str) -> None:
    a = Account(endpoint)
    task, _, dst = a.task({"data/a.txt": b"A"}, Schedule={"ScheduleExpression": "rate(1 hour)"})
    control(endpoint, "POST", "config", {"clockSpeed": 7200})  # an emulated hour per half real second
    listed = wait_for("two scheduled executions", lambda: (lambda e: e if len(e) >= 2 else None)(a.executions(task)),
                      timeout=6)
    first = run_to_end(a.ds, listed[-1]["TaskExecutionArn"])
    assert first["Status"] == "SUCCESS"
    assert a.s3.get_object(Bucket=dst, Key="data/a.txt")["Body"].read() == b"A"

    a.ds.update_task(TaskArn=task, Schedule={"ScheduleExpression": "rate(1 hour)", "Status": "DISABLED"})
    time.sleep(0.1)
    count = len(a.executions(task))
    time.sleep(1.0)
    assert len(a.executions(task)) == count  # a disabled schedule starts nothing
    a.ds.delete_task(TaskArn=task)


def test_cron_schedule_fires_at_its_time(endpoint: str) -> None:
    a = Account(endpoint)
    two_am = dt.datetime(2030, 12, 1, 2, 0, tzinfo=dt.timezone.utc).timestamp()
    control(endpoint, "POST", "config", {"clockTime": two_am - 1.2})  # the emulated now: 01:59:58.8
    task, _, _ = a.task({"x": b"x"}, Schedule={"ScheduleExpression": "cron(0 2 * * ? *)"})
    time.sleep(0.2)
    assert a.executions(task) == []
    listed = wait_for("the 02:00 run", lambda: a.executions(task), timeout=4)
    assert len(listed) == 1
    assert run_to_end(a.ds, listed[0]["TaskExecutionArn"])["Status"] == "SUCCESS"
    time.sleep(0.3)
    assert len(a.executions(task)) == 1  # the next run is tomorrow at 02:00
    a.ds.delete_task(TaskArn=task)


def test_service_disables_schedule_after_repeated_failures(endpoint: str) -> None:
    a = Account(endpoint)
    expression = "rate(1 hour)"
    task, _, dst = a.task({"x": b"x"}, Schedule={"ScheduleExpression": expression})
    a.s3.delete_bucket(Bucket=dst)  # every run now fails with the same error
    assert control(endpoint, "GET", "config")["scheduleDisableAfterFailures"] == 3
    control(endpoint, "POST", "config", {"clockSpeed": 7200})  # a run every half second

    def disabled() -> Any:
        described = a.ds.describe_task(TaskArn=task)
        return described if described["Schedule"]["Status"] == "DISABLED" else None

    described = wait_for("DataSync to disable the schedule", disabled, timeout=10)
    details = described["ScheduleDetails"]
    assert details["DisabledBy"] == "SERVICE"
    assert dst in details["DisabledReason"]
    failed = [a.ds.describe_task_execution(TaskExecutionArn=e["TaskExecutionArn"]) for e in a.executions(task)]
    ended = [e for e in failed if e["Status"] == "ERROR"]
    assert len(ended) >= 3 and {e["Result"]["ErrorCode"] for e in ended} == {"NoSuchBucket"}

    for e in a.executions(task):  # queued runs still end; then nothing new starts
        run_to_end(a.ds, e["TaskExecutionArn"])
    count = len(a.executions(task))
    time.sleep(0.8)
    assert len(a.executions(task)) == count

    # The user enables it again: the service's disable is cleared.
    a.ds.update_task(TaskArn=task, Schedule={"ScheduleExpression": expression, "Status": "ENABLED"})
    enabled = a.ds.describe_task(TaskArn=task)
    assert enabled["Schedule"]["Status"] == "ENABLED"
    assert "DisabledBy" not in enabled["ScheduleDetails"]
    assert enabled["ScheduleDetails"]["StatusUpdateTime"] >= details["StatusUpdateTime"]
    a.ds.update_task(TaskArn=task, Schedule={"ScheduleExpression": expression, "Status": "DISABLED"})
    assert a.ds.describe_task(TaskArn=task)["ScheduleDetails"]["DisabledBy"] == "USER"
    a.ds.delete_task(TaskArn=task)


# --- queueing ------------------------------------------------------------------------------


def test_second_start_is_queued_then_runs(endpoint: str) -> None:
    a = Account(endpoint)
    task, _, _ = a.task({"a": b"1", "b": b"2"})
    first = a.ds.start_task_execution(TaskArn=task)["TaskExecutionArn"]
    second = a.ds.start_task_execution(TaskArn=task)["TaskExecutionArn"]
    assert a.ds.describe_task_execution(TaskExecutionArn=second)["Status"] == "QUEUED"
    assert a.ds.describe_task(TaskArn=task)["Status"] == "RUNNING"

    # The queued one waits while the first moves on.
    wait_for("the first to transfer", lambda: a.ds.describe_task_execution(
        TaskExecutionArn=first)["Status"] in ("TRANSFERRING", "VERIFYING"))
    assert a.ds.describe_task_execution(TaskExecutionArn=second)["Status"] == "QUEUED"
    done_first = run_to_end(a.ds, first)
    done_second = run_to_end(a.ds, second)
    assert done_first["Status"] == done_second["Status"] == "SUCCESS"
    assert done_second["LaunchTime"] >= done_first["EndTime"]
    assert done_first["FilesTransferred"] == 2 and done_second["FilesSkipped"] == 2  # ran one after the other
    assert a.ds.describe_task(TaskArn=task)["CurrentTaskExecutionArn"] == second

    # A queued execution leaves the queue when cancelled.
    third = a.ds.start_task_execution(TaskArn=task)["TaskExecutionArn"]
    fourth = a.ds.start_task_execution(TaskArn=task)["TaskExecutionArn"]
    a.ds.cancel_task_execution(TaskExecutionArn=fourth)
    cancelled = a.ds.describe_task_execution(TaskExecutionArn=fourth)
    assert cancelled["Status"] == "ERROR" and cancelled["Result"]["ErrorCode"] == "Cancelled"
    assert run_to_end(a.ds, third)["Status"] == "SUCCESS"


def test_queueing_disabled_refuses_a_second_start(endpoint: str) -> None:
    a = Account(endpoint)
    task, _, _ = a.task({"a": b"1"}, Options={"TaskQueueing": "DISABLED"})
    first = a.ds.start_task_execution(TaskArn=task)["TaskExecutionArn"]
    code, message = refused(lambda: a.ds.start_task_execution(TaskArn=task))
    assert code == "InvalidRequestException" and first in message
    # The override of one start decides for that start.
    queued = a.ds.start_task_execution(TaskArn=task, OverrideOptions={"TaskQueueing": "ENABLED"})["TaskExecutionArn"]
    assert a.ds.describe_task_execution(TaskExecutionArn=queued)["Status"] == "QUEUED"
    run_to_end(a.ds, first)
    assert run_to_end(a.ds, queued)["Status"] == "SUCCESS"
    a.ds.start_task_execution(TaskArn=task)  # free again


# --- listing -------------------------------------------------------------------------------


def test_list_task_executions_newest_first_with_stable_pages(endpoint: str) -> None:
    a = Account(endpoint)
    task, _, _ = a.task()
    started = [a.ds.start_task_execution(TaskArn=task)["TaskExecutionArn"] for _ in range(5)]
    page = a.ds.list_task_executions(TaskArn=task, MaxResults=2)
    seen = [e["TaskExecutionArn"] for e in page["TaskExecutions"]]
    late = a.ds.start_task_execution(TaskArn=task)["TaskExecutionArn"]  # between two pages
    while page.get("NextToken"):
        page = a.ds.list_task_executions(TaskArn=task, MaxResults=2, NextToken=page["NextToken"])
        seen += [e["TaskExecutionArn"] for e in page["TaskExecutions"]]
    assert seen == list(reversed(started))  # newest first; no repeats, nothing skipped
    assert a.executions(task)[0]["TaskExecutionArn"] == late
    paginator = a.ds.get_paginator("list_task_executions")
    every = [e["TaskExecutionArn"] for p in paginator.paginate(TaskArn=task, PaginationConfig={"PageSize": 4})
             for e in p["TaskExecutions"]]
    assert every == [late, *reversed(started)]
    assert refused(lambda: a.ds.list_task_executions(TaskArn=task, NextToken="not-a-token"))[0] \
        == "InvalidRequestException"
    for arn in every:  # leave nothing running
        try:
            a.ds.cancel_task_execution(TaskExecutionArn=arn)
        except ClientError:  # already ended
            pass


# --- task reports --------------------------------------------------------------------------


def report_objects(a: Account, bucket: str, prefix: str) -> dict[str, Any]:
    listed = a.s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return {o["Key"]: json.loads(a.s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()) for o in listed}


def test_task_report_layout_and_levels(endpoint: str) -> None:
    a = Account(endpoint)
    report_bucket = a.bucket()
    report_role = a.role("report-writer")
    config = {
        "Destination": {"S3": {"S3BucketArn": f"arn:aws:s3:::{report_bucket}", "Subdirectory": "/reports/",
                               "BucketAccessRoleArn": report_role}},
        "OutputType": "STANDARD",
        "ReportLevel": "ERRORS_ONLY",
    }
    task, src, _ = a.task({"keep/a.txt": b"A" * 10, "keep/b.txt": b"B" * 20, "gone.txt": b"soon deleted"},
                          TaskReportConfig=config)
    task_id = task.rsplit("/", 1)[1]

    # One object disappears between PREPARING and TRANSFERRING: its transfer fails.
    control(endpoint, "POST", "config", {"phaseSeconds": 0.4})
    execution = a.ds.start_task_execution(TaskArn=task)["TaskExecutionArn"]
    exec_id = execution.rsplit("/", 1)[1]
    wait_for("the plan", lambda: (lambda d: d["Status"] == "PREPARING" and d.get("EstimatedFilesToTransfer") == 3)(
        a.ds.describe_task_execution(TaskExecutionArn=execution)))
    a.s3.delete_object(Bucket=src, Key="gone.txt")
    control(endpoint, "POST", "config", {"phaseSeconds": 0.1})
    result = run_to_end(a.ds, execution)
    assert result["Status"] == "ERROR" and result["FilesTransferred"] == 2
    assert "FilesFailed" not in result  # Basic mode: FilesFailed "applies only to Enhanced mode tasks"
    report_result = wait_for("the report", lambda: (lambda r: r if r.get("Status") != "PENDING" else None)(
        a.ds.describe_task_execution(TaskExecutionArn=execution).get("ReportResult", {})))
    assert report_result == {"Status": "SUCCESS"}

    written = report_objects(a, report_bucket, "reports/")
    summary_key = f"reports/Summary-Reports/{task_id}/{exec_id}/{exec_id}.summary-v1.json"
    assert summary_key in written
    summary = written[summary_key]
    assert summary["AccountId"] == a.id and summary["TaskExecutionArn"] == execution
    assert summary["Status"] == "ERROR" and summary["FilesTransferred"] == 2
    assert summary["FilesFailed"] == {"Prepare": 0, "Transfer": 1, "Verify": 0, "Delete": 0}
    assert summary["SourceLocation"]["LocationUri"] == f"s3://{src}/"
    detailed = {k: v for k, v in written.items() if k.startswith(f"reports/Detailed-Reports/{task_id}/{exec_id}/")}
    assert len(detailed) == 1  # ERRORS_ONLY: only the list with a failure is written
    (key, transferred), = detailed.items()
    assert key.rsplit("/", 1)[1].startswith(f"{exec_id}.files-transferred-v1-00001-") and key.endswith(".json")
    assert [e["RelativePath"] for e in transferred["Transferred"]] == ["/gone.txt"]
    failure = transferred["Transferred"][0]
    assert failure["TransferStatus"] == "FAILED" and failure["ErrorCode"] == "NoSuchKey"
    assert failure["SrcMetadata"]["Type"] == "Regular" and failure["SrcMetadata"]["ContentSize"] == 12

    # SUCCESSES_AND_ERRORS for one run (StartTaskExecution's TaskReportConfig), skipped listed too.
    everything = dict(config, ReportLevel="SUCCESSES_AND_ERRORS")
    again = a.ds.start_task_execution(TaskArn=task, TaskReportConfig=everything)["TaskExecutionArn"]
    again_id = again.rsplit("/", 1)[1]
    assert run_to_end(a.ds, again)["Status"] == "SUCCESS"
    wait_for("the second report", lambda: a.ds.describe_task_execution(
        TaskExecutionArn=again).get("ReportResult", {}).get("Status") == "SUCCESS")
    detailed = report_objects(a, report_bucket, f"reports/Detailed-Reports/{task_id}/{again_id}/")
    kinds = {k.rsplit("/", 1)[1].split(".")[1].split("-v1-")[0]: v for k, v in detailed.items()}
    assert set(kinds) == {"files-skipped", "files-verified"}  # nothing changed, so nothing transferred
    assert sorted(e["RelativePath"] for e in kinds["files-skipped"]["Skipped"]) == ["/keep/a.txt", "/keep/b.txt"]
    assert {e["VerifyStatus"] for e in kinds["files-verified"]["Verified"]} == {"SUCCESS"}


def test_task_report_needs_its_bucket(endpoint: str) -> None:
    a = Account(endpoint)
    missing = unique_name("bkt")
    config = {"Destination": {"S3": {"S3BucketArn": f"arn:aws:s3:::{missing}", "BucketAccessRoleArn": a.role("r")}},
              "OutputType": "SUMMARY_ONLY"}
    assert refused(lambda: a.task(TaskReportConfig={"OutputType": "STANDARD"}))[0] == "InvalidRequestException"
    task, _, _ = a.task({"x": b"x"}, TaskReportConfig=config)
    execution = a.ds.start_task_execution(TaskArn=task)["TaskExecutionArn"]
    assert run_to_end(a.ds, execution)["Status"] == "SUCCESS"  # the transfer itself is fine
    report = wait_for("the report result", lambda: (lambda r: r if r.get("Status") == "ERROR" else None)(
        a.ds.describe_task_execution(TaskExecutionArn=execution).get("ReportResult", {})))
    assert report["ErrorCode"] == "NoSuchBucket" and missing in report["ErrorDetail"]
