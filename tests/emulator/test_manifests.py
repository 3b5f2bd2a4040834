"""Tests of transfer manifests (ManifestConfig) as the emulator enforces them (manifests.py, transfer.py).

For each rule: the request or execution AWS accepts and a nearby one it refuses or fails, with real
boto3 against one emulator per module (phases of 0.1 s), fresh accounts per test. The rules and their
sources are in README.md ("Manifests"); the key page is
https://docs.aws.amazon.com/datasync/latest/userguide/transferring-with-manifest.html.

Run: .cache/venv/bin/python -m pytest -q tests/emulator/test_manifests.py
"""

from __future__ import annotations

import json
from typing import Any

import pytest

import manifests  # (the CSV format, tested directly)
from emulator_testkit import (DATASYNC_TRUST, Account, control, failures, location, put_policy, refused, run,
                              run_reported, unique_name)
from manifests import Entry

MANIFEST_READ = ["s3:GetObject", "s3:GetObjectVersion"]  # "This role must include the following permissions"


# --- helpers ---------------------------------------------------------------------------------


def manifest_role(account: Account, bucket: str, key: str, actions: list[str] | None = None,
                  trust: dict[str, Any] | None = None) -> str:
    """A role DataSync can assume with the page's own policy ("DataSyncAccessManifest") on the manifest."""
    return account.role(trust=trust, policy={"Version": "2012-10-17", "Statement": [{
        "Sid": "DataSyncAccessManifest", "Effect": "Allow", "Action": actions or MANIFEST_READ,
        "Resource": f"arn:aws:s3:::{bucket}/{key}"}]})


def config(bucket: str, key: str, role: str, version: str | None = None) -> dict[str, Any]:
    """StartTaskExecution's / CreateTask's ManifestConfig for the manifest at s3://bucket/key."""
    s3: dict[str, Any] = {"ManifestObjectPath": key, "BucketAccessRoleArn": role, "S3BucketArn": f"arn:aws:s3:::{bucket}"}
    if version:
        s3["ManifestObjectVersionId"] = version
    return {"Action": "TRANSFER", "Format": "CSV", "Source": {"S3": s3}}


def manifest(account: Account, body: str | bytes, bucket: str | None = None, key: str = "manifests/retry.csv",
             **put: Any) -> dict[str, Any]:
    """The ManifestConfig of a new manifest ``body`` written to ``bucket`` (a new one of ``account`` by
    default), readable by a new role of ``account`` with the page's policy."""
    bucket = bucket or account.bucket()
    account.s3.put_object(Bucket=bucket, Key=key, Body=body.encode() if isinstance(body, str) else body, **put)
    return config(bucket, key, manifest_role(account, bucket, key))


def keys(account: Account, bucket: str) -> dict[str, bytes]:
    return {o["Key"]: account.s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
            for o in account.s3.list_objects_v2(Bucket=bucket).get("Contents", [])}


def prepare_error(result: dict[str, Any]) -> tuple[str, str]:
    """(ErrorCode, ErrorDetail) of an execution that ended while preparing, nothing transferred."""
    assert result["Status"] == "ERROR", result["Result"]
    assert result["Result"]["PrepareStatus"] == "ERROR", result["Result"]
    assert result["Result"]["TransferStatus"] == "PENDING" and result["FilesTransferred"] == 0
    return result["Result"]["ErrorCode"], result["Result"]["ErrorDetail"]


# --- the CSV format (pure) -----------------------------------------------------------------------


