"""Tests of Ferry's AWS emulator, driven with boto3 against a real server process.

One emulator per module (started through the launcher on a free port, phases of
0.1 s); every test uses its own accounts (STS AssumeRole into fresh account
ids) and its own buckets, and nothing resets the server.

Run: tests/emulator/setup.sh && .cache/venv/bin/python -m pytest tests/emulator
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

import transfer  # (pure filter logic, tested directly)
from emulator_testkit import Account, control, error_code, ferry_grants, location, put_policy, run, run_to_end

AWS_EXECUTION_STATUSES = ("QUEUED", "LAUNCHING", "PREPARING", "TRANSFERRING", "VERIFYING", "SUCCESS", "ERROR")


def put_cross_account_policy(account_b: Account, bucket: str, role_arn: str, caller_arn: str, region: str) -> None:
    """The tutorial's bucket policy (its Sids and policy version), with the caller as the second principal,
    put in the bucket's ``region``."""
    statements = ferry_grants(bucket, role_arn, caller_arn,
                              sids=("DataSyncCreateS3LocationAndTaskAccess", "DataSyncCreateS3Location"))
    put_policy(account_b, bucket, statements, region=region, version="2008-10-17")


# --- tests -----------------------------------------------------------------------------------


def test_accounts_are_separated(endpoint: str) -> None:
    a, b = Account(endpoint), Account(endpoint)
    assert a.client("sts").get_caller_identity()["Account"] == a.id
    arns = {}
    for account in (a, b):
        role = account.role()
        bucket = account.bucket()
        ds = account.client("datasync")
        arns[account.id] = ds.create_location_s3(S3BucketArn=f"arn:aws:s3:::{bucket}",
                                                 S3Config={"BucketAccessRoleArn": role})["LocationArn"]
        assert arns[account.id].startswith(f"arn:aws:datasync:us-east-1:{account.id}:location/loc-")
    assert arns[a.id].rsplit("/", 1)[1] != arns[b.id].rsplit("/", 1)[1]
    for account, other in ((a, b), (b, a)):
        listed = [loc["LocationArn"] for loc in account.client("datasync").list_locations()["Locations"]]
        assert listed == [arns[account.id]]
        with pytest.raises(ClientError) as err:
            account.client("datasync").describe_location_s3(LocationArn=arns[other.id])
        assert error_code(err.value) == "InvalidRequestException"
    # Regions are separate too.
    assert a.client("datasync", "eu-west-1").list_locations()["Locations"] == []


def test_location_fields(endpoint: str) -> None:
    a = Account(endpoint)
    role, bucket = a.role("ferry-datasync", path="/service/"), a.bucket()
    assert role == f"arn:aws:iam::{a.id}:role/service/ferry-datasync"
    ds = a.client("datasync")
    arn = ds.create_location_s3(S3BucketArn=f"arn:aws:s3:::{bucket}", Subdirectory="/data",
                                S3StorageClass="STANDARD_IA", S3Config={"BucketAccessRoleArn": role})["LocationArn"]
    described = ds.describe_location_s3(LocationArn=arn)
    assert described["LocationUri"] == f"s3://{bucket}/data/"
    assert described["S3StorageClass"] == "STANDARD_IA"
    assert described["S3Config"] == {"BucketAccessRoleArn": role}
    assert described["CreationTime"].timestamp() == pytest.approx(time.time(), abs=60)
    root = ds.create_location_s3(S3BucketArn=f"arn:aws:s3:::{bucket}", S3Config={"BucketAccessRoleArn": role})
    assert ds.describe_location_s3(LocationArn=root["LocationArn"])["LocationUri"] == f"s3://{bucket}/"
    filtered = ds.list_locations(Filters=[{"Name": "LocationUri", "Values": [f"s3://{bucket}/data/"],
                                           "Operator": "Equals"}])["Locations"]
    assert [loc["LocationArn"] for loc in filtered] == [arn]
    ds.delete_location(LocationArn=arn)
    with pytest.raises(ClientError) as err:
        ds.delete_location(LocationArn=arn)
    assert error_code(err.value) == "InvalidRequestException"


