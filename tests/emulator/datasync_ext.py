"""The DataSync API of Ferry's AWS emulator, replacing moto's thin one.

moto 5.2.5 ships a DataSync backend that keeps few fields, has no tags or
execution listing, puts every ARN in account 111222333444 and advances an
execution one status per describe call. ``install()`` swaps it, at import time
of the server, for the classes below, which keep the wire format of botocore's
DataSync service model (awsJson1_1; timestamps as epoch seconds):

* ``FerryDataSyncBackend`` (a subclass of moto's ``DataSyncBackend``, one per
  account and region, so ARNs carry the caller's account id and region and the
  List operations see only the caller's own resources): S3 locations, tasks,
  executions and their tags.
* ``FerryDataSyncResponse``: the operations Ferry uses (S3 locations, tasks,
  executions, tags), with AWS's defaults and partial-update semantics.

StartTaskExecution queues an execution while another of the same task runs
(TaskQueueing ENABLED, the default) or refuses it (DISABLED); ``Scheduler``
starts the runs of enabled schedules (expressions in ``schedules.py``) and
DataSync's own disable after repeated failures is ``_note_outcome``; task
reports are written by ``reports.py`` when an execution ends.

Executions themselves (phases, filters, real copies, counters) live in
``transfer.py``; the access checks (callers, bucket policies, roles) in
``access.py``.
"""

from __future__ import annotations

import base64
import copy
import itertools
import json
import re
import sys
import threading
import time
import uuid
from collections import OrderedDict
from functools import lru_cache
from typing import Any

import moto.datasync
import moto.datasync.models
import moto.datasync.responses
import moto.datasync.urls
from moto.core.base_backend import BackendDict
from moto.core.exceptions import JsonRESTError
from moto.core.responses import BaseResponse
from moto.datasync.models import DataSyncBackend

import encryption
import kms_rules
import manifests
import quotas
import reports
import rules
import schedules
import transfer

JSON_CONTENT_TYPE = "application/x-amz-json-1.1"

# One lock for all DataSync state: the API is small and calls are quick.
STATE_LOCK = threading.RLock()

BASIC_DEFAULT_OPTIONS: dict[str, Any] = {
    "VerifyMode": "POINT_IN_TIME_CONSISTENT",
    "OverwriteMode": "ALWAYS",
    "Atime": "BEST_EFFORT",
    "Mtime": "PRESERVE",
    "Uid": "INT_VALUE",
    "Gid": "INT_VALUE",
    "PreserveDeletedFiles": "PRESERVE",
    "PreserveDevices": "NONE",
    "PosixPermissions": "PRESERVE",
    "BytesPerSecond": -1,
    "TaskQueueing": "ENABLED",
    "LogLevel": "OFF",
    "TransferMode": "CHANGED",
    "SecurityDescriptorCopyFlags": "NONE",
    "ObjectTags": "PRESERVE",
    "ObjectMetadata": "PRESERVE",
}
# Enhanced mode verifies only what it transferred.
ENHANCED_DEFAULT_OPTIONS = dict(BASIC_DEFAULT_OPTIONS, VerifyMode="ONLY_FILES_TRANSFERRED")

RUNNING_STATUSES = ("QUEUED", "LAUNCHING", "PREPARING", "TRANSFERRING", "VERIFYING", "CANCELLING")

_EXECUTION_SEQ = itertools.count(1)


class InvalidRequestException(JsonRESTError):
    code = 400

    def __init__(self, message: str) -> None:
        super().__init__("InvalidRequestException", message)


@lru_cache(maxsize=1)
def service_model() -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model("datasync")


def _enum(shape_name: str) -> list[str]:
    return list(service_model().shape_for(shape_name).enum)


def _new_id(kind: str) -> str:
    return f"{kind}-{uuid.uuid4().hex[:17]}"


def _tags_out(tags: "OrderedDict[str, str | None]") -> list[dict[str, str]]:
    out = []
    for key, value in tags.items():
        entry = {"Key": key}
        if value is not None:
            entry["Value"] = value
        out.append(entry)
    return out


