"""Tests of S3 encryption and KMS as the emulator enforces them (encryption.py, kms_rules.py).

For each rule: the request AWS refuses (with the exact error) and a nearby one it
accepts. One emulator per module (phases of 0.1 s), fresh accounts per test.

Run: .cache/venv/bin/python -m pytest -q tests/emulator/test_encryption.py
"""

from __future__ import annotations

import json
from typing import Any

import pytest

import encryption
import kms_rules
from emulator_testkit import (Account, control, failures, ferry_grants, location, put_policy, refused, run,
                              run_reported, summary_report_task, unique_name)
from transfer import FILES_SKIPPED_DETAIL
from policy_eval import Principal

SSE_S3_DEFAULT = {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": False,
                  "BlockedEncryptionTypes": {"EncryptionType": ["SSE-C"]}}
SSE_C_KEY = "k" * 32  # a 256-bit customer key; boto3 base64-encodes it and adds its MD5


# --- helpers ---------------------------------------------------------------------------------


def root_statement(account: str) -> dict[str, Any]:
    """The default key policy's "Enable IAM User Permissions" statement."""
    return {"Sid": "Enable IAM User Permissions", "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{account}:root"}, "Action": "kms:*", "Resource": "*"}


def role_statement(role: str, actions: list[str]) -> dict[str, Any]:
    return {"Sid": "DataSync role", "Effect": "Allow", "Principal": {"AWS": role}, "Action": actions, "Resource": "*"}


def key_policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def new_key(account: Account, policy: str | None = None) -> str:
    """The ARN of a new symmetric key of ``account`` (the default key policy unless ``policy``)."""
    kms = account.client("kms")
    return kms.create_key(**({"Policy": policy} if policy else {}))["KeyMetadata"]["Arn"]


def sse_kms_bucket(account: Account, key_id: str) -> str:
    """A bucket whose default encryption is SSE-KMS with ``key_id`` (ARN, key id or alias)."""
    bucket = account.bucket()
    account.s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_id}}]})
    return bucket


