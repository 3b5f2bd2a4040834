"""Tests of the emulator's check of every request against AWS's API model.

boto3 against a real emulator process (the ``endpoint`` fixture of
``conftest.py``, one server for this module). botocore validates requests
client-side by default, so the refused ones are sent through clients built with
``parameter_validation=False``; each refusal has an accepted neighbour.

Run: tests/emulator/setup.sh && .cache/venv/bin/python -m pytest tests/emulator/test_model.py
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import regex
from botocore.exceptions import ClientError

import model_check  # (pattern translation, tested directly)
from emulator_testkit import Account, client_error, error_code, location as s3_location

SUBDIRECTORY_PATTERN = r"^[a-zA-Z0-9_\-\+\./\(\)\p{Zs}]*$"
FILTER_VALUE_CONSTRAINTS = (
    r"[Member must have length less than or equal to 255, Member must have length greater than or equal to 1, "
    r"Member must satisfy regular expression pattern: ^[0-9a-zA-Z_\ \-\:\*\.\\/\?-]*$]"
)
TRUST = '{"Version": "2012-10-17", "Statement": []}'


def refusal(call: Any, **kwargs: Any) -> dict[str, Any]:
    """The error answer of a call that must fail: Code, Message and HTTP status."""
    err = client_error(call, **kwargs)
    return {"code": error_code(err), "message": err.response["Error"].get("Message"),
            "status": err.response["ResponseMetadata"]["HTTPStatusCode"]}


def validation(message: str, code: str = "ValidationException") -> dict[str, Any]:
    """The answer of a request that breaks the model: HTTP 400, the service's code, AWS's message."""
    return {"code": code, "message": message, "status": 400}


@pytest.fixture(scope="module")
def account(endpoint: str) -> Account:
    """One fresh account for this module's calls."""
    return Account(endpoint)


@pytest.fixture(scope="module")
def location(account: Account) -> str:
    """An S3 location of the module's account, used as source and destination of tasks."""
    return s3_location(account.ds, account.bucket(), account.role())


# --- DataSync (awsJson1_1) ---------------------------------------------------------------------


def test_subdirectory_pattern(account: Account) -> None:
    ds = account.client("datasync", validate=False)
    role, bucket = account.role("model-subdir"), account.bucket()
    args = {"S3BucketArn": f"arn:aws:s3:::{bucket}", "S3Config": {"BucketAccessRoleArn": role}}
    assert refusal(ds.create_location_s3, Subdirectory="/media/a=b/", **args) == validation(
        "1 validation error detected: Value '/media/a=b/' at 'subdirectory' failed to satisfy constraint: "
        f"Member must satisfy regular expression pattern: {SUBDIRECTORY_PATTERN}")
    arn = ds.create_location_s3(Subdirectory="/media/(2024)/", **args)["LocationArn"]
    assert ds.describe_location_s3(LocationArn=arn)["LocationUri"] == f"s3://{bucket}/media/(2024)/"
    # \p{Zs} is any Unicode space separator (Java semantics, through the regex module).
    ds.create_location_s3(Subdirectory="/media/a\u3000b/", **args)


def test_list_locations_filter_values(account: Account, location: str) -> None:
    ds = account.client("datasync", validate=False)
    bad = [{"Name": "LocationUri", "Values": ["s3://bkt=1/"], "Operator": "Equals"}]
    assert refusal(ds.list_locations, Filters=bad) == validation(
        "1 validation error detected: Value '[s3://bkt=1/]' at 'filters.1.member.values' failed to satisfy "
        f"constraint: Member must satisfy constraint: {FILTER_VALUE_CONSTRAINTS}")
    uri = ds.describe_location_s3(LocationArn=location)["LocationUri"]
    good = [{"Name": "LocationUri", "Values": [uri], "Operator": "Equals"}]
    assert [loc["LocationArn"] for loc in ds.list_locations(Filters=good)["Locations"]] == [location]
    assert refusal(ds.list_locations, Filters=[dict(good[0], Operator="Like")]) == validation(
        "1 validation error detected: Value 'Like' at 'filters.1.member.operator' failed to satisfy constraint: "
        "Member must satisfy enum value set: [Equals, NotEquals, In, LessThanOrEqual, LessThan, "
        "GreaterThanOrEqual, GreaterThan, Contains, NotContains, BeginsWith]")
    assert refusal(ds.list_locations, MaxResults=101) == validation(
        "1 validation error detected: Value '101' at 'maxResults' failed to satisfy constraint: "
        "Member must have value less than or equal to 100")
    ds.list_locations(MaxResults=100)