def _prune(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


# --- validation of request fields ------------------------------------------------------


def validate_tags(tags: Any, account: str) -> "OrderedDict[str, str | None]":
    """The tags of a new resource (its account's tags-per-resource quota applies: quotas.py)."""
    if tags is None:
        return OrderedDict()
    if not isinstance(tags, list):
        raise InvalidRequestException("Tags must be a list of {Key, Value}.")
    out: OrderedDict[str, str | None] = OrderedDict()
    for tag in tags:
        key = tag.get("Key") if isinstance(tag, dict) else None
        if not key or not isinstance(key, str) or len(key) > 256:
            raise InvalidRequestException("Each tag needs a Key of 1 to 256 characters.")
        value = tag.get("Value")
        if value is not None and (not isinstance(value, str) or len(value) > 256):
            raise InvalidRequestException(f"The value of tag {key} must be a string of at most 256 characters.")
        out[key] = value
    problem = quotas.datasync_tags_problem(account, len(out))
    if problem:
        raise InvalidRequestException(problem)
    return out


def validate_options(options: Any) -> dict[str, Any]:
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise InvalidRequestException("Options must be an object.")
    members = service_model().shape_for("Options").members
    for name, value in options.items():
        if name not in members:
            raise InvalidRequestException(f"Unknown option {name}.")
        # Only string shapes have an enum (BytesPerSecond is a long).
        allowed = getattr(members[name], "enum", None)
        if allowed and value not in allowed:
            raise InvalidRequestException(
                f"Invalid value {value!r} for option {name}; valid values: {', '.join(allowed)}."
            )
        if name == "BytesPerSecond" and (not isinstance(value, int) or value < -1 or value == 0):
            raise InvalidRequestException("BytesPerSecond must be -1 (unlimited) or a positive number.")
    return dict(options)


def validate_filters(filters: Any, name: str) -> list[dict[str, str]] | None:
    if filters is None:
        return None
    if not isinstance(filters, list) or len(filters) > 1:
        raise InvalidRequestException(f"{name} must be a list of at most one FilterRule; separate patterns with '|'.")
    problem = rules.filter_problem(filters, name)  # FilterRule.Value: at most 102,400 characters
    if problem:
        raise JsonRESTError("ValidationException", problem)
    out = []
    for rule in filters:
        if not isinstance(rule, dict):
            raise InvalidRequestException(f"{name} entries must be objects.")
        if rule.get("FilterType", "SIMPLE_PATTERN") != "SIMPLE_PATTERN":
            raise InvalidRequestException(f"Invalid FilterType {rule.get('FilterType')!r}; only SIMPLE_PATTERN is supported.")
        value = rule.get("Value")
        if not isinstance(value, str) or not value:
            raise InvalidRequestException(f"{name} filter Value must be a non-empty string.")
        out.append({"FilterType": "SIMPLE_PATTERN", "Value": value})
    return out


def validate_schedule(schedule: Any) -> dict[str, str] | None:
    """None removes the schedule (an empty ScheduleExpression does that on AWS).

    The expression follows EventBridge's grammar with DataSync's minimum interval
    of one hour (schedules.py); Status defaults to ENABLED."""
    if schedule is None:
        return None
    if not isinstance(schedule, dict):
        raise InvalidRequestException("Schedule must be an object.")
    expression = schedule.get("ScheduleExpression")
    if expression is None:
        raise JsonRESTError(
            "ValidationException",
            "1 validation error detected: Value null at 'schedule.scheduleExpression' failed to satisfy "
            "constraint: Member must not be null",
        )
    if expression == "":
        return None
    try:
        schedules.validate_for_datasync(expression)
    except schedules.ScheduleError as err:
        raise InvalidRequestException(str(err))
    status = schedule.get("Status") or "ENABLED"
    if status not in ("ENABLED", "DISABLED"):
        raise InvalidRequestException(f"Invalid schedule Status {status!r}; valid values: ENABLED, DISABLED.")
    return {"ScheduleExpression": expression, "Status": status}


def validate_report_config(config: Any) -> dict[str, Any] | None:
    try:
        return reports.validate(config)
    except reports.ReportConfigError as err:
        raise InvalidRequestException(str(err))


def validate_manifest_config(config: Any) -> dict[str, Any] | None:
    """A request's ManifestConfig as kept (None: none, or an empty one, which removes it); see manifests.py."""
    try:
        return manifests.validate_config(config)
    except manifests.ManifestConfigError as err:
        if err.code == "ValidationException":
            raise JsonRESTError("ValidationException", err.message)
        raise InvalidRequestException(err.message)


def check_manifest_combination(manifest: dict[str, Any] | None, includes: Any, excludes: Any,
                               options: dict[str, Any]) -> None:
    """A manifest is used without filters and without PreserveDeletedFiles REMOVE (manifests.py)."""
    problem = manifests.combination_problem(manifest, includes, excludes, options)
    if problem:
        raise InvalidRequestException(problem)


def normalize_subdirectory(subdirectory: str | None) -> str:
    """'/data' or 'data/' -> 'data/'; '' or '/' -> '' (the bucket root)."""
    parts = [p for p in (subdirectory or "").split("/") if p]
    return "/".join(parts) + "/" if parts else ""


def parse_arn(arn: str) -> tuple[str, str, str, str]:
    """(partition, region, account, resource) of a DataSync ARN."""
    parts = arn.split(":", 5) if isinstance(arn, str) else []
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "datasync":
        raise InvalidRequestException(f"Invalid ARN: {arn!r}")
    return parts[1], parts[3], parts[4], parts[5]


# --- models ---------------------------------------------------------------------------


class S3Location:
    def __init__(self, arn: str, region: str, account_id: str, bucket_arn: str, bucket: str, prefix: str,
                 storage_class: str, s3_config: dict[str, Any], tags: "OrderedDict[str, str | None]") -> None:
        self.arn = arn
        self.region = region
        self.account_id = account_id
        self.bucket_arn = bucket_arn
        self.bucket = bucket
        self.prefix = prefix
        self.storage_class = storage_class
        self.s3_config = s3_config
        self.tags = tags
        self.creation_time = time.time()
        self.typ = "S3"

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    @property
    def bucket_access_role_arn(self) -> str | None:
        return self.s3_config.get("BucketAccessRoleArn")

    def describe(self) -> dict[str, Any]:
        return {
            "LocationArn": self.arn,
            "LocationUri": self.uri,
            "S3StorageClass": self.storage_class,
            "S3Config": dict(self.s3_config),
            "CreationTime": self.creation_time,
        }


class Task:
    def __init__(self, arn: str, region: str, account_id: str, source_arn: str, destination_arn: str,
                 task_mode: str) -> None:
        self.arn = arn
        self.region = region
        self.account_id = account_id
        self.source_location_arn = source_arn
        self.destination_location_arn = destination_arn
        self.task_mode = task_mode
        self.name: str | None = None
        self.options = dict(ENHANCED_DEFAULT_OPTIONS if task_mode == "ENHANCED" else BASIC_DEFAULT_OPTIONS)
        self.includes: list[dict[str, str]] | None = None
        self.excludes: list[dict[str, str]] | None = None
        self.schedule: dict[str, str] | None = None
        self.schedule_status_time: float | None = None
        self.cloudwatch_log_group_arn: str | None = None
        self.task_report_config: dict[str, Any] | None = None
        self.manifest_config: dict[str, Any] | None = None
        self.tags: OrderedDict[str, str | None] = OrderedDict()
        self.current_execution_arn: str | None = None
        self.running_execution: "TaskExecution | None" = None
        self.queue: list[TaskExecution] = []  # QUEUED executions waiting for the running one (FIFO)
        self.creation_time = time.time()
        self.backend: "FerryDataSyncBackend | None" = None
        # Schedule state: see set_schedule, Scheduler and _note_outcome.
        self.schedule_disabled_by: str | None = None
        self.schedule_disabled_reason: str | None = None
        self.schedule_next: float | None = None  # emulated epoch seconds of the next scheduled run
        self.failure_streak: tuple[str | None, int] = (None, 0)  # (ErrorCode, failed executions in a row)

    @property
    def status(self) -> str:
        return "RUNNING" if self.running_execution is not None or self.queue else "AVAILABLE"

    def set_schedule(self, schedule: dict[str, str] | None) -> None:
        """Sets, changes or removes the schedule as CreateTask/UpdateTask do (the user's
        doing: disabling records DisabledBy USER, enabling clears the disable)."""
        previous = self.schedule
        self.schedule = schedule
        if schedule is None:
            self.schedule_status_time = None
            self.schedule_disabled_by = self.schedule_disabled_reason = None
            self.schedule_next = None
            SCHEDULER.forget(self)
            return
        status_changed = previous is None or previous.get("Status") != schedule["Status"]
        if status_changed:
            self.schedule_status_time = time.time()
            if schedule["Status"] == "DISABLED":
                self.schedule_disabled_by = "USER"
                self.schedule_disabled_reason = "Manually disabled by user."
            else:
                self.schedule_disabled_by = self.schedule_disabled_reason = None
                self.failure_streak = (None, 0)
        if status_changed or previous.get("ScheduleExpression") != schedule["ScheduleExpression"]:
            now = transfer.CLOCK.now()
            self.schedule_next = schedules.parse(schedule["ScheduleExpression"]).next_after(now, now)
        SCHEDULER.watch(self)

    def disable_schedule_by_service(self, reason: str) -> None:
        """DataSync's own disable after repeated failures with the same error."""
        if not self.schedule or self.schedule["Status"] == "DISABLED":
            return
        self.schedule = dict(self.schedule, Status="DISABLED")
        self.schedule_status_time = time.time()
        self.schedule_disabled_by = "SERVICE"
        # TaskScheduleDetails.DisabledReason: at most 8192 characters of ^[\w\s.,'?!:;\/=|<>()-]*$
        self.schedule_disabled_reason = re.sub(r"[^\w\s.,'?!:;/=|<>()-]", " ", reason)[:8192]

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "TaskArn": self.arn,
            "Status": self.status,
            "Name": self.name,
            "CurrentTaskExecutionArn": self.current_execution_arn,
            "SourceLocationArn": self.source_location_arn,
            "DestinationLocationArn": self.destination_location_arn,
            "CloudWatchLogGroupArn": self.cloudwatch_log_group_arn,
            "Options": dict(self.options),
            "Excludes": copy.deepcopy(self.excludes) if self.excludes else None,
            "Includes": copy.deepcopy(self.includes) if self.includes else None,
            "Schedule": dict(self.schedule) if self.schedule else None,
            "CreationTime": self.creation_time,
            "ManifestConfig": copy.deepcopy(self.manifest_config),
            "TaskReportConfig": copy.deepcopy(self.task_report_config),
            "TaskMode": self.task_mode,
        }
        if self.schedule:
            out["ScheduleDetails"] = _prune({
                "StatusUpdateTime": self.schedule_status_time,
                "DisabledReason": self.schedule_disabled_reason if self.schedule["Status"] == "DISABLED" else None,
                "DisabledBy": self.schedule_disabled_by if self.schedule["Status"] == "DISABLED" else None,
            })
        return _prune(out)