def allow_kms(account: Account, role: str, key_arn: str, actions: list[str]) -> None:
    """An inline policy "kms" on the role allowing ``actions`` on the key's full ARN."""
    account.client("iam").put_role_policy(RoleName=role.rsplit("/", 1)[1], PolicyName="kms", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": key_arn}]}))


def cross_account_task(a: Account, b: Account, destination: str, role: str, objects: dict[str, bytes],
                       **options: Any) -> str:
    """A task from a new bucket of A (holding ``objects``) into B's ``destination`` (Ferry's grants
    in its bucket policy)."""
    src = a.bucket()
    for key, body in objects.items():
        a.s3.put_object(Bucket=src, Key=key, Body=body)
    put_policy(b, destination, ferry_grants(destination, role, a.role_arn))
    ds = a.ds
    return ds.create_task(SourceLocationArn=location(ds, src, role), DestinationLocationArn=location(ds, destination, role),
                          **options)["TaskArn"]


def first_failure(account: Account, task: str) -> tuple[dict[str, Any], tuple[str, str, str, str]]:
    """Run ``task`` with a task report: (DescribeTaskExecution, the report's first failed entry as
    ``failures`` gives it)."""
    result, report = run_reported(account, task)
    assert result["Status"] == "ERROR", result["Result"]
    return result, failures(report)[0]


def denied(action: str, key_arn: str, why: str) -> str:
    return f"is not authorized to perform: {action} on resource: {key_arn} {why}"


# --- KMS's decision (pure) ---------------------------------------------------------------------


A, B = "111111111111", "222222222222"
ROLE = f"arn:aws:iam::{A}:role/ds"
KEY_A, KEY_B = f"arn:aws:kms:us-east-1:{A}:key/k", f"arn:aws:kms:us-east-1:{B}:key/k"
ALLOW_KMS = [{"Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}]


def _decide(key_arn: str, policy: str, identity: list[Any], action: str = "kms:Decrypt",
            via: str | None = "s3.us-east-1.amazonaws.com") -> kms_rules.Decision:
    principal = Principal.for_role(ROLE, f"arn:aws:sts::{A}:assumed-role/ds/AWS-DataSync")
    account = key_arn.split(":")[4]
    keys = kms_rules.context(principal, account, via_service=via, object_arn="arn:aws:s3:::b/k")
    return kms_rules.decide(principal, identity, action, key_arn, account, json.loads(policy), keys)


def test_kms_decision_follows_key_policy_and_iam() -> None:
    # Same account: the key policy naming the role suffices; naming the account root delegates to IAM.
    assert _decide(KEY_A, key_policy(role_statement(ROLE, ["kms:Decrypt"])), [])
    assert _decide(KEY_A, key_policy(root_statement(A)), ALLOW_KMS)
    no_iam = _decide(KEY_A, key_policy(root_statement(A)), [])
    assert not no_iam and no_iam.reason == "because no identity-based policy allows the kms:Decrypt action"
    unnamed = _decide(KEY_A, key_policy(root_statement(B)), ALLOW_KMS)
    assert unnamed.reason == "because no resource-based policy allows the kms:Decrypt action"
    # Across accounts both are needed, whoever the key policy names (role or its account).
    for statement in (role_statement(ROLE, ["kms:Decrypt"]), root_statement(A)):
        assert _decide(KEY_B, key_policy(root_statement(B), statement), ALLOW_KMS)
        assert not _decide(KEY_B, key_policy(root_statement(B), statement), [])
    assert not _decide(KEY_B, key_policy(root_statement(B)), ALLOW_KMS)
    # An explicit Deny wins; conditions see kms:ViaService and kms:CallerAccount.
    deny = dict(role_statement(ROLE, ["kms:*"]), Effect="Deny")
    assert _decide(KEY_A, key_policy(root_statement(A), deny), ALLOW_KMS).reason == (
        "with an explicit deny in a resource-based policy")
    via_s3 = dict(role_statement("*", ["kms:Decrypt"]), Principal={"AWS": "*"}, Condition={"StringEquals": {
        "kms:ViaService": "s3.us-east-1.amazonaws.com", "kms:CallerAccount": A}})
    assert _decide(KEY_A, key_policy(via_s3), [])
    assert not _decide(KEY_A, key_policy(via_s3), [], via=None)  # a direct call is not through S3
    assert not _decide(KEY_B, key_policy(dict(via_s3, Condition={"StringEquals": {"kms:CallerAccount": B}})),
                       ALLOW_KMS)


def test_put_object_condition_keys_only_for_headers_sent() -> None:
    assert encryption.put_object_condition_keys(encryption.DATASYNC_PUT_HEADERS) == {}
    assert encryption.put_object_condition_keys({
        "X-Amz-Server-Side-Encryption": "aws:kms", "x-amz-server-side-encryption-aws-kms-key-id": KEY_A}) == {
        "s3:x-amz-server-side-encryption": "aws:kms", "s3:x-amz-server-side-encryption-aws-kms-key-id": KEY_A}


# --- S3 default encryption ----------------------------------------------------------------------


def test_buckets_are_sse_s3_with_sse_c_blocked_by_default(endpoint: str) -> None:
    a = Account(endpoint)
    bucket = a.bucket()
    assert a.s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"] == [SSE_S3_DEFAULT]
    a.s3.put_object(Bucket=bucket, Key="plain.txt", Body=b"x")
    assert a.s3.head_object(Bucket=bucket, Key="plain.txt")["ServerSideEncryption"] == "AES256"
    # SSE-KMS is returned as given (key ARN, alias or key id); the SSE-C block stays when not named.
    key = new_key(a)
    for key_id in (key, "alias/some-alias", key.rsplit("/", 1)[1]):
        a.s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [
            {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_id},
             "BucketKeyEnabled": True}]})
        assert a.s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"] == [
            {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_id},
             "BucketKeyEnabled": True, "BlockedEncryptionTypes": {"EncryptionType": ["SSE-C"]}}]
    # An object written under the default names the key by its ARN, as S3 reports it.
    a.s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key.rsplit("/", 1)[1]}}]})
    a.s3.put_object(Bucket=bucket, Key="kms.txt", Body=b"x")
    head = a.s3.head_object(Bucket=bucket, Key="kms.txt")
    assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", key)
    # DeleteBucketEncryption goes back to SSE-S3.
    a.s3.delete_bucket_encryption(Bucket=bucket)
    assert a.s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"] == [SSE_S3_DEFAULT]
    # New buckets in Bahrain and the UAE do not block SSE-C.
    bahrain = a.bucket("me-south-1")
    rules = a.client("s3", "me-south-1").get_bucket_encryption(Bucket=bahrain)["ServerSideEncryptionConfiguration"]
    assert rules["Rules"] == [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"},
                               "BucketKeyEnabled": False}]


