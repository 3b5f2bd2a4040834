"""S3 requests sent to (signed for) another Region than their bucket's (``regions.py``; README
"S3 Regions"): refused with S3's answers, and served in the bucket's own Region.

S3 clients here do not follow wrong-Region answers (``Account.client`` switches botocore's region
redirector off, as Ferry's Rust SDK has none), except where a test says so.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any, Callable

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

import regions
from emulator_testkit import Account, client_error, control, location, run, unique_name

REDIRECT_MESSAGE = ("The bucket you are attempting to access must be addressed using the specified endpoint. "
                    "Please send all future requests to this endpoint.")
POLICY = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::B/*"}]}


@pytest.fixture(scope="module")
def account(endpoint: str) -> Account:
    return Account(endpoint)


def redirect(call: Callable[..., Any], **kwargs: Any) -> ClientError:
    """The error of a call that S3 must answer with 301 PermanentRedirect."""
    return client_error(call, **kwargs)


def assert_permanent_redirect(err: ClientError, bucket: str, region: str) -> None:
    meta = err.response["ResponseMetadata"]
    assert meta["HTTPStatusCode"] == 301, err.response
    assert meta["HTTPHeaders"]["x-amz-bucket-region"] == region
    error = err.response["Error"]
    assert error["Code"] == "PermanentRedirect"
    assert error["Message"] == REDIRECT_MESSAGE
    assert error["Bucket"] == bucket
    expected = f"{bucket}.s3.amazonaws.com" if region == "us-east-1" else f"{bucket}.s3.{region}.amazonaws.com"
    assert error["Endpoint"] == expected


def assert_illegal_location(err: ClientError, constraint: str, region_header: str | None = None) -> None:
    meta = err.response["ResponseMetadata"]
    assert meta["HTTPStatusCode"] == 400, err.response
    assert meta["HTTPHeaders"].get("x-amz-bucket-region") == region_header
    if err.operation_name.startswith("Head"):
        assert err.response["Error"]["Code"] == "400"  # a HEAD answer has no body
        return
    assert err.response["Error"]["Code"] == "IllegalLocationConstraintException"
    assert err.response["Error"]["Message"] == (
        f"The {constraint} location constraint is incompatible for the region specific endpoint this request "
        "was sent to.")


def test_object_requests_signed_for_another_region_are_permanent_redirects(account: Account) -> None:
    bucket = account.bucket("eu-west-1")
    home, other = account.client("s3", "eu-west-1"), account.client("s3", "us-west-2")
    home.put_object(Bucket=bucket, Key="a.txt", Body=b"a")

    assert_permanent_redirect(redirect(other.get_object, Bucket=bucket, Key="a.txt"), bucket, "eu-west-1")
    assert_permanent_redirect(redirect(other.put_object, Bucket=bucket, Key="b.txt", Body=b"b"), bucket, "eu-west-1")
    assert_permanent_redirect(redirect(other.list_objects_v2, Bucket=bucket), bucket, "eu-west-1")
    assert_permanent_redirect(redirect(other.delete_object, Bucket=bucket, Key="a.txt"), bucket, "eu-west-1")
    assert_permanent_redirect(redirect(other.copy_object, Bucket=bucket, Key="c.txt",
                                       CopySource={"Bucket": bucket, "Key": "a.txt"}), bucket, "eu-west-1")
    # nothing was written or deleted
    keys = [o["Key"] for o in home.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["a.txt"]
    assert home.get_object(Bucket=bucket, Key="a.txt")["Body"].read() == b"a"


def test_bucket_configuration_requests_signed_for_another_region_are_permanent_redirects(account: Account) -> None:
    bucket = account.bucket("eu-west-1")
    home, other = account.client("s3", "eu-west-1"), account.client("s3", "ap-southeast-2")
    policy = json.dumps(POLICY).replace("arn:aws:s3:::B", f"arn:aws:s3:::{bucket}")
    ownership = {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}

    for call, kwargs in [
        (other.put_bucket_policy, {"Policy": policy}),
        (other.get_bucket_policy, {}),
        (other.delete_bucket_policy, {}),
        (other.put_bucket_ownership_controls, {"OwnershipControls": ownership}),
        (other.get_bucket_ownership_controls, {}),
        (other.get_bucket_encryption, {}),
        (other.get_bucket_versioning, {}),
        (other.put_bucket_tagging, {"Tagging": {"TagSet": [{"Key": "k", "Value": "v"}]}}),
        (other.delete_bucket, {}),
    ]:
        assert_permanent_redirect(redirect(call, Bucket=bucket, **kwargs), bucket, "eu-west-1")
    # the refused writes changed nothing
    assert client_error(home.get_bucket_policy, Bucket=bucket).response["Error"]["Code"] == "NoSuchBucketPolicy"
    assert client_error(home.get_bucket_tagging, Bucket=bucket).response["Error"]["Code"] == "NoSuchTagSet"
    home.head_bucket(Bucket=bucket)  # not deleted
    # in the bucket's Region every one of them is served
    home.put_bucket_policy(Bucket=bucket, Policy=policy)
    assert json.loads(home.get_bucket_policy(Bucket=bucket)["Policy"]) == json.loads(policy)
    home.delete_bucket_policy(Bucket=bucket)
    home.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls=ownership)
    assert home.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"] == ownership
    assert home.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]


def test_head_requests_answer_301_without_a_body_with_the_bucket_region(account: Account) -> None:
    bucket = account.bucket("eu-west-1")
    account.client("s3", "eu-west-1").put_object(Bucket=bucket, Key="a.txt", Body=b"a")
    other = account.client("s3", "us-east-1")
    for call, kwargs in [(other.head_object, {"Key": "a.txt"}), (other.head_bucket, {})]:
        err = client_error(call, Bucket=bucket, **kwargs)
        assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 301
        assert err.response["ResponseMetadata"]["HTTPHeaders"]["x-amz-bucket-region"] == "eu-west-1"
        assert err.response["Error"]["Code"] == "301"  # botocore's code for a HEAD answer without a body


def test_us_east_1_is_no_exception_either_way(account: Account) -> None:
    """us-east-1 clients and us-east-1 buckets follow the same rule; the redirect's endpoint for a us-east-1
    bucket is the one without a Region."""
    east, west = account.bucket("us-east-1"), account.bucket("eu-west-1")
    assert_permanent_redirect(redirect(account.client("s3", "eu-west-1").list_objects_v2, Bucket=east),
                              east, "us-east-1")
    assert_permanent_redirect(redirect(account.client("s3", "us-east-1").list_objects_v2, Bucket=west),
                              west, "eu-west-1")
    assert account.client("s3", "us-east-1").list_objects_v2(Bucket=east)["KeyCount"] == 0


def test_opt_in_regions_answer_400_illegal_location_constraint(account: Account) -> None:
    """A Region launched after 2019-03-20 on either side: 400, not a redirect (AWS: "For all Regions that
    launched after March 20, 2019, ... Amazon S3 returns an HTTP 400 Bad Request error")."""
    cape, east, ireland = account.bucket("af-south-1"), account.bucket("us-east-1"), account.bucket("eu-west-1")
    assert_illegal_location(client_error(account.client("s3", "us-east-1").get_object, Bucket=cape, Key="k"),
                            "af-south-1")
    from_cape = account.client("s3", "af-south-1")
    assert_illegal_location(client_error(from_cape.list_objects_v2, Bucket=east), "unspecified")
    assert_illegal_location(client_error(account.client("s3", "ap-east-1").get_bucket_policy, Bucket=ireland),
                            "eu-west-1")
    # HEAD: no body; HeadBucket always names the bucket's Region, HeadObject does not
    assert_illegal_location(client_error(from_cape.head_bucket, Bucket=east), "unspecified", "us-east-1")
    assert_illegal_location(client_error(from_cape.head_object, Bucket=east, Key="k"), "unspecified")
    # in its own Region the opt-in bucket is served
    assert from_cape.list_objects_v2(Bucket=cape)["KeyCount"] == 0


def test_get_bucket_location_answers_from_any_region(account: Account) -> None:
    bucket = account.bucket("eu-west-1")
    for region in ("us-east-1", "us-west-2", "af-south-1"):
        assert account.client("s3", region).get_bucket_location(Bucket=bucket)["LocationConstraint"] == "eu-west-1"


def test_create_bucket_of_another_regions_bucket_is_redirected(account: Account) -> None:
    """S3 redirects CreateBucket of an existing bucket to the bucket's Region (aws/aws-cli#3567)."""
    bucket = account.bucket("eu-west-1")
    west = account.client("s3", "us-west-2")
    err = redirect(west.create_bucket, Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    assert_permanent_redirect(err, bucket, "eu-west-1")
    assert account.client("s3", "us-west-2").get_bucket_location(Bucket=bucket)["LocationConstraint"] == "eu-west-1"


def test_new_buckets_keep_create_buckets_own_rules_and_missing_buckets_stay_missing(account: Account) -> None:
    west = account.client("s3", "us-west-2")
    name = unique_name("bkt")
    # a new name: S3's location-constraint rule (moto's), not a redirect
    err = client_error(west.create_bucket, Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    assert err.response["Error"]["Code"] == "IllegalLocationConstraintException"
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    west.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    assert west.get_bucket_location(Bucket=name)["LocationConstraint"] == "us-west-2"
    # a bucket that does not exist is NoSuchBucket from any Region
    missing = unique_name("missing")
    assert client_error(west.list_objects_v2, Bucket=missing).response["Error"]["Code"] == "NoSuchBucket"


def presigner(account: Account, region: str) -> Any:
    """An S3 client that presigns with SigV4 (boto3 presigns S3 URLs with SigV2 unless told)."""
    return boto3.client("s3", endpoint_url=account.endpoint, region_name=region,
                        config=Config(signature_version="s3v4"), **account.creds)


def test_presigned_urls_signed_for_another_region_are_permanent_redirects(account: Account) -> None:
    bucket = account.bucket("eu-west-1")
    home = account.client("s3", "eu-west-1")
    home.put_object(Bucket=bucket, Key="a.txt", Body=b"a")
    wrong = presigner(account, "us-west-2").generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "a.txt"})
    assert "X-Amz-Credential" in wrong and "us-west-2" in wrong
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(wrong, timeout=10)
    assert err.value.code == 301
    assert err.value.headers["x-amz-bucket-region"] == "eu-west-1"
    assert b"<Code>PermanentRedirect</Code>" in err.value.read()
    right = presigner(account, "eu-west-1").generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "a.txt"})
    with urllib.request.urlopen(right, timeout=10) as resp:
        assert resp.read() == b"a"