class TaskExecution:
    def __init__(self, arn: str, task: Task, options: dict[str, Any], includes: list[dict[str, str]] | None,
                 excludes: list[dict[str, str]] | None, manifest_config: dict[str, Any] | None,
                 task_report_config: dict[str, Any] | None, tags: "OrderedDict[str, str | None]") -> None:
        self.arn = arn
        self.task_arn = task.arn
        self.task_mode = task.task_mode
        self.options = options
        self.includes = includes
        self.excludes = excludes
        self.manifest_config = manifest_config
        self.task_report_config = task_report_config
        self.tags = tags
        self.status = "QUEUED"
        self.start_time = time.time()
        self.launch_time: float | None = None
        self.end_time: float | None = None
        self.counters: dict[str, int] = {
            name: 0
            for name in (
                "EstimatedFilesToTransfer", "EstimatedBytesToTransfer", "EstimatedFilesToDelete",
                "FilesTransferred", "BytesWritten", "BytesTransferred", "BytesCompressed",
                "FilesDeleted", "FilesSkipped", "FilesVerified", "FilesPrepared",
            )
        }
        self.files_listed = {"AtSource": 0, "AtDestinationForDelete": 0}
        self.result: dict[str, Any] = {
            "PrepareDuration": 0, "PrepareStatus": "PENDING",
            "TotalDuration": 0, "TransferDuration": 0, "TransferStatus": "PENDING",
            "VerifyDuration": 0, "VerifyStatus": "PENDING",
        }
        self.lock = threading.Lock()
        self.cancel_event = threading.Event()
        self.seq = next(_EXECUTION_SEQ)  # start order, for ListTaskExecutions' cursor
        self.scheduled = False  # started by the task's schedule
        self.files_failed: dict[str, int] = {"Prepare": 0, "Transfer": 0, "Verify": 0, "Delete": 0}
        # Per-object outcomes for task reports (transfer.ExecutionRunner fills them).
        self.report_items: dict[str, list[dict[str, Any]]] = {
            "Transferred": [], "Verified": [], "Deleted": [], "Skipped": []}
        self.report_result: dict[str, Any] | None = {"Status": "PENDING"} if task_report_config else None
        self.source: "S3Location | None" = None
        self.destination: "S3Location | None" = None

    @property
    def running(self) -> bool:
        return self.status in RUNNING_STATUSES

    def _result_now(self) -> dict[str, Any]:
        result = dict(self.result)
        if self.running:
            result["TotalDuration"] = max(0, int((time.time() - self.start_time) * 1000))
        return result

    def describe(self) -> dict[str, Any]:
        enhanced = self.task_mode == "ENHANCED"
        with self.lock:
            out: dict[str, Any] = {
                "TaskExecutionArn": self.arn,
                "Status": self.status,
                "Options": dict(self.options),
                "Excludes": copy.deepcopy(self.excludes) if self.excludes else None,
                "Includes": copy.deepcopy(self.includes) if self.includes else None,
                "ManifestConfig": copy.deepcopy(self.manifest_config),
                "StartTime": self.start_time,
                **{k: v for k, v in self.counters.items() if enhanced or k != "FilesPrepared"},
                "Result": self._result_now(),
                "TaskReportConfig": copy.deepcopy(self.task_report_config),
                "TaskMode": self.task_mode,
                # FilesListed, FilesFailed and FilesPrepared "apply only to Enhanced mode tasks"
                # (DescribeTaskExecution); AWS's Basic mode example has none of them.
                "FilesListed": dict(self.files_listed) if enhanced else None,
                "FilesFailed": dict(self.files_failed) if enhanced else None,
                "ReportResult": dict(self.report_result) if self.report_result else None,
                "LaunchTime": self.launch_time,
                "EndTime": self.end_time,
            }
        return _prune(out)