def sse_c_put(account: Account, bucket: str, key: str) -> None:
    account.s3.put_object(Bucket=bucket, Key=key, Body=b"secret", SSECustomerAlgorithm="AES256",
                          SSECustomerKey=SSE_C_KEY)


def test_sse_c_writes_blocked_by_default_and_sse_c_objects_unreadable_without_the_key(endpoint: str) -> None:
    a = Account(endpoint)
    bucket = a.bucket()
    assert refused(lambda: sse_c_put(a, bucket, "c.bin")) == ("AccessDenied", "Access Denied")
    # Unblocking SSE-C (BlockedEncryptionTypes NONE) lets the write through.
    a.s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"},
         "BlockedEncryptionTypes": {"EncryptionType": ["NONE"]}}]})
    sse_c_put(a, bucket, "c.bin")
    assert refused(lambda: a.s3.get_object(Bucket=bucket, Key="c.bin")) == (
        "InvalidRequest", encryption.SSE_C_UNREADABLE)
    answer = a.s3.get_object(Bucket=bucket, Key="c.bin", SSECustomerAlgorithm="AES256", SSECustomerKey=SSE_C_KEY)
    assert answer["Body"].read() == b"secret" and answer["SSECustomerAlgorithm"] == "AES256"


# --- executions: SSE-C ----------------------------------------------------------------------------


def unblock_sse_c(account: Account, bucket: str) -> None:
    account.s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"},
         "BlockedEncryptionTypes": {"EncryptionType": ["NONE"]}}]})


def test_datasync_cannot_read_sse_c_objects(endpoint: str) -> None:
    # Basic mode: DataSync's HeadObject of the SSE-C object fails while preparing; the other objects
    # are copied and the execution ends ERROR with DataSync's "files skipped due to errors".
    a = Account(endpoint)
    task, src, dst = a.task({"plain.txt": b"p"})
    unblock_sse_c(a, src)
    assert run(a.ds, task)["Status"] == "SUCCESS"  # SSE-S3 objects are fine
    sse_c_put(a, src, "secret.bin")
    a.s3.put_object(Bucket=src, Key="later.txt", Body=b"l")
    result, report = run_reported(a, task)
    assert result["Status"] == "ERROR", result["Result"]
    assert (result["Result"]["ErrorCode"], result["Result"]["ErrorDetail"]) == ("FilesFailed", FILES_SKIPPED_DETAIL)
    assert result["Result"]["PrepareStatus"] == "ERROR" and result["Result"]["TransferStatus"] == "SUCCESS"
    assert "FilesFailed" not in result  # "Applies only to Enhanced mode tasks"
    assert result["FilesTransferred"] == 1 and result["EstimatedFilesToTransfer"] == 1
    assert a.s3.get_object(Bucket=dst, Key="later.txt")["Body"].read() == b"l"
    assert "Contents" not in a.s3.list_objects_v2(Bucket=dst, Prefix="secret")
    assert failures(report) == [("Skipped", "/secret.bin", "InvalidRequest", encryption.SSE_C_UNREADABLE)]
    assert report["Summary"]["FilesFailed"] == {"Prepare": 1, "Transfer": 0, "Verify": 0, "Delete": 0}


def test_enhanced_mode_sse_c_object_fails_alone(endpoint: str) -> None:
    a = Account(endpoint)
    task, src, dst = a.task({"a.txt": b"a", "b.txt": b"b"}, TaskMode="ENHANCED")
    unblock_sse_c(a, src)
    sse_c_put(a, src, "secret.bin")
    result, report = run_reported(a, task, level="SUCCESSES_AND_ERRORS")
    assert result["Status"] == "ERROR", result["Result"]
    assert (result["Result"]["ErrorCode"], result["Result"]["ErrorDetail"]) == (
        "InvalidRequest", encryption.SSE_C_UNREADABLE)
    assert result["FilesFailed"] == {"Prepare": 1, "Transfer": 0, "Verify": 0, "Delete": 0}
    assert result["FilesTransferred"] == 2 and result["FilesVerified"] == 2 and result["FilesPrepared"] == 2
    assert sorted(o["Key"] for o in a.s3.list_objects_v2(Bucket=dst)["Contents"]) == ["a.txt", "b.txt"]
    assert failures(report) == [("Skipped", "/secret.bin", "InvalidRequest", encryption.SSE_C_UNREADABLE)]
    assert {e["RelativePath"]: e["TransferStatus"] for e in report["Transferred"]} == {
        "/a.txt": "SUCCESS", "/b.txt": "SUCCESS"}
    assert report["Summary"]["FilesFailed"]["Prepare"] == 1 and report["Summary"]["FilesTransferred"] == 2


