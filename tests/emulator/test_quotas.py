"""Tests of AWS's default service quotas as the emulator enforces them (quotas.py).

For each quota: AWS's default, the request at the limit (accepted) and one over it (refused with
AWS's error code, HTTP status and message), the same request accepted once the quota is raised
through /ferry-emulator/quotas (or, for quotas AWS does not adjust, that the control endpoint
refuses to raise them), and that a quota is per account (and per Region where AWS scopes it so).
One emulator per module, fresh accounts per test; every test sets quotas of its own accounts only.

Run: .cache/venv/bin/python -m pytest -q tests/emulator/test_quotas.py
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
from typing import Any, Callable

import pytest
from botocore.exceptions import ClientError

import quotas  # (pure size counting, tested directly)
from emulator_testkit import DATASYNC_TRUST, Account, control, location, unique_name

DEFAULTS = {"DataSyncTasks": 100, "DataSyncResourceTags": 50, "DataSyncManifestSize": 20 * 10**9, "IamRoles": 1000,
            "IamRoleTrustPolicyLength": 2048, "IamRoleInlinePolicySize": 10240, "IamRoleTags": 50, "S3BucketTags": 50}


# --- helpers ---------------------------------------------------------------------------------


def refusal(call: Callable[[], Any]) -> tuple[str, int, str]:
    """(Code, HTTP status, Message) of a call that must fail."""
    with pytest.raises(ClientError) as err:
        call()
    answer = err.value.response
    return answer["Error"]["Code"], answer["ResponseMetadata"]["HTTPStatusCode"], answer["Error"]["Message"]


def set_quota(endpoint: str, account: Account, quota: str, value: int | None, region: str | None = None) -> Any:
    body: dict[str, Any] = {"account": account.id, "quota": quota, "value": value}
    if region:
        body["region"] = region
    return control(endpoint, "POST", "quotas", body)


def control_refusal(endpoint: str, method: str, path: str, body: Any = None) -> tuple[int, str]:
    with pytest.raises(urllib.error.HTTPError) as err:
        control(endpoint, method, path, body)
    return err.value.code, json.loads(err.value.read())["error"]


def in_force(endpoint: str, account: Account, region: str = "us-east-1") -> dict[str, int]:
    answer = control(endpoint, "GET", f"quotas?account={account.id}&region={region}")
    return {q["quota"]: q["value"] for q in answer["quotas"]}


def tags(count: int, prefix: str = "k") -> list[dict[str, str]]:
    return [{"Key": f"{prefix}{i}", "Value": "v"} for i in range(count)]


def sized(characters: int, statement: dict[str, Any]) -> str:
    """A policy document of exactly ``characters`` characters as IAM counts them (white space not
    counted), padded through the statement's Sid, written with plenty of white space."""
    def document(sid: str) -> dict[str, Any]:
        return {"Version": "2012-10-17", "Statement": [dict(statement, Sid=sid)]}

    pad = characters - quotas.policy_characters(json.dumps(document("")))
    assert pad > 0, "the statement alone is longer than the size asked for"
    text = json.dumps(document("S" * pad), indent=8)
    assert quotas.policy_characters(text) == characters and len(text) > characters + 50
    return text


TRUST = {"Effect": "Allow", "Principal": {"Service": "datasync.amazonaws.com"}, "Action": "sts:AssumeRole"}
S3_READ = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}


# --- the control endpoint --------------------------------------------------------------------------


def test_defaults_are_awss(endpoint: str) -> None:
    fresh = Account(endpoint)
    assert in_force(endpoint, fresh) == DEFAULTS
    listing = control(endpoint, "GET", "quotas")
    assert {q["quota"]: q["default"] for q in listing["quotas"]} == DEFAULTS
    assert {q["quota"]: q["value"] for q in listing["quotas"]} == DEFAULTS
    scopes = {q["quota"]: (q["scope"], q["adjustable"], q["maximum"]) for q in listing["quotas"]}
    assert scopes["DataSyncTasks"] == ("account+region", True, None)
    assert scopes["DataSyncManifestSize"] == ("account+region", False, 20 * 10**9)  # test_manifests.py uses it
    assert scopes["IamRoles"] == ("account", True, 5000)
    assert scopes["IamRoleTrustPolicyLength"] == ("account", True, 4096)
    assert scopes["IamRoleInlinePolicySize"] == ("account", False, 10240)
    assert all(q["source"].startswith("https://docs.aws.amazon.com/") for q in listing["quotas"])
    # IAM answers its quotas in GetAccountSummary too.
    summary = fresh.client("iam").get_account_summary()["SummaryMap"]
    assert (summary["RolesQuota"], summary["AssumeRolePolicySizeQuota"], summary["RolePolicySizeQuota"]) == (
        1000, 2048, 10240)