# --- the backend ------------------------------------------------------------------------


class FerryDataSyncBackend(DataSyncBackend):
    """DataSync state of one account in one region."""

    def __init__(self, region_name: str, account_id: str) -> None:
        super().__init__(region_name, account_id)
        self.locations: dict[str, S3Location] = OrderedDict()  # type: ignore[assignment]
        self.tasks: dict[str, Task] = OrderedDict()  # type: ignore[assignment]
        self.task_executions: dict[str, TaskExecution] = OrderedDict()  # type: ignore[assignment]

    @property
    def _url_module(self) -> Any:  # moto derives it from the class's module otherwise
        return moto.datasync.urls

    def arn(self, resource: str) -> str:
        return f"arn:{self.partition}:datasync:{self.region_name}:{self.account_id}:{resource}"

    # lookups (the caller's account and region only, as on AWS)

    def get_location(self, arn: str) -> S3Location:
        location = self.locations.get(arn)
        if location is None:
            raise InvalidRequestException(f"Location {arn} is not found.")
        return location

    def get_task(self, arn: str) -> Task:
        task = self.tasks.get(arn)
        if task is None:
            raise InvalidRequestException(f"Task {arn} is not found.")
        return task

    def get_execution(self, arn: str) -> TaskExecution:
        execution = self.task_executions.get(arn)
        if execution is None:
            raise InvalidRequestException(f"Task execution {arn} is not found.")
        return execution

    def get_taggable(self, arn: str) -> S3Location | Task | TaskExecution:
        parse_arn(arn)
        for collection in (self.locations, self.tasks, self.task_executions):
            if arn in collection:
                return collection[arn]
        raise InvalidRequestException(f"Resource {arn} is not found.")

    def find_own_location(self, arn: str) -> S3Location:
        """A location of this account in any region (a task's source may be in
        another region than the task)."""
        _, region, account, _ = parse_arn(arn)
        if account != self.account_id:
            raise InvalidRequestException(f"Location {arn} is not found.")
        backend = BACKENDS[self.account_id][region]
        return backend.get_location(arn)


BACKENDS: BackendDict[FerryDataSyncBackend] = BackendDict(FerryDataSyncBackend, "datasync")


# --- the API ------------------------------------------------------------------------------