def test_destination_policy_requiring_sse_c_refuses_datasync_writes(endpoint: str) -> None:
    a = Account(endpoint)
    task, _, dst = a.task({"one.txt": b"1"})

    def deny_put_when(null: str) -> None:
        put_policy(a, dst, [{"Sid": "SSECOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
                             "Resource": f"arn:aws:s3:::{dst}/*",
                             "Condition": {"Null": {"s3:x-amz-server-side-encryption-customer-algorithm": null}}}])

    deny_put_when("true")  # a write without SSE-C headers is denied: DataSync sends none
    result, report = run_reported(a, task)
    assert result["Status"] == "ERROR" and result["Result"]["TransferStatus"] == "ERROR"
    (kind, path, code, detail), = [f for f in failures(report) if f[0] == "Transferred"]
    assert (kind, path, code) == ("Transferred", "/one.txt", "AccessDenied")
    assert (f"s3:PutObject on resource: \"arn:aws:s3:::{dst}/one.txt\" with an explicit deny in a resource-based "
            "policy") in detail
    deny_put_when("false")  # denying SSE-C writes does not touch DataSync's
    assert run(a.ds, task)["Status"] == "SUCCESS"


# --- executions: SSE-KMS ------------------------------------------------------------------------


def test_same_account_sse_kms_source_needs_decrypt(endpoint: str) -> None:
    a = Account(endpoint)
    key = new_key(a)  # default key policy: the account root, so IAM policies decide
    src, dst = sse_kms_bucket(a, key), a.bucket()
    a.s3.put_object(Bucket=src, Key="doc.txt", Body=b"doc")
    role = a.role()
    task = a.ds.create_task(SourceLocationArn=location(a.ds, src, role),
                            DestinationLocationArn=location(a.ds, dst, role))["TaskArn"]
    result, report = run_reported(a, task)
    assert result["Status"] == "ERROR" and result["Result"]["TransferStatus"] == "ERROR"
    (kind, path, code, detail), = [f for f in failures(report) if f[0] == "Transferred"]
    assert (kind, path, code) == ("Transferred", "/doc.txt", "AccessDenied")
    assert detail.startswith("User: ")  # KMS's own message, as AWS's task report example shows it
    assert denied("kms:Decrypt", key, "because no identity-based policy allows the kms:Decrypt action") in detail
    allow_kms(a, role, key, ["kms:Decrypt"])
    result = run(a.ds, task)
    assert result["Status"] == "SUCCESS", result["Result"]
    assert a.s3.get_object(Bucket=dst, Key="doc.txt")["ServerSideEncryption"] == "AES256"  # the destination's default
    # A disabled key refuses whatever the policies say.
    a.client("kms").disable_key(KeyId=key.rsplit("/", 1)[1])  # (moto answers 500 for an ARN here)
    a.s3.put_object(Bucket=src, Key="doc.txt", Body=b"changed")
    assert failures(run_reported(a, task)[1])[0] == (
        "Transferred", "/doc.txt", "AccessDenied", f"DisabledException: {key} is disabled.")


def test_enhanced_mode_kms_denied_object_fails_alone(endpoint: str) -> None:
    # One object is SSE-KMS with a key the role may not use, the others are plain: only that object
    # fails (its GetObject, while transferring: HeadObject needs no kms:Decrypt).
    a = Account(endpoint)
    key = new_key(a)
    task, src, dst = a.task({"plain1.txt": b"1", "plain2.txt": b"2"}, TaskMode="ENHANCED")
    a.s3.put_object(Bucket=src, Key="locked.txt", Body=b"locked", ServerSideEncryption="aws:kms", SSEKMSKeyId=key)
    result, report = run_reported(a, task)
    assert result["Status"] == "ERROR", result["Result"]
    assert result["FilesFailed"] == {"Prepare": 0, "Transfer": 1, "Verify": 0, "Delete": 0}
    assert result["FilesTransferred"] == 2 and result["FilesVerified"] == 2
    assert result["Result"]["PrepareStatus"] == "SUCCESS" and result["Result"]["TransferStatus"] == "ERROR"
    assert result["Result"]["ErrorCode"] == "AccessDenied"
    assert denied("kms:Decrypt", key, "because no identity-based policy allows the kms:Decrypt action") in (
        result["Result"]["ErrorDetail"])
    assert sorted(o["Key"] for o in a.s3.list_objects_v2(Bucket=dst)["Contents"]) == ["plain1.txt", "plain2.txt"]
    (kind, path, code, detail), = failures(report)  # ERRORS_ONLY: only the failure is listed
    assert (kind, path, code, detail) == ("Transferred", "/locked.txt", "AccessDenied", result["Result"]["ErrorDetail"])
    assert set(report) == {"Summary", "Transferred"}
    assert report["Summary"]["FilesFailed"]["Transfer"] == 1