def test_quotas_are_set_per_account_and_region(endpoint: str) -> None:
    a, b = Account(endpoint), Account(endpoint)
    assert set_quota(endpoint, a, "DataSyncTasks", 200, "us-east-1") == {
        "account": a.id, "region": "us-east-1", "quota": "DataSyncTasks", "value": 200}
    assert set_quota(endpoint, a, "IamRoles", 4000) == {"account": a.id, "quota": "IamRoles", "value": 4000}
    assert in_force(endpoint, a)["DataSyncTasks"] == 200
    assert in_force(endpoint, a, "us-west-2")["DataSyncTasks"] == 100
    assert in_force(endpoint, b)["DataSyncTasks"] == 100 and in_force(endpoint, b)["IamRoles"] == 1000
    assert a.client("iam").get_account_summary()["SummaryMap"]["RolesQuota"] == 4000
    assert b.client("iam").get_account_summary()["SummaryMap"]["RolesQuota"] == 1000
    overrides = control(endpoint, "GET", "quotas")["overrides"]
    assert {"account": a.id, "region": "us-east-1", "quota": "DataSyncTasks", "value": 200} in overrides
    # A list is set as a whole; null goes back to AWS's default.
    assert control(endpoint, "POST", "quotas", [
        {"account": b.id, "quota": "IamRoleTrustPolicyLength", "value": 4096},
        {"account": a.id, "region": "us-east-1", "quota": "DataSyncTasks", "value": None}]) == [
        {"account": b.id, "quota": "IamRoleTrustPolicyLength", "value": 4096},
        {"account": a.id, "region": "us-east-1", "quota": "DataSyncTasks", "value": 100}]
    assert in_force(endpoint, a)["DataSyncTasks"] == 100
    # DELETE ?account= resets that account only.
    control(endpoint, "DELETE", f"quotas?account={a.id}")
    assert in_force(endpoint, a) == DEFAULTS
    assert in_force(endpoint, b)["IamRoleTrustPolicyLength"] == 4096
    control(endpoint, "DELETE", f"quotas?account={b.id}")
    assert in_force(endpoint, b) == DEFAULTS


def test_control_endpoint_refuses_what_aws_would_not_grant(endpoint: str) -> None:
    a = Account(endpoint)
    cases = [
        ({"account": a.id, "quota": "Nope", "value": 1}, "unknown quota 'Nope'"),
        ({"account": "12345", "quota": "IamRoles", "value": 1}, "account must be a 12-digit account id"),
        ({"account": a.id, "quota": "DataSyncTasks", "value": 1}, "DataSyncTasks is a quota per account and Region"),
        ({"account": a.id, "region": "us-east-1", "quota": "IamRoles", "value": 1}, "not per Region"),
        ({"account": a.id, "quota": "IamRoles", "value": 5001}, "AWS raises this quota to at most 5000"),
        ({"account": a.id, "quota": "IamRoleTrustPolicyLength", "value": 4097}, "at most 4096"),
        ({"account": a.id, "quota": "IamRoleInlinePolicySize", "value": 10241}, "AWS does not adjust this quota"),
        ({"account": a.id, "quota": "IamRoleTags", "value": 51}, "AWS does not adjust this quota"),
        ({"account": a.id, "quota": "S3BucketTags", "value": 51}, "AWS does not adjust this quota"),
        ({"account": a.id, "quota": "DataSyncResourceTags", "value": 51}, "AWS does not adjust this quota"),
        ({"account": a.id, "quota": "IamRoles", "value": -1}, "value must be a whole number"),
        ({"account": a.id, "quota": "IamRoles", "value": True}, "value must be a whole number"),
        ({"account": a.id, "quota": "IamRoles"}, "value is required"),
        ({"account": a.id, "quota": "IamRoles", "value": 1, "bogus": 1}, "unknown field(s) bogus"),
    ]
    for body, message in cases:
        status, error = control_refusal(endpoint, "POST", "quotas", body)
        assert status == 400 and message in error, (body, error)
    # A list with one refused change changes nothing.
    status, _ = control_refusal(endpoint, "POST", "quotas", [
        {"account": a.id, "quota": "IamRoles", "value": 10}, {"account": a.id, "quota": "IamRoles", "value": 9999}])
    assert status == 400 and in_force(endpoint, a)["IamRoles"] == 1000
    assert control_refusal(endpoint, "GET", "quotas?account=abc")[0] == 400
    # Lower values of quotas AWS does not adjust are accepted (tests use them).
    assert set_quota(endpoint, a, "IamRoleInlinePolicySize", 100)["value"] == 100
    set_quota(endpoint, a, "IamRoleInlinePolicySize", None)


