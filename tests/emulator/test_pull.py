"""Tests of the "pull" shape: the DESTINATION account (B) owns the DataSync role, the locations and the
task; the SOURCE bucket belongs to another account (A).

The emulator's rules are direction-agnostic (rules.py, policy_eval.py, kms_rules.py decide by who asks
and who owns the resource, not by which side of the task it is); these tests pin them down for pull:

1. CreateLocationS3 in B for A's bucket: the caller and the location's role each need s3:ListBucket
   from their own identity policy AND from A's bucket policy.
2. An execution in B reads A's objects only when the role's identity policy and A's bucket policy both
   allow; it writes, deletes and verifies in B's own bucket with the identity policy alone, whatever
   that bucket's Object Ownership setting.
3. SSE-KMS source objects: a customer managed key of A needs A's key policy and B's identity policy;
   A's AWS managed key aws/s3 cannot serve B's role at all.
4. Task report and manifest in B: the identity policy suffices.

Every refusal is checked next to the grant that lifts it, so each test fails if the emulator stops
asking for that grant (or starts asking for one AWS does not). Sources are cited where the behaviour is
subtle; the emulator's README ("Rules enforced", "S3 encryption and KMS") has the rest.

Run: .cache/venv/bin/python -m pytest -q tests/emulator/test_pull.py
"""

from __future__ import annotations

import json
from typing import Any

from emulator_testkit import (DESTINATION_ACTIONS, Account, failures, location, put_policy, refused, report_result,
                              run, run_reported, run_to_end)

SOURCE_BUCKET_ACTIONS = ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"]
SOURCE_OBJECT_ACTIONS = ["s3:GetObject", "s3:GetObjectTagging", "s3:GetObjectVersion", "s3:GetObjectVersionTagging"]
MANIFEST_READ = ["s3:GetObject", "s3:GetObjectVersion"]


# --- helpers ---------------------------------------------------------------------------------


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def name_of(arn: str) -> str:
    return arn.rsplit("/", 1)[1]


def access_test_failed(bucket: str) -> str:
    return (f"DataSync location access test failed: could not perform s3:ListObjectsV2 on bucket {bucket}. "
            "Access denied. Ensure bucket access role has s3:ListBucket permission.")


def denied(action: str, resource: str, why: str) -> str:
    """The part of S3's (and KMS's) AccessDenied message after the principal."""
    return f"is not authorized to perform: {action} on resource: {resource} {why}"


def no(kind: str, action: str) -> str:
    return f"because no {kind} policy allows the {action} action"


def role_statements(src: str, dst: str, list_source: bool = True, read_source: bool = True,
                    write_destination: bool = True) -> list[dict[str, Any]]:
    """B's DataSync role's identity policy: the source actions on A's bucket (bucket-level and object-level,
    each optional), Ferry's destination actions on B's bucket (optional)."""
    out = []
    if list_source:
        out.append({"Sid": "SourceBucket", "Effect": "Allow", "Action": SOURCE_BUCKET_ACTIONS,
                    "Resource": f"arn:aws:s3:::{src}"})
    if read_source:
        out.append({"Sid": "SourceObjects", "Effect": "Allow", "Action": SOURCE_OBJECT_ACTIONS,
                    "Resource": f"arn:aws:s3:::{src}/*"})
    actions = DESTINATION_ACTIONS if write_destination else ["s3:GetBucketLocation", "s3:ListBucket"]
    out.append({"Sid": "Destination", "Effect": "Allow", "Action": actions,
                "Resource": [f"arn:aws:s3:::{dst}", f"arn:aws:s3:::{dst}/*"]})
    return out


def set_role_policy(account: Account, role: str, statements: list[dict[str, Any]], name: str = "s3") -> None:
    account.client("iam").put_role_policy(RoleName=name_of(role), PolicyName=name,
                                          PolicyDocument=json.dumps(doc(*statements)))


