"""Tests of the AWS rules the emulator enforces (rules.py, policy_eval.py).

For each rule: the request AWS refuses (with the exact error) and a nearby one it
accepts. One emulator per module (phases of 0.1 s), fresh accounts per test
through STS AssumeRole; nothing resets the server.

Run: .cache/venv/bin/python -m pytest -q tests/emulator/test_rules.py
"""

from __future__ import annotations

import json
import time
import urllib.error
from typing import Any, Callable

import pytest

import policy_eval  # (pure evaluation logic, tested directly)
from emulator_testkit import (DATASYNC_TRUST, Account, control, failures, ferry_grants, location, put_policy,
                              refused, run, run_reported, unique_name, wait_for)
from policy_eval import Principal, Request
from transfer import FILES_SKIPPED_DETAIL

ASSUME_ROLE_FAILED = "Unable to assume role. Reason: Access denied when calling sts:AssumeRole"


# --- helpers ---------------------------------------------------------------------------------


def access_test_failed(bucket: str) -> str:
    return (f"DataSync location access test failed: could not perform s3:ListObjectsV2 on bucket {bucket}. "
            "Access denied. Ensure bucket access role has s3:ListBucket permission.")


def tls_only(bucket: str) -> dict[str, Any]:
    """AWS's recommended statement: deny every request that does not use TLS."""
    return {"Sid": "AllowSSLRequestsOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
            "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}}


# --- policy evaluation (pure) ------------------------------------------------------------------


ROLE = "arn:aws:iam::111111111111:role/ds"
BUCKET = "arn:aws:s3:::dst"


def _request(action: str = "s3:PutObject", resource: str = BUCKET + "/k", **context: Any) -> Request:
    return Request(Principal.for_role(ROLE), action, resource, context)


def _resource_decision(statement: dict[str, Any], request: Request) -> str | None:
    return policy_eval.evaluate([{"Statement": [statement]}], request, resource_policy=True)


def test_principals_actions_resources() -> None:
    base = {"Effect": "Allow", "Action": "s3:*", "Resource": BUCKET + "/*"}
    for principal, expected in (("*", "Allow"), ({"AWS": "*"}, "Allow"), ({"AWS": ROLE}, "Allow"),
                                ({"AWS": "111111111111"}, "Allow"), ({"AWS": "arn:aws:iam::111111111111:root"}, "Allow"),
                                ({"AWS": ["arn:aws:iam::222222222222:root", ROLE]}, "Allow"),
                                ({"AWS": "arn:aws:iam::222222222222:root"}, None),
                                ({"Service": "datasync.amazonaws.com"}, None)):
        assert _resource_decision(dict(base, Principal=principal), _request()) == expected, principal
    assert _resource_decision(dict(base, NotPrincipal={"AWS": ROLE}), _request()) is None
    assert _resource_decision(dict(base, NotPrincipal={"AWS": "arn:aws:iam::2:role/x"}), _request()) == "Allow"
    # Action names are case-insensitive and take wildcards; NotAction inverts.
    statement = {"Effect": "Allow", "Principal": "*", "Resource": "*"}
    assert _resource_decision(dict(statement, Action="S3:put*"), _request()) == "Allow"
    assert _resource_decision(dict(statement, Action="s3:Get?bject"), _request("s3:GetObject")) == "Allow"
    assert _resource_decision(dict(statement, NotAction="s3:Delete*"), _request()) == "Allow"
    assert _resource_decision(dict(statement, NotAction="s3:Put*"), _request()) is None
    # Resources are case-sensitive; NotResource inverts.
    statement = {"Effect": "Allow", "Principal": "*", "Action": "s3:*"}
    assert _resource_decision(dict(statement, Resource="arn:aws:s3:::DST/*"), _request()) is None
    assert _resource_decision(dict(statement, NotResource=BUCKET), _request()) == "Allow"
    assert _resource_decision(dict(statement, NotResource=BUCKET + "/*"), _request()) is None
    # Identity policies carry no Principal; the service principal matches {"Service": ...} only.
    service = Request(Principal.for_service("datasync.amazonaws.com"), "sts:AssumeRole", ROLE)
    assert policy_eval.evaluate([DATASYNC_TRUST], service, resource_policy=True) == "Allow"
    assert policy_eval.evaluate([DATASYNC_TRUST], _request("sts:AssumeRole", ROLE), resource_policy=True) is None


def test_explicit_deny_and_account_boundaries() -> None:
    allow = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    grant = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": "s3:PutObject",
                            "Resource": BUCKET + "/*"}]}
    deny = {"Statement": grant["Statement"] + [dict(grant["Statement"][0], Effect="Deny")]}
    other, same = "222222222222", "111111111111"
    assert policy_eval.decide(_request(), [allow], grant, other)  # cross-account: both allow
    assert not policy_eval.decide(_request(), [], grant, other)  # identity policy missing
    assert not policy_eval.decide(_request(), [allow], None, other)  # bucket policy missing
    assert policy_eval.decide(_request(), [], grant, same)  # same account: either suffices
    assert policy_eval.decide(_request(), [allow], None, same)
    decision = policy_eval.decide(_request(), [allow], deny, same)
    assert not decision and decision.reason == "with an explicit deny in a resource-based policy"