def test_basic_mode_kms_denied_object_fails_alone(endpoint: str) -> None:
    a = Account(endpoint)
    key = new_key(a)
    task, src, dst = a.task({"plain1.txt": b"1", "plain2.txt": b"2"})
    a.s3.put_object(Bucket=src, Key="locked.txt", Body=b"locked", ServerSideEncryption="aws:kms", SSEKMSKeyId=key)
    result, report = run_reported(a, task)
    assert result["Status"] == "ERROR", result["Result"]
    assert (result["Result"]["ErrorCode"], result["Result"]["ErrorDetail"]) == ("FilesFailed", FILES_SKIPPED_DETAIL)
    assert "FilesFailed" not in result and "FilesPrepared" not in result and "FilesListed" not in result
    assert result["FilesTransferred"] == 2 and result["FilesVerified"] == 2
    assert sorted(o["Key"] for o in a.s3.list_objects_v2(Bucket=dst)["Contents"]) == ["plain1.txt", "plain2.txt"]
    # Basic mode verifies everything (POINT_IN_TIME_CONSISTENT): the object that failed to transfer fails
    # verification too (its source cannot be read).
    assert [f[:3] for f in failures(report)] == [("Transferred", "/locked.txt", "AccessDenied"),
                                                 ("Verified", "/locked.txt", "AccessDenied")]
    assert report["Summary"]["FilesFailed"] == {"Prepare": 0, "Transfer": 1, "Verify": 1, "Delete": 0}


def test_same_account_key_policy_naming_the_role_needs_no_iam_grant(endpoint: str) -> None:
    a = Account(endpoint)
    role = a.role()
    key = new_key(a, key_policy(root_statement(a.id), role_statement(role, ["kms:Decrypt", "kms:GenerateDataKey"])))
    src, dst = a.bucket(), sse_kms_bucket(a, key)
    a.s3.put_object(Bucket=src, Key="x.txt", Body=b"x")
    task = a.ds.create_task(SourceLocationArn=location(a.ds, src, role),
                            DestinationLocationArn=location(a.ds, dst, role))["TaskArn"]
    assert run(a.ds, task)["Status"] == "SUCCESS"
    head = a.s3.head_object(Bucket=dst, Key="x.txt")
    assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", key)


def test_cross_account_sse_kms_destination_needs_key_policy_and_role_policy(endpoint: str) -> None:
    a, b = Account(endpoint), Account(endpoint)
    role = a.role()
    key = new_key(b)
    dst = sse_kms_bucket(b, key)
    task = cross_account_task(a, b, dst, role, {"f.txt": b"f"})
    kms_b = b.client("kms")

    # Only the role's policy allows the key: B's key policy does not name A.
    allow_kms(a, role, key, ["kms:GenerateDataKey", "kms:Decrypt"])
    result, (kind, path, code, detail) = first_failure(a, task)
    assert (kind, path, code) == ("Transferred", "/f.txt", "AccessDenied")
    assert result["Result"]["TransferStatus"] == "ERROR"
    assert detail.startswith("User: ")
    assert denied("kms:GenerateDataKey", key, "because no resource-based policy allows the kms:GenerateDataKey "
                  "action") in detail
    assert "Contents" not in b.s3.list_objects_v2(Bucket=dst)

    # Only the key policy allows the role: its own policy does not.
    kms_b.put_key_policy(KeyId=key, PolicyName="default", Policy=key_policy(
        root_statement(b.id), role_statement(role, ["kms:GenerateDataKey", "kms:Decrypt"])))
    a.client("iam").delete_role_policy(RoleName=role.rsplit("/", 1)[1], PolicyName="kms")
    detail = first_failure(a, task)[1][3]
    assert denied("kms:GenerateDataKey", key, "because no identity-based policy allows the kms:GenerateDataKey "
                  "action") in detail

    # Both, but only GenerateDataKey: the write succeeds, verification cannot read it back.
    allow_kms(a, role, key, ["kms:GenerateDataKey"])
    result, (kind, path, code, detail) = first_failure(a, task)
    assert result["Result"]["TransferStatus"] == "SUCCESS" and result["Result"]["VerifyStatus"] == "ERROR"
    assert (kind, path, code) == ("Verified", "/f.txt", "AccessDenied")
    assert denied("kms:Decrypt", key, "because no identity-based policy allows the kms:Decrypt action") in detail
    allow_kms(a, role, key, ["kms:GenerateDataKey", "kms:Decrypt"])
    result = run(a.ds, task)
    assert result["Status"] == "SUCCESS", result["Result"]
    head = b.s3.head_object(Bucket=dst, Key="f.txt")
    assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", key)


