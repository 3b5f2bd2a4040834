"""S3 requests sent to another Region than their bucket's are refused, as S3 refuses them.

An S3 client sends a request to the endpoint of the Region it is configured for
(``s3.<region>.amazonaws.com``) and signs it for that Region; the emulator has one
address for every Region, so the Region a request was sent to is the Region of its SigV4
credential scope (the ``Authorization`` header's ``Credential=AKID/date/<region>/s3/
aws4_request``, or a presigned URL's ``X-Amz-Credential``). When the bucket the request
names lives in another Region of the same partition, S3 does not serve it:

* both Regions launched before 2019-03-20: **301 Moved Permanently**, ``PermanentRedirect``
  "The bucket you are attempting to access must be addressed using the specified endpoint.
  Please send all future requests to this endpoint.", with ``<Endpoint>`` and ``<Bucket>``
  in the error document and the bucket's Region in the ``x-amz-bucket-region`` header;
* either Region launched after 2019-03-20 (an opt-in Region): **400 Bad Request**,
  ``IllegalLocationConstraintException`` "The <bucket's Region> location constraint is
  incompatible for the region specific endpoint this request was sent to." ("unspecified"
  for a bucket in us-east-1, which has no location constraint); ``x-amz-bucket-region``
  only on HeadBucket, which always answers it.

HEAD requests (HeadObject, HeadBucket) get the same status without a body. CreateBucket of
a name that exists in another Region is refused the same way (S3 redirects it, aws/aws-cli#3567);
a new name goes to moto's location-constraint rules. Not refused: GetBucketLocation (answered
from any Region), ListBuckets (no bucket), a bucket that does not exist or lives in another
partition (moto answers ``NoSuchBucket``), and requests without a SigV4 signature (no Region to
compare). DataSync's own reads and writes do not come through here: ``transfer.py``,
``reports.py`` and ``manifests.py`` call moto's backends directly, as DataSync reaches each
bucket in its own Region.

Sources (README "S3 Regions"):
https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingRouting.html ("For all Regions that
launched after March 20, 2019, if a request arrives at the wrong Amazon S3 location, Amazon S3
returns an HTTP 400 Bad Request error"),
https://docs.aws.amazon.com/AmazonS3/latest/userguide/ErrorCodeBilling.html (301
``PermanentRedirect``; 400 ``IllegalLocationConstraintException`` "You are trying to access a
bucket from a different Region than where the bucket exists"),
https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetBucketLocation.html (GetBucketLocation
in other Regions; HeadBucket always returns the bucket's Region in a header), botocore's
``S3RegionRedirectorv2`` (the answers it recognises), and S3's answers as clients logged them
(yanganto/s3rs#18, aws-sdk-js-v3#1446, boto/boto3#2728, cloud-custodian#8005, aws/aws-cli#3567).
"""

from __future__ import annotations

import uuid
from types import SimpleNamespace
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs

import access
import rules

PERMANENT_REDIRECT = ("The bucket you are attempting to access must be addressed using the specified endpoint. "
                      "Please send all future requests to this endpoint.")


def illegal_location_message(bucket_region: str) -> str:
    constraint = "unspecified" if bucket_region == "us-east-1" else bucket_region
    return (f"The {constraint} location constraint is incompatible for the region specific endpoint this request "
            "was sent to.")


def _partition(region: str) -> str:
    from moto.utilities.utils import get_partition

    return get_partition(region)


