"""S3 server-side encryption as AWS has it today, on top of moto's S3.

moto leaves a new bucket without any encryption configuration (GetBucketEncryption
answers ``ServerSideEncryptionConfigurationNotFoundError``), drops
``BlockedEncryptionTypes`` and ignores SSE-C headers. This module owns

* every bucket's default encryption: SSE-S3 (``AES256``) from its creation, with
  SSE-C blocked for writes (AWS's default for new general purpose buckets since
  April 2026, except in me-south-1 and me-central-1); ``DeleteBucketEncryption``
  resets to SSE-S3; ``BlockedEncryptionTypes`` is kept when a
  ``PutBucketEncryption`` does not name it; ``GetBucketEncryption`` answers the
  whole rule;
* SSE-C objects: a write naming SSE-C into a bucket that blocks it is refused
  (403 ``AccessDenied``); an SSE-C object records its algorithm
  (``sse_customer_algorithm``) and is not readable without the SSE-C headers
  (400 ``InvalidRequest``);
* SSE-KMS objects keep the key ARN, resolved as S3 resolves it (a bare key id
  or alias in the requester's account), as AWS reports ``SSEKMSKeyId``;
* ``bucket_default``, ``object_encryption`` and ``put_object_condition_keys``
  for the executions (transfer.py).

Sources are in tests/emulator/README.md ("S3 encryption").
"""

from __future__ import annotations

import functools
import uuid
from typing import Any

import kms_rules

AES256 = "AES256"
SSE_C = "SSE-C"
# Regions where new buckets do not block SSE-C (AWS's default-setting FAQ).
SSE_C_OPEN_REGIONS = frozenset({"me-south-1", "me-central-1"})
SSE_C_HEADER = "x-amz-server-side-encryption-customer-algorithm"
SSE_C_UNREADABLE = ("The object was stored using a form of Server Side Encryption. The correct parameters "
                    "must be provided to retrieve the object.")
# The request headers S3 turns into condition keys of PutObject (S3's service authorization reference).
PUT_OBJECT_CONDITION_HEADERS = {
    "x-amz-server-side-encryption": "s3:x-amz-server-side-encryption",
    "x-amz-server-side-encryption-customer-algorithm": "s3:x-amz-server-side-encryption-customer-algorithm",
    "x-amz-server-side-encryption-aws-kms-key-id": "s3:x-amz-server-side-encryption-aws-kms-key-id",
}
# DataSync writes with a plain PutObject: no encryption headers, the bucket's default applies.
DATASYNC_PUT_HEADERS: dict[str, str] = {}


# --- configurations --------------------------------------------------------------------------


def default_configuration(region: str, blocked: list[str] | None = None) -> dict[str, Any]:
    """A bucket's configuration when nobody set one: SSE-S3, SSE-C blocked where AWS blocks it."""
    rule: dict[str, Any] = {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": AES256},
                            "BucketKeyEnabled": False}
    if blocked is None:
        blocked = [] if region in SSE_C_OPEN_REGIONS else [SSE_C]
    if blocked:
        rule["BlockedEncryptionTypes"] = {"EncryptionType": list(blocked)}
    return {"Rule": rule}


def _rule(configuration: Any) -> dict[str, Any]:
    rule = (configuration or {}).get("Rule") or {}
    if isinstance(rule, list):  # several <Rule> elements: S3 reads one
        rule = rule[0] if rule else {}
    return rule if isinstance(rule, dict) else {}


def blocked_types(configuration: Any) -> list[str] | None:
    """The configuration's BlockedEncryptionTypes (None: not set)."""
    blocked = _rule(configuration).get("BlockedEncryptionTypes")
    if not isinstance(blocked, dict):
        return None
    types = blocked.get("EncryptionType")
    if types is None:
        return []
    return [str(t) for t in (types if isinstance(types, list) else [types])]


def _boolean(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def bucket_default(bucket: Any) -> tuple[str, str | None, bool]:
    """(SSEAlgorithm, KMSMasterKeyID, BucketKeyEnabled) of a moto bucket's default encryption."""
    rule = _rule(bucket.encryption) if bucket.encryption else {}
    by_default = rule.get("ApplyServerSideEncryptionByDefault") or {}
    return (str(by_default.get("SSEAlgorithm") or AES256), by_default.get("KMSMasterKeyID") or None,
            _boolean(rule.get("BucketKeyEnabled")))


def object_encryption(key: Any) -> tuple[str | None, str | None]:
    """(algorithm, KMS key id) of a stored object; algorithm ``SSE-C`` for customer-provided keys."""
    if getattr(key, "sse_customer_algorithm", None):
        return SSE_C, None
    return getattr(key, "encryption", None), getattr(key, "kms_key_id", None)


def put_object_condition_keys(headers: dict[str, str]) -> dict[str, str]:
    """The encryption condition keys of a PutObject: present only for headers the request carries."""
    lowered = {k.lower(): v for k, v in headers.items()}
    return {key: lowered[header] for header, key in PUT_OBJECT_CONDITION_HEADERS.items() if header in lowered}


# --- S3 answers --------------------------------------------------------------------------------


def _xml_error(status: int, code: str, message: str) -> tuple[int, dict[str, str], str]:
    request_id = uuid.uuid4().hex[:16].upper()
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>{message}</Message>"
            f"<RequestId>{request_id}</RequestId><HostId>ferry-emulator</HostId></Error>")
    return status, {"Content-Type": "application/xml", "x-amz-request-id": request_id}, body