def test_tags_round_trip(endpoint: str) -> None:
    a = Account(endpoint)
    role, bucket = a.role(), a.bucket()
    ds = a.client("datasync")
    loc = ds.create_location_s3(S3BucketArn=f"arn:aws:s3:::{bucket}", S3Config={"BucketAccessRoleArn": role},
                                Tags=[{"Key": "ferry.dev/managed-by", "Value": "ferry"}])["LocationArn"]
    assert ds.list_tags_for_resource(ResourceArn=loc)["Tags"] == [{"Key": "ferry.dev/managed-by", "Value": "ferry"}]
    ds.tag_resource(ResourceArn=loc, Tags=[{"Key": "ferry.dev/uid", "Value": "u1"},
                                           {"Key": "ferry.dev/managed-by", "Value": "other"}])
    assert ds.list_tags_for_resource(ResourceArn=loc)["Tags"] == [
        {"Key": "ferry.dev/managed-by", "Value": "other"}, {"Key": "ferry.dev/uid", "Value": "u1"}]
    ds.untag_resource(ResourceArn=loc, Keys=["ferry.dev/managed-by"])
    assert ds.list_tags_for_resource(ResourceArn=loc)["Tags"] == [{"Key": "ferry.dev/uid", "Value": "u1"}]

    task = ds.create_task(SourceLocationArn=loc, DestinationLocationArn=loc,
                          Tags=[{"Key": "ferry.dev/resource", "Value": "ns/name"}])["TaskArn"]
    assert ds.list_tags_for_resource(ResourceArn=task)["Tags"] == [{"Key": "ferry.dev/resource", "Value": "ns/name"}]
    execution = ds.start_task_execution(TaskArn=task, Tags=[{"Key": "run", "Value": "1"}])["TaskExecutionArn"]
    assert ds.list_tags_for_resource(ResourceArn=execution)["Tags"] == [{"Key": "run", "Value": "1"}]
    run_to_end(ds, execution)
    with pytest.raises(ClientError) as err:
        ds.list_tags_for_resource(ResourceArn=loc.replace(a.id, "999999999999"))
    assert error_code(err.value) == "InvalidRequestException"


def test_update_task_is_partial(endpoint: str) -> None:
    a = Account(endpoint)
    role, bucket = a.role(), a.bucket()
    ds = a.client("datasync")
    src = ds.create_location_s3(S3BucketArn=f"arn:aws:s3:::{bucket}", Subdirectory="in",
                                S3Config={"BucketAccessRoleArn": role})["LocationArn"]
    dst = ds.create_location_s3(S3BucketArn=f"arn:aws:s3:::{bucket}", Subdirectory="out",
                                S3Config={"BucketAccessRoleArn": role})["LocationArn"]
    task = ds.create_task(
        SourceLocationArn=src, DestinationLocationArn=dst, Name="ferry-ns-name",
        Options={"OverwriteMode": "ALWAYS", "PreserveDeletedFiles": "REMOVE"},
        Excludes=[{"FilterType": "SIMPLE_PATTERN", "Value": "*.tmp"}],
        Includes=[{"FilterType": "SIMPLE_PATTERN", "Value": "/photos/2024*"}],
        Schedule={"ScheduleExpression": "cron(0 2 * * ? *)"},
        CloudWatchLogGroupArn=f"arn:aws:logs:us-east-1:{a.id}:log-group:ferry",
    )["TaskArn"]
    before = ds.describe_task(TaskArn=task)
    assert before["Status"] == "AVAILABLE" and before["TaskMode"] == "BASIC"
    assert before["Schedule"] == {"ScheduleExpression": "cron(0 2 * * ? *)", "Status": "ENABLED"}
    assert before["Options"]["VerifyMode"] == "POINT_IN_TIME_CONSISTENT"  # AWS default filled in
    assert before["Options"]["PreserveDeletedFiles"] == "REMOVE"

    ds.update_task(TaskArn=task, Name="renamed")
    after = ds.describe_task(TaskArn=task)
    for field in ("Options", "Excludes", "Includes", "Schedule", "CloudWatchLogGroupArn"):
        assert after[field] == before[field], field
    assert after["Name"] == "renamed"

    ds.update_task(TaskArn=task, Options={"OverwriteMode": "NEVER"})
    options = ds.describe_task(TaskArn=task)["Options"]
    assert options == dict(before["Options"], OverwriteMode="NEVER")

    ds.update_task(TaskArn=task, Excludes=[], Schedule={"ScheduleExpression": ""})
    cleared = ds.describe_task(TaskArn=task)
    assert "Excludes" not in cleared and "Schedule" not in cleared
    assert cleared["Includes"] == before["Includes"] and cleared["Name"] == "renamed"

    with pytest.raises(ClientError) as err:
        ds.update_task(TaskArn=task, Options={"TransferMode": "SOMETIMES"})
    assert error_code(err.value) == "ValidationException"  # the API model's enum (model_check.py)