def test_task_name_length(account: Account, location: str) -> None:
    ds = account.client("datasync", validate=False)
    assert refusal(ds.create_task, SourceLocationArn=location, DestinationLocationArn=location,
                   Name="n" * 257) == validation(
        f"1 validation error detected: Value '{'n' * 257}' at 'name' failed to satisfy constraint: "
        "Member must have length less than or equal to 256")
    task = ds.create_task(SourceLocationArn=location, DestinationLocationArn=location, Name="n" * 256)["TaskArn"]
    assert ds.describe_task(TaskArn=task)["Name"] == "n" * 256


def test_tag_value_length_and_java_whitespace(account: Account, location: str) -> None:
    ds = account.client("datasync", validate=False)
    assert refusal(ds.tag_resource, ResourceArn=location, Tags=[{"Key": "k", "Value": "v" * 257}]) == validation(
        f"1 validation error detected: Value '{'v' * 257}' at 'tags.1.member.value' failed to satisfy "
        "constraint: Member must have length less than or equal to 256")
    ds.tag_resource(ResourceArn=location, Tags=[{"Key": "k", "Value": "v" * 256}])
    # The model's \s is Java's: ASCII whitespace only, so a no-break space is refused.
    assert refusal(ds.tag_resource, ResourceArn=location, Tags=[{"Key": "k", "Value": "a\u00a0b"}]) == validation(
        "1 validation error detected: Value 'a\u00a0b' at 'tags.1.member.value' failed to satisfy constraint: "
        r"Member must satisfy regular expression pattern: ^[a-zA-Z0-9\s+=._:@/-]+$")
    ds.tag_resource(ResourceArn=location, Tags=[{"Key": "k", "Value": "a b\tc"}])


def test_enum_and_several_violations(account: Account, location: str) -> None:
    ds = account.client("datasync", validate=False)
    assert refusal(ds.create_task, SourceLocationArn=location, DestinationLocationArn=location,
                   Options={"VerifyMode": "BOGUS"}) == validation(
        "1 validation error detected: Value 'BOGUS' at 'options.verifyMode' failed to satisfy constraint: "
        "Member must satisfy enum value set: [POINT_IN_TIME_CONSISTENT, ONLY_FILES_TRANSFERRED, NONE]")
    task = ds.create_task(SourceLocationArn=location, DestinationLocationArn=location,
                          Options={"VerifyMode": "NONE"})["TaskArn"]
    assert ds.describe_task(TaskArn=task)["Options"]["VerifyMode"] == "NONE"
    assert refusal(ds.create_task, SourceLocationArn=location, DestinationLocationArn=location,
                   Options={"VerifyMode": "BOGUS", "BytesPerSecond": -2}) == validation(
        "2 validation errors detected: Value 'BOGUS' at 'options.verifyMode' failed to satisfy constraint: "
        "Member must satisfy enum value set: [POINT_IN_TIME_CONSISTENT, ONLY_FILES_TRANSFERRED, NONE]; "
        "Value '-2' at 'options.bytesPerSecond' failed to satisfy constraint: "
        "Member must have value greater than or equal to -1")