# --- DataSync: tasks per account and Region ----------------------------------------------------


def test_datasync_tasks_default_quota_is_100_per_account_and_region(endpoint: str) -> None:
    a = Account(endpoint)
    role = a.role()
    src, dst = location(a.ds, a.bucket(), role), location(a.ds, a.bucket(), role)

    def create() -> str:
        return a.ds.create_task(SourceLocationArn=src, DestinationLocationArn=dst)["TaskArn"]

    started = time.monotonic()
    created = [create() for _ in range(100)]  # the 100th is at the quota: accepted
    assert time.monotonic() - started < 30
    code, status, message = refusal(create)
    assert (code, status) == ("InvalidRequestException", 400)
    assert message == (f"Cannot create the task: the account {a.id} has 100 tasks in us-east-1, and the quota of "
                       "tasks per account and Region is 100. Delete tasks you no longer need or request a quota "
                       "increase.")
    assert len(a.ds.list_tasks(MaxResults=100)["Tasks"]) == 100
    # Deleting a task frees a slot.
    a.ds.delete_task(TaskArn=created.pop())
    created.append(create())
    assert refusal(create)[0] == "InvalidRequestException"
    # The quota is per Region: us-west-2 has its own 100.
    west = a.client("datasync", "us-west-2")
    west_role = a.role()
    west_src = location(west, a.bucket("us-west-2"), west_role)
    west_dst = location(west, a.bucket("us-west-2"), west_role)
    west.create_task(SourceLocationArn=west_src, DestinationLocationArn=west_dst)
    # ... and per account: another account has its own.
    b = Account(endpoint)
    b.task()
    # A quota increase lets the same call through.
    set_quota(endpoint, a, "DataSyncTasks", 101, "us-east-1")
    created.append(create())
    assert refusal(create)[2].endswith("the quota of tasks per account and Region is 101. Delete tasks you no "
                                       "longer need or request a quota increase.")


def test_datasync_tasks_quota_set_lower(endpoint: str) -> None:
    a = Account(endpoint)
    set_quota(endpoint, a, "DataSyncTasks", 2, "us-east-1")
    task, _, _ = a.task()
    a.ds.create_task(SourceLocationArn=a.last_locations[0], DestinationLocationArn=a.last_locations[1])
    code, status, message = refusal(lambda: a.ds.create_task(SourceLocationArn=a.last_locations[0],
                                                             DestinationLocationArn=a.last_locations[1]))
    assert (code, status) == ("InvalidRequestException", 400) and "has 2 tasks in us-east-1" in message
    a.ds.delete_task(TaskArn=task)
    a.ds.create_task(SourceLocationArn=a.last_locations[0], DestinationLocationArn=a.last_locations[1])


# --- IAM: roles per account ------------------------------------------------------------------