class FerryDataSyncResponse(BaseResponse):
    def __init__(self) -> None:
        super().__init__(service_name="datasync")
        self._params_cache: dict[str, Any] | None = None

    # plumbing

    @property
    def backend(self) -> FerryDataSyncBackend:
        return BACKENDS[self.current_account][self.region]

    @property
    def args(self) -> dict[str, Any]:
        if self._params_cache is None:
            try:
                parsed = json.loads(self.body) if self.body else {}
            except ValueError:
                raise InvalidRequestException("The request body is not valid JSON.")
            self._params_cache = parsed if isinstance(parsed, dict) else {}
        return self._params_cache

    def _required(self, name: str) -> Any:
        value = self.args.get(name)
        if value is None or value == "":
            raise InvalidRequestException(f"1 validation error detected: Value null at '{name}' failed to satisfy constraint: Member must not be null")
        return value

    def _answer(self, payload: dict[str, Any]) -> str:
        self.response_headers["Content-Type"] = JSON_CONTENT_TYPE
        return json.dumps(payload)

    def _page(self, items: list[Any], key: str) -> str:
        max_results = self.args.get("MaxResults") or 100
        token = self.args.get("NextToken")
        try:
            start = int(token) if token else 0
        except ValueError:
            raise InvalidRequestException("Invalid NextToken.")
        end = start + int(max_results)
        payload: dict[str, Any] = {key: items[start:end]}
        if end < len(items):
            payload["NextToken"] = str(end)
        return self._answer(payload)

    # S3 locations

    def create_location_s3(self) -> Any:
        bucket_arn = self._required("S3BucketArn")
        match = re.match(r"^arn:[a-z-]+:s3:::([a-z0-9][a-z0-9.\-]{1,61}[a-z0-9])$", bucket_arn)
        if not match:
            raise InvalidRequestException(f"Invalid S3BucketArn {bucket_arn!r}.")
        bucket = match.group(1)
        s3_config = self._required("S3Config")
        role_arn = s3_config.get("BucketAccessRoleArn") if isinstance(s3_config, dict) else None
        if not role_arn or not re.match(r"^arn:[a-z-]+:iam::[0-9]{12}:role/.+$", role_arn):
            raise InvalidRequestException("S3Config.BucketAccessRoleArn must be an IAM role ARN.")
        storage_class = self.args.get("S3StorageClass") or "STANDARD"
        if storage_class not in _enum("S3StorageClass"):
            raise InvalidRequestException(f"Invalid S3StorageClass {storage_class!r}.")
        tags = validate_tags(self.args.get("Tags"), self.current_account)
        location_arn = self.backend.arn(_new_id("location/loc"))
        # AWS: the bucket must exist, DataSync must be able to assume the role, and
        # both the caller and the role must be able to list the bucket (rules.py).
        problem = rules.create_location_problem(self.current_account, self.access_key, self.region, bucket,
                                                bucket_arn, role_arn, location_arn)
        if problem:
            raise InvalidRequestException(problem)
        with STATE_LOCK:
            backend = self.backend
            location = S3Location(
                arn=location_arn,
                region=self.region,
                account_id=self.current_account,
                bucket_arn=bucket_arn,
                bucket=bucket,
                prefix=normalize_subdirectory(self.args.get("Subdirectory")),
                storage_class=storage_class,
                s3_config={"BucketAccessRoleArn": role_arn},
                tags=tags,
            )
            backend.locations[location.arn] = location
        return self._answer({"LocationArn": location.arn})

    def describe_location_s3(self) -> Any:
        with STATE_LOCK:
            return self._answer(self.backend.get_location(self._required("LocationArn")).describe())

    def update_location_s3(self) -> Any:
        with STATE_LOCK:
            location = self.backend.get_location(self._required("LocationArn"))
            if "Subdirectory" in self.args:
                location.prefix = normalize_subdirectory(self.args["Subdirectory"])
            if "S3StorageClass" in self.args:
                if self.args["S3StorageClass"] not in _enum("S3StorageClass"):
                    raise InvalidRequestException(f"Invalid S3StorageClass {self.args['S3StorageClass']!r}.")
                location.storage_class = self.args["S3StorageClass"]
            if isinstance(self.args.get("S3Config"), dict) and self.args["S3Config"].get("BucketAccessRoleArn"):
                location.s3_config = {"BucketAccessRoleArn": self.args["S3Config"]["BucketAccessRoleArn"]}
        return self._answer({})

    def delete_location(self) -> Any:
        arn = self._required("LocationArn")
        with STATE_LOCK:
            self.backend.get_location(arn)
            del self.backend.locations[arn]
        return self._answer({})

    def list_locations(self) -> Any:
        filters = self.args.get("Filters") or []
        with STATE_LOCK:
            entries = []
            for location in self.backend.locations.values():
                fields = {
                    "LocationUri": location.uri,
                    "LocationType": location.typ,
                    "CreationTime": location.creation_time,
                }
                if all(_filter_matches(fields.get(f.get("Name")), f) for f in filters):
                    entries.append({"LocationArn": location.arn, "LocationUri": location.uri})
        return self._page(entries, "Locations")

    # tasks

    def create_task(self) -> Any:
        source_arn = self._required("SourceLocationArn")
        destination_arn = self._required("DestinationLocationArn")
        task_mode = self.args.get("TaskMode") or "BASIC"
        if task_mode not in ("BASIC", "ENHANCED"):
            raise InvalidRequestException(f"Invalid TaskMode {task_mode!r}.")
        options = validate_options(self.args.get("Options"))
        includes = validate_filters(self.args.get("Includes"), "Includes")
        excludes = validate_filters(self.args.get("Excludes"), "Excludes")
        schedule = validate_schedule(self.args.get("Schedule"))
        report_config = validate_report_config(self.args.get("TaskReportConfig"))
        manifest_config = validate_manifest_config(self.args.get("ManifestConfig"))
        tags = validate_tags(self.args.get("Tags"), self.current_account)
        with STATE_LOCK:
            backend = self.backend
            source = backend.find_own_location(source_arn)
            destination = backend.find_own_location(destination_arn)
            problem = (rules.region_problem(self.region, source.region, destination.region)
                       or rules.verify_mode_problem(self.args.get("Options"), destination.storage_class)
                       or rules.log_group_problem(task_mode, self.args.get("CloudWatchLogGroupArn")))
            if problem:
                raise InvalidRequestException(problem)
            if destination.region != self.region:
                raise InvalidRequestException(
                    f"The destination location {destination_arn} is in {destination.region}; "
                    f"create the task in the destination location's Region, not {self.region}."
                )
            problem = quotas.datasync_task_problem(self.current_account, self.region, len(backend.tasks))
            if problem:
                raise InvalidRequestException(problem)
            task = Task(
                arn=backend.arn(_new_id("task/task")),
                region=self.region,
                account_id=self.current_account,
                source_arn=source_arn,
                destination_arn=destination_arn,
                task_mode=task_mode,
            )
            task.options.update(options)
            _check_mode_options(task.task_mode, task.options)
            check_manifest_combination(manifest_config, includes, excludes, task.options)
            task.name = self.args.get("Name")
            task.includes = includes
            task.excludes = excludes
            task.backend = backend
            task.set_schedule(schedule)
            task.cloudwatch_log_group_arn = self.args.get("CloudWatchLogGroupArn") or None
            task.task_report_config = report_config
            task.manifest_config = manifest_config
            task.tags = tags
            backend.tasks[task.arn] = task
        return self._answer({"TaskArn": task.arn})

    def describe_task(self) -> Any:
        with STATE_LOCK:
            return self._answer(self.backend.get_task(self._required("TaskArn")).describe())

    def update_task(self) -> Any:
        """Only the fields present in the request change (AWS semantics)."""
        p = self.args
        with STATE_LOCK:
            task = self.backend.get_task(self._required("TaskArn"))
            problem = (rules.log_group_problem(task.task_mode, p.get("CloudWatchLogGroupArn"))
                       or rules.verify_mode_problem(
                           p.get("Options"),
                           self.backend.find_own_location(task.destination_location_arn).storage_class))
            if problem:
                raise InvalidRequestException(problem)
            # The task as it would be, checked whole before anything changes.
            options, includes, excludes = task.options, task.includes, task.excludes
            manifest_config = task.manifest_config
            if "Options" in p and p["Options"] is not None:
                options = dict(task.options)
                options.update(validate_options(p["Options"]))
                _check_mode_options(task.task_mode, options)
            if "Includes" in p and p["Includes"] is not None:
                includes = validate_filters(p["Includes"], "Includes") or None
            if "Excludes" in p and p["Excludes"] is not None:
                excludes = validate_filters(p["Excludes"], "Excludes") or None
            if "ManifestConfig" in p and p["ManifestConfig"] is not None:
                # "To remove a manifest configuration, specify this parameter as empty."
                manifest_config = validate_manifest_config(p["ManifestConfig"])
            check_manifest_combination(manifest_config, includes, excludes, options)
            report_config = task.task_report_config
            if "TaskReportConfig" in p and p["TaskReportConfig"] is not None:
                report_config = validate_report_config(p["TaskReportConfig"])
            change_schedule = "Schedule" in p and p["Schedule"] is not None
            schedule = validate_schedule(p["Schedule"]) if change_schedule else None
            task.options, task.includes, task.excludes = options, includes, excludes
            task.manifest_config, task.task_report_config = manifest_config, report_config
            if change_schedule:
                if task.backend is None:
                    task.backend = self.backend
                task.set_schedule(schedule)
            if "Name" in p and p["Name"] is not None:
                task.name = p["Name"]
            if "CloudWatchLogGroupArn" in p and p["CloudWatchLogGroupArn"] is not None:
                task.cloudwatch_log_group_arn = p["CloudWatchLogGroupArn"] or None
        return self._answer({})

    def delete_task(self) -> Any:
        arn = self._required("TaskArn")
        with STATE_LOCK:
            task = self.backend.get_task(arn)
            for queued in list(task.queue):
                _cancel_queued(task, queued)
            if task.running_execution is not None:
                task.running_execution.cancel_event.set()
            task.set_schedule(None)
            del self.backend.tasks[arn]
        return self._answer({})

    def list_tasks(self) -> Any:
        filters = self.args.get("Filters") or []
        with STATE_LOCK:
            entries = []
            for task in self.backend.tasks.values():
                location_ids = [task.source_location_arn, task.destination_location_arn]
                ok = True
                for f in filters:
                    if f.get("Name") == "LocationId":
                        ok = ok and any(_filter_matches(arn, f) for arn in location_ids)
                    else:
                        ok = ok and _filter_matches(task.creation_time, f)
                if ok:
                    entries.append(_prune({"TaskArn": task.arn, "Status": task.status, "Name": task.name,
                                           "TaskMode": task.task_mode}))
        return self._page(entries, "Tasks")

    # executions

    def start_task_execution(self) -> Any:
        p = self.args
        override = validate_options(p.get("OverrideOptions"))
        includes = validate_filters(p.get("Includes"), "Includes")
        excludes = validate_filters(p.get("Excludes"), "Excludes")
        tags = validate_tags(p.get("Tags"), self.current_account)
        report_config = validate_report_config(p.get("TaskReportConfig"))
        # Absent: the task's manifest; empty: none for this execution ("To remove a manifest
        # configuration, specify this parameter with an empty value"); else this one.
        manifest_config: Any = TASK_MANIFEST
        if p.get("ManifestConfig") is not None:
            manifest_config = validate_manifest_config(p["ManifestConfig"])
        with STATE_LOCK:
            backend = self.backend
            task = backend.get_task(self._required("TaskArn"))
            execution = start_execution(
                backend, task, override=override, includes=includes, excludes=excludes,
                manifest_config=manifest_config, task_report_config=report_config, tags=tags,
            )
        return self._answer({"TaskExecutionArn": execution.arn})

    def describe_task_execution(self) -> Any:
        with STATE_LOCK:
            execution = self.backend.get_execution(self._required("TaskExecutionArn"))
        return self._answer(execution.describe())

    def cancel_task_execution(self) -> Any:
        with STATE_LOCK:
            execution = self.backend.get_execution(self._required("TaskExecutionArn"))
            task = self.backend.tasks.get(execution.task_arn)
            if task is not None and execution in task.queue:
                # "If you want to remove a task execution from the queue yourself, cancel the execution."
                _cancel_queued(task, execution)
                return self._answer({})
            with execution.lock:
                if not execution.running or execution.status == "CANCELLING":
                    raise InvalidRequestException(
                        f"Sync task cannot be cancelled in its current status: {execution.status}"
                    )
                execution.status = "CANCELLING"
            execution.cancel_event.set()
        return self._answer({})

    def update_task_execution(self) -> Any:
        with STATE_LOCK:
            execution = self.backend.get_execution(self._required("TaskExecutionArn"))
            options = validate_options(self._required("Options"))
            if set(options) - {"BytesPerSecond"}:
                raise InvalidRequestException("Only BytesPerSecond can be updated on a running execution.")
            with execution.lock:
                execution.options.update(options)
        return self._answer({})

    def list_task_executions(self) -> Any:
        """AWS documents no order: the emulator lists newest first, so a client that
        assumes oldest first (or any order) notices. NextToken is a cursor (the
        position of the last execution returned), so executions started between two
        pages neither repeat nor shift the next page."""
        task_arn = self.args.get("TaskArn")
        max_results = self.args.get("MaxResults")
        if max_results is not None and (not isinstance(max_results, int) or not 0 <= max_results <= 100):
            raise InvalidRequestException(
                f"1 validation error detected: Value '{max_results}' at 'maxResults' failed to satisfy "
                "constraint: Member must have value less than or equal to 100"
            )
        limit = max_results or 100
        token = self.args.get("NextToken")
        after: int | None = None
        if token:
            try:
                after = int(base64.urlsafe_b64decode(token.encode()).decode().removeprefix("exec-seq:"))
            except (ValueError, UnicodeDecodeError):
                raise InvalidRequestException("Invalid NextToken.")
        with STATE_LOCK:
            if task_arn:
                self.backend.get_task(task_arn)
            selected = sorted(
                (ex for ex in self.backend.task_executions.values()
                 if (not task_arn or ex.task_arn == task_arn) and (after is None or ex.seq < after)),
                key=lambda ex: ex.seq, reverse=True,
            )
            page = selected[:limit]
            entries = [{"TaskExecutionArn": ex.arn, "Status": ex.status, "TaskMode": ex.task_mode} for ex in page]
        payload: dict[str, Any] = {"TaskExecutions": entries}
        if len(selected) > limit:
            payload["NextToken"] = base64.urlsafe_b64encode(f"exec-seq:{page[-1].seq}".encode()).decode()
        return self._answer(payload)

    # tags

    def tag_resource(self) -> Any:
        tags = validate_tags(self._required("Tags"), self.current_account)
        with STATE_LOCK:
            resource = self.backend.get_taggable(self._required("ResourceArn"))
            merged = OrderedDict(resource.tags)
            merged.update(tags)
            problem = quotas.datasync_tags_problem(self.current_account, len(merged))
            if problem:
                raise InvalidRequestException(problem)
            resource.tags = merged
        return self._answer({})

    def untag_resource(self) -> Any:
        keys = self._required("Keys")
        with STATE_LOCK:
            resource = self.backend.get_taggable(self._required("ResourceArn"))
            for key in keys:
                resource.tags.pop(key, None)
        return self._answer({})

    def list_tags_for_resource(self) -> Any:
        with STATE_LOCK:
            resource = self.backend.get_taggable(self._required("ResourceArn"))
            tags = _tags_out(resource.tags)
        return self._page(tags, "Tags")