@pytest.mark.parametrize(
    ("condition", "context", "expected"),
    [
        ({"Bool": {"aws:SecureTransport": "false"}}, {"aws:SecureTransport": True}, False),
        ({"Bool": {"aws:SecureTransport": "true"}}, {"aws:SecureTransport": True}, True),
        ({"Bool": {"aws:SecureTransport": False}}, {}, False),  # key absent: no match
        ({"StringEquals": {"aws:PrincipalAccount": "111111111111"}}, {"aws:PrincipalAccount": "111111111111"}, True),
        ({"StringEquals": {"AWS:principalaccount": ["1", "111111111111"]}}, {"aws:PrincipalAccount": "111111111111"}, True),
        ({"StringNotEquals": {"aws:PrincipalAccount": "111111111111"}}, {"aws:PrincipalAccount": "111111111111"}, False),
        ({"StringNotEquals": {"aws:PrincipalAccount": "111111111111"}}, {}, True),  # negated, absent: true
        ({"StringLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/d?"}}, {"aws:PrincipalArn": ROLE}, True),
        ({"StringNotLike": {"aws:PrincipalArn": "*:role/ds"}}, {"aws:PrincipalArn": ROLE}, False),
        ({"StringEqualsIgnoreCase": {"aws:PrincipalArn": ROLE.upper()}}, {"aws:PrincipalArn": ROLE}, True),
        ({"ArnLike": {"aws:SourceArn": "arn:aws:datasync:us-east-1:111111111111:*"}},
         {"aws:SourceArn": "arn:aws:datasync:us-east-1:111111111111:location/loc-1"}, True),
        ({"ArnLike": {"aws:SourceArn": "arn:aws:datasync:*:111111111111:*"}},
         {"aws:SourceArn": "arn:aws:datasync:eu-west-1:111111111111:task/task-1"}, True),
        ({"ArnLike": {"aws:SourceArn": "arn:aws:datasync:us-east-1:111111111111:*"}},
         {"aws:SourceArn": "arn:aws:datasync:us-west-1:111111111111:location/loc-1"}, False),
        ({"ArnEquals": {"aws:SourceArn": "arn:aws:datasync:us-*:111111111111:*"}},
         {"aws:SourceArn": "arn:aws:datasync:us-west-1:111111111111:location/loc-1"}, True),
        ({"ArnNotLike": {"aws:SourceArn": "arn:aws:datasync:us-east-1:*:*"}},
         {"aws:SourceArn": "arn:aws:datasync:us-west-1:1:x"}, True),
        ({"ArnNotEquals": {"aws:SourceArn": "arn:aws:datasync:us-east-1:*:*"}}, {}, True),
        ({"StringEqualsIfExists": {"aws:SourceAccount": "111111111111"}}, {}, True),
        ({"StringEqualsIfExists": {"aws:SourceAccount": "111111111111"}}, {"aws:SourceAccount": "2"}, False),
        ({"Null": {"aws:SourceArn": "true"}}, {}, True),
        ({"Null": {"aws:SourceArn": "false"}}, {}, False),
        ({"Null": {"aws:SourceArn": "false"}}, {"aws:SourceArn": "arn:aws:datasync:us-east-1:1:x"}, True),
        ({"ForAnyValue:StringEquals": {"aws:TagKeys": ["a", "b"]}}, {"aws:TagKeys": ["b", "c"]}, True),
        ({"ForAnyValue:StringEquals": {"aws:TagKeys": ["a"]}}, {}, False),
        ({"ForAllValues:StringEquals": {"aws:TagKeys": ["a", "b"]}}, {"aws:TagKeys": ["b", "c"]}, False),
        ({"ForAllValues:StringEquals": {"aws:TagKeys": ["a", "b"]}}, {"aws:TagKeys": ["b", "a"]}, True),
        ({"ForAllValues:StringEquals": {"aws:TagKeys": ["a"]}}, {}, True),
        ({"NumericLessThan": {"s3:max-keys": "10"}}, {"s3:max-keys": 5}, True),
        ({"NumericGreaterThanEquals": {"s3:max-keys": 10}}, {"s3:max-keys": "5"}, False),
        ({"StringEquals": {"aws:SourceAccount": "1"}, "ArnLike": {"aws:SourceArn": "arn:aws:datasync:*:1:*"}},
         {"aws:SourceAccount": "1", "aws:SourceArn": "arn:aws:datasync:us-east-1:1:location/x"}, True),
        ({"StringEquals": {"aws:SourceAccount": "1"}, "ArnLike": {"aws:SourceArn": "arn:aws:datasync:*:1:*"}},
         {"aws:SourceAccount": "1"}, False),
        ({"SomeUnknownOperator": {"aws:SourceAccount": "1"}}, {"aws:SourceAccount": "1"}, False),
    ],
)
def test_condition_operators(condition: dict[str, Any], context: dict[str, Any], expected: bool) -> None:
    request = Request(Principal.for_role(ROLE), "s3:GetObject", BUCKET + "/k", context)
    assert policy_eval.conditions_hold(condition, request) is expected