def source_grants(src: str, role: str, caller: str, list_role: bool = True, read_role: bool = True,
                  list_caller: bool = True) -> list[dict[str, Any]]:
    """A's bucket policy for a pull (the cross-account tutorial's destination statements, turned round:
    the bucket of the *other* account names B's role and B's caller), each statement optional."""
    out = []
    if list_role:
        out.append({"Sid": "PullRoleBucket", "Effect": "Allow", "Principal": {"AWS": role},
                    "Action": SOURCE_BUCKET_ACTIONS, "Resource": f"arn:aws:s3:::{src}"})
    if read_role:
        out.append({"Sid": "PullRoleObjects", "Effect": "Allow", "Principal": {"AWS": role},
                    "Action": SOURCE_OBJECT_ACTIONS, "Resource": f"arn:aws:s3:::{src}/*"})
    if list_caller:
        out.append({"Sid": "PullCreateLocation", "Effect": "Allow", "Principal": {"AWS": caller},
                    "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{src}"})
    return out


def caller_of(b: Account, src: str, list_source: bool = True) -> tuple[Account, str]:
    """A role of B that B may assume, allowed DataSync and (optionally) s3:ListBucket on A's bucket by its
    own inline policy, and B's clients signed as a session of it. (``Account``'s default identity is not
    an IAM role the emulator knows, so it would count as allowed everything.)"""
    statements = [{"Effect": "Allow", "Action": "datasync:*", "Resource": "*"}]
    if list_source:
        statements.append({"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{src}"})
    role = b.role(trust=doc({"Effect": "Allow", "Principal": {"AWS": b.id}, "Action": "sts:AssumeRole"}),
                  policy=doc(*statements))
    return Account(b.endpoint, b.id, role=name_of(role)), role


def pull(a: Account, b: Account, objects: dict[str, bytes], **task: Any) -> tuple[str, str, str, str]:
    """(task ARN, A's source bucket, B's destination bucket, B's role) of a pull task in B, with every grant in
    place: B's role allowed by its identity policy and A's bucket policy; no bucket policy on B's bucket."""
    src, dst = a.bucket(), b.bucket()
    for key, body in objects.items():
        a.s3.put_object(Bucket=src, Key=key, Body=body)
    role = b.role(policy=doc(*role_statements(src, dst)))
    put_policy(a, src, source_grants(src, role, b.role_arn))
    ds = b.ds
    arn = ds.create_task(SourceLocationArn=location(ds, src, role), DestinationLocationArn=location(ds, dst, role),
                         **task)["TaskArn"]
    assert arn.split(":")[4] == b.id
    return arn, src, dst, role


def transfer_failure(report: dict[str, Any]) -> tuple[str, str, str, str]:
    """The report's one failed transfer, as ``failures`` gives it. Basic mode's POINT_IN_TIME_CONSISTENT
    verifies an object that failed to transfer too (README "Per-object failures"), so the same object also
    fails verification; nothing else may fail."""
    found = failures(report)
    assert [f[0] for f in found] == ["Transferred", "Verified"] and found[0][1] == found[1][1], found
    return found[0]


def keys(account: Account, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in account.s3.list_objects_v2(Bucket=bucket).get("Contents", []))


# --- 1. CreateLocationS3 in B for A's bucket ---------------------------------------------------------