def test_iam_roles_per_account(endpoint: str) -> None:
    a, b = Account(endpoint), Account(endpoint)
    iam = a.client("iam")
    set_quota(endpoint, a, "IamRoles", 3)
    names = [unique_name("r") for _ in range(3)]
    for name in names:  # the 3rd is at the quota: accepted
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(DATASYNC_TRUST))
    extra = unique_name("r")
    create = lambda: iam.create_role(RoleName=extra, AssumeRolePolicyDocument=json.dumps(DATASYNC_TRUST))  # noqa: E731
    assert refusal(create) == ("LimitExceeded", 409, "Cannot exceed quota for RolesPerAccount: 3")
    # An existing name still answers EntityAlreadyExists; nothing was created.
    assert refusal(lambda: iam.create_role(RoleName=names[0], AssumeRolePolicyDocument=json.dumps(
        DATASYNC_TRUST)))[:2] == ("EntityAlreadyExists", 409)
    assert len(iam.list_roles()["Roles"]) == 3
    assert iam.get_account_summary()["SummaryMap"]["Roles"] == 3
    # Another account is not limited; deleting a role frees a slot; a quota increase lets the call through.
    b.role()
    iam.delete_role(RoleName=names[0])
    create()
    assert refusal(lambda: iam.create_role(RoleName=unique_name("r"), AssumeRolePolicyDocument=json.dumps(
        DATASYNC_TRUST)))[0] == "LimitExceeded"
    set_quota(endpoint, a, "IamRoles", 4)
    iam.create_role(RoleName=unique_name("r"), AssumeRolePolicyDocument=json.dumps(DATASYNC_TRUST))
    assert refusal(lambda: iam.create_role(RoleName=unique_name("r"), AssumeRolePolicyDocument=json.dumps(
        DATASYNC_TRUST))) == ("LimitExceeded", 409, "Cannot exceed quota for RolesPerAccount: 4")


def test_concurrent_create_role_never_overshoots_the_quota(endpoint: str) -> None:
    a = Account(endpoint)
    set_quota(endpoint, a, "IamRoles", 5)
    outcomes: list[str] = []

    def create() -> None:
        try:
            a.client("iam").create_role(RoleName=unique_name("r"), AssumeRolePolicyDocument=json.dumps(DATASYNC_TRUST))
            outcomes.append("created")
        except ClientError as err:
            outcomes.append(err.response["Error"]["Code"])

    threads = [threading.Thread(target=create) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["LimitExceeded"] * 11 + ["created"] * 5
    assert len(a.client("iam").list_roles()["Roles"]) == 5


# --- IAM: trust policy length ------------------------------------------------------------------


def test_iam_role_trust_policy_length(endpoint: str) -> None:
    a = Account(endpoint)
    iam = a.client("iam")
    at_limit, over = sized(2048, TRUST), sized(2049, TRUST)
    name = unique_name("r")
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=at_limit)  # white space is not counted
    assert refusal(lambda: iam.create_role(RoleName=unique_name("r"), AssumeRolePolicyDocument=over)) == (
        "LimitExceeded", 409, "Cannot exceed quota for ACLSizePerRole: 2048")
    assert refusal(lambda: iam.update_assume_role_policy(RoleName=name, PolicyDocument=over)) == (
        "LimitExceeded", 409, "Cannot exceed quota for ACLSizePerRole: 2048")
    assert json.loads(json.dumps(iam.get_role(RoleName=name)["Role"]["AssumeRolePolicyDocument"])) == json.loads(
        at_limit)
    iam.update_assume_role_policy(RoleName=name, PolicyDocument=at_limit)
    # A missing role is still NoSuchEntity.
    assert refusal(lambda: iam.update_assume_role_policy(RoleName=unique_name("gone"), PolicyDocument=over))[:2] == (
        "NoSuchEntity", 404)
    # Raised to AWS's maximum, 4,096.
    set_quota(endpoint, a, "IamRoleTrustPolicyLength", 4096)
    iam.create_role(RoleName=unique_name("r"), AssumeRolePolicyDocument=over)
    iam.update_assume_role_policy(RoleName=name, PolicyDocument=sized(4096, TRUST))
    assert refusal(lambda: iam.update_assume_role_policy(RoleName=name, PolicyDocument=sized(4097, TRUST))) == (
        "LimitExceeded", 409, "Cannot exceed quota for ACLSizePerRole: 4096")
    assert iam.get_account_summary()["SummaryMap"]["AssumeRolePolicySizeQuota"] == 4096