def test_missing_required_member_and_wrong_type(account: Account, location: str) -> None:
    ds = account.client("datasync", validate=False)
    assert refusal(ds.create_task, SourceLocationArn=location) == validation(
        "1 validation error detected: Value null at 'destinationLocationArn' failed to satisfy constraint: "
        "Member must not be null")
    assert refusal(ds.create_task, SourceLocationArn=location, DestinationLocationArn=location, Name=5) == {
        "code": "SerializationException", "message": "NUMBER_VALUE cannot be converted to String", "status": 400}


def test_what_aws_accepts_stays_accepted(account: Account, location: str) -> None:
    """JSON nulls are absent members, unknown members are ignored, boundaries are inside."""
    ds = account.client("datasync", validate=False)

    def add_extras(request: Any, **_: Any) -> None:
        body = json.loads(request.data)
        body.update({"Name": None, "NotInTheModel": {"x": 1}})
        request.data = json.dumps(body).encode()

    ds.meta.events.register("before-sign.datasync.CreateTask", add_extras)
    task = ds.create_task(SourceLocationArn=location, DestinationLocationArn=location, Excludes=[],
                          Tags=[{"Key": "no-value"}])["TaskArn"]
    ds.update_task(TaskArn=task, Schedule={"ScheduleExpression": ""}, Options={"BytesPerSecond": -1})
    ds.list_tasks(MaxResults=0)


# --- IAM and STS (query protocol) ---------------------------------------------------------------


def test_iam_role_name_and_path(account: Account) -> None:
    iam = account.client("iam", validate=False)
    long_name = "r" * 65
    assert refusal(iam.create_role, RoleName=long_name, AssumeRolePolicyDocument=TRUST) == validation(
        f"1 validation error detected: Value '{long_name}' at 'roleName' failed to satisfy constraint: "
        "Member must have length less than or equal to 64", "ValidationError")
    with pytest.raises(ClientError) as err:
        iam.get_role(RoleName=long_name)  # refused before moto: nothing was created
    assert err.value.response["Error"]["Code"] == "ValidationError"
    assert iam.create_role(RoleName="r" * 64, AssumeRolePolicyDocument=TRUST)["Role"]["RoleName"] == "r" * 64
    assert refusal(iam.create_role, RoleName="model-path", Path="ferry", AssumeRolePolicyDocument=TRUST) == validation(
        "1 validation error detected: Value 'ferry' at 'path' failed to satisfy constraint: "
        r"Member must satisfy regular expression pattern: (\u002F)|(\u002F[\u0021-\u007E]+\u002F)", "ValidationError")
    assert iam.create_role(RoleName="model-path", Path="/ferry/", AssumeRolePolicyDocument=TRUST)["Role"]["Path"] == "/ferry/"


def test_iam_missing_required_and_tags(account: Account) -> None:
    iam = account.client("iam", validate=False)
    assert refusal(iam.create_role, RoleName="model-no-doc") == validation(
        "1 validation error detected: Value null at 'assumeRolePolicyDocument' failed to satisfy constraint: "
        "Member must not be null", "ValidationError")
    assert refusal(iam.create_role, RoleName="model-tags", AssumeRolePolicyDocument=TRUST,
                   Tags=[{"Key": "k", "Value": "v" * 257}]) == validation(
        f"1 validation error detected: Value '{'v' * 257}' at 'tags.1.member.value' failed to satisfy constraint: "
        "Member must have length less than or equal to 256", "ValidationError")
    # IAM tags allow any Unicode letter (\p{L}); an empty Tags list is sent as "Tags=".
    iam.create_role(RoleName="model-tags", AssumeRolePolicyDocument=TRUST, Tags=[{"Key": "équipe", "Value": "données"}])
    iam.create_role(RoleName="model-no-tags", AssumeRolePolicyDocument=TRUST, Tags=[])