# --- CreateLocationS3: the location access test with the evaluator ----------------------------


def test_tls_only_deny_next_to_ferry_grants_is_accepted(endpoint: str) -> None:
    a, b = Account(endpoint), Account(endpoint)
    role = a.role()
    bucket = b.bucket("us-west-1")
    ds = a.client("datasync", "us-west-1")
    # The same deny on requests that DO use TLS would lock DataSync out.
    put_policy(b, bucket, [dict(tls_only(bucket), Condition={"Bool": {"aws:SecureTransport": "true"}})]
               + ferry_grants(bucket, role, a.role_arn), "us-west-1")
    code, message = refused(lambda: location(ds, bucket, role))
    assert (code, message) == ("InvalidRequestException", access_test_failed(bucket))
    put_policy(b, bucket, [tls_only(bucket)] + ferry_grants(bucket, role, a.role_arn), "us-west-1")
    assert location(ds, bucket, role).startswith(f"arn:aws:datasync:us-west-1:{a.id}:location/loc-")


def test_cross_account_needs_the_roles_own_policy_and_the_bucket_policy(endpoint: str) -> None:
    a, b = Account(endpoint), Account(endpoint)
    role = a.role(policy=None)
    bucket = b.bucket()
    ds = a.client("datasync")
    put_policy(b, bucket, ferry_grants(bucket, role, a.role_arn))
    assert refused(lambda: location(ds, bucket, role)) == ("InvalidRequestException", access_test_failed(bucket))
    # The tutorial's inline policy on the role (bucket-level actions on the bucket ARN).
    a.client("iam").put_role_policy(RoleName=role.rsplit("/", 1)[1], PolicyName="dst", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["s3:GetBucketLocation", "s3:ListBucket"],
                       "Resource": f"arn:aws:s3:::{bucket}"}]}))
    assert location(ds, bucket, role)
    # The caller must be named too: a grant to the role alone is not enough.
    put_policy(b, bucket, ferry_grants(bucket, role, a.role_arn)[:1])
    assert refused(lambda: location(ds, bucket, role)) == ("InvalidRequestException", access_test_failed(bucket))
    # An account-wide grant names the caller (and the role) as well.
    put_policy(b, bucket, ferry_grants(bucket, role, a.id)[:1] + ferry_grants(bucket, role, a.id)[1:])
    assert location(ds, bucket, role)


