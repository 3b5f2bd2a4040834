"""Helpers of the emulator's test modules (the ``endpoint`` fixture is in conftest.py).

Accounts are fresh per call (STS AssumeRole into a random account id); names are
unique, so tests sharing one server never meet.
"""

from __future__ import annotations

import json
import random
import time
import urllib.request
import uuid
from functools import cached_property
from typing import Any, Callable

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

TERMINAL = ("SUCCESS", "ERROR")
DATASYNC_TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "datasync.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
S3_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
# The tutorial's destination actions for the DataSync role (src/policy.rs).
DESTINATION_ACTIONS = ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads",
                       "s3:AbortMultipartUpload", "s3:DeleteObject", "s3:GetObject",
                       "s3:ListMultipartUploadParts", "s3:PutObject", "s3:GetObjectTagging",
                       "s3:PutObjectTagging"]


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class Account:
    """Clients of one emulated AWS account (credentials from STS AssumeRole)."""

    def __init__(self, endpoint: str, account_id: str | None = None, role: str = "admin") -> None:
        self.endpoint = endpoint
        self.id = account_id or str(random.randint(10**11, 10**12 - 1))
        self.role_arn = f"arn:aws:iam::{self.id}:role/{role}"
        sts = boto3.client("sts", endpoint_url=endpoint, region_name="us-east-1",
                           aws_access_key_id="AKIAIOSFODNN7EXAMPLE", aws_secret_access_key="secret")
        creds = sts.assume_role(RoleArn=self.role_arn, RoleSessionName="ferry-test")["Credentials"]
        self.creds = dict(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                          aws_session_token=creds["SessionToken"])

    def client(self, service: str, region: str = "us-east-1", attempts: int = 1, validate: bool = True,
               follow_region_redirects: bool = False) -> Any:
        """A client of this account; ``validate=False`` sends what it is given (no client-side check).

        S3 clients do not follow S3's wrong-Region answers (botocore's region redirector is
        switched off), as Ferry's Rust SDK does not: a test that sends a request to another
        Region than its bucket's fails (``follow_region_redirects=True`` keeps botocore's)."""
        config = Config(parameter_validation=validate, retries={"total_max_attempts": attempts, "mode": "standard"})
        client = boto3.client(service, endpoint_url=self.endpoint, region_name=region, config=config, **self.creds)
        if service == "s3" and not follow_region_redirects:
            no_region_redirects(client)
        return client

    @cached_property
    def ds(self) -> Any:
        return self.client("datasync")

    @cached_property
    def s3(self) -> Any:
        return self.client("s3")

    def bucket(self, region: str = "us-east-1") -> str:
        name = unique_name("bkt")
        kwargs = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        self.client("s3", region).create_bucket(Bucket=name, **kwargs)
        return name

    def role(self, name: str | None = None, path: str = "/", trust: dict[str, Any] | None = None,
             policy: dict[str, Any] | None = S3_ALL, region: str = "us-east-1", boundary: str | None = None) -> str:
        """A role (by default one DataSync can assume), allowed ``policy`` by its own inline policy "s3"
        (``policy=None``: no inline policy); ``name`` defaults to a unique one; ``boundary``: the ARN of
        its permissions boundary (none by default)."""
        iam = self.client("iam", region)
        name = name or unique_name("ds")
        extra = {"PermissionsBoundary": boundary} if boundary else {}
        arn = iam.create_role(RoleName=name, Path=path, AssumeRolePolicyDocument=json.dumps(trust or DATASYNC_TRUST),
                              **extra)["Role"]["Arn"]
        if policy is not None:
            iam.put_role_policy(RoleName=name, PolicyName="s3", PolicyDocument=json.dumps(policy))
        return arn

    def task(self, objects: dict[str, bytes] | None = None, **kwargs: Any) -> tuple[str, str, str]:
        """(task ARN, source bucket, destination bucket) of a same-account S3 -> S3 task; the objects are put
        in the source first. The two locations are kept in ``last_locations``."""
        role = self.role()
        src, dst = self.bucket(), self.bucket()
        for key, body in (objects or {}).items():
            self.s3.put_object(Bucket=src, Key=key, Body=body)
        self.last_locations = (location(self.ds, src, role), location(self.ds, dst, role))
        task = self.ds.create_task(SourceLocationArn=self.last_locations[0],
                                   DestinationLocationArn=self.last_locations[1], **kwargs)["TaskArn"]
        return task, src, dst

    def executions(self, task: str) -> list[dict[str, Any]]:
        return self.ds.list_task_executions(TaskArn=task)["TaskExecutions"]

    def managed_policy(self, statements: list[dict[str, Any]], region: str = "us-east-1") -> str:
        """The ARN of a new customer managed policy of this account with ``statements``."""
        return self.client("iam", region).create_policy(
            PolicyName=unique_name("pol"),
            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}))["Policy"]["Arn"]


