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

Executions themselves (phases, filters, real copies, counters) live in
``transfer.py``; the access checks (callers, bucket policies, roles) in
``access.py``.
"""

from __future__ import annotations

import copy
import json
import re
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

import access
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


def validate_tags(tags: Any) -> "OrderedDict[str, str | None]":
    if tags is None:
        return OrderedDict()
    if not isinstance(tags, list):
        raise InvalidRequestException("Tags must be a list of {Key, Value}.")
    if len(tags) > 50:
        raise InvalidRequestException("A resource can have at most 50 tags.")
    out: OrderedDict[str, str | None] = OrderedDict()
    for tag in tags:
        key = tag.get("Key") if isinstance(tag, dict) else None
        if not key or not isinstance(key, str) or len(key) > 256:
            raise InvalidRequestException("Each tag needs a Key of 1 to 256 characters.")
        value = tag.get("Value")
        if value is not None and (not isinstance(value, str) or len(value) > 256):
            raise InvalidRequestException(f"The value of tag {key} must be a string of at most 256 characters.")
        out[key] = value
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
    """None removes the schedule (an empty ScheduleExpression does that on AWS)."""
    if schedule is None:
        return None
    if not isinstance(schedule, dict):
        raise InvalidRequestException("Schedule must be an object.")
    expression = schedule.get("ScheduleExpression")
    if not expression:
        return None
    if not re.match(r"^(cron|rate)\(.+\)$", expression.strip()):
        raise InvalidRequestException(
            f"Invalid schedule expression {expression!r}: use cron(...) or rate(...)."
        )
    status = schedule.get("Status", "ENABLED")
    if status not in ("ENABLED", "DISABLED"):
        raise InvalidRequestException(f"Invalid schedule Status {status!r}.")
    return {"ScheduleExpression": expression, "Status": status}


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
        self.creation_time = time.time()

    @property
    def status(self) -> str:
        return "RUNNING" if self.running_execution is not None else "AVAILABLE"

    def set_schedule(self, schedule: dict[str, str] | None) -> None:
        if schedule != self.schedule:
            self.schedule_status_time = time.time() if schedule else None
        self.schedule = schedule

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
            out["ScheduleDetails"] = {"StatusUpdateTime": self.schedule_status_time}
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

    @property
    def running(self) -> bool:
        return self.status in RUNNING_STATUSES

    def _result_now(self) -> dict[str, Any]:
        result = dict(self.result)
        if self.running:
            result["TotalDuration"] = max(0, int((time.time() - self.start_time) * 1000))
        return result

    def describe(self) -> dict[str, Any]:
        with self.lock:
            out: dict[str, Any] = {
                "TaskExecutionArn": self.arn,
                "Status": self.status,
                "Options": dict(self.options),
                "Excludes": copy.deepcopy(self.excludes) if self.excludes else None,
                "Includes": copy.deepcopy(self.includes) if self.includes else None,
                "ManifestConfig": copy.deepcopy(self.manifest_config),
                "StartTime": self.start_time,
                **self.counters,
                "Result": self._result_now(),
                "TaskReportConfig": copy.deepcopy(self.task_report_config),
                "TaskMode": self.task_mode,
                "FilesListed": dict(self.files_listed),
                "FilesFailed": {"Prepare": 0, "Transfer": 0, "Verify": 0, "Delete": 0},
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
        tags = validate_tags(self.args.get("Tags"))
        self._location_access_test(bucket, bucket_arn, role_arn)
        with STATE_LOCK:
            backend = self.backend
            location = S3Location(
                arn=backend.arn(_new_id("location/loc")),
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

    def _location_access_test(self, bucket: str, bucket_arn: str, role_arn: str) -> None:
        """AWS lists the bucket as the caller and as the role when a location is
        created; moto evaluates no bucket policy, so read it here for buckets of
        another account."""
        owner = access.bucket_owner(bucket)
        if owner is None or owner[0] == self.current_account:
            return
        account_id, backend = owner
        policy = access.policy_document(backend.buckets[bucket].policy)
        caller = access.caller_principals(self.current_account, self.access_key, self.region)
        if access.bucket_grants_list(policy, bucket_arn, caller) and access.bucket_grants_list(
            policy, bucket_arn, access.role_principals(role_arn)
        ):
            return
        raise InvalidRequestException(
            f"DataSync location access test failed: could not perform s3:ListObjectsV2 on bucket "
            f"{bucket}. Access denied. Ensure bucket access role has s3:ListBucket permission."
        )

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
        tags = validate_tags(self.args.get("Tags"))
        with STATE_LOCK:
            backend = self.backend
            backend.find_own_location(source_arn)
            destination = backend.find_own_location(destination_arn)
            if destination.region != self.region:
                raise InvalidRequestException(
                    f"The destination location {destination_arn} is in {destination.region}; "
                    f"create the task in the destination location's Region, not {self.region}."
                )
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
            task.name = self.args.get("Name")
            task.includes = includes
            task.excludes = excludes
            task.set_schedule(schedule)
            task.cloudwatch_log_group_arn = self.args.get("CloudWatchLogGroupArn") or None
            task.task_report_config = self.args.get("TaskReportConfig") or None
            task.manifest_config = self.args.get("ManifestConfig") or None
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
            if "Options" in p and p["Options"] is not None:
                options = dict(task.options)
                options.update(validate_options(p["Options"]))
                _check_mode_options(task.task_mode, options)
                task.options = options
            if "Includes" in p and p["Includes"] is not None:
                task.includes = validate_filters(p["Includes"], "Includes") or None
            if "Excludes" in p and p["Excludes"] is not None:
                task.excludes = validate_filters(p["Excludes"], "Excludes") or None
            if "Schedule" in p and p["Schedule"] is not None:
                task.set_schedule(validate_schedule(p["Schedule"]))
            if "Name" in p and p["Name"] is not None:
                task.name = p["Name"]
            if "CloudWatchLogGroupArn" in p and p["CloudWatchLogGroupArn"] is not None:
                task.cloudwatch_log_group_arn = p["CloudWatchLogGroupArn"] or None
            if "TaskReportConfig" in p and p["TaskReportConfig"] is not None:
                task.task_report_config = p["TaskReportConfig"] or None
            if "ManifestConfig" in p and p["ManifestConfig"] is not None:
                task.manifest_config = p["ManifestConfig"] or None
        return self._answer({})

    def delete_task(self) -> Any:
        arn = self._required("TaskArn")
        with STATE_LOCK:
            task = self.backend.get_task(arn)
            if task.running_execution is not None:
                task.running_execution.cancel_event.set()
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
        tags = validate_tags(p.get("Tags"))
        with STATE_LOCK:
            backend = self.backend
            task = backend.get_task(self._required("TaskArn"))
            if task.running_execution is not None:
                raise InvalidRequestException(
                    f"Task {task.arn} already has a running execution "
                    f"({task.running_execution.arn}); wait for it to finish or cancel it."
                )
            source = backend.find_own_location(task.source_location_arn)
            destination = backend.find_own_location(task.destination_location_arn)
            options = dict(task.options)
            options.update(override)
            _check_mode_options(task.task_mode, options)
            execution = TaskExecution(
                arn=f"{task.arn}/execution/{_new_id('exec')}",
                task=task,
                options=options,
                includes=includes if includes is not None else copy.deepcopy(task.includes),
                excludes=excludes if excludes is not None else copy.deepcopy(task.excludes),
                manifest_config=p.get("ManifestConfig") or copy.deepcopy(task.manifest_config),
                task_report_config=p.get("TaskReportConfig") or copy.deepcopy(task.task_report_config),
                tags=tags,
            )
            backend.task_executions[execution.arn] = execution
            task.current_execution_arn = execution.arn
            task.running_execution = execution

            def on_finish(ex: TaskExecution, task: Task = task) -> None:
                with STATE_LOCK:
                    if task.running_execution is ex:
                        task.running_execution = None

            transfer.ExecutionRunner(execution, source, destination, on_finish).start()
        return self._answer({"TaskExecutionArn": execution.arn})

    def describe_task_execution(self) -> Any:
        with STATE_LOCK:
            execution = self.backend.get_execution(self._required("TaskExecutionArn"))
        return self._answer(execution.describe())

    def cancel_task_execution(self) -> Any:
        with STATE_LOCK:
            execution = self.backend.get_execution(self._required("TaskExecutionArn"))
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
        task_arn = self.args.get("TaskArn")
        with STATE_LOCK:
            if task_arn:
                self.backend.get_task(task_arn)
            entries = [
                {"TaskExecutionArn": ex.arn, "Status": ex.status, "TaskMode": ex.task_mode}
                for ex in self.backend.task_executions.values()
                if not task_arn or ex.task_arn == task_arn
            ]
        return self._page(entries, "TaskExecutions")

    # tags

    def tag_resource(self) -> Any:
        tags = validate_tags(self._required("Tags"))
        with STATE_LOCK:
            resource = self.backend.get_taggable(self._required("ResourceArn"))
            merged = OrderedDict(resource.tags)
            merged.update(tags)
            if len(merged) > 50:
                raise InvalidRequestException("A resource can have at most 50 tags.")
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