def test_csv_format_accepted() -> None:
    parse = manifests.parse
    # The page's examples: full paths, object keys, paths with version IDs, UTF-8.
    assert parse(b"photos/picture1.png,111111\nphotos/picture2.png,121212\nphotos/picture3.png") == [
        Entry(1, "photos/picture1.png", "111111"), Entry(2, "photos/picture2.png", "121212"),
        Entry(3, "photos/picture3.png")]
    assert [e.path for e in parse("documents/résumé1.pdf\ndocuments/résumé2.pdf\n".encode())] == [
        "documents/résumé1.pdf", "documents/résumé2.pdf"]
    # Line endings: LF, CR or CRLF; one after the last entry is allowed.
    assert [e.path for e in parse(b"a\r\nb\rc\nd\r\n")] == ["a", "b", "c", "d"]
    # Quotes: special characters, lines, quotes escaped with a quote (quoted or not), quoted version IDs.
    assert parse(b'"filename,with,commas.txt"\n"this\nis\na\nfilename.txt"\nfilename""with""quotes.txt\n'
                 b'"x.txt","v""1"') == [
        Entry(1, "filename,with,commas.txt"), Entry(2, "this\nis\na\nfilename.txt"),
        Entry(3, 'filename"with"quotes.txt'), Entry(4, "x.txt", 'v"1')]
    # Limits: 1,024 bytes of path or version ID, spaces are part of a path, no header row (the first line
    # is an entry like any other).
    assert parse(("p" * 1024 + "," + "v" * 1024).encode()) == [Entry(1, "p" * 1024, "v" * 1024)]
    assert parse(b" a b.txt \npath,version") == [Entry(1, " a b.txt "), Entry(2, "path", "version")]


@pytest.mark.parametrize("body, why", [
    (b"\xff\xfe.txt", "it is not UTF-8"),
    (b"a.txt,1,extra", "3 fields"),
    (b"photos/", "is a folder"),
    (b"a.txt\nb.txt\na.txt,v2", "the path 'a.txt' is listed twice"),
    (b"a.txt\n\nb.txt", "entry 2: an empty path"),
    (b"", "it lists no file or object"),
    (b"a.txt,", "an empty version ID"),
    (b'file"name.txt', "a quote in a field must be escaped"),
    (b'"a.txt" ,v1', "after a closing quote"),
    (b'"a.txt', "no closing quote"),
    (("p" * 1025).encode(), "the path has 1025 bytes (at most 1024)"),
    (("é" * 513).encode(), "the path has 1026 bytes"),
    (("p" * 4097).encode(), "the path has 4097 characters (at most 4096)"),
    (("a.txt," + "v" * 1025).encode(), "the version ID has 1025 bytes"),
])
def test_csv_format_refused(body: bytes, why: str) -> None:
    with pytest.raises(manifests.ManifestProblem) as err:
        manifests.parse(body)
    assert err.value.code == "InvalidManifest"
    assert why in err.value.detail, err.value.detail


# --- the API -------------------------------------------------------------------------------------


def test_manifest_config_needs_source_and_a_bucket_arn(endpoint: str) -> None:
    a = Account(endpoint)
    task, _, _ = a.task()
    src_loc, dst_loc = a.last_locations
    good = config("bkt-m", "m.csv", a.role())
    # "You must specify this parameter [Source] if you're configuring a new manifest on or after February 7, 2024."
    for call in (lambda c: a.ds.create_task(SourceLocationArn=src_loc, DestinationLocationArn=dst_loc, ManifestConfig=c),
                 lambda c: a.ds.update_task(TaskArn=task, ManifestConfig=c),
                 lambda c: a.ds.start_task_execution(TaskArn=task, ManifestConfig=c)):
        code, message = refused(lambda: call({"Action": "TRANSFER", "Format": "CSV"}))
        assert code == "ValidationException" and "IAM role" in message, message
        access_point = json.loads(json.dumps(good))
        access_point["Source"]["S3"]["S3BucketArn"] = f"arn:aws:s3:us-east-1:{a.id}:accesspoint/ap"
        assert refused(lambda: call(access_point))[0] == "InvalidRequestException"
    # The model: Source.S3's members are required, Format is CSV.
    raw = a.client("datasync", validate=False)
    missing_role = {"Source": {"S3": {"ManifestObjectPath": "m.csv", "S3BucketArn": "arn:aws:s3:::bkt-m"}}}
    code, message = refused(lambda: raw.update_task(TaskArn=task, ManifestConfig=missing_role))
    assert code == "ValidationException" and "bucketAccessRoleArn" in message, message
    code, message = refused(lambda: raw.update_task(TaskArn=task, ManifestConfig=dict(good, Format="JSON")))
    assert code == "ValidationException" and "manifestConfig.format" in message, message
    # Accepted: kept and answered as given.
    created = a.ds.create_task(SourceLocationArn=src_loc, DestinationLocationArn=dst_loc, ManifestConfig=good)["TaskArn"]
    assert a.ds.describe_task(TaskArn=created)["ManifestConfig"] == good
    assert "ManifestConfig" not in a.ds.describe_task(TaskArn=task)


