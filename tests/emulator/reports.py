"""Task reports of the emulated DataSync, written to the report bucket at the end of an execution.

AWS (https://docs.aws.amazon.com/datasync/latest/userguide/task-reports.html,
https://docs.aws.amazon.com/datasync/latest/userguide/API_TaskReportConfig.html):
reports are JSON; ``SUMMARY_ONLY`` is a summary of the execution (account,
locations, counts of files skipped/transferred/verified/deleted, bytes, result,
start and end times, the task's settings); ``STANDARD`` adds detailed lists of
what DataSync transferred, verified, deleted and skipped. ``ReportLevel``
``ERRORS_ONLY`` lists only what DataSync could not transfer, skip, verify or
delete; ``SUCCESSES_AND_ERRORS`` lists both; ``Overrides`` change the level per
list. ``DescribeTaskExecution.ReportResult`` says whether the report was
written (``PENDING | SUCCESS | ERROR``).

Key layout (the AWS pages reachable here do not spell it out; this follows
what public consumers of real reports read):

* ``<Subdirectory>/Summary-Reports/<task-id>/<exec-id>/<exec-id>.summary-v1.json``
* ``<Subdirectory>/Detailed-Reports/<task-id>/<exec-id>/<exec-id>.files-<kind>-v1-00001-<17 hex>.json``
  with ``<kind>`` one of ``transferred``, ``verified``, ``deleted``, ``skipped``;
  each holds ``{"TaskExecutionArn": ..., "<Kind>": [entries]}`` (``Transferred``,
  ``Verified``, ``Deleted``, ``Skipped``); an entry has ``RelativePath`` (``/``
  plus the path under the location), ``SrcMetadata``/``DstMetadata``
  (``Type``, ``ContentSize``, ``Mtime``, ``ETag``), a timestamp and a status
  (``TransferStatus``/``VerifyStatus``/``DeleteStatus``/``SkippedStatus``:
  ``SUCCESS`` or ``FAILED``, with ``ErrorCode`` and ``ErrorDetail`` on failure).
  A list with no entry at the chosen level is not written.

The report is written as DataSync would: with the report's
``BucketAccessRoleArn`` (it must exist and trust DataSync; when ``rules`` is
present its S3 decision for ``s3:PutObject`` applies, bucket policy of another
account included) into the bucket, which must exist. Problems end in
``ReportResult: {Status: ERROR, ErrorCode, ErrorDetail}``, the execution's own
status is not changed.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

import access

try:  # bucket-policy and IAM evaluation, when present
    import rules
except ImportError:  # pragma: no cover - older trees
    rules = None  # type: ignore[assignment]

KINDS = (("Transferred", "transferred", "TransferStatus"), ("Verified", "verified", "VerifyStatus"),
         ("Deleted", "deleted", "DeleteStatus"), ("Skipped", "skipped", "SkippedStatus"))
OUTPUT_TYPES = ("SUMMARY_ONLY", "STANDARD")
REPORT_LEVELS = ("ERRORS_ONLY", "SUCCESSES_AND_ERRORS")
DEFAULT_OUTPUT_TYPE = "STANDARD"
DEFAULT_REPORT_LEVEL = "ERRORS_ONLY"


class ReportConfigError(ValueError):
    """A TaskReportConfig DataSync would refuse."""


def validate(config: Any) -> dict[str, Any] | None:
    """The TaskReportConfig of a request (None or {} removes it); raises ReportConfigError."""
    if config is None or config == {}:
        return None
    if not isinstance(config, dict):
        raise ReportConfigError("TaskReportConfig must be an object.")
    s3 = (config.get("Destination") or {}).get("S3") if isinstance(config.get("Destination"), dict) else None
    if not isinstance(s3, dict):
        raise ReportConfigError("TaskReportConfig.Destination.S3 is required: the bucket DataSync uploads the report to.")
    if not isinstance(s3.get("S3BucketArn"), str) or not re.match(r"^arn:[a-z-]+:s3:::[a-zA-Z0-9.\-_]{1,255}$",
                                                                  s3["S3BucketArn"]):
        raise ReportConfigError("TaskReportConfig.Destination.S3.S3BucketArn must be an S3 bucket ARN.")
    if not isinstance(s3.get("BucketAccessRoleArn"), str) or not re.match(
            r"^arn:[a-z-]+:iam::[0-9]{12}:role/.*$", s3["BucketAccessRoleArn"]):
        raise ReportConfigError("TaskReportConfig.Destination.S3.BucketAccessRoleArn must be an IAM role ARN.")
    if config.get("OutputType") is not None and config["OutputType"] not in OUTPUT_TYPES:
        raise ReportConfigError(f"Invalid OutputType {config['OutputType']!r}; valid values: {', '.join(OUTPUT_TYPES)}.")
    if config.get("ReportLevel") is not None and config["ReportLevel"] not in REPORT_LEVELS:
        raise ReportConfigError(
            f"Invalid ReportLevel {config['ReportLevel']!r}; valid values: {', '.join(REPORT_LEVELS)}.")
    for kind, _, _ in KINDS:
        override = (config.get("Overrides") or {}).get(kind)
        if override is not None and (not isinstance(override, dict)
                                     or override.get("ReportLevel") not in (None, *REPORT_LEVELS)):
            raise ReportConfigError(f"Invalid Overrides.{kind}.ReportLevel.")
    return dict(config)


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch * 1000) % 1000:03d}Z"


def _subdirectory(value: str | None) -> str:
    parts = [p for p in (value or "").split("/") if p]
    return "/".join(parts) + "/" if parts else ""


def keys_for(config: dict[str, Any], task_arn: str, execution_arn: str) -> tuple[str, str]:
    """(summary key, detailed-report key prefix) of an execution's report."""
    s3 = config["Destination"]["S3"]
    prefix = _subdirectory(s3.get("Subdirectory"))
    task_id = task_arn.rsplit("/", 1)[-1]
    exec_id = execution_arn.rsplit("/", 1)[-1]
    summary = f"{prefix}Summary-Reports/{task_id}/{exec_id}/{exec_id}.summary-v1.json"
    detailed = f"{prefix}Detailed-Reports/{task_id}/{exec_id}/{exec_id}."
    return summary, detailed