def _sse_c_blocked(response: Any) -> bool:
    try:
        bucket = response.backend.get_bucket(response.bucket_name)
    except Exception:
        return False
    return SSE_C in (blocked_types(bucket.encryption) or [])


def _writes_object(query: dict[str, Any]) -> bool:
    """PutObject or CopyObject (not a part, ACL, tagging, retention or legal hold)."""
    return not any(k in query for k in ("uploadId", "partNumber", "acl", "tagging", "retention", "legal-hold"))


def _after_write(response: Any, key_name: str, result: Any) -> Any:
    """Record SSE-C, or the KMS key ARN as S3 resolves it, on the object just written."""
    try:
        key = response.backend.get_object(response.bucket_name, key_name)
        bucket = response.backend.get_bucket(response.bucket_name)
    except Exception:
        return result
    if key is None:
        return result
    algorithm = response.headers.get(SSE_C_HEADER)
    if algorithm:
        key.sse_customer_algorithm = algorithm
        key.sse_customer_key_md5 = response.headers.get(SSE_C_HEADER + "-key-md5")
        key.encryption = None
        key.kms_key_id = None
        if isinstance(result, tuple) and len(result) == 3 and isinstance(result[1], dict):
            headers = {k: v for k, v in result[1].items() if not k.lower().startswith("x-amz-server-side-encryption")}
            headers.update(_sse_c_headers(key))
            return result[0], headers, result[2]
        return result
    if key.encryption in kms_rules.KMS_ALGORITHMS:
        resolved = kms_rules.resolve(key.kms_key_id, response.current_account, bucket.region_name,
                                     bucket.account_id)
        if resolved.key is not None:
            key.kms_key_id = resolved.key.arn
    return result


def _sse_c_headers(key: Any) -> dict[str, str]:
    """The SSE-C headers S3 answers for an object stored with a customer-provided key."""
    headers = {SSE_C_HEADER: key.sse_customer_algorithm}
    if getattr(key, "sse_customer_key_md5", None):
        headers[SSE_C_HEADER + "-key-md5"] = key.sse_customer_key_md5
    return headers


def _install_key_headers() -> None:
    """GetObject and HeadObject of an SSE-C object name its algorithm (moto's FakeKey.response_dict)."""
    from moto.s3.models import FakeKey

    original = FakeKey.response_dict
    if getattr(original.fget, "_ferry_encryption", False):
        return

    def response_dict(self: Any) -> dict[str, Any]:
        out = original.fget(self)
        if getattr(self, "sse_customer_algorithm", None):
            out = {k: v for k, v in out.items() if not k.lower().startswith("x-amz-server-side-encryption")}
            out.update(_sse_c_headers(self))
        return out

    response_dict._ferry_encryption = True  # type: ignore[attr-defined]
    FakeKey.response_dict = property(response_dict)  # type: ignore[method-assign,assignment]