def test_update_task_empty_manifest_config_removes_it(endpoint: str) -> None:
    a = Account(endpoint)
    first, second = config("bkt-m", "one.csv", a.role()), config("bkt-m", "two.csv", a.role())
    task, _, _ = a.task(ManifestConfig=first)
    a.ds.update_task(TaskArn=task, Name="renamed")  # other fields leave it alone
    assert a.ds.describe_task(TaskArn=task)["ManifestConfig"] == first
    a.ds.update_task(TaskArn=task, ManifestConfig=second)
    assert a.ds.describe_task(TaskArn=task)["ManifestConfig"] == second
    a.ds.update_task(TaskArn=task, ManifestConfig={})  # "To remove a manifest configuration, specify this parameter as empty."
    assert "ManifestConfig" not in a.ds.describe_task(TaskArn=task)


def test_manifest_cannot_be_used_with_filters(endpoint: str) -> None:
    # "You can't use a manifest together with filters." (Limitations)
    a = Account(endpoint)
    task, src, dst = a.task({"a.txt": b"a", "b.txt": b"b"}, Excludes=[{"FilterType": "SIMPLE_PATTERN", "Value": "/b.txt"}])
    src_loc, dst_loc = a.last_locations
    listed = manifest(a, "a.txt\n")
    for filters in ({"Includes": [{"FilterType": "SIMPLE_PATTERN", "Value": "/a.txt"}]},
                    {"Excludes": [{"FilterType": "SIMPLE_PATTERN", "Value": "/b.txt"}]}):
        code, message = refused(lambda: a.ds.create_task(SourceLocationArn=src_loc, DestinationLocationArn=dst_loc,
                                                         ManifestConfig=listed, **filters))
        assert code == "InvalidRequestException" and "manifest together with filters" in message, message
    # The task's exclude filter and the start's manifest, or the task's manifest and the start's filter.
    code, message = refused(lambda: a.ds.start_task_execution(TaskArn=task, ManifestConfig=listed))
    assert code == "InvalidRequestException" and "Excludes" in message, message
    assert refused(lambda: a.ds.update_task(TaskArn=task, ManifestConfig=listed))[0] == "InvalidRequestException"
    assert "ManifestConfig" not in a.ds.describe_task(TaskArn=task)  # a refused UpdateTask changes nothing
    # Accepted: the filter removed and the manifest set in one UpdateTask.
    a.ds.update_task(TaskArn=task, Excludes=[], ManifestConfig=listed)
    assert "Excludes" not in a.ds.describe_task(TaskArn=task)
    includes = [{"FilterType": "SIMPLE_PATTERN", "Value": "/a.txt"}]
    assert refused(lambda: a.ds.start_task_execution(TaskArn=task, Includes=includes))[0] == "InvalidRequestException"
    assert run(a.ds, task)["Status"] == "SUCCESS"
    assert keys(a, dst) == {"a.txt": b"a"}