def test_pull_location_needs_the_caller_and_the_role_allowed_by_both_accounts(endpoint: str) -> None:
    # Cross-account policy evaluation logic: "To allow cross-account access, you attach a resource-based
    # policy to the resource that you want to share. You must also attach an identity-based policy to the
    # identity that acts as the principal in the request"
    # (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html).
    # DataSync's location access test lists the bucket as the caller and as the role
    # (https://docs.aws.amazon.com/datasync/latest/userguide/tutorial_s3-s3-cross-account-transfer.html
    # grants both in the bucket policy of the account that does not run DataSync).
    a, b = Account(endpoint), Account(endpoint)
    src, dst = a.bucket(), b.bucket()
    role = b.role(policy=doc(*role_statements(src, dst)))
    caller, caller_arn = caller_of(b, src)
    ds = caller.ds
    failed = ("InvalidRequestException", access_test_failed(src))

    # No bucket policy on A's bucket: both identities are allowed only by B's side.
    assert refused(lambda: location(ds, src, role)) == failed
    put_policy(a, src, source_grants(src, role, caller_arn))
    arn = location(ds, src, role)
    assert arn.startswith(f"arn:aws:datasync:us-east-1:{b.id}:location/loc-")
    assert ds.describe_location_s3(LocationArn=arn)["LocationUri"] == f"s3://{src}/"

    # A's bucket policy without the caller: the role alone passing is not enough.
    put_policy(a, src, source_grants(src, role, caller_arn, list_caller=False))
    assert refused(lambda: location(ds, src, role)) == failed
    # A's bucket policy naming the caller, the caller's own policy without s3:ListBucket.
    bare_caller, bare_arn = caller_of(b, src, list_source=False)
    put_policy(a, src, source_grants(src, role, bare_arn))
    assert refused(lambda: location(bare_caller.ds, src, role)) == failed
    put_policy(a, src, source_grants(src, role, caller_arn))
    assert location(ds, src, role)

    # A's bucket policy without the role's s3:ListBucket (its object grants do not help).
    put_policy(a, src, source_grants(src, role, caller_arn, list_role=False))
    assert refused(lambda: location(ds, src, role)) == failed
    # A's bucket policy naming the role, the role's own policy without the source bucket.
    put_policy(a, src, source_grants(src, role, caller_arn))
    set_role_policy(b, role, role_statements(src, dst, list_source=False))
    assert refused(lambda: location(ds, src, role)) == failed
    set_role_policy(b, role, role_statements(src, dst))
    assert location(ds, src, role)

    # B's own bucket, same role, a caller whose identity policy lists it: the identity policies alone
    # suffice (B's bucket has no policy).
    caller_dst, _ = caller_of(b, dst)
    assert location(caller_dst.ds, dst, role).startswith(f"arn:aws:datasync:us-east-1:{b.id}:location/")


# --- 2. the execution: reading A's objects, writing B's bucket ----------------------------------------


def test_pull_execution_reads_source_objects_only_with_both_policies(endpoint: str) -> None:
    a, b = Account(endpoint), Account(endpoint)
    task, src, dst, role = pull(a, b, {"in/a.txt": b"a"})
    obj = f"\"arn:aws:s3:::{src}/in/a.txt\""

    # A's bucket policy lets B's role list, not read: the HeadObject while preparing fails that object.
    put_policy(a, src, source_grants(src, role, b.role_arn, read_role=False))
    result, report = run_reported(b, task)
    assert result["Status"] == "ERROR" and result["Result"]["PrepareStatus"] == "ERROR", result["Result"]
    (kind, path, code, detail), = failures(report)
    assert (kind, path, code) == ("Skipped", "/in/a.txt", "AccessDenied")
    assert detail.startswith(f"User: arn:aws:sts::{b.id}:assumed-role/{name_of(role)}/AWS-DataSync ")
    assert denied("s3:GetObject", obj, no("resource-based", "s3:GetObject")) in detail
    assert keys(b, dst) == []

    # A's bucket policy lets it read, B's identity policy does not.
    put_policy(a, src, source_grants(src, role, b.role_arn))
    set_role_policy(b, role, role_statements(src, dst, read_source=False))
    result, report = run_reported(b, task)
    assert result["Status"] == "ERROR"
    (kind, path, code, detail), = failures(report)
    assert (kind, path, code) == ("Skipped", "/in/a.txt", "AccessDenied")
    assert denied("s3:GetObject", obj, no("identity-based", "s3:GetObject")) in detail
    assert keys(b, dst) == []

    # Both: the object is copied (its tags read with s3:GetObjectTagging, granted on both sides).
    set_role_policy(b, role, role_statements(src, dst))
    result = run(b.ds, task)
    assert result["Status"] == "SUCCESS", result["Result"]
    assert b.s3.get_object(Bucket=dst, Key="in/a.txt")["Body"].read() == b"a"

    # s3:ListBucket withdrawn from A's bucket policy after the location was created: the execution ends
    # at once while preparing, as any location problem.
    put_policy(a, src, source_grants(src, role, b.role_arn, list_role=False))
    result = run(b.ds, task)
    assert result["Status"] == "ERROR" and result["Result"]["ErrorCode"] == "AccessDenied"
    assert result["Result"]["TransferStatus"] == "PENDING"
    assert denied("s3:ListBucket", f"\"arn:aws:s3:::{src}\"", no("resource-based", "s3:ListBucket")) \
        in result["Result"]["ErrorDetail"]


