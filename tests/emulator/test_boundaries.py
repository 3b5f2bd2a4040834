"""Tests of IAM permissions boundaries as the emulator enforces them (rules.py, policy_eval.py,
kms_rules.py).

The IAM API (CreateRole, PutRolePermissionsBoundary, DeleteRolePermissionsBoundary, GetRole,
DeletePolicy) and, for each place a role's permissions are decided (the location access test, as
the caller and as DataSync's role; executions reading and writing S3, in one account and across
two; KMS for DataSync's role and for a caller; task reports), a request the boundary refuses and
one it lets through. One emulator per module (phases of 0.1 s), fresh accounts per test.

Run: .cache/venv/bin/python -m pytest -q tests/emulator/test_boundaries.py
"""

from __future__ import annotations

import json
import time
from typing import Any

import kms_rules
import policy_eval
from emulator_testkit import (S3_ALL, Account, client_error, control, failures, ferry_grants, location, put_policy,
                              refused, run, run_reported, summary_report_task, unique_name, wait_for)
from policy_eval import Principal, Request

A, B = "111111111111", "222222222222"
ROLE = f"arn:aws:iam::{A}:role/ds"
SESSION = f"arn:aws:sts::{A}:assumed-role/ds/AWS-DataSync"
OBJECT = "arn:aws:s3:::dst/k"
ALLOW_ALL = [{"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}]
READ_ONLY = "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"  # AWS managed: s3:Get*, s3:List*, s3:Describe*


# --- helpers ---------------------------------------------------------------------------------


def on_buckets(*buckets: str, actions: Any = "s3:*") -> dict[str, Any]:
    """An Allow of ``actions`` on the buckets and their objects."""
    resources = [f"arn:aws:s3:::{b}" for b in buckets] + [f"arn:aws:s3:::{b}/*" for b in buckets]
    return {"Effect": "Allow", "Action": actions, "Resource": resources}


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def name_of(role_arn: str) -> str:
    return role_arn.rsplit("/", 1)[1]


def access_test_failed(bucket: str) -> str:
    return (f"DataSync location access test failed: could not perform s3:ListObjectsV2 on bucket {bucket}. "
            "Access denied. Ensure bucket access role has s3:ListBucket permission.")


def no_boundary_allows(action: str) -> str:
    return f"because no permissions boundary allows the {action} action"


def _s3(action: str = "s3:PutObject", resource: str = OBJECT) -> Request:
    return Request(Principal.for_role(ROLE, SESSION), action, resource, {})


def _bucket_policy(principal: Any, effect: str = "Allow", element: str = "Principal") -> dict[str, Any]:
    return doc({"Effect": effect, element: principal, "Action": "s3:*", "Resource": "arn:aws:s3:::dst/*"})


def caller_role(account: Account, boundary: str) -> tuple[Account, str]:
    """A role of ``account`` that the account may assume (full access by its inline policy, limited by
    ``boundary``), and the account's clients signed as a session of it."""
    trust = doc({"Effect": "Allow", "Principal": {"AWS": account.id}, "Action": "sts:AssumeRole"})
    role = account.role(trust=trust, policy=doc({"Effect": "Allow", "Action": "*", "Resource": "*"}),
                        boundary=boundary)
    return Account(account.endpoint, account.id, role=name_of(role)), role


# --- evaluation (pure) --------------------------------------------------------------------------


def test_boundary_limits_the_identity_policies() -> None:
    get_only = [doc({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"})]
    decide = policy_eval.decide
    assert decide(_s3(), ALLOW_ALL, None, A)  # no boundary: the identity policy alone decides
    refused_put = decide(_s3(), ALLOW_ALL, None, A, boundary=get_only)
    assert not refused_put and refused_put.reason == no_boundary_allows("s3:PutObject")
    assert decide(_s3("s3:GetObject"), ALLOW_ALL, None, A, boundary=get_only)  # both allow
    # The boundary grants nothing by itself.
    assert decide(_s3("s3:GetObject"), [], None, A, boundary=get_only).reason == (
        "because no identity-based policy allows the s3:GetObject action")
    # An explicit Deny in the boundary wins; a boundary whose policy is gone allows nothing.
    deny = get_only + [doc({"Effect": "Deny", "Action": "s3:*", "Resource": OBJECT})]
    assert decide(_s3("s3:GetObject"), ALLOW_ALL, None, A, boundary=deny).reason == (
        "with an explicit deny in a permissions boundary")
    assert not decide(_s3("s3:GetObject"), ALLOW_ALL, None, A, boundary=[])
    # Conditions in the boundary are evaluated like any others.
    tls = [doc({"Effect": "Allow", "Action": "s3:*", "Resource": "*",
                "Condition": {"Bool": {"aws:SecureTransport": "true"}}})]
    assert not decide(_s3(), ALLOW_ALL, None, A, boundary=tls)
    assert decide(Request(Principal.for_role(ROLE, SESSION), "s3:PutObject", OBJECT, {"aws:SecureTransport": True}),
                  ALLOW_ALL, None, A, boundary=tls)


def test_resource_policies_and_boundaries_role_arn_versus_session_arn() -> None:
    decide = policy_eval.decide
    nothing = [doc({"Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"})]
    s3_all = [doc({"Effect": "Allow", "Action": "s3:*", "Resource": "*"})]
    # Same account: a grant to the role ARN is limited by the boundary (it allows with the boundary
    # even without an identity policy) ...
    assert decide(_s3(), [], _bucket_policy({"AWS": ROLE}), A, boundary=s3_all)
    limited = decide(_s3(), ALLOW_ALL, _bucket_policy({"AWS": ROLE}), A, boundary=nothing)
    assert not limited and limited.reason == no_boundary_allows("s3:PutObject")
    # ... and so are grants to the account, to its root and to everyone (the strict reading).
    for principal in ({"AWS": A}, {"AWS": f"arn:aws:iam::{A}:root"}, {"AWS": "*"}, "*"):
        assert not decide(_s3(), [], _bucket_policy(principal), A, boundary=nothing), principal
    # A grant naming the role session ARN itself is not limited by the boundary.
    assert decide(_s3(), [], _bucket_policy({"AWS": SESSION}), A, boundary=nothing)
    assert decide(_s3(), [], _bucket_policy({"AWS": [f"arn:aws:iam::{B}:root", SESSION]}), A, boundary=nothing)
    # Across accounts the identity policy, the boundary and the bucket policy must all allow,
    # even for a grant naming the session.
    cross = decide(_s3(), ALLOW_ALL, _bucket_policy({"AWS": SESSION}), B, boundary=nothing)
    assert not cross and cross.reason == no_boundary_allows("s3:PutObject")
    assert decide(_s3(), ALLOW_ALL, _bucket_policy({"AWS": ROLE}), B, boundary=s3_all)
    assert decide(_s3(), ALLOW_ALL, None, B, boundary=s3_all).reason == (
        "because no resource-based policy allows the s3:PutObject action")
    assert decide(_s3(), [], _bucket_policy({"AWS": ROLE}), B, boundary=s3_all).reason == (
        "because no identity-based policy allows the s3:PutObject action")
    # An explicit Deny in the bucket policy still wins over a grant to the session.
    both = doc(*(_bucket_policy({"AWS": SESSION})["Statement"] + _bucket_policy({"AWS": ROLE}, "Deny")["Statement"]))
    assert decide(_s3(), [], both, A, boundary=nothing).reason == "with an explicit deny in a resource-based policy"


def test_not_principal_deny_denies_every_bounded_principal() -> None:
    # "Deny everyone but this role": it spares the role without a boundary, not with one.
    spare_role = _bucket_policy({"AWS": ROLE}, effect="Deny", element="NotPrincipal")
    s3_all = [doc({"Effect": "Allow", "Action": "s3:*", "Resource": "*"})]
    assert policy_eval.decide(_s3(), ALLOW_ALL, spare_role, A)
    assert policy_eval.decide(_s3(), ALLOW_ALL, spare_role, A, boundary=s3_all).reason == (
        "with an explicit deny in a resource-based policy")


def test_kms_decision_applies_the_boundary() -> None:
    key = f"arn:aws:kms:us-east-1:{A}:key/k"
    other_key = f"arn:aws:kms:us-east-1:{B}:key/k"
    principal = Principal.for_role(ROLE, SESSION)
    s3_only = [doc({"Effect": "Allow", "Action": "s3:*", "Resource": "*"})]
    decrypt = [doc({"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"})]

    def decide(key_arn: str, *statements: dict[str, Any], identity: list[Any] = ALLOW_ALL,
               boundary: list[Any] | None = s3_only) -> kms_rules.Decision:
        account = key_arn.split(":")[4]
        keys = kms_rules.context(principal, account, via_service="s3.us-east-1.amazonaws.com",
                                 object_arn="arn:aws:s3:::b/k")
        return kms_rules.decide(principal, identity, "kms:Decrypt", key_arn, account, doc(*statements), keys, boundary)

    def named(who: Any, account: str = A) -> dict[str, Any]:
        return {"Effect": "Allow", "Principal": {"AWS": who}, "Action": "kms:*", "Resource": "*"}

    root = named(f"arn:aws:iam::{A}:root")
    assert decide(key, root, boundary=None)  # no boundary: the key policy enables the IAM policy
    assert decide(key, root).reason == no_boundary_allows("kms:Decrypt")
    assert decide(key, root, boundary=decrypt)
    assert decide(key, named(ROLE), identity=[]).reason == no_boundary_allows("kms:Decrypt")
    assert decide(key, named(SESSION), identity=[])  # the session itself: not limited
    assert decide(key, named("*"), identity=[]).reason == no_boundary_allows("kms:Decrypt")
    deny = {"Effect": "Deny", "Action": "kms:Decrypt", "Resource": "*"}
    assert decide(key, root, boundary=decrypt + [doc(deny)]).reason == "with an explicit deny in a permissions boundary"
    # Across accounts: the key policy, the IAM policy and the boundary.
    assert decide(other_key, named(f"arn:aws:iam::{B}:root"), named(SESSION)).reason == (
        no_boundary_allows("kms:Decrypt"))
    assert decide(other_key, named(f"arn:aws:iam::{B}:root"), named(SESSION), boundary=decrypt)
    assert decide(other_key, named(f"arn:aws:iam::{B}:root"), boundary=decrypt).reason == (
        "because no resource-based policy allows the kms:Decrypt action")


# --- the IAM API ----------------------------------------------------------------------------------


def test_put_get_delete_role_permissions_boundary_round_trip(endpoint: str) -> None:
    a = Account(endpoint)
    iam = a.client("iam")
    boundary = a.managed_policy([{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}])
    name = unique_name("ds")
    created = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(doc()),
                              PermissionsBoundary=boundary)["Role"]
    attached = {"PermissionsBoundaryType": "Policy", "PermissionsBoundaryArn": boundary}
    assert created["PermissionsBoundary"] == attached
    assert iam.get_role(RoleName=name)["Role"]["PermissionsBoundary"] == attached
    iam.put_role_permissions_boundary(RoleName=name, PermissionsBoundary=READ_ONLY)  # replaces it
    replaced = dict(attached, PermissionsBoundaryArn=READ_ONLY)
    assert iam.get_role(RoleName=name)["Role"]["PermissionsBoundary"] == replaced
    iam.delete_role_permissions_boundary(RoleName=name)
    assert "PermissionsBoundary" not in iam.get_role(RoleName=name)["Role"]
    iam.put_role_permissions_boundary(RoleName=name, PermissionsBoundary=boundary)
    assert iam.get_role(RoleName=name)["Role"]["PermissionsBoundary"] == attached
    # A role without a boundary shows none; ListRoles never shows it (as IAM).
    assert "PermissionsBoundary" not in iam.get_role(RoleName=name_of(a.role()))["Role"]
    assert all("PermissionsBoundary" not in r for r in iam.list_roles()["Roles"])


def test_boundary_must_be_an_existing_managed_policy(endpoint: str) -> None:
    a, b = Account(endpoint), Account(endpoint)
    iam = a.client("iam")

    def scope_error(arn: str) -> tuple[str, str]:
        return "NoSuchEntity", f"Scope ARN: {arn} does not exist or is not attachable."

    name = unique_name("ds")

    def create(arn: str) -> Any:
        return iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(doc()), PermissionsBoundary=arn)

    missing = f"arn:aws:iam::{a.id}:policy/{unique_name('nopolicy')}"
    others = b.managed_policy([{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}])  # of another account
    unknown_aws = "arn:aws:iam::aws:policy/NoSuchAwsManagedPolicy"
    for arn in (missing, others, unknown_aws):
        assert refused(lambda: create(arn)) == scope_error(arn)
    assert refused(lambda: iam.get_role(RoleName=name))[0] == "NoSuchEntity"  # nothing was created
    # Service role policies attach only to service-linked roles.
    code, _ = refused(lambda: create("arn:aws:iam::aws:policy/aws-service-role/AmazonECSServiceRolePolicy"))
    assert code == "PolicyNotAttachable"
    # An AWS managed policy and a customer managed policy of the account are accepted.
    assert create(READ_ONLY)["Role"]["PermissionsBoundary"]["PermissionsBoundaryArn"] == READ_ONLY
    assert refused(lambda: iam.put_role_permissions_boundary(RoleName=name, PermissionsBoundary=missing)) == (
        scope_error(missing))
    assert iam.get_role(RoleName=name)["Role"]["PermissionsBoundary"]["PermissionsBoundaryArn"] == READ_ONLY
    own = a.managed_policy([{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}])
    iam.put_role_permissions_boundary(RoleName=name, PermissionsBoundary=own)
    # The HTTP status is IAM's 404 for NoSuchEntity.
    error = client_error(iam.put_role_permissions_boundary, RoleName=name, PermissionsBoundary=missing)
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    # A policy in use as a boundary cannot be deleted; once removed from the role it can.
    assert refused(lambda: iam.delete_policy(PolicyArn=own)) == (
        "DeleteConflict", "Cannot delete a policy attached to entities.")
    iam.delete_role_permissions_boundary(RoleName=name)
    iam.delete_policy(PolicyArn=own)
    # User boundaries are not modelled: refused rather than silently ignored.
    assert refused(lambda: iam.create_user(UserName=unique_name("u"), PermissionsBoundary=READ_ONLY))[0] == (
        "NotImplemented")
    assert iam.create_user(UserName=unique_name("u"))["User"]


# --- CreateLocationS3: the location access test --------------------------------------------------


def test_location_access_test_applies_the_roles_boundary(endpoint: str) -> None:
    a = Account(endpoint)
    bucket, elsewhere = a.bucket(), a.bucket()
    ds = a.ds
    bounded = a.role(boundary=a.managed_policy([on_buckets(elsewhere)]))
    assert refused(lambda: location(ds, bucket, bounded)) == ("InvalidRequestException", access_test_failed(bucket))
    # A bucket policy granting the role ARN is limited by the boundary too.
    put_policy(a, bucket, ferry_grants(bucket, bounded, a.role_arn))
    assert refused(lambda: location(ds, bucket, bounded)) == ("InvalidRequestException", access_test_failed(bucket))
    a.client("iam").put_role_permissions_boundary(RoleName=name_of(bounded),
                                                  PermissionsBoundary=a.managed_policy([on_buckets(bucket)]))
    assert location(ds, bucket, bounded)
    assert location(ds, bucket, a.role(boundary=READ_ONLY))  # AWS managed: s3:List* covers s3:ListBucket


def test_location_access_test_applies_the_callers_boundary(endpoint: str) -> None:
    a = Account(endpoint)
    bucket = a.bucket()
    role = a.role()
    caller, caller_arn = caller_role(a, a.managed_policy([{"Effect": "Allow", "Action": "datasync:*",
                                                           "Resource": "*"}]))
    assert refused(lambda: location(caller.ds, bucket, role)) == ("InvalidRequestException",
                                                                  access_test_failed(bucket))
    a.client("iam").put_role_permissions_boundary(RoleName=name_of(caller_arn), PermissionsBoundary=a.managed_policy(
        [{"Effect": "Allow", "Action": "datasync:*", "Resource": "*"}, on_buckets(bucket)]))
    assert location(caller.ds, bucket, role)


def test_boundary_policy_versions_and_propagation(endpoint: str) -> None:
    a = Account(endpoint)
    iam = a.client("iam")
    bucket, elsewhere = a.bucket(), a.bucket()
    boundary = a.managed_policy([on_buckets(bucket)])
    role = a.role(boundary=boundary)
    assert location(a.ds, bucket, role)
    # A new default version of the boundary policy is what counts.
    iam.create_policy_version(PolicyArn=boundary, PolicyDocument=json.dumps(doc(on_buckets(elsewhere))),
                              SetAsDefault=True)
    assert refused(lambda: location(a.ds, bucket, role))[1] == access_test_failed(bucket)
    iam.set_default_policy_version(PolicyArn=boundary, VersionId="v1")
    assert location(a.ds, bucket, role)
    # Boundary changes reach DataSync after iamPropagationSeconds, like every IAM change.
    control(endpoint, "POST", "config", {"iamPropagationSeconds": 1.0})
    try:
        time.sleep(1.1)  # the role as it is now is what DataSync sees from here on
        iam.put_role_permissions_boundary(RoleName=name_of(role),
                                          PermissionsBoundary=a.managed_policy([on_buckets(elsewhere)]))
        started = time.monotonic()
        assert location(a.ds, bucket, role)  # the old boundary still counts
        wait_for("the boundary to propagate", lambda: time.monotonic() - started > 1.1)
        assert refused(lambda: location(a.ds, bucket, role))[1] == access_test_failed(bucket)
    finally:
        control(endpoint, "POST", "config", {"iamPropagationSeconds": 0})


# --- executions ----------------------------------------------------------------------------------


def test_execution_role_boundary_excluding_the_destination_fails(endpoint: str) -> None:
    a = Account(endpoint)
    iam = a.client("iam")
    src, dst = a.bucket(), a.bucket()
    a.s3.put_object(Bucket=src, Key="a.txt", Body=b"a")
    role = a.role(boundary=a.managed_policy([on_buckets(src, dst)]))
    task = a.ds.create_task(SourceLocationArn=location(a.ds, src, role),
                            DestinationLocationArn=location(a.ds, dst, role))["TaskArn"]

    def bound(arn: str) -> None:
        iam.put_role_permissions_boundary(RoleName=name_of(role), PermissionsBoundary=arn)

    # The boundary leaves the destination bucket out: s3:ListBucket is refused, the execution ends at once.
    bound(a.managed_policy([on_buckets(src)]))
    result = run(a.ds, task)
    assert result["Status"] == "ERROR" and result["Result"]["ErrorCode"] == "AccessDenied"
    assert result["Result"]["PrepareStatus"] == "ERROR"
    assert (f"s3:ListBucket on resource: \"arn:aws:s3:::{dst}\" {no_boundary_allows('s3:ListBucket')}"
            in result["Result"]["ErrorDetail"])
    assert "Contents" not in a.s3.list_objects_v2(Bucket=dst)
    # AWS's read-only policy as the boundary: listing passes, the write fails for that object.
    bound(READ_ONLY)
    result, report = run_reported(a, task)
    assert result["Status"] == "ERROR"
    kind, path, code, detail = failures(report)[0]
    assert (kind, path, code) == ("Transferred", "/a.txt", "AccessDenied")
    assert f"s3:PutObject on resource: \"arn:aws:s3:::{dst}/a.txt\" {no_boundary_allows('s3:PutObject')}" in detail
    assert "Contents" not in a.s3.list_objects_v2(Bucket=dst)
    # A boundary allowing both buckets: the copy goes through; and so it does without a boundary.
    bound(a.managed_policy([on_buckets(src, dst)]))
    assert run(a.ds, task)["Status"] == "SUCCESS"
    assert a.s3.get_object(Bucket=dst, Key="a.txt")["Body"].read() == b"a"
    iam.delete_role_permissions_boundary(RoleName=name_of(role))
    assert run(a.ds, task, OverrideOptions={"TransferMode": "ALL"})["Status"] == "SUCCESS"


def test_cross_account_execution_needs_the_boundary_to_allow_the_destination(endpoint: str) -> None:
    a, b = Account(endpoint), Account(endpoint)
    src, dst = a.bucket(), b.bucket()
    a.s3.put_object(Bucket=src, Key="x.txt", Body=b"x")
    role = a.role(boundary=a.managed_policy([on_buckets(src, dst)]))
    put_policy(b, dst, ferry_grants(dst, role, a.role_arn))
    task = a.ds.create_task(SourceLocationArn=location(a.ds, src, role),
                            DestinationLocationArn=location(a.ds, dst, role))["TaskArn"]
    # The bucket policy grants the role, its identity policy allows, the boundary does not.
    a.client("iam").put_role_permissions_boundary(
        RoleName=name_of(role), PermissionsBoundary=a.managed_policy([on_buckets(src), on_buckets(dst, actions=[
            "s3:ListBucket", "s3:GetBucketLocation"])]))
    result, report = run_reported(a, task)
    assert result["Status"] == "ERROR"
    (kind, path, code, detail), = [f for f in failures(report) if f[0] == "Transferred"]
    assert (path, code) == ("/x.txt", "AccessDenied") and no_boundary_allows("s3:PutObject") in detail
    a.client("iam").put_role_permissions_boundary(RoleName=name_of(role),
                                                  PermissionsBoundary=a.managed_policy([on_buckets(src, dst)]))
    assert run(a.ds, task)["Status"] == "SUCCESS"
    assert b.s3.get_object(Bucket=dst, Key="x.txt")["Body"].read() == b"x"


def test_sse_kms_destination_needs_the_boundary_to_allow_the_key(endpoint: str) -> None:
    a = Account(endpoint)
    key = a.client("kms").create_key()["KeyMetadata"]["Arn"]  # default key policy: IAM policies decide
    src, dst = a.bucket(), a.bucket()
    a.s3.put_bucket_encryption(Bucket=dst, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key}}]})
    a.s3.put_object(Bucket=src, Key="k.txt", Body=b"k")
    kms_actions = ["kms:GenerateDataKey", "kms:Decrypt"]
    role = a.role(policy=doc(S3_ALL["Statement"][0], {"Effect": "Allow", "Action": kms_actions, "Resource": key}),
                  boundary=a.managed_policy([on_buckets(src, dst)]))
    task = a.ds.create_task(SourceLocationArn=location(a.ds, src, role),
                            DestinationLocationArn=location(a.ds, dst, role))["TaskArn"]
    result, report = run_reported(a, task)
    assert result["Status"] == "ERROR"
    kind, path, code, detail = failures(report)[0]
    assert (kind, path, code) == ("Transferred", "/k.txt", "AccessDenied")
    assert (f"is not authorized to perform: kms:GenerateDataKey on resource: {key} "
            f"{no_boundary_allows('kms:GenerateDataKey')}") in detail
    a.client("iam").put_role_permissions_boundary(RoleName=name_of(role), PermissionsBoundary=a.managed_policy(
        [on_buckets(src, dst), {"Effect": "Allow", "Action": kms_actions, "Resource": key}]))
    assert run(a.ds, task)["Status"] == "SUCCESS"
    assert a.s3.head_object(Bucket=dst, Key="k.txt")["SSEKMSKeyId"] == key