def test_manifest_never_deletes(endpoint: str) -> None:
    # "You can't use the Keep deleted files task option ... DataSync only transfers what's listed in your
    # manifest and doesn't delete anything in the destination." (Limitations)
    a = Account(endpoint)
    task, src, dst = a.task({"a.txt": b"a"}, Options={"PreserveDeletedFiles": "REMOVE"})
    a.s3.put_object(Bucket=dst, Key="only-at-destination.txt", Body=b"keep")
    src_loc, dst_loc = a.last_locations
    listed = manifest(a, "a.txt")
    code, message = refused(lambda: a.ds.start_task_execution(TaskArn=task, ManifestConfig=listed))
    assert code == "InvalidRequestException" and "PreserveDeletedFiles REMOVE" in message, message
    assert refused(lambda: a.ds.create_task(SourceLocationArn=src_loc, DestinationLocationArn=dst_loc,
                                            ManifestConfig=listed, Options={"PreserveDeletedFiles": "REMOVE"}))[0] == (
        "InvalidRequestException")
    # Accepted: PRESERVE for that execution; nothing is deleted.
    result = run(a.ds, task, ManifestConfig=listed, OverrideOptions={"PreserveDeletedFiles": "PRESERVE"})
    assert result["Status"] == "SUCCESS", result["Result"]
    assert result["EstimatedFilesToDelete"] == 0 and result["FilesDeleted"] == 0
    assert keys(a, dst) == {"a.txt": b"a", "only-at-destination.txt": b"keep"}


def test_start_manifest_overrides_the_tasks_for_one_execution(endpoint: str) -> None:
    a = Account(endpoint)
    bucket = a.bucket()
    on_task, on_start = manifest(a, "a.txt", bucket, "task.csv"), manifest(a, "b.txt", bucket, "start.csv")
    task, src, dst = a.task({"a.txt": b"a", "b.txt": b"b", "c.txt": b"c"}, ManifestConfig=on_task)
    result = run(a.ds, task, ManifestConfig=on_start)
    assert result["Status"] == "SUCCESS", result["Result"]
    assert result["ManifestConfig"] == on_start  # DescribeTaskExecution shows the execution's manifest
    assert keys(a, dst) == {"b.txt": b"b"}
    assert a.ds.describe_task(TaskArn=task)["ManifestConfig"] == on_task  # the task keeps its own
    result = run(a.ds, task)
    assert result["ManifestConfig"] == on_task and keys(a, dst) == {"a.txt": b"a", "b.txt": b"b"}
    # "To remove a manifest configuration, specify this parameter with an empty value": this execution
    # runs without one (everything in scope).
    result = run(a.ds, task, ManifestConfig={})
    assert result["Status"] == "SUCCESS" and "ManifestConfig" not in result
    assert keys(a, dst) == {"a.txt": b"a", "b.txt": b"b", "c.txt": b"c"}


# --- what a manifest changes ---------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["BASIC", "ENHANCED"])
def test_only_listed_objects_are_listed_transferred_and_verified(endpoint: str, mode: str) -> None:
    a = Account(endpoint)
    role = a.role()
    src, dst = a.bucket(), a.bucket()
    for name in ("a.txt", "b.txt", "c.txt"):
        a.s3.put_object(Bucket=src, Key=f"data/{name}", Body=name.encode())
    task = a.ds.create_task(SourceLocationArn=location(a.ds, src, role, Subdirectory="data"),
                            DestinationLocationArn=location(a.ds, dst, role), TaskMode=mode)["TaskArn"]
    # Paths are relative to the location's prefix ("data/"): the manifest names b.txt, not data/b.txt.
    result = run(a.ds, task, ManifestConfig=manifest(a, "b.txt\n"))
    assert result["Status"] == "SUCCESS", result["Result"]
    assert (result["EstimatedFilesToTransfer"], result["FilesTransferred"], result["FilesVerified"]) == (1, 1, 1)
    assert result["EstimatedBytesToTransfer"] == result["BytesTransferred"] == len(b"b.txt")
    if mode == "ENHANCED":  # "With a manifest, DataSync lists only what's in your manifest"
        assert result["FilesListed"] == {"AtSource": 1, "AtDestinationForDelete": 0} and result["FilesPrepared"] == 1
    assert keys(a, dst) == {"b.txt": b"b.txt"}
    # TransferMode CHANGED (the default) skips a listed object that is already there; ALL copies it again.
    again = manifest(a, "b.txt\nc.txt")
    result = run(a.ds, task, ManifestConfig=again)
    assert (result["FilesTransferred"], result["FilesSkipped"], result["FilesVerified"]) == (1, 1, 1 if mode == "ENHANCED" else 2)
    result = run(a.ds, task, ManifestConfig=again, OverrideOptions={"TransferMode": "ALL"})
    assert (result["Status"], result["FilesTransferred"], result["FilesSkipped"]) == ("SUCCESS", 2, 0)
    # Refused: the path with the location's prefix names no object at the source.
    code, detail = prepare_error(run(a.ds, task, ManifestConfig=manifest(a, "data/a.txt")))
    assert code == "ManifestFileDoesNotExist" and "data/a.txt" in detail, detail
    assert keys(a, dst) == {"b.txt": b"b.txt", "c.txt": b"c.txt"}