def test_pull_object_tags_need_both_policies_too(endpoint: str) -> None:
    a, b = Account(endpoint), Account(endpoint)
    task, src, dst, role = pull(a, b, {"t.txt": b"t"})
    a.s3.put_object_tagging(Bucket=src, Key="t.txt", Tagging={"TagSet": [{"Key": "team", "Value": "x"}]})
    only_get = [dict(s, Action="s3:GetObject") if s["Sid"] == "PullRoleObjects" else s
                for s in source_grants(src, role, b.role_arn)]
    put_policy(a, src, only_get)
    result, report = run_reported(b, task)  # ObjectTags PRESERVE (the default) reads the tags
    assert result["Status"] == "ERROR"
    (kind, path, code, detail) = transfer_failure(report)
    assert (kind, path, code) == ("Transferred", "/t.txt", "AccessDenied")
    assert keys(b, dst) == []
    assert denied("s3:GetObjectTagging", f"\"arn:aws:s3:::{src}/t.txt\"", no("resource-based", "s3:GetObjectTagging")) \
        in detail
    put_policy(a, src, source_grants(src, role, b.role_arn))
    assert run(b.ds, task)["Status"] == "SUCCESS"
    assert b.s3.get_object_tagging(Bucket=dst, Key="t.txt")["TagSet"] == [{"Key": "team", "Value": "x"}]


def test_pull_writes_into_the_destination_account_with_the_identity_policy_alone(endpoint: str) -> None:
    # Within one account "If either the identity-based policy or the resource-based policy within the same
    # account allows the request and the other doesn't, the request is still allowed"
    # (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policy-eval-basics.html):
    # B's role writes into B's bucket, which has no bucket policy.
    #
    # Object Ownership: "ObjectWriter - The uploading account will own the object"; "BucketOwnerEnforced -
    # ... The bucket owner automatically owns and has full control over every object in the bucket"
    # (https://docs.aws.amazon.com/AmazonS3/latest/API/API_OwnershipControlsRule.html,
    # https://docs.aws.amazon.com/AmazonS3/latest/userguide/about-object-ownership.html). The uploading
    # account is B, the bucket owner, so under every setting the objects are B's, and nothing asks for
    # BucketOwnerEnforced or a bucket-owner-full-control ACL. The emulator stores the setting (moto) and
    # models no object owners (every object is its bucket owner's; ACLs are not evaluated, README "Still
    # different"), so what is checked here is that DataSync writes, verifies and deletes under each setting.
    a, b = Account(endpoint), Account(endpoint)
    task, src, dst, role = pull(a, b, {"x/1.txt": b"1", "x/2.txt": b"22"},
                                Options={"PreserveDeletedFiles": "REMOVE"})
    for ownership in ("ObjectWriter", "BucketOwnerPreferred", "BucketOwnerEnforced"):
        b.s3.put_bucket_ownership_controls(Bucket=dst, OwnershipControls={"Rules": [{"ObjectOwnership": ownership}]})
        b.s3.put_object(Bucket=dst, Key="stale.txt", Body=b"old")
        result = run(b.ds, task, OverrideOptions={"TransferMode": "ALL"})
        assert result["Status"] == "SUCCESS", (ownership, result["Result"])
        assert result["Result"]["VerifyStatus"] == "SUCCESS" and result["FilesDeleted"] == 1, ownership
        assert keys(b, dst) == ["x/1.txt", "x/2.txt"], ownership
        assert b.s3.get_bucket_ownership_controls(Bucket=dst)["OwnershipControls"]["Rules"] == [
            {"ObjectOwnership": ownership}]
    # B's bucket has no policy: the writes came from the identity policy alone.
    assert refused(lambda: b.s3.get_bucket_policy(Bucket=dst))[0] == "NoSuchBucketPolicy"

    # Without s3:PutObject in the identity policy nothing else grants it: the object fails.
    set_role_policy(b, role, role_statements(src, dst, write_destination=False))
    b.s3.delete_object(Bucket=dst, Key="x/1.txt")
    result, report = run_reported(b, task, OverrideOptions={"PreserveDeletedFiles": "PRESERVE"})
    assert result["Status"] == "ERROR"
    refusals = {(kind, path): detail for kind, path, _, detail in failures(report)}
    assert denied("s3:PutObject", f"\"arn:aws:s3:::{dst}/x/1.txt\"", no("identity-based", "s3:PutObject")) \
        in refusals[("Transferred", "/x/1.txt")]
    assert keys(b, dst) == ["x/2.txt"]