def _level(config: dict[str, Any], kind: str) -> str:
    override = (config.get("Overrides") or {}).get(kind) or {}
    return override.get("ReportLevel") or config.get("ReportLevel") or DEFAULT_REPORT_LEVEL


def _summary(ex: Any, source: Any, destination: Any, config: dict[str, Any]) -> dict[str, Any]:
    with ex.lock:
        counters = dict(ex.counters)
        result = dict(ex.result)
        status = ex.status
        files_failed = dict(ex.files_failed)
    account_id = ex.arn.split(":")[4]
    return {
        "AccountId": account_id,
        "TaskArn": ex.task_arn,
        "TaskExecutionArn": ex.arn,
        "TaskExecutionId": ex.arn.rsplit("/", 1)[-1],
        "TaskMode": ex.task_mode,
        "Status": status,
        "Result": result,
        "SourceLocation": {"LocationArn": source.arn, "LocationUri": source.uri},
        "DestinationLocation": {"LocationArn": destination.arn, "LocationUri": destination.uri},
        "Options": dict(ex.options),
        "Includes": ex.includes or [],
        "Excludes": ex.excludes or [],
        "StartTime": _iso(ex.start_time),
        "LaunchTime": _iso(ex.launch_time),
        "EndTime": _iso(ex.end_time),
        "TotalTime": result.get("TotalDuration", 0),
        "FilesTransferred": counters.get("FilesTransferred", 0),
        "FilesVerified": counters.get("FilesVerified", 0),
        "FilesDeleted": counters.get("FilesDeleted", 0),
        "FilesSkipped": counters.get("FilesSkipped", 0),
        "FilesFailed": files_failed,
        "BytesTransferred": counters.get("BytesTransferred", 0),
        "BytesWritten": counters.get("BytesWritten", 0),
        "BytesCompressed": counters.get("BytesCompressed", 0),
        "ReportConfig": {
            "OutputType": config.get("OutputType") or DEFAULT_OUTPUT_TYPE,
            "ReportLevel": config.get("ReportLevel") or DEFAULT_REPORT_LEVEL,
            "Overrides": config.get("Overrides") or {},
        },
    }