def test_listed_object_missing_at_the_source_ends_the_execution(endpoint: str) -> None:
    # Troubleshooting: "ManifestFileDoesNotExist: a file within the manifest was not found at the source".
    a = Account(endpoint)
    task, src, dst = a.task({"a.txt": b"a", "photos/p.png": b"p"})
    for body, missing in (("a.txt\ngone.txt", "gone.txt"), ("a.txt\nphotos", "photos")):  # a prefix is no object
        code, detail = prepare_error(run(a.ds, task, ManifestConfig=manifest(a, body)))
        assert code == "ManifestFileDoesNotExist" and f": {missing}." in detail, detail
        assert keys(a, dst) == {}  # nothing transferred, a.txt neither
    assert run(a.ds, task, ManifestConfig=manifest(a, "a.txt\nphotos/p.png"))["Status"] == "SUCCESS"
    assert keys(a, dst) == {"a.txt": b"a", "photos/p.png": b"p"}


def test_malformed_manifest_ends_the_execution(endpoint: str) -> None:
    a = Account(endpoint)
    task, src, dst = a.task({"a.txt": b"a", "b.txt": b"b"})
    code, detail = prepare_error(run(a.ds, task, ManifestConfig=manifest(a, "a.txt\nb.txt,v1,extra\n")))
    assert code == "InvalidManifest" and "entry 2: 3 fields" in detail, detail
    assert keys(a, dst) == {}
    assert run(a.ds, task, ManifestConfig=manifest(a, "a.txt\nb.txt\n"))["Status"] == "SUCCESS"


def test_manifest_size_quota(endpoint: str) -> None:
    # DataSync quotas: "Maximum size for a manifest file with Enhanced mode tasks", 20 GB, not adjustable;
    # lowered here so a test can reach it.
    a = Account(endpoint)
    task, src, dst = a.task({"a.txt": b"a", "b.txt": b"b"})
    body = "a.txt\nb.txt"
    control(endpoint, "POST", "quotas", {"account": a.id, "region": "us-east-1", "quota": "DataSyncManifestSize",
                                         "value": len(body)})
    try:
        assert run(a.ds, task, ManifestConfig=manifest(a, body))["Status"] == "SUCCESS"
        code, detail = prepare_error(run(a.ds, task, ManifestConfig=manifest(a, body + "\n")))
        assert code == "ManifestTooLarge" and f"quota for a manifest file is {len(body)} bytes" in detail, detail
    finally:
        control(endpoint, "DELETE", f"quotas?account={a.id}")
    assert run(a.ds, task, ManifestConfig=manifest(a, body + "\n"))["Status"] == "SUCCESS"


# --- who reads the manifest ----------------------------------------------------------------------