def test_botocore_redirector_recovers_from_the_answer(account: Account, endpoint: str) -> None:
    """The answers are the ones botocore's S3RegionRedirectorv2 acts on: with it on, a client of the
    wrong Region is redirected once (the first call refused, the second served)."""
    bucket = account.bucket("eu-west-1")
    account.client("s3", "eu-west-1").put_object(Bucket=bucket, Key="a.txt", Body=b"a")
    follower = account.client("s3", "us-west-2", follow_region_redirects=True)
    assert follower.get_object(Bucket=bucket, Key="a.txt")["Body"].read() == b"a"
    assert follower.head_object(Bucket=bucket, Key="a.txt")["ContentLength"] == 1
    calls = control(endpoint, "GET", f"calls?bucket={bucket}&operation=GetObject")["calls"]
    assert len(calls) == 2


def test_datasync_reaches_each_bucket_in_its_own_region(account: Account) -> None:
    """A task in the destination's Region (us-east-1) copying from a bucket in eu-west-1: DataSync's own
    reads and writes are not requests of the task's Region."""
    role = account.role()
    src, dst = account.bucket("eu-west-1"), account.bucket("us-east-1")
    account.client("s3", "eu-west-1").put_object(Bucket=src, Key="a.txt", Body=b"a")
    source = location(account.client("datasync", "eu-west-1"), src, role)
    destination = location(account.ds, dst, role)
    task = account.ds.create_task(SourceLocationArn=source, DestinationLocationArn=destination)["TaskArn"]
    result = run(account.ds, task)
    assert result["Status"] == "SUCCESS", result
    assert account.s3.get_object(Bucket=dst, Key="a.txt")["Body"].read() == b"a"