def test_cross_account_bucket_with_alias_or_key_id_resolves_in_the_roles_account(endpoint: str) -> None:
    a, b = Account(endpoint), Account(endpoint)
    role = a.role()
    key = new_key(b)
    alias = f"alias/{unique_name('ferry')}"
    b.client("kms").create_alias(AliasName=alias, TargetKeyId=key)
    b.client("kms").put_key_policy(KeyId=key, PolicyName="default", Policy=key_policy(
        root_statement(b.id), role_statement(role, ["kms:GenerateDataKey", "kms:Decrypt"])))
    allow_kms(a, role, key, ["kms:GenerateDataKey", "kms:Decrypt"])
    key_id = key.rsplit("/", 1)[1]
    for configured, answer in (
            (alias, f"NotFoundException: Alias arn:aws:kms:us-east-1:{a.id}:{alias} is not found."),
            (key_id, f"NotFoundException: Key 'arn:aws:kms:us-east-1:{a.id}:key/{key_id}' does not exist")):
        dst = sse_kms_bucket(b, configured)
        failure = first_failure(a, cross_account_task(a, b, dst, role, {"f.txt": b"f"}))[1]
        assert failure == ("Transferred", "/f.txt", "AccessDenied", answer)
    # The same key by its ARN works.
    assert run(a.ds, cross_account_task(a, b, sse_kms_bucket(b, key), role, {"f.txt": b"f"}))["Status"] == "SUCCESS"


def test_cross_account_aws_managed_key_cannot_be_used(endpoint: str) -> None:
    a, b = Account(endpoint), Account(endpoint)
    role = a.role()
    allow_kms(a, role, "*", ["kms:*"])
    dst = b.bucket()
    b.s3.put_bucket_encryption(Bucket=dst, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]})  # aws/s3 of the bucket owner
    detail = first_failure(a, cross_account_task(a, b, dst, role, {"f.txt": b"f"}))[1][3]
    assert f"on resource: arn:aws:kms:us-east-1:{b.id}:key/" in detail
    assert "because no resource-based policy allows the kms:GenerateDataKey action" in detail
    # In its own account the AWS managed key works through S3 for every principal.
    task, src, _ = a.task({"g.txt": b"g"})
    a.s3.put_bucket_encryption(Bucket=src, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]})
    a.s3.put_object(Bucket=src, Key="g.txt", Body=b"g2")
    assert run(a.ds, task)["Status"] == "SUCCESS"
    # It is an AWS managed key with AWS's policy, however it is looked up first.
    other = Account(endpoint).client("kms")
    managed = other.describe_key(KeyId="alias/aws/s3")["KeyMetadata"]
    assert managed["KeyManager"] == "AWS"
    statements = json.loads(other.get_key_policy(KeyId=managed["KeyId"], PolicyName="default")["Policy"])["Statement"]
    assert statements[0]["Condition"]["StringEquals"]["kms:ViaService"] == "s3.us-east-1.amazonaws.com"


# --- s3:ResourceAccount ---------------------------------------------------------------------------