# --- IAM: a role's inline policies together ------------------------------------------------------


def test_iam_role_inline_policies_together(endpoint: str) -> None:
    a = Account(endpoint)
    iam = a.client("iam")
    name = unique_name("r")
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(DATASYNC_TRUST))
    iam.put_role_policy(RoleName=name, PolicyName="first", PolicyDocument=sized(6000, S3_READ))
    iam.put_role_policy(RoleName=name, PolicyName="second", PolicyDocument=sized(4240, S3_READ))  # 10,240: accepted
    expected = ("LimitExceeded", 409, f"Maximum policy size of 10240 bytes exceeded for role {name}")
    assert refusal(lambda: iam.put_role_policy(RoleName=name, PolicyName="third",
                                               PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [S3_READ]}))) == expected
    assert refusal(lambda: iam.put_role_policy(RoleName=name, PolicyName="second",
                                               PolicyDocument=sized(4241, S3_READ))) == expected
    assert sorted(iam.list_role_policies(RoleName=name)["PolicyNames"]) == ["first", "second"]
    # Replacing a policy counts its new version only; deleting one frees room.
    iam.put_role_policy(RoleName=name, PolicyName="second", PolicyDocument=sized(240, S3_READ))
    iam.put_role_policy(RoleName=name, PolicyName="third", PolicyDocument=sized(4000, S3_READ))
    iam.delete_role_policy(RoleName=name, PolicyName="first")
    iam.put_role_policy(RoleName=name, PolicyName="fourth", PolicyDocument=sized(6000, S3_READ))
    # AWS does not raise this quota; a lower one applies to its account only.
    assert control_refusal(endpoint, "POST", "quotas",
                           {"account": a.id, "quota": "IamRoleInlinePolicySize", "value": 20480})[0] == 400
    set_quota(endpoint, a, "IamRoleInlinePolicySize", 10239)
    assert refusal(lambda: iam.put_role_policy(RoleName=name, PolicyName="fourth",
                                               PolicyDocument=sized(6000, S3_READ)))[2] == (
        f"Maximum policy size of 10239 bytes exceeded for role {name}")
    assert iam.get_account_summary()["SummaryMap"]["RolePolicySizeQuota"] == 10239
    b = Account(endpoint)
    b.role(name=name, policy=None)
    b.client("iam").put_role_policy(RoleName=name, PolicyName="big", PolicyDocument=sized(10240, S3_READ))
    set_quota(endpoint, a, "IamRoleInlinePolicySize", None)
    iam.put_role_policy(RoleName=name, PolicyName="fourth", PolicyDocument=sized(6000, S3_READ))


def test_white_space_is_not_counted() -> None:
    compact = '{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}'
    spaced = '{\n  "Statement": [\r\n\t{ "Effect" : "Allow", "Action": "s3:*", "Resource": "*" }\n  ]\n}'
    assert quotas.policy_characters(compact) == quotas.policy_characters(spaced) == len(compact)
    # "IAM doesn't count white space": in strings too (the page makes no exception).
    assert quotas.policy_characters('{"Sid": "a b"}') == len('{"Sid":"ab"}')
    assert quotas.policy_characters(compact.encode()) == len(compact)
    assert quotas.policy_characters(None) == 0


# --- tags per resource -----------------------------------------------------------------------------