def test_manifest_role_needs_get_object_and_get_object_version(endpoint: str) -> None:
    a = Account(endpoint)
    task, src, dst = a.task({"a.txt": b"a"})
    bucket = a.bucket()
    a.s3.put_object(Bucket=bucket, Key="m.csv", Body=b"a.txt")
    for actions, refused_action in ((["s3:GetObject"], "s3:GetObjectVersion"),
                                    (["s3:GetObjectVersion"], "s3:GetObject")):
        role = manifest_role(a, bucket, "m.csv", actions)
        code, detail = prepare_error(run(a.ds, task, ManifestConfig=config(bucket, "m.csv", role)))
        assert code == "AccessDenied", detail
        assert (f"is not authorized to perform: {refused_action} on resource: \"arn:aws:s3:::{bucket}/m.csv\" "
                f"because no identity-based policy allows the {refused_action} action") in detail, detail
    # The role must trust DataSync (the page's trust policy; aws:SourceAccount is the task's account).
    other = {"Version": "2012-10-17", "Statement": [dict(DATASYNC_TRUST["Statement"][0], Condition={
        "StringEquals": {"aws:SourceAccount": "000000000000"}})]}
    untrusted = manifest_role(a, bucket, "m.csv", trust=other)
    code, detail = prepare_error(run(a.ds, task, ManifestConfig=config(bucket, "m.csv", untrusted)))
    assert code == "AccessDenied" and "Unable to assume role" in detail, detail
    trusted = manifest_role(a, bucket, "m.csv", trust={"Version": "2012-10-17", "Statement": [dict(
        DATASYNC_TRUST["Statement"][0], Condition={"StringEquals": {"aws:SourceAccount": a.id},
                                                   "ArnLike": {"aws:SourceArn": f"arn:aws:datasync:us-east-1:{a.id}:*"}})]})
    result = run(a.ds, task, ManifestConfig=config(bucket, "m.csv", trusted))
    assert result["Status"] == "SUCCESS", result["Result"]
    assert keys(a, dst) == {"a.txt": b"a"}


def test_manifest_in_another_account_and_region_needs_its_bucket_policy(endpoint: str) -> None:
    # "This bucket doesn't have to be in the same AWS Region or account where you're using DataSync";
    # "in the AWS account where your manifest is located, you need to include the role in the S3 bucket policy".
    a, b = Account(endpoint), Account(endpoint)
    task, src, dst = a.task({"a.txt": b"a"})
    bucket = b.bucket("us-west-2")
    b.client("s3", "us-west-2").put_object(Bucket=bucket, Key="m.csv", Body=b"a.txt")
    role = manifest_role(a, bucket, "m.csv")
    code, detail = prepare_error(run(a.ds, task, ManifestConfig=config(bucket, "m.csv", role)))
    assert code == "AccessDenied" and "because no resource-based policy allows the s3:GetObject action" in detail, detail
    put_policy(b, bucket, [{"Sid": "DataSyncAccessManifestBucket", "Effect": "Allow", "Principal": {"AWS": role},
                            "Action": MANIFEST_READ, "Resource": f"arn:aws:s3:::{bucket}/m.csv"}], region="us-west-2")
    result = run(a.ds, task, ManifestConfig=config(bucket, "m.csv", role))
    assert result["Status"] == "SUCCESS", result["Result"]
    assert keys(a, dst) == {"a.txt": b"a"}