# --- executions: start, queue, finish -------------------------------------------------------


# start_execution's manifest_config when the start names none: the task's manifest.
TASK_MANIFEST: Any = object()


def start_execution(backend: FerryDataSyncBackend, task: Task, *, override: dict[str, Any] | None = None,
                    includes: list[dict[str, str]] | None = None, excludes: list[dict[str, str]] | None = None,
                    manifest_config: Any = TASK_MANIFEST, task_report_config: dict[str, Any] | None = None,
                    tags: "OrderedDict[str, str | None] | None" = None, scheduled: bool = False) -> TaskExecution:
    """StartTaskExecution (and the schedule's runs), under STATE_LOCK.

    A task runs one execution at a time ("For each task, you can only run one task
    execution at a time"). With TaskQueueing ENABLED (the default) a start while
    another execution of the task runs or waits is QUEUED and runs after it (first
    in, first out); with DISABLED it is refused.

    ``manifest_config``: TASK_MANIFEST (the task's), None (none for this execution: the start's
    empty ManifestConfig) or the start's own, which overrides the task's for this execution only. The
    execution's manifest, filters and options together must be allowed (manifests.combination_problem)."""
    override = override or {}
    source = backend.find_own_location(task.source_location_arn)
    destination = backend.find_own_location(task.destination_location_arn)
    problem = rules.verify_mode_problem(override, destination.storage_class)
    if problem:
        raise InvalidRequestException(problem)
    options = dict(task.options)
    options.update(override)
    _check_mode_options(task.task_mode, options)
    if manifest_config is TASK_MANIFEST:
        manifest_config = copy.deepcopy(task.manifest_config)
    includes = includes if includes is not None else copy.deepcopy(task.includes)
    excludes = excludes if excludes is not None else copy.deepcopy(task.excludes)
    check_manifest_combination(manifest_config, includes, excludes, options)
    busy = task.running_execution if task.running_execution is not None else (task.queue[0] if task.queue else None)
    if busy is not None and options.get("TaskQueueing") == "DISABLED":
        raise InvalidRequestException(
            f"Unable to start a task execution for {task.arn}: the task execution {busy.arn} is "
            f"{busy.status} and task queueing is disabled for this task (TaskQueueing DISABLED)."
        )
    execution = TaskExecution(
        arn=f"{task.arn}/execution/{_new_id('exec')}",
        task=task,
        options=options,
        includes=includes,
        excludes=excludes,
        manifest_config=manifest_config,
        task_report_config=task_report_config or copy.deepcopy(task.task_report_config),
        tags=tags if tags is not None else OrderedDict(),
    )
    execution.scheduled = scheduled
    execution.source, execution.destination = source, destination
    backend.task_executions[execution.arn] = execution
    if busy is None:
        _launch(task, execution)
    else:
        task.queue.append(execution)
    return execution