def _install_responses() -> None:
    from moto.s3.responses import S3Response

    original_put = S3Response._key_response_put
    if getattr(original_put, "_ferry_encryption", False):
        return

    @functools.wraps(original_put)
    def key_response_put(self: Any, query: dict[str, Any], key_name: str) -> Any:
        writes = _writes_object(query)
        if writes and self.headers.get(SSE_C_HEADER) and _sse_c_blocked(self):
            return _xml_error(403, "AccessDenied", "Access Denied")
        result = original_put(self, query, key_name)
        return _after_write(self, key_name, result) if writes else result

    original_post = S3Response._key_response_post

    @functools.wraps(original_post)
    def key_response_post(self: Any, request: Any, body: bytes, bucket_name: str, query: dict[str, Any],
                          key_name: str) -> Any:
        if "uploads" in query and request.headers.get(SSE_C_HEADER) and _sse_c_blocked(self):
            return _xml_error(403, "AccessDenied", "Access Denied")
        return original_post(self, request, body, bucket_name, query, key_name)

    original_get = S3Response.get_object

    @functools.wraps(original_get)
    def get_object(self: Any) -> Any:
        try:
            key = self.backend.get_object(self.bucket_name, self.parse_key_name())
        except Exception:
            key = None
        if getattr(key, "sse_customer_algorithm", None) and not self.headers.get(SSE_C_HEADER):
            return _xml_error(400, "InvalidRequest", SSE_C_UNREADABLE)
        return original_get(self)

    original_head = S3Response.head_object

    @functools.wraps(original_head)
    def head_object(self: Any, bucket_name: str, query: dict[str, Any], key_name: str,
                    headers: dict[str, Any]) -> Any:
        try:
            key = self.backend.get_object(bucket_name, key_name)
        except Exception:
            key = None
        if getattr(key, "sse_customer_algorithm", None) and not headers.get(SSE_C_HEADER):
            return 400, {}, ""
        return original_head(self, bucket_name, query, key_name, headers)

    def get_bucket_encryption(self: Any) -> Any:
        from moto.core.responses import ActionResult

        self.data["Action"] = "GetBucketEncryption"
        bucket = self.backend.get_bucket(self.bucket_name)
        configuration = bucket.encryption or default_configuration(bucket.region_name)
        rule = _rule(configuration)
        by_default = dict(rule.get("ApplyServerSideEncryptionByDefault") or {"SSEAlgorithm": AES256})
        by_default = {k: v for k, v in by_default.items() if k in ("SSEAlgorithm", "KMSMasterKeyID")}
        out: dict[str, Any] = {"ApplyServerSideEncryptionByDefault": by_default,
                               "BucketKeyEnabled": _boolean(rule.get("BucketKeyEnabled"))}
        blocked = blocked_types(configuration)
        if blocked:
            out["BlockedEncryptionTypes"] = {"EncryptionType": blocked}
        return self.serialized(ActionResult({"ServerSideEncryptionConfiguration": {"Rules": [out]}}))

    for fn in (key_response_put, key_response_post, get_object, head_object, get_bucket_encryption):
        fn._ferry_encryption = True  # type: ignore[attr-defined]
    S3Response._key_response_put = key_response_put  # type: ignore[method-assign]
    S3Response._key_response_post = key_response_post  # type: ignore[method-assign]
    S3Response.get_object = get_object  # type: ignore[method-assign]
    S3Response.head_object = head_object  # type: ignore[method-assign]
    S3Response.get_bucket_encryption = get_bucket_encryption  # type: ignore[method-assign]


def _install_backend() -> None:
    from moto.s3.models import S3Backend

    original_create = S3Backend.create_bucket
    if getattr(original_create, "_ferry_encryption", False):
        return

    @functools.wraps(original_create)
    def create_bucket(self: Any, bucket_name: str, region_name: str, *args: Any, **kwargs: Any) -> Any:
        bucket = original_create(self, bucket_name, region_name, *args, **kwargs)
        if bucket.encryption is None:
            bucket.encryption = default_configuration(region_name)
        return bucket

    original_put = S3Backend.put_bucket_encryption

    @functools.wraps(original_put)
    def put_bucket_encryption(self: Any, bucket_name: str, encryption: dict[str, Any]) -> None:
        before = blocked_types(self.get_bucket(bucket_name).encryption)
        original_put(self, bucket_name, encryption)
        bucket = self.get_bucket(bucket_name)
        rule = _rule(bucket.encryption)
        if blocked_types(bucket.encryption) is None and before:
            rule["BlockedEncryptionTypes"] = {"EncryptionType": before}
        bucket.encryption = {"Rule": rule}

    original_delete = S3Backend.delete_bucket_encryption

    @functools.wraps(original_delete)
    def delete_bucket_encryption(self: Any, bucket_name: str) -> None:
        bucket = self.get_bucket(bucket_name)
        blocked = blocked_types(bucket.encryption)
        original_delete(self, bucket_name)
        bucket.encryption = default_configuration(bucket.region_name, blocked)

    for fn in (create_bucket, put_bucket_encryption, delete_bucket_encryption):
        fn._ferry_encryption = True  # type: ignore[attr-defined]
    S3Backend.create_bucket = create_bucket  # type: ignore[method-assign]
    S3Backend.put_bucket_encryption = put_bucket_encryption  # type: ignore[method-assign]
    S3Backend.delete_bucket_encryption = delete_bucket_encryption  # type: ignore[method-assign]


def install() -> None:
    """Default encryption, SSE-C and KMS key ARNs in moto's S3 (once, before serving)."""
    _install_backend()
    _install_responses()
    _install_key_headers()