# --- 3. SSE-KMS source objects -------------------------------------------------------------------


def root_statement(account: str) -> dict[str, Any]:
    """The default key policy's "Enable IAM User Permissions" statement."""
    return {"Sid": "Enable IAM User Permissions", "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{account}:root"}, "Action": "kms:*", "Resource": "*"}


def external_statement(principal: str) -> dict[str, Any]:
    """The statement "Allowing users in other accounts to use a KMS key" adds to the key policy."""
    return {"Sid": "Allow an external account to use this KMS key", "Effect": "Allow",
            "Principal": {"AWS": principal},
            "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
            "Resource": "*"}


def set_key_policy(account: Account, key: str, *statements: dict[str, Any]) -> None:
    account.client("kms").put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps(doc(*statements)))


def test_pull_sse_kms_source_needs_the_source_key_policy_and_the_roles_policy(endpoint: str) -> None:
    # "To give permission to use a KMS key to users and roles in another account, you must use two different
    # types of policies: The key policy for the KMS key must give the external account (or users and roles in
    # the external account) permission to use the KMS key ... IAM policies in the external account must
    # delegate the key policy permissions to its users and roles"
    # (https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-modifying-external-accounts.html).
    a, b = Account(endpoint), Account(endpoint)
    task, src, dst, role = pull(a, b, {})
    key = a.client("kms").create_key()["KeyMetadata"]["Arn"]  # the default key policy: A's root only
    a.s3.put_object(Bucket=src, Key="f.txt", Body=b"f", ServerSideEncryption="aws:kms", SSEKMSKeyId=key)
    assert a.s3.head_object(Bucket=src, Key="f.txt")["SSEKMSKeyId"] == key
    decrypt = {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": key}

    # B's identity policy allows kms:Decrypt on A's key, A's key policy does not name B.
    set_role_policy(b, role, [decrypt], name="kms")
    result, report = run_reported(b, task)
    assert result["Status"] == "ERROR"
    (kind, path, code, detail) = transfer_failure(report)
    assert (kind, path, code) == ("Transferred", "/f.txt", "AccessDenied")
    assert detail.startswith(f"User: arn:aws:sts::{b.id}:assumed-role/{name_of(role)}/AWS-DataSync ")
    assert denied("kms:Decrypt", key, no("resource-based", "kms:Decrypt")) in detail
    assert keys(b, dst) == []

    # A's key policy names B's role, B's identity policy does not allow the key.
    set_key_policy(a, key, root_statement(a.id), external_statement(role))
    b.client("iam").delete_role_policy(RoleName=name_of(role), PolicyName="kms")
    (kind, path, code, detail) = transfer_failure(run_reported(b, task)[1])
    assert (kind, path, code) == ("Transferred", "/f.txt", "AccessDenied")
    assert denied("kms:Decrypt", key, no("identity-based", "kms:Decrypt")) in detail
    assert keys(b, dst) == []

    # Both: copied and verified (verification reads the source again); the copy is stored with B's
    # default encryption (SSE-S3), not with A's key.
    set_role_policy(b, role, [decrypt], name="kms")
    result = run(b.ds, task)
    assert result["Status"] == "SUCCESS", result["Result"]
    assert result["Result"]["VerifyStatus"] == "SUCCESS"
    head = b.s3.head_object(Bucket=dst, Key="f.txt")
    assert head["ServerSideEncryption"] == "AES256" and "SSEKMSKeyId" not in head

    # A key policy naming B's account (not the role) delegates to B's IAM policies: still both needed.
    set_key_policy(a, key, root_statement(a.id), external_statement(f"arn:aws:iam::{b.id}:root"))
    assert run(b.ds, task, OverrideOptions={"TransferMode": "ALL"})["Status"] == "SUCCESS"
    b.client("iam").delete_role_policy(RoleName=name_of(role), PolicyName="kms")
    detail = transfer_failure(run_reported(b, task, OverrideOptions={"TransferMode": "ALL"})[1])[3]
    assert denied("kms:Decrypt", key, no("identity-based", "kms:Decrypt")) in detail


def test_pull_source_objects_under_the_source_accounts_aws_managed_key_cannot_be_read(endpoint: str) -> None:
    # The AWS managed key aws/s3 has a key policy AWS writes and nobody can change: it allows "all principals
    # in the account that are authorized to use S3" (kms:CallerAccount the key's account, kms:ViaService S3),
    # so it serves no principal of another account
    # (https://docs.aws.amazon.com/kms/latest/developerguide/concepts.html#aws-managed-key;
    # https://aws.amazon.com/blogs/storage/transfer-customer-managed-sse-kms-encrypted-objects-across-aws-accounts-and-regions-using-aws-datasync/
    # uses customer managed keys for that reason). An object beside it under a customer managed key that A
    # shares is read in the same execution, so only the key makes the difference.
    a, b = Account(endpoint), Account(endpoint)
    task, src, dst, role = pull(a, b, {})
    set_role_policy(b, role, [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}], name="kms")
    shared = a.client("kms").create_key()["KeyMetadata"]["Arn"]
    set_key_policy(a, shared, root_statement(a.id), external_statement(role))
    a.s3.put_object(Bucket=src, Key="managed.txt", Body=b"m", ServerSideEncryption="aws:kms")  # aws/s3 of A
    a.s3.put_object(Bucket=src, Key="shared.txt", Body=b"s", ServerSideEncryption="aws:kms", SSEKMSKeyId=shared)
    managed = a.s3.head_object(Bucket=src, Key="managed.txt")["SSEKMSKeyId"]
    assert managed.startswith(f"arn:aws:kms:us-east-1:{a.id}:key/") and managed != shared
    assert a.client("kms").describe_key(KeyId=managed)["KeyMetadata"]["KeyManager"] == "AWS"

    result, report = run_reported(b, task)
    assert result["Status"] == "ERROR"
    (kind, path, code, detail) = transfer_failure(report)
    assert (kind, path, code) == ("Transferred", "/managed.txt", "AccessDenied")
    assert denied("kms:Decrypt", managed, no("resource-based", "kms:Decrypt")) in detail
    assert keys(b, dst) == ["shared.txt"]
    # In its own account the same object is readable through S3 (A's role, same bucket): the key, not
    # the object, stops B.
    a_role = a.role()
    a_task = a.ds.create_task(SourceLocationArn=location(a.ds, src, a_role), DestinationLocationArn=location(
        a.ds, a.bucket(), a_role), Includes=[{"FilterType": "SIMPLE_PATTERN", "Value": "/managed.txt"}])["TaskArn"]
    a_result = run(a.ds, a_task)
    assert a_result["Status"] == "SUCCESS", a_result["Result"]