def _launch(task: Task, execution: TaskExecution) -> None:
    task.running_execution = execution
    task.current_execution_arn = execution.arn

    def on_finish(ex: TaskExecution, task: Task = task) -> None:
        _finished(task, ex)

    transfer.ExecutionRunner(execution, execution.source, execution.destination, on_finish).start()


def _finished(task: Task, ex: TaskExecution) -> None:
    """An execution ended (runner thread): its report, the schedule's failure count,
    then the next queued execution of the task."""
    result = reports.write(ex, ex.source, ex.destination)
    if result is not None:
        with ex.lock:
            ex.report_result = result
    with STATE_LOCK:
        _note_outcome(task, ex)
        if task.running_execution is ex:
            task.running_execution = None
        _launch_next(task)


def _launch_next(task: Task) -> None:
    while task.running_execution is None and task.queue:
        nxt = task.queue.pop(0)
        if nxt.running:
            _launch(task, nxt)


def _cancel_queued(task: Task, execution: TaskExecution) -> None:
    """A QUEUED execution leaves the queue and ends as a cancelled one does."""
    if execution in task.queue:
        task.queue.remove(execution)
    with execution.lock:
        execution.status = "ERROR"
        execution.end_time = time.time()
        execution.result.update(PrepareStatus="ERROR", ErrorCode="Cancelled",
                                ErrorDetail="Task execution was cancelled by the user.")
    execution.cancel_event.set()
    result = reports.write(execution, execution.source, execution.destination)
    if result is not None:
        with execution.lock:
            execution.report_result = result