def test_manifest_that_cannot_be_read_ends_the_execution(endpoint: str) -> None:
    a = Account(endpoint)
    task, src, dst = a.task({"a.txt": b"a"})
    bucket = a.bucket()
    role = manifest_role(a, bucket, "*")
    a.s3.put_object(Bucket=bucket, Key="m.csv", Body=b"a.txt")
    # A missing bucket, and a missing object (403 without s3:ListBucket, as S3 answers; 404 with it).
    assert prepare_error(run(a.ds, task, ManifestConfig=config(unique_name("bkt"), "m.csv", role)))[0] == "NoSuchBucket"
    code, detail = prepare_error(run(a.ds, task, ManifestConfig=config(bucket, "gone.csv", role)))
    assert code == "AccessDenied" and detail.endswith("Access Denied"), detail
    lister = a.role(policy={"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": MANIFEST_READ, "Resource": f"arn:aws:s3:::{bucket}/*"},
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{bucket}"}]})
    code, detail = prepare_error(run(a.ds, task, ManifestConfig=config(bucket, "gone.csv", lister)))
    assert code == "NoSuchKey" and "The specified key does not exist." in detail, detail
    assert run(a.ds, task, ManifestConfig=config(bucket, "m.csv", lister))["Status"] == "SUCCESS"
    # An SSE-KMS manifest needs kms:Decrypt for the manifest's role.
    key = a.client("kms").create_key()["KeyMetadata"]["Arn"]
    a.s3.put_object(Bucket=bucket, Key="kms.csv", Body=b"a.txt", ServerSideEncryption="aws:kms", SSEKMSKeyId=key)
    code, detail = prepare_error(run(a.ds, task, ManifestConfig=config(bucket, "kms.csv", lister)))
    assert code == "AccessDenied" and f"kms:Decrypt on resource: {key}" in detail, detail
    a.client("iam").put_role_policy(RoleName=lister.rsplit("/", 1)[1], PolicyName="kms", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:Decrypt", "Resource": key}]}))
    assert run(a.ds, task, ManifestConfig=config(bucket, "kms.csv", lister))["Status"] == "SUCCESS"


def test_manifest_object_version(endpoint: str) -> None:
    # ManifestObjectVersionId: "If you don't set this, DataSync uses the latest version of the object."
    a = Account(endpoint)
    task, src, dst = a.task({"a.txt": b"a", "b.txt": b"b"})
    bucket = a.bucket()
    a.s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    first = a.s3.put_object(Bucket=bucket, Key="m.csv", Body=b"a.txt")["VersionId"]
    a.s3.put_object(Bucket=bucket, Key="m.csv", Body=b"b.txt")
    role = a.role(policy={"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": MANIFEST_READ, "Resource": f"arn:aws:s3:::{bucket}/m.csv"},
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{bucket}"}]})
    assert run(a.ds, task, ManifestConfig=config(bucket, "m.csv", role, first))["Status"] == "SUCCESS"
    assert keys(a, dst) == {"a.txt": b"a"}
    code, detail = prepare_error(run(a.ds, task, ManifestConfig=config(bucket, "m.csv", role, "no-such-version")))
    assert code == "NoSuchVersion" and "The specified version does not exist." in detail, detail
    assert run(a.ds, task, ManifestConfig=config(bucket, "m.csv", role))["Status"] == "SUCCESS"  # the latest
    assert keys(a, dst) == {"a.txt": b"a", "b.txt": b"b"}


def test_entries_with_object_versions(endpoint: str) -> None:
    # "To specify Amazon S3 object version IDs, separate the object's path and version ID by using a comma";
    # Troubleshooting: the source role then needs s3:GetObjectVersion and s3:GetObjectVersionTagging.
    a = Account(endpoint)
    deny_versions = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
        {"Effect": "Deny", "Action": ["s3:GetObjectVersion", "s3:GetObjectVersionTagging"], "Resource": "*"}]}
    role = a.role()
    src, dst = a.bucket(), a.bucket()
    a.s3.put_bucket_versioning(Bucket=src, VersioningConfiguration={"Status": "Enabled"})
    old = a.s3.put_object(Bucket=src, Key="doc.txt", Body=b"old", Tagging="k=old")["VersionId"]
    a.s3.put_object(Bucket=src, Key="doc.txt", Body=b"new", Tagging="k=new")
    a.s3.put_object(Bucket=src, Key="other.txt", Body=b"other")
    task = a.ds.create_task(SourceLocationArn=location(a.ds, src, role),
                            DestinationLocationArn=location(a.ds, dst, role))["TaskArn"]
    result = run(a.ds, task, ManifestConfig=manifest(a, f"doc.txt,{old}\nother.txt"))
    assert result["Status"] == "SUCCESS", result["Result"]
    assert keys(a, dst) == {"doc.txt": b"old", "other.txt": b"other"}
    assert a.s3.get_object_tagging(Bucket=dst, Key="doc.txt")["TagSet"] == [{"Key": "k", "Value": "old"}]
    # A version that does not exist is a file missing at the source.
    code, detail = prepare_error(run(a.ds, task, ManifestConfig=manifest(a, "doc.txt,nope")))
    assert code == "ManifestFileDoesNotExist" and "doc.txt (version nope)" in detail, detail
    # Without s3:GetObjectVersion the versioned entry fails alone (its HeadObject), the other is copied.
    a.client("iam").put_role_policy(RoleName=role.rsplit("/", 1)[1], PolicyName="s3",
                                    PolicyDocument=json.dumps(deny_versions))
    a.s3.put_object(Bucket=src, Key="other.txt", Body=b"other2")
    result, report = run_reported(a, task, ManifestConfig=manifest(a, f"doc.txt,{old}\nother.txt"))
    assert result["Status"] == "ERROR" and result["FilesTransferred"] == 1
    (kind, path, code, detail), = failures(report)
    assert (kind, path, code) == ("Skipped", "/doc.txt", "AccessDenied") and "s3:GetObjectVersion" in detail, detail
    assert keys(a, dst)["other.txt"] == b"other2"


# --- re-running what a task report listed as failed ------------------------------------------------


@pytest.mark.parametrize("mode", ["BASIC", "ENHANCED"])
def test_rerun_of_the_failed_object_with_a_manifest(endpoint: str, mode: str) -> None:
    a = Account(endpoint)
    key = a.client("kms").create_key()["KeyMetadata"]["Arn"]  # default key policy: the role has no kms:Decrypt
    task, src, dst = a.task({"plain1.txt": b"1", "plain2.txt": b"22"}, TaskMode=mode)
    a.s3.put_object(Bucket=src, Key="locked.txt", Body=b"locked", ServerSideEncryption="aws:kms", SSEKMSKeyId=key)

    # 1-2. The run fails with exactly that object listed as FAILED in the task report.
    result, report = run_reported(a, task)
    assert result["Status"] == "ERROR", result["Result"]
    failed = {path for _, path, _, _ in failures(report)}
    assert failed == {"/locked.txt"}, failures(report)
    assert set(keys(a, dst)) == {"plain1.txt", "plain2.txt"}

    # 3. The object is fixed at the source (rewritten without that key: the bucket's SSE-S3 default).
    a.s3.put_object(Bucket=src, Key="locked.txt", Body=b"locked")

    # 4. A CSV manifest listing only that object: the report's RelativePath without its leading "/"
    # (manifest paths are relative to the source location).
    body = "".join(path[1:] + "\n" for path in sorted(failed))
    assert body == "locked.txt\n"
    retry = manifest(a, body)

    # 5. StartTaskExecution's ManifestConfig: exactly 1 object prepared, copied and verified.
    result, report = run_reported(a, task, level="SUCCESSES_AND_ERRORS", ManifestConfig=retry)
    assert result["Status"] == "SUCCESS", result["Result"]
    assert result["ManifestConfig"] == retry
    assert (result["EstimatedFilesToTransfer"], result["FilesTransferred"], result["FilesVerified"],
            result["FilesSkipped"]) == (1, 1, 1, 0)
    assert result["EstimatedBytesToTransfer"] == result["BytesTransferred"] == len(b"locked")
    if mode == "ENHANCED":
        assert result["FilesListed"]["AtSource"] == 1 and result["FilesPrepared"] == 1
        assert result["FilesFailed"] == {"Prepare": 0, "Transfer": 0, "Verify": 0, "Delete": 0}
    assert [(e["RelativePath"], e["TransferStatus"]) for e in report["Transferred"]] == [("/locked.txt", "SUCCESS")]
    assert [(e["RelativePath"], e["VerifyStatus"]) for e in report["Verified"]] == [("/locked.txt", "SUCCESS")]
    assert "Skipped" not in report and "Deleted" not in report
    summary = report["Summary"]
    assert (summary["FilesTransferred"], summary["FilesVerified"], summary["FilesSkipped"]) == (1, 1, 0)
    assert keys(a, dst) == {"plain1.txt": b"1", "plain2.txt": b"22", "locked.txt": b"locked"}