def test_iam_role_tags(endpoint: str) -> None:
    a = Account(endpoint)
    iam = a.client("iam")
    name = unique_name("r")
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(DATASYNC_TRUST), Tags=tags(50))
    expected = ("LimitExceeded", 409, "The number of tags has reached the maximum limit.")
    assert refusal(lambda: iam.tag_role(RoleName=name, Tags=tags(1, "extra"))) == expected
    iam.tag_role(RoleName=name, Tags=[{"Key": "K7", "Value": "new"}])  # keys are not case sensitive: a replacement
    assert refusal(lambda: iam.tag_role(RoleName=name, Tags=tags(2, "more"))) == expected
    iam.untag_role(RoleName=name, TagKeys=["k0"])
    iam.tag_role(RoleName=name, Tags=tags(1, "extra"))
    # More than 50 in one request is the API model's refusal (ValidationError), before the quota.
    assert refusal(lambda: iam.create_role(RoleName=unique_name("r"), AssumeRolePolicyDocument=json.dumps(
        DATASYNC_TRUST), Tags=tags(51)))[:2] == ("ValidationError", 400)
    # A lower quota applies to CreateRole and TagRole of its account.
    set_quota(endpoint, a, "IamRoleTags", 5)
    assert refusal(lambda: iam.create_role(RoleName=unique_name("r"), AssumeRolePolicyDocument=json.dumps(
        DATASYNC_TRUST), Tags=tags(6))) == expected
    small = unique_name("r")
    iam.create_role(RoleName=small, AssumeRolePolicyDocument=json.dumps(DATASYNC_TRUST), Tags=tags(5))
    assert refusal(lambda: iam.tag_role(RoleName=small, Tags=tags(1, "x"))) == expected
    set_quota(endpoint, a, "IamRoleTags", None)
    iam.tag_role(RoleName=small, Tags=tags(1, "x"))


def test_datasync_resource_tags(endpoint: str) -> None:
    a = Account(endpoint)
    role = a.role()
    loc = location(a.ds, a.bucket(), role, Tags=tags(50))
    expected = ("InvalidRequestException", 400, "A resource can have at most 50 tags; the request would give it 51.")
    assert refusal(lambda: a.ds.tag_resource(ResourceArn=loc, Tags=tags(1, "extra"))) == expected
    a.ds.tag_resource(ResourceArn=loc, Tags=[{"Key": "k3", "Value": "replaced"}])  # a replacement
    a.ds.untag_resource(ResourceArn=loc, Keys=["k0"])
    a.ds.tag_resource(ResourceArn=loc, Tags=tags(1, "extra"))
    assert len(a.ds.list_tags_for_resource(ResourceArn=loc, MaxResults=100)["Tags"]) == 50
    # A lower quota applies to new locations, tasks and executions of its account, and to TagResource.
    set_quota(endpoint, a, "DataSyncResourceTags", 2)
    dst = location(a.ds, a.bucket(), role, Tags=tags(2))
    assert refusal(lambda: location(a.ds, a.bucket(), role, Tags=tags(3)))[2] == (
        "A resource can have at most 2 tags; the request would give it 3.")
    assert refusal(lambda: a.ds.create_task(SourceLocationArn=loc, DestinationLocationArn=dst, Tags=tags(3)))[0] == (
        "InvalidRequestException")
    task = a.ds.create_task(SourceLocationArn=loc, DestinationLocationArn=dst, Tags=tags(2))["TaskArn"]
    assert refusal(lambda: a.ds.start_task_execution(TaskArn=task, Tags=tags(3)))[0] == "InvalidRequestException"
    assert refusal(lambda: a.ds.tag_resource(ResourceArn=task, Tags=tags(1, "x")))[2] == (
        "A resource can have at most 2 tags; the request would give it 3.")
    b = Account(endpoint)
    location(b.ds, b.bucket(), b.role(), Tags=tags(50))
    set_quota(endpoint, a, "DataSyncResourceTags", None)
    a.ds.tag_resource(ResourceArn=task, Tags=tags(1, "x"))


def test_s3_bucket_tags(endpoint: str) -> None:
    a = Account(endpoint)
    bucket = a.bucket()
    a.s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tags(50)})
    expected = ("BadRequest", 400, "Bucket tag count cannot be greater than 50")
    assert refusal(lambda: a.s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tags(51)})) == expected
    assert len(a.s3.get_bucket_tagging(Bucket=bucket)["TagSet"]) == 50  # unchanged
    set_quota(endpoint, a, "S3BucketTags", 10)
    assert refusal(lambda: a.s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tags(11)})) == (
        "BadRequest", 400, "Bucket tag count cannot be greater than 10")
    a.s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tags(10)})
    b = Account(endpoint)
    b.s3.put_bucket_tagging(Bucket=b.bucket(), Tagging={"TagSet": tags(50)})
    set_quota(endpoint, a, "S3BucketTags", None)
    a.s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tags(50)})