@pytest.mark.parametrize("environ,region", [
    ({"HTTP_AUTHORIZATION": "AWS4-HMAC-SHA256 Credential=AKID/20250101/eu-west-1/s3/aws4_request, "
                            "SignedHeaders=host, Signature=abc"}, "eu-west-1"),
    ({"QUERY_STRING": "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20250101%2Fap-east-1%2Fs3"
                      "%2Faws4_request&X-Amz-Signature=abc"}, "ap-east-1"),
    ({"HTTP_AUTHORIZATION": "AWS4-HMAC-SHA256 Credential=AKID/20250101/eu-west-1/kms/aws4_request, "
                            "SignedHeaders=host, Signature=abc"}, None),  # not S3
    ({"HTTP_AUTHORIZATION": "AWS AKID:signature"}, None),  # SigV2 has no Region
    ({}, None),  # unsigned
])
def test_the_region_of_a_request_is_its_credential_scope(environ: dict[str, str], region: str | None) -> None:
    assert regions.signed_region(environ) == region


@pytest.mark.parametrize("environ,expected", [
    ({"HTTP_HOST": "127.0.0.1:4566", "PATH_INFO": "/b1/dir/k"}, ("b1", "/b1/dir/k")),
    ({"HTTP_HOST": "localhost:4566", "PATH_INFO": "/b1"}, ("b1", "/b1")),
    ({"HTTP_HOST": "b1.s3.eu-west-1.amazonaws.com", "PATH_INFO": "/dir/k"}, ("b1", "/b1/dir/k")),
    ({"HTTP_HOST": "127.0.0.1:4566", "PATH_INFO": "/"}, ("", "/")),
])
def test_the_bucket_of_a_request_is_read_as_moto_reads_it(environ: dict[str, str], expected: tuple[str, str]) -> None:
    assert regions.addressed(environ) == expected