def test_kms_calls_apply_the_callers_boundary(endpoint: str) -> None:
    a = Account(endpoint)
    key = a.client("kms").create_key()["KeyMetadata"]["Arn"]  # default key policy: IAM policies decide
    caller, caller_arn = caller_role(a, a.managed_policy([{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]))
    code, message = refused(lambda: caller.client("kms").describe_key(KeyId=key))
    assert code == "AccessDeniedException"
    assert message.endswith(f"is not authorized to perform: kms:DescribeKey on resource: {key} "
                            f"{no_boundary_allows('kms:DescribeKey')}")
    a.client("iam").put_role_permissions_boundary(RoleName=name_of(caller_arn), PermissionsBoundary=a.managed_policy(
        [{"Effect": "Allow", "Action": ["kms:DescribeKey", "kms:GetKeyPolicy"], "Resource": key}]))
    kms = caller.client("kms")
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["Arn"] == key
    assert json.loads(kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"])["Statement"]


def test_task_report_role_boundary(endpoint: str) -> None:
    a = Account(endpoint)
    report_bucket = a.bucket()
    report_role = a.role(boundary=a.managed_policy([on_buckets(a.bucket())]))  # another bucket only
    report = summary_report_task(a, report_bucket, report_role)
    answer = report()
    assert answer["Status"] == "ERROR" and answer["ErrorCode"] == "AccessDenied"
    assert no_boundary_allows("s3:PutObject") in answer["ErrorDetail"]
    a.client("iam").put_role_permissions_boundary(RoleName=name_of(report_role),
                                                  PermissionsBoundary=a.managed_policy([on_buckets(report_bucket)]))
    assert report() == {"Status": "SUCCESS"}