def _already_redirected(request_dict: dict[str, Any], **_: Any) -> None:
    # botocore's S3RegionRedirectorv2 leaves a request alone once it was redirected.
    redirect = request_dict.get("context", {}).get("s3_redirect")
    if redirect is not None:
        redirect["redirected"] = True


def no_region_redirects(s3: Any) -> Any:
    """Switch off botocore's S3 region redirector on ``s3``: S3's PermanentRedirect (and the other
    wrong-Region answers) reach the caller as errors, as with Ferry's Rust SDK."""
    s3.meta.events.register_first("needs-retry.s3", _already_redirected)
    return s3


def location(ds: Any, bucket: str, role: str, **kwargs: Any) -> str:
    """The ARN of a new S3 location of ``bucket`` (in the Region and partition of the ``ds`` client)."""
    return ds.create_location_s3(S3BucketArn=f"arn:aws:s3:::{bucket}", S3Config={"BucketAccessRoleArn": role},
                                 **kwargs)["LocationArn"]


def control(endpoint: str, method: str, path: str, body: Any = None) -> Any:
    """A call of the emulator's control API (/ferry-emulator/...)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"{endpoint}/ferry-emulator/{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 10.0) -> Any:
    """The first truthy answer of ``probe``, polled every 20 ms."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def run_to_end(ds: Any, execution_arn: str, timeout: float = 10.0, seen: list[str] | None = None) -> dict[str, Any]:
    """Poll an execution until it ends and return the last answer; the statuses seen are appended to ``seen``."""
    statuses = [] if seen is None else seen

    def probe() -> Any:
        answer = ds.describe_task_execution(TaskExecutionArn=execution_arn)
        if not statuses or statuses[-1] != answer["Status"]:
            statuses.append(answer["Status"])
        return answer if answer["Status"] in TERMINAL else None

    return wait_for(f"execution {execution_arn} to end", probe, timeout)


def run(ds: Any, task: str, **kwargs: Any) -> dict[str, Any]:
    """Start an execution of ``task`` (StartTaskExecution's other arguments in kwargs) and run it to its end."""
    return run_to_end(ds, ds.start_task_execution(TaskArn=task, **kwargs)["TaskExecutionArn"])


def error_code(err: ClientError) -> str:
    return err.response["Error"]["Code"]


def client_error(call: Callable[..., Any], **kwargs: Any) -> ClientError:
    """The error of ``call(**kwargs)``, which must fail."""
    with pytest.raises(ClientError) as err:
        call(**kwargs)
    return err.value


def refused(call: Callable[[], Any]) -> tuple[str, str]:
    """(Code, Message) of the error of a call that must fail."""
    error = client_error(call).response["Error"]
    return error["Code"], error["Message"]