def test_faults_fire_then_clear(endpoint: str) -> None:
    a = Account(endpoint)
    ds = a.client("datasync")
    rule = control(endpoint, "POST", "faults", {"service": "datasync", "operation": "ListLocations",
                                                "kind": "throttle", "count": 2})
    assert rule["count"] == 2
    for _ in range(2):
        with pytest.raises(ClientError) as err:
            ds.list_locations()
        assert error_code(err.value) == "ThrottlingException"
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert ds.list_locations()["Locations"] == []
    assert control(endpoint, "GET", "faults")["faults"] == []

    # With retries on, the SDK rides through a throttle.
    control(endpoint, "POST", "faults", {"service": "datasync", "operation": "ListTasks", "kind": "throttle",
                                         "count": 2})
    assert a.client("datasync", attempts=3).list_tasks()["Tasks"] == []

    # Query (STS) and S3 protocols answer in XML with their own codes.
    control(endpoint, "POST", "faults", {"service": "sts", "operation": "GetCallerIdentity", "kind": "throttle",
                                         "count": 1})
    with pytest.raises(ClientError) as err:
        a.client("sts").get_caller_identity()
    assert error_code(err.value) == "Throttling"
    control(endpoint, "POST", "faults", {"service": "s3", "operation": "ListBuckets", "kind": "error500",
                                         "count": 1})
    with pytest.raises(ClientError) as err:
        a.client("s3").list_buckets()
    assert error_code(err.value) == "InternalError"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500

    control(endpoint, "POST", "faults", {"service": "iam", "operation": "ListRoles", "kind": "slow",
                                         "delaySeconds": 0.3, "probability": 1.0})
    started = time.monotonic()
    a.client("iam").list_roles()
    assert time.monotonic() - started >= 0.3
    assert len(control(endpoint, "GET", "faults")["faults"]) == 1  # probability rules stay
    assert control(endpoint, "DELETE", "faults") == {"faults": []}

    assert control(endpoint, "GET", "config")["phaseSeconds"] == 0.1
    assert control(endpoint, "POST", "config", {"phaseSeconds": 0.1})["phaseSeconds"] == 0.1