def test_same_account_either_policy_allows_and_a_deny_wins(endpoint: str) -> None:
    a = Account(endpoint)
    bucket = a.bucket()
    ds = a.client("datasync")
    bare = a.role(policy=None)
    assert refused(lambda: location(ds, bucket, bare)) == ("InvalidRequestException", access_test_failed(bucket))
    put_policy(a, bucket, ferry_grants(bucket, bare, a.role_arn))
    assert location(ds, bucket, bare)  # the bucket policy alone suffices in the same account
    allowed = a.role()
    assert location(ds, bucket, allowed)  # the role's own policy alone suffices too
    put_policy(a, bucket, [{"Effect": "Deny", "Principal": {"AWS": allowed}, "Action": "s3:List*",
                            "Resource": f"arn:aws:s3:::{bucket}"}])
    assert refused(lambda: location(ds, bucket, allowed)) == ("InvalidRequestException", access_test_failed(bucket))


# --- CreateLocationS3: bucket and role --------------------------------------------------------


def test_create_location_checks_the_bucket_and_the_role(endpoint: str) -> None:
    a = Account(endpoint)
    bucket = a.bucket()
    ds = a.client("datasync")
    missing_bucket = unique_name("nobucket")
    assert refused(lambda: location(ds, missing_bucket, a.role())) == (
        "InvalidRequestException",
        f"DataSync location access test failed: could not perform s3:ListObjectsV2 on bucket {missing_bucket}. "
        "The specified bucket does not exist.")
    assume_failed = ("InvalidRequestException", ASSUME_ROLE_FAILED)
    assert refused(lambda: location(ds, bucket, f"arn:aws:iam::{a.id}:role/missing")) == assume_failed
    ec2_trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    assert refused(lambda: location(ds, bucket, a.role(trust=ec2_trust))) == assume_failed

    def ferry_trust(account: str, regions: list[str]) -> dict[str, Any]:
        """src/policy.rs trust_policy: the confused-deputy conditions."""
        arns = [f"arn:aws:datasync:{r}:{account}:*" for r in regions]
        return {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": "datasync.amazonaws.com"}, "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": account},
                          "ArnLike": {"aws:SourceArn": arns[0] if len(arns) == 1 else arns}}}]}

    assert refused(lambda: location(ds, bucket, a.role(trust=ferry_trust("999999999999", ["us-east-1"])))) \
        == assume_failed
    assert refused(lambda: location(ds, bucket, a.role(trust=ferry_trust(a.id, ["eu-west-1"])))) == assume_failed
    assert location(ds, bucket, a.role(trust=ferry_trust(a.id, ["us-east-1"])))
    assert location(ds, bucket, a.role(trust=ferry_trust(a.id, ["us-west-1", "us-east-1"])))


# --- executions: object access of the role ----------------------------------------------------


def test_execution_needs_object_grants(endpoint: str) -> None:
    a, b = Account(endpoint), Account(endpoint)
    role = a.role()
    src, dst = a.bucket(), b.bucket()
    s3a, s3b = a.client("s3"), b.client("s3")
    s3a.put_object(Bucket=src, Key="in/one.txt", Body=b"one")
    s3b.put_object(Bucket=dst, Key="out/stale.txt", Body=b"stale")
    bucket_level = ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"]
    put_policy(b, dst, [tls_only(dst)] + ferry_grants(dst, role, a.role_arn, bucket_level))
    ds = a.client("datasync")
    source = location(ds, src, role, Subdirectory="in")
    destination = location(ds, dst, role, Subdirectory="out")
    task = ds.create_task(SourceLocationArn=source, DestinationLocationArn=destination,
                          Options={"PreserveDeletedFiles": "REMOVE"})["TaskArn"]

    # Each refusal fails its object only; the execution goes through all phases and ends ERROR
    # (Basic mode: DataSync's "files skipped due to errors").
    result, report = run_reported(a, task)
    assert result["Status"] == "ERROR" and result["Result"]["TransferStatus"] == "ERROR"
    assert (result["Result"]["ErrorCode"], result["Result"]["ErrorDetail"]) == ("FilesFailed", FILES_SKIPPED_DETAIL)
    assert result["Result"]["VerifyStatus"] == "ERROR"  # POINT_IN_TIME_CONSISTENT: one.txt is not at the destination
    refusals = {(kind, path): (code, detail) for kind, path, code, detail in failures(report)}
    assert set(refusals) == {("Transferred", "/one.txt"), ("Deleted", "/stale.txt"), ("Verified", "/one.txt")}
    code, detail = refusals[("Transferred", "/one.txt")]
    assert code == "AccessDenied"
    assert f"not authorized to perform: s3:PutObject on resource: \"arn:aws:s3:::{dst}/out/one.txt\"" in detail
    assert "because no resource-based policy allows the s3:PutObject action" in detail
    assert "Contents" not in s3b.list_objects_v2(Bucket=dst, Prefix="out/one")  # nothing written

    # Writing allowed, deleting not: the REMOVE of the stale object fails.
    put_policy(b, dst, [tls_only(dst)] + ferry_grants(dst, role, a.role_arn, bucket_level + [
        "s3:PutObject", "s3:PutObjectTagging"]))
    result, report = run_reported(a, task)
    assert result["Status"] == "ERROR"
    (kind, path, code, detail), = failures(report)
    assert (kind, path, code) == ("Deleted", "/stale.txt", "AccessDenied") and "s3:DeleteObject" in detail
    assert s3b.get_object(Bucket=dst, Key="out/one.txt")["Body"].read() == b"one"  # the copy went through
    put_policy(b, dst, [tls_only(dst)] + ferry_grants(dst, role, a.role_arn))
    result = run(ds, task)
    assert result["Status"] == "SUCCESS", result["Result"]
    assert s3b.get_object(Bucket=dst, Key="out/one.txt")["Body"].read() == b"one"
    assert "Contents" not in s3b.list_objects_v2(Bucket=dst, Prefix="out/stale")