def _note_outcome(task: Task, ex: TaskExecution) -> None:
    """DataSync disables a schedule "because the task failed repeatedly with the same
    error" (TaskScheduleDetails). How many failures is not documented: the emulator
    uses scheduleDisableAfterFailures executions in a row (default 3) with the same
    ErrorCode while the schedule is enabled; a success or a user's cancel resets or
    skips the count."""
    if ex.status == "SUCCESS":
        task.failure_streak = (None, 0)
        return
    code = ex.result.get("ErrorCode")
    if code == "Cancelled" or not task.schedule or task.schedule["Status"] != "ENABLED":
        return
    previous, count = task.failure_streak
    count = count + 1 if previous == code else 1
    task.failure_streak = (code, count)
    if count >= transfer.SETTINGS.schedule_disable_after:
        task.disable_schedule_by_service(str(ex.result.get("ErrorDetail") or code))


class Scheduler(threading.Thread):
    """Starts the executions of enabled schedules at their times on transfer.CLOCK
    (emulated time: config clockSpeed / clockTime), checking every scheduleTick real
    seconds. A run that falls due while the task is busy is queued like any
    StartTaskExecution (TaskQueueing ENABLED) or skipped (DISABLED); runs missed while
    the schedule was disabled are not made up."""

    def __init__(self) -> None:
        super().__init__(name="datasync-scheduler", daemon=True)
        self.tasks: dict[str, Task] = {}

    def watch(self, task: Task) -> None:
        self.tasks[task.arn] = task

    def forget(self, task: Task) -> None:
        self.tasks.pop(task.arn, None)

    def run(self) -> None:
        while True:
            time.sleep(transfer.SETTINGS.schedule_tick)
            try:
                self.tick()
            except Exception as err:  # never let the scheduler die
                print(f"ferry-emulator: scheduler error: {err!r}", file=sys.stderr, flush=True)

    def tick(self) -> None:
        now = transfer.CLOCK.now()
        with STATE_LOCK:
            for task in list(self.tasks.values()):
                backend = task.backend
                if backend is None or backend.tasks.get(task.arn) is not task:
                    if backend is not None:
                        self.forget(task)
                    continue
                schedule = task.schedule
                if not schedule or schedule["Status"] != "ENABLED" or task.schedule_next is None:
                    continue
                if now < task.schedule_next:
                    continue
                parsed = schedules.parse(schedule["ScheduleExpression"])
                anchor = task.schedule_next - parsed.interval_seconds if isinstance(
                    parsed, schedules.RateSchedule) else None
                task.schedule_next = parsed.next_after(now, anchor)
                try:
                    start_execution(backend, task, scheduled=True)
                except InvalidRequestException as err:
                    print(f"ferry-emulator: scheduled run of {task.arn} skipped: {getattr(err, 'message', err)}",
                          file=sys.stderr, flush=True)


SCHEDULER = Scheduler()


def _check_mode_options(task_mode: str, options: dict[str, Any]) -> None:
    if task_mode == "ENHANCED" and options.get("VerifyMode") == "POINT_IN_TIME_CONSISTENT":
        raise InvalidRequestException(
            "VerifyMode POINT_IN_TIME_CONSISTENT is not supported in Enhanced mode; "
            "use ONLY_FILES_TRANSFERRED or NONE."
        )


def _filter_matches(value: Any, f: dict[str, Any]) -> bool:
    """List filters: Operator applied to one field against Values."""
    values = f.get("Values") or []
    op = f.get("Operator", "Equals")
    if value is None:
        return False
    if isinstance(value, float):  # CreationTime: compare as numbers
        try:
            numbers = [float(v) for v in values]
        except ValueError:
            return False
        first = numbers[0] if numbers else 0.0
        return {
            "Equals": value == first, "NotEquals": value != first, "In": value in numbers,
            "LessThan": value < first, "LessThanOrEqual": value <= first,
            "GreaterThan": value > first, "GreaterThanOrEqual": value >= first,
        }.get(op, False)
    value = str(value)
    if op == "Equals":
        return any(value == v for v in values)
    if op == "NotEquals":
        return all(value != v for v in values)
    if op == "In":
        return value in values
    if op == "Contains":
        return any(v in value for v in values)
    if op == "NotContains":
        return all(v not in value for v in values)
    if op == "BeginsWith":
        return any(value.startswith(v) for v in values)
    raise InvalidRequestException(f"Operator {op} is not supported for this filter.")


def install() -> None:
    """Put the classes above in place of moto's DataSync (before the server's
    first DataSync request)."""
    moto.datasync.models.datasync_backends = BACKENDS
    moto.datasync.datasync_backends = BACKENDS  # what moto.backends.get_backend reads
    moto.datasync.responses.datasync_backends = BACKENDS
    moto.datasync.urls.url_paths = {"{0}/$": FerryDataSyncResponse.dispatch}
    if not SCHEDULER.is_alive():
        SCHEDULER.start()
    rules.install()  # IAM/S3 history, bucket-policy size limit, iamPropagationSeconds
    encryption.install()  # S3 default encryption (SSE-S3, SSE-C blocked), SSE-C objects, KMS key ARNs
    kms_rules.install()  # key-policy rules and authorization of the key-policy calls
    quotas.install()  # AWS's default quotas: IAM roles, trust and inline policy sizes, role and bucket tags