def test_cross_account_access_check(endpoint: str) -> None:
    a, b = Account(endpoint), Account(endpoint)
    role = a.role()
    bucket = b.bucket("us-west-1")
    ds = a.client("datasync", "us-west-1")

    def create() -> str:
        return ds.create_location_s3(S3BucketArn=f"arn:aws:s3:::{bucket}",
                                     S3Config={"BucketAccessRoleArn": role})["LocationArn"]

    with pytest.raises(ClientError) as err:
        create()
    assert error_code(err.value) == "InvalidRequestException"
    assert "location access test failed" in str(err.value) and "s3:ListBucket" in str(err.value)

    # Only the role is granted: the caller still cannot list the bucket.
    b.client("s3", "us-west-1").put_bucket_policy(Bucket=bucket, Policy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": role}, "Action": "s3:*",
                       "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]}]}))
    with pytest.raises(ClientError):
        create()

    # The caller is an assumed-role session: the policy names its role.
    put_cross_account_policy(b, bucket, role, a.role_arn, "us-west-1")
    arn = create()
    assert arn.startswith(f"arn:aws:datasync:us-west-1:{a.id}:location/")
    # Same-account buckets are not checked.
    a.client("datasync").create_location_s3(S3BucketArn=f"arn:aws:s3:::{a.bucket()}",
                                            S3Config={"BucketAccessRoleArn": role})


def test_end_to_end_cross_account_cross_region_copy(endpoint: str) -> None:
    a, b = Account(endpoint), Account(endpoint)
    role = a.role()
    src_bucket, dst_bucket = a.bucket("us-east-1"), b.bucket("us-west-1")
    s3a, s3b = a.client("s3"), b.client("s3", "us-west-1")
    source_objects = {
        "media/photos/a.jpg": b"A" * 100,
        "media/photos/b.tmp": b"temp",
        "media/docs/readme.txt": b"read me",
        "media/skip/c.txt": b"skipped folder",
        "other/outside.txt": b"not under the prefix",
    }
    for key, body in source_objects.items():
        s3a.put_object(Bucket=src_bucket, Key=key, Body=body)
    s3a.put_object_tagging(Bucket=src_bucket, Key="media/photos/a.jpg",
                           Tagging={"TagSet": [{"Key": "team", "Value": "media"}]})
    s3b.put_object(Bucket=dst_bucket, Key="keep/untouched.txt", Body=b"outside the destination prefix")
    s3b.put_object(Bucket=dst_bucket, Key="archive/stale.txt", Body=b"gone from the source")
    put_cross_account_policy(b, dst_bucket, role, a.role_arn, "us-west-1")

    ds_east, ds_west = a.client("datasync", "us-east-1"), a.client("datasync", "us-west-1")
    src = ds_east.create_location_s3(S3BucketArn=f"arn:aws:s3:::{src_bucket}", Subdirectory="/media",
                                     S3Config={"BucketAccessRoleArn": role})["LocationArn"]
    dst = ds_west.create_location_s3(S3BucketArn=f"arn:aws:s3:::{dst_bucket}", Subdirectory="archive/",
                                     S3Config={"BucketAccessRoleArn": role})["LocationArn"]
    with pytest.raises(ClientError):  # the task lives in the destination's Region
        ds_east.create_task(SourceLocationArn=src, DestinationLocationArn=dst)
    task = ds_west.create_task(
        SourceLocationArn=src, DestinationLocationArn=dst, TaskMode="ENHANCED",
        Options={"VerifyMode": "ONLY_FILES_TRANSFERRED", "PreserveDeletedFiles": "REMOVE"},
        Excludes=[{"FilterType": "SIMPLE_PATTERN", "Value": "*.tmp|/skip"}],
    )["TaskArn"]
    assert task.startswith(f"arn:aws:datasync:us-west-1:{a.id}:task/task-")

    first = ds_west.start_task_execution(TaskArn=task)["TaskExecutionArn"]
    with pytest.raises(ClientError) as err:  # queued by default; refused with TaskQueueing DISABLED
        ds_west.start_task_execution(TaskArn=task, OverrideOptions={"TaskQueueing": "DISABLED"})
    assert error_code(err.value) == "InvalidRequestException"
    assert ds_west.describe_task(TaskArn=task)["Status"] == "RUNNING"
    seen: list[str] = []
    result = run_to_end(ds_west, first, seen=seen)
    assert result["Status"] == "SUCCESS", result.get("Result")
    assert set(seen) <= set(AWS_EXECUTION_STATUSES)
    assert seen == sorted(seen, key=AWS_EXECUTION_STATUSES.index)

    keys = sorted(o["Key"] for o in s3b.list_objects_v2(Bucket=dst_bucket)["Contents"])
    assert keys == ["archive/docs/readme.txt", "archive/photos/a.jpg", "keep/untouched.txt"]
    assert s3b.get_object(Bucket=dst_bucket, Key="archive/photos/a.jpg")["Body"].read() == b"A" * 100
    assert s3b.get_object_tagging(Bucket=dst_bucket, Key="archive/photos/a.jpg")["TagSet"] == [
        {"Key": "team", "Value": "media"}]
    expected_bytes = 100 + len(b"read me")
    assert result["EstimatedFilesToTransfer"] == 2 and result["EstimatedBytesToTransfer"] == expected_bytes
    assert result["FilesTransferred"] == 2 and result["BytesTransferred"] == expected_bytes
    assert result["BytesWritten"] == expected_bytes and result["FilesVerified"] == 2
    assert result["EstimatedFilesToDelete"] == 1 and result["FilesDeleted"] == 1
    assert result["TaskMode"] == "ENHANCED" and result["Excludes"][0]["Value"] == "*.tmp|/skip"
    assert {result["Result"][f"{p}Status"] for p in ("Prepare", "Transfer", "Verify")} == {"SUCCESS"}
    assert result["Result"]["TotalDuration"] > 0 and "ErrorCode" not in result["Result"]
    assert result["StartTime"] <= result["EndTime"]
    assert ds_west.describe_task(TaskArn=task)["Status"] == "AVAILABLE"

    # TransferMode CHANGED: only the changed object moves on the next run.
    s3a.put_object(Bucket=src_bucket, Key="media/docs/readme.txt", Body=b"read me, v2")
    second = ds_west.start_task_execution(TaskArn=task)["TaskExecutionArn"]
    result = run_to_end(ds_west, second)
    assert result["Status"] == "SUCCESS"
    assert result["FilesTransferred"] == 1 and result["FilesSkipped"] == 1 and result["FilesDeleted"] == 0
    assert s3b.get_object(Bucket=dst_bucket, Key="archive/docs/readme.txt")["Body"].read() == b"read me, v2"

    listed = ds_west.list_task_executions(TaskArn=task)["TaskExecutions"]
    assert sorted(e["TaskExecutionArn"] for e in listed) == sorted([first, second])  # AWS documents no order
    assert {e["Status"] for e in listed} == {"SUCCESS"}
    assert ds_west.describe_task(TaskArn=task)["CurrentTaskExecutionArn"] == second


def test_missing_role_or_bucket_ends_in_error(endpoint: str) -> None:
    a = Account(endpoint)
    real_role = a.role()
    missing_role = f"arn:aws:iam::{a.id}:role/does-not-exist"
    src_bucket, dst_bucket = a.bucket(), a.bucket()
    ds = a.client("datasync")

    def task_for(src_role: str, dst_bucket_name: str) -> str:
        return ds.create_task(SourceLocationArn=location(ds, src_bucket, src_role),
                              DestinationLocationArn=location(ds, dst_bucket_name, real_role))["TaskArn"]

    # CreateLocationS3 checks the role and the bucket; they go missing afterwards.
    doomed = a.role(name="does-not-exist")
    assert doomed == missing_role
    role_task = task_for(doomed, dst_bucket)
    bucket_task = task_for(real_role, dst_bucket)
    iam = a.client("iam")
    iam.delete_role_policy(RoleName="does-not-exist", PolicyName="s3")
    iam.delete_role(RoleName="does-not-exist")

    result = run(ds, role_task)
    assert result["Status"] == "ERROR"
    assert result["Result"]["ErrorCode"] == "AccessDenied"
    assert missing_role in result["Result"]["ErrorDetail"]
    assert result["Result"]["PrepareStatus"] == "ERROR"

    a.client("s3").delete_bucket(Bucket=dst_bucket)
    result = run(ds, bucket_task)
    assert result["Status"] == "ERROR"
    assert result["Result"]["ErrorCode"] == "NoSuchBucket"
    assert dst_bucket in result["Result"]["ErrorDetail"]


def test_cancel(endpoint: str) -> None:
    a = Account(endpoint)
    role, bucket = a.role(), a.bucket()
    ds = a.client("datasync")
    loc = ds.create_location_s3(S3BucketArn=f"arn:aws:s3:::{bucket}", S3Config={"BucketAccessRoleArn": role})
    task = ds.create_task(SourceLocationArn=loc["LocationArn"], DestinationLocationArn=loc["LocationArn"])["TaskArn"]
    execution = ds.start_task_execution(TaskArn=task)["TaskExecutionArn"]
    ds.cancel_task_execution(TaskExecutionArn=execution)
    result = run_to_end(ds, execution)
    assert result["Status"] == "ERROR" and result["Result"]["ErrorCode"] == "Cancelled"
    with pytest.raises(ClientError):
        ds.cancel_task_execution(TaskExecutionArn=execution)
    # The task is free again.
    again = ds.start_task_execution(TaskArn=task)["TaskExecutionArn"]
    assert run_to_end(ds, again)["Status"] == "SUCCESS"


@pytest.mark.parametrize(
    ("path", "includes", "excludes", "expected"),
    [
        ("/a/b.tmp", None, "*.tmp", False),
        ("/a/b.txt", None, "*.tmp", True),
        ("/skip/deep/c.txt", None, "/skip", False),
        ("/skipper/c.txt", None, "/skip", True),
        ("/photos/2024-01/x.jpg", "/photos/2024*", None, True),
        ("/photos/2023-01/x.jpg", "/photos/2024*", None, False),
        ("/photos/2024-01/x.tmp", "/photos/2024*", "*.tmp", False),
        ("/x/.snapshot/y", None, "*/.snapshot", False),
        ("/docs/readme", "/docs|/photos", None, True),
        ("/music/song", "/docs|/photos", None, False),
    ],
)
def test_simple_pattern_filters(path: str, includes: str | None, excludes: str | None, expected: bool) -> None:
    def compiled(value: str | None) -> list[Any]:
        return transfer.compile_filters([{"FilterType": "SIMPLE_PATTERN", "Value": value}] if value else None)

    assert transfer.selected(path, compiled(includes), compiled(excludes)) is expected


def test_denied_faults_scope_to_one_account_and_calls_are_logged(endpoint: str) -> None:
    """A `denied` fault hits only the account it names; the call log shows who called what."""
    a, b = Account(endpoint), Account(endpoint)
    bucket_a, bucket_b = a.bucket(), b.bucket()
    control(endpoint, "POST", "faults",
            {"service": "s3", "operation": "PutBucketPolicy", "kind": "denied", "account": b.id, "count": 1})
    policy = json.dumps({"Version": "2012-10-17", "Statement": []})
    a.client("s3").put_bucket_policy(Bucket=bucket_a, Policy=policy)  # A is not affected
    with pytest.raises(ClientError) as err:
        b.client("s3").put_bucket_policy(Bucket=bucket_b, Policy=policy)
    assert err.value.response["Error"]["Code"] == "AccessDenied"
    b.client("s3").put_bucket_policy(Bucket=bucket_b, Policy=policy)  # the one shot is used up
    calls = control(endpoint, "GET", f"calls?account={b.id}&bucket={bucket_b}")["calls"]
    ops = [c["operation"] for c in calls]
    assert ops.count("PutBucketPolicy") == 2 and "CreateBucket" in ops, ops
    assert not control(endpoint, "GET", f"calls?account={a.id}&bucket={bucket_b}")["calls"]


def test_unsigned_web_identity_calls_are_sts_calls(endpoint: str) -> None:
    """AssumeRoleWithWebIdentity carries no signature (the token is the credential): it is still
    an STS call, logged and checked against STS's model."""
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    sts = boto3.client("sts", endpoint_url=endpoint, region_name="us-east-1",
                       config=Config(signature_version=UNSIGNED))
    account = Account(endpoint)
    role = f"arn:aws:iam::{account.id}:role/irsa"
    out = sts.assume_role_with_web_identity(RoleArn=role, RoleSessionName="pod-1", WebIdentityToken="token")
    assert out["Credentials"]["AccessKeyId"]
    logged = control(endpoint, "GET", "calls?service=sts&operation=AssumeRoleWithWebIdentity")["calls"]
    assert logged, "the unsigned call is in the call log as an STS call"
    strict = boto3.client("sts", endpoint_url=endpoint, region_name="us-east-1",
                          config=Config(signature_version=UNSIGNED, parameter_validation=False))
    with pytest.raises(ClientError) as refused:
        strict.assume_role_with_web_identity(RoleArn=role, RoleSessionName="bad name!", WebIdentityToken="token")
    assert error_code(refused.value) == "ValidationError"