def test_execution_needs_the_roles_source_grants(endpoint: str) -> None:
    a = Account(endpoint)
    src, dst = a.bucket(), a.bucket()
    s3 = a.client("s3")
    s3.put_object(Bucket=src, Key="media/a.txt", Body=b"a")
    s3.put_object_tagging(Bucket=src, Key="media/a.txt", Tagging={"TagSet": [{"Key": "k", "Value": "v"}]})
    listing = {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": [f"arn:aws:s3:::{src}", f"arn:aws:s3:::{dst}"]}
    write = {"Effect": "Allow", "Action": ["s3:PutObject", "s3:PutObjectTagging"], "Resource": f"arn:aws:s3:::{dst}/*"}
    read = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{src}/media/*"}
    role = a.role(policy={"Version": "2012-10-17", "Statement": [listing, write, read]})
    ds = a.client("datasync")
    task = ds.create_task(SourceLocationArn=location(ds, src, role, Subdirectory="media"),
                          DestinationLocationArn=location(ds, dst, role))["TaskArn"]
    result, report = run_reported(a, task)  # ObjectTags PRESERVE (the default) reads the tags too
    assert result["Status"] == "ERROR"
    code, detail = failures(report)[0][2:]
    assert code == "AccessDenied"
    assert f"s3:GetObjectTagging on resource: \"arn:aws:s3:::{src}/media/a.txt\"" in detail
    assert "because no identity-based policy allows the s3:GetObjectTagging action" in detail
    result = run(ds, task, OverrideOptions={"ObjectTags": "NONE"})
    assert result["Status"] == "SUCCESS", result["Result"]


def test_enhanced_mode_object_denied_by_bucket_policy_fails_alone(endpoint: str) -> None:
    # The source bucket policy denies the role one object: its HeadObject (s3:GetObject) fails while
    # preparing, the other objects are copied.
    a = Account(endpoint)
    task, src, dst = a.task({"ok/1.txt": b"1", "ok/2.txt": b"2", "private.txt": b"p"}, TaskMode="ENHANCED")
    role = a.ds.describe_location_s3(LocationArn=a.last_locations[0])["S3Config"]["BucketAccessRoleArn"]
    put_policy(a, src, [{"Effect": "Deny", "Principal": {"AWS": role}, "Action": "s3:GetObject",
                         "Resource": f"arn:aws:s3:::{src}/private.txt"}])
    result, report = run_reported(a, task)
    assert result["Status"] == "ERROR", result["Result"]
    assert result["FilesFailed"] == {"Prepare": 1, "Transfer": 0, "Verify": 0, "Delete": 0}
    assert result["FilesPrepared"] == 2 and result["FilesTransferred"] == 2 and result["FilesListed"]["AtSource"] == 3
    assert result["Result"]["ErrorCode"] == "AccessDenied"
    assert (f"s3:GetObject on resource: \"arn:aws:s3:::{src}/private.txt\" with an explicit deny in a "
            "resource-based policy") in result["Result"]["ErrorDetail"]
    assert sorted(o["Key"] for o in a.s3.list_objects_v2(Bucket=dst)["Contents"]) == ["ok/1.txt", "ok/2.txt"]
    assert failures(report) == [("Skipped", "/private.txt", "AccessDenied", result["Result"]["ErrorDetail"])]


def test_location_problem_still_ends_the_execution_at_once(endpoint: str) -> None:
    # s3:ListBucket refused on the whole source: the execution ends ERROR while preparing, nothing
    # is counted per object (Enhanced mode shows the zero FilesFailed).
    a = Account(endpoint)
    task, src, dst = a.task({"a.txt": b"a"}, TaskMode="ENHANCED")
    role = a.ds.describe_location_s3(LocationArn=a.last_locations[0])["S3Config"]["BucketAccessRoleArn"]
    put_policy(a, src, [{"Effect": "Deny", "Principal": {"AWS": role}, "Action": "s3:ListBucket",
                         "Resource": f"arn:aws:s3:::{src}"}])
    result = run(a.ds, task)
    assert result["Status"] == "ERROR" and result["Result"]["ErrorCode"] == "AccessDenied"
    assert result["Result"]["PrepareStatus"] == "ERROR" and result["Result"]["TransferStatus"] == "PENDING"
    assert f"s3:ListBucket on resource: \"arn:aws:s3:::{src}\"" in result["Result"]["ErrorDetail"]
    assert result["FilesFailed"] == {"Prepare": 0, "Transfer": 0, "Verify": 0, "Delete": 0}
    assert result["FilesTransferred"] == 0 and "Contents" not in a.s3.list_objects_v2(Bucket=dst)


# --- IAM eventual consistency ------------------------------------------------------------------


def test_iam_propagation_delay(endpoint: str) -> None:
    a, b = Account(endpoint), Account(endpoint)
    bucket = b.bucket()
    ds = a.client("datasync")
    assert control(endpoint, "GET", "config")["iamPropagationSeconds"] == 0
    control(endpoint, "POST", "config", {"iamPropagationSeconds": 1.0})
    try:
        role = a.role()
        put_policy(b, bucket, ferry_grants(bucket, role, a.role_arn))
        started = time.monotonic()
        assert refused(lambda: location(ds, bucket, role)) == ("InvalidRequestException", ASSUME_ROLE_FAILED)
        wait_for("the role to propagate", lambda: time.monotonic() - started > 1.1)
        assert location(ds, bucket, role)
        # A changed bucket policy is seen late too: the old (granting) one still counts ...
        put_policy(b, bucket, ferry_grants(bucket, role, a.role_arn)[:1])
        assert location(ds, bucket, role)
        # ... and, once propagated, the new one refuses.
        time.sleep(1.1)
        assert refused(lambda: location(ds, bucket, role)) == ("InvalidRequestException", access_test_failed(bucket))
    finally:
        control(endpoint, "POST", "config", {"iamPropagationSeconds": 0})
    assert location(ds, a.bucket(), a.role())  # with no delay, new roles work at once
    with pytest.raises(urllib.error.HTTPError):
        control(endpoint, "POST", "config", {"iamPropagationSeconds": -1})


# --- size and content limits -----------------------------------------------------------------


def test_bucket_policy_size_limit(endpoint: str) -> None:
    a = Account(endpoint)
    bucket = a.bucket()
    s3 = a.client("s3")

    def policy(n: int) -> dict[str, Any]:
        return {"Version": "2012-10-17", "Statement": [
            {"Sid": f"S{i:04d}", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{100000000000 + i}:root"},
             "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/p{i}/*"} for i in range(n)]}

    def compact(doc: dict[str, Any]) -> int:
        return len(json.dumps(doc, separators=(",", ":")))

    big = policy(1)
    while compact(big) <= 20 * 1024:
        big = policy(len(big["Statement"]) + 1)
    fits = policy(len(big["Statement"]) - 1)
    code, message = refused(lambda: s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(big)))
    assert (code, message) == ("PolicyTooLarge", "Policy exceeds the maximum allowed document size.")
    # Whitespace does not count: the same fitting policy, pretty-printed beyond 20 KB, is accepted.
    pretty = json.dumps(fits, indent=8)
    assert len(pretty) > 20 * 1024 >= compact(fits)
    s3.put_bucket_policy(Bucket=bucket, Policy=pretty)
    assert json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]) == fits


def test_filter_values_are_limited_to_102400_characters(endpoint: str) -> None:
    a = Account(endpoint)
    ds = a.client("datasync")
    loc = location(ds, a.bucket(), a.role())
    too_long = [{"FilterType": "SIMPLE_PATTERN", "Value": "/" + "x" * 102_400}]
    longest = [{"FilterType": "SIMPLE_PATTERN", "Value": "/" + "x" * 102_399}]
    def too_long_refused(call: Callable[[], Any], member: str) -> None:
        code, message = refused(call)
        assert code == "ValidationException"
        assert message.startswith("1 validation error detected: Value ")
        assert message.endswith(f" at '{member}.1.member.value' failed to satisfy constraint: "
                                "Member must have length less than or equal to 102400")

    too_long_refused(lambda: ds.create_task(SourceLocationArn=loc, DestinationLocationArn=loc, Excludes=too_long),
                     "excludes")
    task = ds.create_task(SourceLocationArn=loc, DestinationLocationArn=loc, Excludes=longest)["TaskArn"]
    too_long_refused(lambda: ds.update_task(TaskArn=task, Includes=too_long), "includes")
    ds.update_task(TaskArn=task, Includes=longest)
    too_long_refused(lambda: ds.start_task_execution(TaskArn=task, Includes=too_long), "includes")
    assert len(ds.describe_task(TaskArn=task)["Includes"][0]["Value"]) == 102_400


def test_enhanced_tasks_log_only_to_aws_datasync(endpoint: str) -> None:
    a = Account(endpoint)
    ds = a.client("datasync")
    loc = location(ds, a.bucket(), a.role())
    other = f"arn:aws:logs:us-east-1:{a.id}:log-group:ferry"
    datasync_group = f"arn:aws:logs:us-east-1:{a.id}:log-group:/aws/datasync:*"
    code, message = refused(lambda: ds.create_task(SourceLocationArn=loc, DestinationLocationArn=loc,
                                                   TaskMode="ENHANCED", CloudWatchLogGroupArn=other))
    assert code == "InvalidRequestException"
    assert message == (f"Invalid CloudWatchLogGroupArn {other}: Enhanced mode tasks can only log to the log group "
                       "/aws/datasync (for example arn:aws:logs:<region>:<account>:log-group:/aws/datasync:*).")
    task = ds.create_task(SourceLocationArn=loc, DestinationLocationArn=loc, TaskMode="ENHANCED",
                          CloudWatchLogGroupArn=datasync_group)["TaskArn"]
    assert refused(lambda: ds.update_task(TaskArn=task, CloudWatchLogGroupArn=other))[0] == "InvalidRequestException"
    ds.update_task(TaskArn=task, CloudWatchLogGroupArn=datasync_group.removesuffix(":*"))
    # Basic mode tasks may log anywhere.
    assert ds.create_task(SourceLocationArn=loc, DestinationLocationArn=loc, CloudWatchLogGroupArn=other)["TaskArn"]


def test_no_point_in_time_verification_into_glacier(endpoint: str) -> None:
    a = Account(endpoint)
    ds = a.client("datasync")
    bucket, role = a.bucket(), a.role()
    source = location(ds, bucket, role, Subdirectory="src")
    glacier = location(ds, bucket, role, Subdirectory="cold", S3StorageClass="GLACIER")
    deep = location(ds, bucket, role, Subdirectory="colder", S3StorageClass="DEEP_ARCHIVE")
    pitc = {"VerifyMode": "POINT_IN_TIME_CONSISTENT"}
    code, message = refused(lambda: ds.create_task(SourceLocationArn=source, DestinationLocationArn=glacier,
                                                   Options=pitc))
    assert code == "InvalidRequestException"
    assert message == ("VerifyMode POINT_IN_TIME_CONSISTENT is not supported when transferring to the GLACIER "
                       "storage class (S3 Glacier Flexible Retrieval or S3 Glacier Deep Archive); use "
                       "ONLY_FILES_TRANSFERRED or NONE.")
    task = ds.create_task(SourceLocationArn=source, DestinationLocationArn=deep,
                          Options={"VerifyMode": "ONLY_FILES_TRANSFERRED"})["TaskArn"]
    assert refused(lambda: ds.update_task(TaskArn=task, Options=pitc))[0] == "InvalidRequestException"
    assert refused(lambda: ds.start_task_execution(TaskArn=task, OverrideOptions=pitc))[0] == "InvalidRequestException"
    assert run(ds, task, OverrideOptions={"VerifyMode": "NONE"})["Status"] == "SUCCESS"
    # Other storage classes keep the option.
    assert ds.create_task(SourceLocationArn=source, DestinationLocationArn=location(ds, bucket, role),
                          Options=pitc)["TaskArn"]


def test_no_tasks_across_partitions(endpoint: str) -> None:
    a = Account(endpoint)
    gov = "us-gov-west-1"
    ds_gov, ds = a.client("datasync", gov), a.client("datasync")
    gov_bucket = a.bucket(gov)
    gov_role_arn = a.role(region=gov)
    assert gov_role_arn.startswith("arn:aws-us-gov:iam::")
    gov_loc = ds_gov.create_location_s3(S3BucketArn=f"arn:aws-us-gov:s3:::{gov_bucket}",
                                        S3Config={"BucketAccessRoleArn": gov_role_arn})["LocationArn"]
    assert gov_loc.startswith(f"arn:aws-us-gov:datasync:{gov}:{a.id}:location/")
    commercial = location(ds, a.bucket(), a.role())
    code, message = refused(lambda: ds.create_task(SourceLocationArn=gov_loc, DestinationLocationArn=commercial))
    assert code == "InvalidRequestException"
    assert message == (f"Locations in {gov} and us-east-1 and a task in us-east-1 are in different AWS partitions "
                       "(aws, aws-us-gov); DataSync transfers only between Regions of the same partition.")
    assert ds_gov.create_task(SourceLocationArn=gov_loc, DestinationLocationArn=gov_loc)["TaskArn"]


def test_no_cross_region_transfers_with_opt_in_regions(endpoint: str) -> None:
    a = Account(endpoint)
    opt_in = "af-south-1"
    role = a.role()
    ds_opt, ds = a.client("datasync", opt_in), a.client("datasync")
    cape_town = location(ds_opt, a.bucket(opt_in), role)
    virginia = location(ds, a.bucket(), role)
    code, message = refused(lambda: ds.create_task(SourceLocationArn=cape_town, DestinationLocationArn=virginia))
    assert code == "InvalidRequestException"
    assert message == ("DataSync does not support transfers between AWS Regions when one of them is an opt-in "
                       "Region (af-south-1); source af-south-1, destination us-east-1.")
    assert ds_opt.create_task(SourceLocationArn=cape_town, DestinationLocationArn=cape_town)["TaskArn"]
    oregon = location(a.client("datasync", "us-west-2"), a.bucket("us-west-2"), role)
    assert ds.create_task(SourceLocationArn=oregon, DestinationLocationArn=virginia)["TaskArn"]


def test_roles_are_found_while_other_roles_are_created_concurrently() -> None:
    """A role lookup must not fail because another thread adds a role meanwhile."""
    import sys
    import threading

    import rules
    from moto.iam.models import IAMBackend, iam_backends

    rules.install()
    backend: IAMBackend = iam_backends["123456789012"]["aws"]
    trust = '{"Version": "2012-10-17", "Statement": []}'
    for n in range(2000):
        backend.create_role(f"filler{n}", trust, "/", None, "", [], None)
    target = backend.create_role("target", trust, "/", None, "", [], None)
    stop = threading.Event()
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # let the threads interleave as a busy server's do

    def create() -> None:
        n = 0
        while not stop.is_set():
            backend.create_role(f"r{n}", trust, "/", None, "", [], None)
            n += 1

    writer = threading.Thread(target=create)
    writer.start()
    try:
        for _ in range(300):
            assert backend.get_role_by_arn(target.arn) is target
    finally:
        stop.set()
        writer.join()
        sys.setswitchinterval(switch)