def test_sts_role_session_name(account: Account) -> None:
    sts = account.client("sts", validate=False)
    role = f"arn:aws:iam::{account.id}:role/admin"
    assert refusal(sts.assume_role, RoleArn=role, RoleSessionName="bad/name") == validation(
        "1 validation error detected: Value 'bad/name' at 'roleSessionName' failed to satisfy constraint: "
        r"Member must satisfy regular expression pattern: [\w+=,.@-]*", "ValidationError")
    # Lengths count code points: one emoji is one character, below the minimum of 2.
    assert refusal(sts.assume_role, RoleArn=role, RoleSessionName="\U0001F600") == validation(
        "2 validation errors detected: Value '\U0001F600' at 'roleSessionName' failed to satisfy constraint: "
        r"Member must satisfy regular expression pattern: [\w+=,.@-]*; "
        "Value '\U0001F600' at 'roleSessionName' failed to satisfy constraint: "
        "Member must have length greater than or equal to 2", "ValidationError")
    assert refusal(sts.assume_role, RoleArn=role, RoleSessionName="ok", DurationSeconds="abc")["code"] == \
        "InvalidParameterValue"
    sts.assume_role(RoleArn=role, RoleSessionName="a=b,c.d@e-f_g+h")


# --- S3 (rest-xml) --------------------------------------------------------------------------------


def test_s3_ownership_controls(account: Account) -> None:
    s3 = account.client("s3", validate=False)
    bucket = account.bucket()
    malformed = {"code": "MalformedXML", "status": 400, "message":
                 "The XML you provided was not well-formed or did not validate against our published schema"}
    assert refusal(s3.put_bucket_ownership_controls, Bucket=bucket,
                   OwnershipControls={"Rules": [{"ObjectOwnership": "BOGUS"}]}) == malformed
    assert refusal(s3.put_bucket_ownership_controls, Bucket=bucket, OwnershipControls={"Rules": [{}]}) == malformed
    assert refusal(s3.put_bucket_ownership_controls, Bucket=bucket) == {
        "code": "MissingRequestBodyError", "message": "Request Body is empty", "status": 400}
    s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls={"Rules": [{"ObjectOwnership": "ObjectWriter"}]})
    rules = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"]
    assert rules == [{"ObjectOwnership": "ObjectWriter"}]


def test_s3_documents_aws_accepts_stay_accepted(account: Account) -> None:
    """Wrapped lists, nested structures and objects keyed by path are read as the model says."""
    s3 = account.client("s3", "eu-west-1")  # the bucket's Region
    bucket = account.bucket("eu-west-1")
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": ""}]})
    assert len(s3.get_bucket_tagging(Bucket=bucket)["TagSet"]) == 2
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=bucket, Key="dir/with spaces/é.txt", Body=b"x")
    s3.put_object_tagging(Bucket=bucket, Key="dir/with spaces/é.txt",
                          Tagging={"TagSet": [{"Key": "k", "Value": "v"}]})
    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "dir/with spaces/é.txt"}]})


# --- the pattern engine -----------------------------------------------------------------------------


def test_patterns_use_the_regex_module_with_java_meanings() -> None:
    assert "re" not in vars(model_check)  # Python's re cannot read \p{Zs}
    assert isinstance(model_check.compiled(SUBDIRECTORY_PATTERN), regex.Pattern)
    role_arn = model_check.compiled(r"^arn:(aws|aws-cn):iam::[0-9]{12}:role/.*$")
    assert role_arn.fullmatch("arn:aws:iam::123456789012:role/a/b")
    assert not role_arn.fullmatch("arn:aws:iam::123456789012:role/a\rb")  # Java's "." stops at any line end
    assert not model_check.compiled(r"[\w+=,.@-]+").fullmatch("é")  # Java's \w is ASCII
    assert model_check.compiled(r"[\p{L}\p{Z}\p{N}_.:/=+\-@]*").fullmatch("équipe données")
    assert not model_check.compiled(r"[\w+=,.@-]+").fullmatch("a b")  # the whole value must match