def ferry_grants(bucket: str, role: str, creator: str, actions: list[str] | None = None,
                 sids: tuple[str, str] = ("FerryDataSyncAccess", "FerryCreateLocation")) -> list[dict[str, Any]]:
    """Ferry's two destination statements (src/policy.rs: the tutorial's): the role's access, the creator's
    ListBucket."""
    return [
        {"Sid": sids[0], "Effect": "Allow", "Principal": {"AWS": role}, "Action": actions or DESTINATION_ACTIONS,
         "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]},
        {"Sid": sids[1], "Effect": "Allow", "Principal": {"AWS": creator},
         "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{bucket}"},
    ]


def put_policy(account: Account, bucket: str, statements: list[dict[str, Any]], region: str = "us-east-1",
               version: str = "2012-10-17") -> None:
    account.client("s3", region).put_bucket_policy(
        Bucket=bucket, Policy=json.dumps({"Version": version, "Statement": statements}))


def report_config(account: Account, level: str = "ERRORS_ONLY") -> dict[str, Any]:
    """A STANDARD TaskReportConfig into a new bucket of ``account`` (written by a new role of it)."""
    return {"Destination": {"S3": {"S3BucketArn": f"arn:aws:s3:::{account.bucket()}",
                                   "BucketAccessRoleArn": account.role()}},
            "OutputType": "STANDARD", "ReportLevel": level}


def report_result(account: Account, execution_arn: str) -> dict[str, Any]:
    """DescribeTaskExecution's ReportResult of the execution once it is there and no longer PENDING."""
    return wait_for("the report", lambda: (lambda r: r if r.get("Status") not in (None, "PENDING") else None)(
        account.ds.describe_task_execution(TaskExecutionArn=execution_arn).get("ReportResult", {})))


def summary_report_task(account: Account, bucket: str, role: str) -> Callable[[], dict[str, Any]]:
    """A same-account task (one object) with a SUMMARY_ONLY task report into ``bucket`` written by
    ``role``; returns a call that starts one execution and gives its ``report_result``."""
    config = {"Destination": {"S3": {"S3BucketArn": f"arn:aws:s3:::{bucket}", "BucketAccessRoleArn": role}},
              "OutputType": "SUMMARY_ONLY"}
    task, _, _ = account.task({"r.txt": b"r"}, TaskReportConfig=config)

    def report() -> dict[str, Any]:
        execution = account.ds.start_task_execution(TaskArn=task)["TaskExecutionArn"]
        return report_result(account, execution)

    return report


def report_documents(account: Account, execution: dict[str, Any]) -> dict[str, Any]:
    """The report documents of an ended execution (it must have a TaskReportConfig): "Summary" and the
    detailed lists by kind ("Transferred", "Verified", "Deleted", "Skipped"); waits for ReportResult."""
    arn = execution["TaskExecutionArn"]
    answer = report_result(account, arn)
    assert answer == {"Status": "SUCCESS"}, answer
    bucket = execution["TaskReportConfig"]["Destination"]["S3"]["S3BucketArn"].rsplit(":", 1)[1]
    parts = arn.split("/")
    task_id, exec_id = parts[1], parts[3]
    documents: dict[str, Any] = {}
    for obj in account.s3.list_objects_v2(Bucket=bucket).get("Contents", []):
        if f"/{task_id}/{exec_id}/" not in obj["Key"]:
            continue
        body = json.loads(account.s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
        if obj["Key"].endswith(".summary-v1.json"):
            documents["Summary"] = body
        else:
            documents.update({k: v for k, v in body.items() if k != "TaskExecutionArn"})
    return documents


def run_reported(account: Account, task: str, level: str = "ERRORS_ONLY",
                 **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run ``task`` to its end with a STANDARD task report (StartTaskExecution's TaskReportConfig):
    (DescribeTaskExecution's answer, the report documents as ``report_documents`` gives them)."""
    result = run(account.ds, task, TaskReportConfig=report_config(account, level), **kwargs)
    return result, report_documents(account, result)


def failures(documents: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(list, RelativePath, ErrorCode, ErrorDetail) of every FAILED entry of a report's detailed lists."""
    out = []
    for kind in ("Skipped", "Transferred", "Deleted", "Verified"):
        status = {"Skipped": "SkippedStatus", "Transferred": "TransferStatus", "Deleted": "DeleteStatus",
                  "Verified": "VerifyStatus"}[kind]
        for entry in documents.get(kind, []):
            if entry.get(status) == "FAILED":
                out.append((kind, entry["RelativePath"], entry["ErrorCode"], entry["ErrorDetail"]))
    return out