def _check_access(bucket: str, bucket_arn: str, key: str, role_arn: str, execution_account: str,
                  task_arn: str) -> Any:
    """The S3 backend to write into, or raises (code, detail)."""
    if rules is not None and hasattr(rules, "assume_datasync_role"):
        session, problem = rules.assume_datasync_role(role_arn, execution_account, task_arn)
        if session is None:
            raise _Problem("AccessDenied", f"DataSync could not assume the report's bucket access role {role_arn}: "
                                           f"{problem}.")
    else:
        session = None
        problem = access.role_problem(role_arn)
        if problem is not None:
            raise _Problem("AccessDenied", f"DataSync could not assume the report's bucket access role: {problem}.")
    owner = access.bucket_owner(bucket)
    if owner is None:
        raise _Problem("NoSuchBucket", f"The report bucket {bucket} does not exist.")
    if session is not None and hasattr(rules, "role_s3_decision"):
        decision = rules.role_s3_decision(session, "s3:PutObject", f"{bucket_arn}/{key}", bucket)
        if not decision:
            detail = (rules.denied_text(session.principal, "s3:PutObject", f"{bucket_arn}/{key}", decision)
                      if hasattr(rules, "denied_text") else "access denied")
            raise _Problem("AccessDenied", f"DataSync could not upload the task report to {bucket}: {detail}")
    return owner[1], _report_encryption(session, owner, bucket, f"{bucket_arn}/{key}")


def _report_encryption(session: Any, owner: tuple[str, Any], bucket: str, object_arn: str) -> dict[str, Any]:
    """put_object's encryption arguments for a report: the bucket's default; an SSE-KMS default needs
    kms:GenerateDataKey for the report role, as any write (see transfer.copy_one)."""
    import encryption
    import kms_rules

    fake_bucket = owner[1].buckets[bucket]
    algorithm, key_id, bucket_key = encryption.bucket_default(fake_bucket)
    if algorithm not in kms_rules.KMS_ALGORITHMS:
        return {"encryption": algorithm}
    outcome = kms_rules.role_key_access(session, "kms:GenerateDataKey", key_id, fake_bucket.region_name, owner[0],
                                        object_arn)
    if outcome.error:
        code, message = outcome.error
        raise _Problem("AccessDenied", f"DataSync could not upload the task report to {bucket}: the bucket's default "
                                       f"encryption is SSE-KMS and KMS answered {code}: {message}")
    return {"encryption": algorithm, "kms_key_id": outcome.key.arn, "bucket_key_enabled": bucket_key}


class _Problem(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def write(ex: Any, source: Any, destination: Any) -> dict[str, Any] | None:
    """Writes the execution's report; returns its ReportResult (None without a report config)."""
    config = ex.task_report_config
    if not config:
        return None
    s3 = config["Destination"]["S3"]
    bucket_arn = s3["S3BucketArn"]
    bucket = bucket_arn.rsplit(":", 1)[-1]
    summary_key, detailed_prefix = keys_for(config, ex.task_arn, ex.arn)
    documents: list[tuple[str, dict[str, Any]]] = [(summary_key, _summary(ex, source, destination, config))]
    if (config.get("OutputType") or DEFAULT_OUTPUT_TYPE) == "STANDARD":
        with ex.lock:
            items = {kind: list(entries) for kind, entries in ex.report_items.items()}
        for kind, name, status_field in KINDS:
            entries = items.get(kind, [])
            if _level(config, kind) == "ERRORS_ONLY":
                entries = [e for e in entries if e.get(status_field) == "FAILED"]
            if entries:
                key = f"{detailed_prefix}files-{name}-v1-00001-{uuid.uuid4().hex[:17]}.json"
                documents.append((key, {"TaskExecutionArn": ex.arn, kind: entries}))
    try:
        backend, sse = _check_access(bucket, bucket_arn, summary_key, s3["BucketAccessRoleArn"],
                                     ex.arn.split(":")[4], ex.task_arn)
        for key, document in documents:
            backend.put_object(
                bucket_name=bucket,
                key_name=key,
                value=json.dumps(document, indent=2).encode(),
                disable_notification=True,
                **sse,
            )
    except _Problem as problem:
        return {"Status": "ERROR", "ErrorCode": problem.code, "ErrorDetail": problem.detail}
    except Exception as err:  # the report must not break the execution
        return {"Status": "ERROR", "ErrorCode": "InternalError", "ErrorDetail": f"Could not write the report: {err!r}"}
    return {"Status": "SUCCESS"}