def signed_region(environ: dict[str, Any]) -> str | None:
    """The Region of an S3 request's SigV4 credential scope (header or presigned URL), else None."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    scope = ""
    if auth.startswith("AWS4-HMAC-SHA256") and "Credential=" in auth:
        scope = auth.split("Credential=", 1)[1].split(",", 1)[0].strip()
    elif not auth:
        query = parse_qs(environ.get("QUERY_STRING", ""))
        if (query.get("X-Amz-Algorithm") or [""])[0] == "AWS4-HMAC-SHA256":
            scope = (query.get("X-Amz-Credential") or [""])[0]
    parts = scope.split("/")
    if len(parts) != 5 or parts[3] != "s3" or not parts[2]:
        return None
    return parts[2]


def addressed(environ: dict[str, Any]) -> tuple[str, str]:
    """(bucket, path-style path) of an S3 request; the bucket is "" when the request names none.

    Virtual-hosted requests (``Host: bucket.s3...``) are read as moto reads them; the emulator's
    clients address it by IP, so they use path-style requests.
    """
    from moto.s3.responses import S3Response
    from moto.s3.utils import bucket_name_from_url

    path = environ.get("PATH_INFO", "/") or "/"
    host = environ.get("HTTP_HOST", "")
    if host and S3Response.subdomain_based_buckets(SimpleNamespace(headers={"host": host}, url=f"http://{host}/")):
        bucket = bucket_name_from_url(f"http://{host}{path}") or ""
        if bucket:
            return bucket, f"/{bucket}{path}"
    return path.lstrip("/").split("/", 1)[0], path


def _has_key(path: str) -> bool:
    """Whether a path-style path names an object (``/bucket/key``) rather than the bucket."""
    parts = path.lstrip("/").split("/", 1)
    return len(parts) == 2 and parts[1] != ""


def exempt(method: str, path: str, query: dict[str, list[str]]) -> bool:
    """GetBucketLocation, which S3 answers from any Region (see the module doc)."""
    return method == "GET" and "location" in query and not _has_key(path)


def bucket_region(bucket: str) -> str | None:
    owner = access.bucket_owner(bucket)
    if owner is None:
        return None
    return owner[1].buckets[bucket].region_name


def endpoint_of(bucket: str, region: str) -> str:
    """The virtual-hosted endpoint of the bucket's Region, as PermanentRedirect's ``<Endpoint>`` names it."""
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    if region == "us-east-1":
        return f"{bucket}.s3.{suffix}"
    return f"{bucket}.s3.{region}.{suffix}"


def _error(code: str, message: str, extra: str = "") -> tuple[bytes, str]:
    request_id = uuid.uuid4().hex[:16].upper()
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>{message}</Message>{extra}"
            f"<RequestId>{request_id}</RequestId><HostId>ferry-emulator</HostId></Error>").encode()
    return body, request_id


def refusal(environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes] | None:
    """(status, headers, body) of S3's answer when the request was sent to another Region than its
    bucket's, else None."""
    region = signed_region(environ)
    if region is None:
        return None
    bucket, path = addressed(environ)
    if not bucket:
        return None
    method = environ.get("REQUEST_METHOD", "GET")
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    if exempt(method, path, query):
        return None
    home = bucket_region(bucket)
    if home is None or home == region or _partition(home) != _partition(region):
        return None
    head = method == "HEAD"
    head_bucket = head and not _has_key(path)
    if home in rules.OPT_IN_REGIONS or region in rules.OPT_IN_REGIONS:
        status = "400 Bad Request"
        body, request_id = _error("IllegalLocationConstraintException", illegal_location_message(home))
        headers = [("x-amz-bucket-region", home)] if head_bucket else []
    else:
        status = "301 Moved Permanently"
        body, request_id = _error("PermanentRedirect", PERMANENT_REDIRECT,
                                  f"<Endpoint>{endpoint_of(bucket, home)}</Endpoint><Bucket>{bucket}</Bucket>")
        headers = [("x-amz-bucket-region", home)]
    headers += [("x-amz-request-id", request_id), ("Content-Type", "application/xml")]
    if head:
        body = b""
    headers.append(("Content-Length", str(len(body))))
    return status, headers, body


class RegionMiddleware:
    """WSGI app in front of the API-model check: S3 requests for a bucket of another Region are
    answered as S3 answers them (see the module doc); everything else goes through."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        answer = refusal(environ)
        if answer is None:
            return self.app(environ, start_response)
        status, headers, body = answer
        start_response(status, headers)
        return [body]