def test_resource_account_condition_stops_writes_into_a_recreated_bucket(endpoint: str) -> None:
    a, b, c = Account(endpoint), Account(endpoint), Account(endpoint)
    src, name = a.bucket(), b.bucket()
    a.s3.put_object(Bucket=src, Key="data.txt", Body=b"data")
    role = a.role(policy={"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:*", "Resource": [f"arn:aws:s3:::{src}", f"arn:aws:s3:::{src}/*"]},
        {"Effect": "Allow", "Action": "s3:*", "Resource": [f"arn:aws:s3:::{name}", f"arn:aws:s3:::{name}/*"],
         "Condition": {"StringEquals": {"s3:ResourceAccount": b.id}}}]})
    put_policy(b, name, ferry_grants(name, role, a.role_arn))
    task = a.ds.create_task(SourceLocationArn=location(a.ds, src, role),
                            DestinationLocationArn=location(a.ds, name, role))["TaskArn"]
    assert run(a.ds, task)["Status"] == "SUCCESS"
    b.s3.delete_object(Bucket=name, Key="data.txt")
    b.s3.delete_bucket(Bucket=name)
    c.s3.create_bucket(Bucket=name)  # the same name, now in a third account, open to the role
    put_policy(c, name, ferry_grants(name, role, a.role_arn))
    a.s3.put_object(Bucket=src, Key="data.txt", Body=b"data v2")
    result = run(a.ds, task)
    assert result["Status"] == "ERROR" and result["Result"]["ErrorCode"] == "AccessDenied"
    assert f"s3:ListBucket on resource: \"arn:aws:s3:::{name}\"" in result["Result"]["ErrorDetail"]
    assert "because no identity-based policy allows the s3:ListBucket action" in result["Result"]["ErrorDetail"]
    assert "Contents" not in c.s3.list_objects_v2(Bucket=name)


# --- PutKeyPolicy, CreateKey, and the key-policy calls -----------------------------------------------