# --- 4. task report and manifest in B ----------------------------------------------------------------


def test_pull_task_report_and_manifest_in_the_destination_account_need_only_the_identity_policy(
        endpoint: str) -> None:
    a, b = Account(endpoint), Account(endpoint)
    task, src, dst, role = pull(a, b, {"m/1.txt": b"1", "m/2.txt": b"2"})

    # The report: a bucket of B (no bucket policy), written by a role of B.
    report_bucket = b.bucket()
    report_role = b.role(policy=doc({"Effect": "Allow", "Action": "s3:PutObject",
                                     "Resource": f"arn:aws:s3:::{report_bucket}/*"}))

    def report_with(report_role_arn: str, bucket: str) -> dict[str, Any]:
        config = {"Destination": {"S3": {"S3BucketArn": f"arn:aws:s3:::{bucket}",
                                         "BucketAccessRoleArn": report_role_arn}},
                  "OutputType": "SUMMARY_ONLY"}
        execution = b.ds.start_task_execution(TaskArn=task, TaskReportConfig=config)["TaskExecutionArn"]
        run_to_end(b.ds, execution)
        return report_result(b, execution)

    assert report_with(report_role, report_bucket) == {"Status": "SUCCESS"}
    assert any("/Summary-Reports/" in f"/{k}" for k in keys(b, report_bucket))
    # Without the identity policy nothing grants the write (B's bucket has no policy).
    bare = b.role(policy=None)
    answer = report_with(bare, report_bucket)
    assert answer["Status"] == "ERROR" and answer["ErrorCode"] == "AccessDenied"
    assert no("identity-based", "s3:PutObject") in answer["ErrorDetail"]
    # The contrast: a report bucket of A needs A's bucket policy as well.
    other = a.bucket()
    answer = report_with(b.role(policy=doc({"Effect": "Allow", "Action": "s3:PutObject",
                                            "Resource": f"arn:aws:s3:::{other}/*"})), other)
    assert answer["Status"] == "ERROR" and no("resource-based", "s3:PutObject") in answer["ErrorDetail"]

    # The manifest: a bucket of B (no bucket policy), read by a role of B allowed by its identity policy
    # ("This role must include the following permissions: s3:GetObject, s3:GetObjectVersion",
    # https://docs.aws.amazon.com/datasync/latest/userguide/transferring-with-manifest.html).
    manifest_bucket, manifest_key = b.bucket(), "manifests/pull.csv"
    b.s3.put_object(Bucket=manifest_bucket, Key=manifest_key, Body=b"m/1.txt\n")
    manifest_arn = f"arn:aws:s3:::{manifest_bucket}/{manifest_key}"
    reader = b.role(policy=doc({"Effect": "Allow", "Action": MANIFEST_READ, "Resource": manifest_arn}))

    def manifest_config(role_arn: str) -> dict[str, Any]:
        return {"Action": "TRANSFER", "Format": "CSV", "Source": {"S3": {
            "ManifestObjectPath": manifest_key, "BucketAccessRoleArn": role_arn,
            "S3BucketArn": f"arn:aws:s3:::{manifest_bucket}"}}}

    for key in keys(b, dst):
        b.s3.delete_object(Bucket=dst, Key=key)
    result = run(b.ds, task, ManifestConfig=manifest_config(reader))
    assert result["Status"] == "SUCCESS", result["Result"]
    assert keys(b, dst) == ["m/1.txt"]  # only the listed object
    result = run(b.ds, task, ManifestConfig=manifest_config(b.role(policy=None)))
    assert result["Status"] == "ERROR" and result["Result"]["ErrorCode"] == "AccessDenied"
    assert result["Result"]["PrepareStatus"] == "ERROR"
    assert denied("s3:GetObject", f"\"{manifest_arn}\"", no("identity-based", "s3:GetObject")) \
        in result["Result"]["ErrorDetail"]