def test_put_key_policy_principals_must_exist(endpoint: str) -> None:
    a, b = Account(endpoint), Account(endpoint)
    kms = a.client("kms")
    key = new_key(a)
    missing = f"arn:aws:iam::{b.id}:role/{unique_name('missing')}"
    invalid = ("MalformedPolicyDocumentException", kms_rules.INVALID_PRINCIPALS)
    for principal in (missing, f"arn:aws:iam::{b.id}:user/nobody", f"arn:aws:sts::{b.id}:assumed-role/nobody/s",
                      "arn:aws:iam::12345:root", "not-an-arn"):
        policy = key_policy(root_statement(a.id), role_statement(principal, ["kms:Decrypt"]))
        assert refused(lambda: kms.put_key_policy(KeyId=key, PolicyName="default", Policy=policy)) == invalid
        assert refused(lambda: kms.create_key(Policy=policy)) == invalid
    role = b.role()  # exists in B: accepted (B's account, root and account id too)
    for principal in (role, f"arn:aws:iam::{b.id}:root", b.id, f"arn:aws:sts::{b.id}:assumed-role/"
                      f"{role.rsplit('/', 1)[1]}/session", "*"):
        policy = key_policy(root_statement(a.id), role_statement(principal, ["kms:Decrypt"]))
        kms.put_key_policy(KeyId=key, PolicyName="default", Policy=policy)
        assert json.loads(kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"]) == json.loads(policy)
    assert refused(lambda: kms.put_key_policy(KeyId=key, PolicyName="default", Policy="{not json")) == (
        "MalformedPolicyDocumentException", kms_rules.NOT_JSON)


def test_key_policy_size_limit(endpoint: str) -> None:
    a = Account(endpoint)
    kms = a.client("kms")
    key = new_key(a)

    def policy(padding: int) -> str:
        return key_policy(dict(root_statement(a.id), Sid="x" * padding))

    base = len(policy(0).encode())
    assert refused(lambda: kms.put_key_policy(KeyId=key, PolicyName="default",
                                              Policy=policy(32 * 1024 - base + 1))) == (
        "LimitExceededException", kms_rules.TOO_LARGE)
    kms.put_key_policy(KeyId=key, PolicyName="default", Policy=policy(32 * 1024 - base))
    assert refused(lambda: kms.create_key(Policy=policy(32 * 1024 - base + 1)))[0] == "LimitExceededException"


def test_key_policy_lockout_safety_check(endpoint: str) -> None:
    a, b = Account(endpoint), Account(endpoint)
    kms = a.client("kms")
    key = new_key(a)
    other = b.role()
    locked_out = key_policy(role_statement(other, ["kms:*"]))
    lockout = ("MalformedPolicyDocumentException", kms_rules.LOCKOUT)
    assert refused(lambda: kms.put_key_policy(KeyId=key, PolicyName="default", Policy=locked_out)) == lockout
    assert refused(lambda: kms.create_key(Policy=locked_out)) == lockout
    # Keeping the account root's kms:* statement passes; so does granting the account kms:PutKeyPolicy alone.
    kms.put_key_policy(KeyId=key, PolicyName="default", Policy=key_policy(root_statement(a.id),
                                                                          role_statement(other, ["kms:Decrypt"])))
    kms.put_key_policy(KeyId=key, PolicyName="default", Policy=key_policy(role_statement(a.id, ["kms:PutKeyPolicy"])))
    # The bypass skips the check; the caller is then locked out indeed.
    kms.put_key_policy(KeyId=key, PolicyName="default", Policy=locked_out, BypassPolicyLockoutSafetyCheck=True)
    for action, call in (("kms:GetKeyPolicy", lambda: kms.get_key_policy(KeyId=key, PolicyName="default")),
                         ("kms:DescribeKey", lambda: kms.describe_key(KeyId=key)),
                         ("kms:PutKeyPolicy", lambda: kms.put_key_policy(KeyId=key, PolicyName="default",
                                                                         Policy=key_policy(root_statement(a.id))))):
        code, message = refused(call)
        assert code == "AccessDeniedException"
        assert message.endswith(f"is not authorized to perform: {action} on resource: {key} because no "
                                f"resource-based policy allows the {action} action")


def test_kms_requests_are_model_checked(endpoint: str) -> None:
    a = Account(endpoint)
    kms = a.client("kms", validate=False)
    key = new_key(a)
    code, message = refused(lambda: kms.put_key_policy(KeyId=key, PolicyName="not default!", Policy="{}"))
    assert code == "ValidationException"
    assert message == ("1 validation error detected: Value 'not default!' at 'policyName' failed to satisfy "
                       "constraint: Member must satisfy regular expression pattern: [\\w]+")
    assert refused(lambda: kms.get_key_policy(KeyId=key, PolicyName="other")) == (
        "NotFoundException", "No such policy exists")


def test_kms_calls_are_logged_and_take_faults(endpoint: str) -> None:
    a = Account(endpoint)
    key = new_key(a)
    control(endpoint, "POST", "faults", {"service": "kms", "operation": "DescribeKey", "kind": "throttle",
                                         "account": a.id})
    assert refused(lambda: a.client("kms").describe_key(KeyId=key))[0] == "ThrottlingException"
    assert a.client("kms").describe_key(KeyId=key)["KeyMetadata"]["Arn"] == key
    calls = control(endpoint, "GET", f"calls?account={a.id}&service=kms")["calls"]
    assert [c["operation"] for c in calls] == ["CreateKey", "DescribeKey", "DescribeKey"]


@pytest.mark.parametrize("actions", [["kms:Describe*"], ["kms:*"]])
def test_describe_key_follows_the_key_policy(endpoint: str, actions: list[str]) -> None:
    a = Account(endpoint)
    kms = a.client("kms")
    # A Deny naming another principal does not refuse the caller (moto refused everyone).
    deny_other = {"Effect": "Deny", "Principal": {"AWS": Account(endpoint).role()}, "Action": actions, "Resource": "*"}
    key = new_key(a, key_policy(root_statement(a.id), deny_other))
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["Arn"] == key
    kms.put_key_policy(KeyId=key, PolicyName="default", Policy=key_policy(
        root_statement(a.id), dict(deny_other, Principal={"AWS": a.id})), BypassPolicyLockoutSafetyCheck=True)
    assert refused(lambda: kms.describe_key(KeyId=key))[0] == "AccessDeniedException"


def test_task_report_into_an_sse_kms_bucket_needs_generate_data_key(endpoint: str) -> None:
    a = Account(endpoint)
    key = new_key(a)
    report_bucket, report_role = sse_kms_bucket(a, key), a.role()
    report = summary_report_task(a, report_bucket, report_role)
    answer = report()
    assert answer["Status"] == "ERROR" and answer["ErrorCode"] == "AccessDenied"
    assert denied("kms:GenerateDataKey", key, "because no identity-based policy allows the kms:GenerateDataKey "
                  "action") in answer["ErrorDetail"]
    allow_kms(a, report_role, key, ["kms:GenerateDataKey"])
    assert report() == {"Status": "SUCCESS"}
    written = a.s3.list_objects_v2(Bucket=report_bucket)["Contents"][0]["Key"]
    assert a.s3.head_object(Bucket=report_bucket, Key=written)["SSEKMSKeyId"] == key
