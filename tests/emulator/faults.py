"""Fault switch and control endpoints of Ferry's AWS emulator.

This module owns everything under ``/ferry-emulator/`` on the emulator's port
and the injection of faults into ordinary AWS calls:

* ``POST /ferry-emulator/faults`` adds a fault rule (JSON body, see ``FaultRule``),
  ``GET`` lists the active rules, ``DELETE`` clears them all.
* ``GET``/``POST /ferry-emulator/config`` reads or changes run-time settings
  (``{"phaseSeconds": 0.2}``: duration of each DataSync execution phase).
* ``GET``/``POST``/``DELETE /ferry-emulator/quotas`` reads, sets (per account, and Region where AWS
  scopes the quota so, as a quota increase would) or resets AWS's service quotas (``quotas.py``).
* ``GET /ferry-emulator/health`` answers ``{"status": "ok"}``.

Every other request goes through ``ControlMiddleware``, which works out the
AWS service and operation of the request, applies the first matching fault
rule (throttle, HTTP 500 or a delay) and otherwise hands the request to moto.
"""

from __future__ import annotations

import calendar
import io
import json
import random
import re
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs

CONTROL_PREFIX = "/ferry-emulator"
FAULT_KINDS = ("throttle", "error500", "slow", "denied")

# Services that speak the query protocol (XML answers).
QUERY_SERVICES = {"iam", "sts"}


@dataclass
class FaultRule:
    """One fault: which calls it hits, what it does and how often."""

    id: str
    service: str  # lower-case signing name ("datasync", "kms", "s3", "iam", "sts") or "*"
    operation: str  # API operation name ("StartTaskExecution") or "*"
    kind: str  # throttle | error500 | slow | denied
    count: int | None  # fire this many times then disappear (None: unlimited)
    probability: float  # chance to fire on each matching call
    delay_seconds: float  # for "slow"
    account: str = "*"  # only calls made with credentials of this account
    bucket: str = "*"  # only S3 calls on this bucket
    fired: int = 0

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> "FaultRule":
        kind = body.get("kind")
        if kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {', '.join(FAULT_KINDS)}")
        service = str(body.get("service", "*")).lower()
        operation = str(body.get("operation", "*"))
        count = body.get("count")
        probability = body.get("probability")
        if count is not None:
            count = int(count)
            if count < 1:
                raise ValueError("count must be at least 1")
        if probability is None:
            probability = 1.0
        probability = float(probability)
        if not 0.0 <= probability <= 1.0:
            raise ValueError("probability must be between 0.0 and 1.0")
        if count is None and "probability" not in body:
            # Neither given: a one-shot fault is the least surprising default.
            count = 1
        delay = float(body.get("delaySeconds", 2.0))
        if delay < 0:
            raise ValueError("delaySeconds must not be negative")
        return cls(
            id=uuid.uuid4().hex[:12],
            service=service,
            operation=operation,
            kind=kind,
            count=count,
            probability=probability,
            delay_seconds=delay,
            account=str(body.get("account", "*")),
            bucket=str(body.get("bucket", "*")),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "service": self.service,
            "operation": self.operation,
            "kind": self.kind,
            "count": self.count,
            "probability": self.probability,
            "delaySeconds": self.delay_seconds,
            "account": self.account,
            "bucket": self.bucket,
            "fired": self.fired,
        }

    def matches(self, call: "Call") -> bool:
        return (
            self.service in ("*", call.service)
            and self.operation in ("*", call.operation)
            and self.account in ("*", call.account)
            and self.bucket in ("*", call.bucket)
        )


class FaultSwitch:
    """The active fault rules; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []

    def add(self, rule: FaultRule) -> None:
        with self._lock:
            self._rules.append(rule)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def remove(self, rule_id: str) -> bool:
        with self._lock:
            before = len(self._rules)
            self._rules = [r for r in self._rules if r.id != rule_id]
            return len(self._rules) != before

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r.to_json() for r in self._rules]

    def take(self, call: "Call") -> FaultRule | None:
        """The rule that fires for this call, if any (its count is used up)."""
        with self._lock:
            for rule in self._rules:
                if not rule.matches(call):
                    continue
                if rule.probability < 1.0 and random.random() >= rule.probability:
                    continue
                rule.fired += 1
                if rule.count is not None:
                    rule.count -= 1
                    if rule.count <= 0:
                        self._rules.remove(rule)
                return rule
        return None


# --- identifying the AWS call ---------------------------------------------------


def _read_body(environ: dict[str, Any]) -> bytes:
    """Read the request body and put it back so moto can read it again."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length <= 0:
        return b""
    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def signing_service(environ: dict[str, Any]) -> str:
    """The service of the SigV4 credential scope, e.g. ``datasync``."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    try:
        scope = auth.split("Credential=", 1)[1].split(",", 1)[0]
        return scope.split("/")[3].lower()
    except IndexError:
        return ""


_S3_BUCKET_SUBRESOURCES = {
    # query key: operation name stem (Get/Put/Delete + stem)
    "policy": "BucketPolicy",
    "ownershipControls": "BucketOwnershipControls",
    "tagging": "BucketTagging",
    "acl": "BucketAcl",
    "versioning": "BucketVersioning",
    "encryption": "BucketEncryption",
    "lifecycle": "BucketLifecycleConfiguration",
    "publicAccessBlock": "PublicAccessBlock",
    "cors": "BucketCors",
    "website": "BucketWebsite",
    "notification": "BucketNotificationConfiguration",
    "replication": "BucketReplication",
    "logging": "BucketLogging",
    "object-lock": "ObjectLockConfiguration",
}


def s3_operation(method: str, path: str, query: dict[str, list[str]], headers: dict[str, Any]) -> str:
    """Best-effort S3 operation name for a path-style request."""
    parts = [p for p in path.split("/", 2)[1:] if p != ""] if path != "/" else []
    has_key = len(parts) >= 2
    if not parts:
        return "ListBuckets" if method == "GET" else "Unknown"
    verb = {"GET": "Get", "PUT": "Put", "DELETE": "Delete", "HEAD": "Head"}.get(method, "")
    if not has_key:
        if "location" in query and method == "GET":
            return "GetBucketLocation"
        if "delete" in query and method == "POST":
            return "DeleteObjects"
        if "uploads" in query and method == "GET":
            return "ListMultipartUploads"
        if "versions" in query and method == "GET":
            return "ListObjectVersions"
        for key, stem in _S3_BUCKET_SUBRESOURCES.items():
            if key in query and verb in ("Get", "Put", "Delete"):
                return verb + stem
        if method == "GET":
            return "ListObjectsV2" if query.get("list-type") == ["2"] else "ListObjects"
        return {
            "PUT": "CreateBucket",
            "DELETE": "DeleteBucket",
            "HEAD": "HeadBucket",
        }.get(method, "Unknown")
    if "tagging" in query and verb in ("Get", "Put", "Delete"):
        return verb + "ObjectTagging"
    if "uploads" in query and method == "POST":
        return "CreateMultipartUpload"
    if "uploadId" in query:
        if method == "PUT":
            return "UploadPartCopy" if "HTTP_X_AMZ_COPY_SOURCE" in headers else "UploadPart"
        if method == "POST":
            return "CompleteMultipartUpload"
        if method == "DELETE":
            return "AbortMultipartUpload"
        if method == "GET":
            return "ListParts"
    if method == "PUT":
        return "CopyObject" if "HTTP_X_AMZ_COPY_SOURCE" in headers else "PutObject"
    if verb:
        return verb + "Object"
    return "Unknown"


# STS operations called without a signature (the web identity token is the credential).
UNSIGNED_STS = {"AssumeRoleWithWebIdentity", "AssumeRoleWithSAML"}


def identify(environ: dict[str, Any]) -> tuple[str, str]:
    """(service, operation) of an AWS request, both possibly ''."""
    service, operation = _identify(environ)
    if not service and operation in UNSIGNED_STS:
        service = "sts"
    return service, operation


def _identify(environ: dict[str, Any]) -> tuple[str, str]:
    service = signing_service(environ)
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return service, target.rsplit(".", 1)[-1]
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    if "Action" in query:
        return service, query["Action"][0]
    content_type = environ.get("CONTENT_TYPE", "")
    if content_type.startswith("application/x-www-form-urlencoded"):
        form = parse_qs(_read_body(environ).decode("utf-8", "replace"))
        if "Action" in form:
            return service, form["Action"][0]
    if service == "s3":
        return service, s3_operation(
            environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "/"), query, environ
        )
    return service, ""


@dataclass
class Call:
    """One AWS request as the fault switch and the call log see it."""

    service: str
    operation: str
    account: str  # account of the credentials that signed it ("" when unsigned)
    bucket: str  # S3 only: the bucket in the path ("" otherwise)
    at: float = 0.0
    key: str = ""  # the access key id that signed it (tells two sessions of one role apart)
    # When the client signed it (its X-Amz-Date, whole seconds; 0.0 when absent): a request
    # signed before a client was paused can arrive after; this says when it was made.
    signed_at: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"service": self.service, "operation": self.operation, "account": self.account,
                "bucket": self.bucket, "at": self.at, "key": self.key, "signed_at": self.signed_at}


def signing_time(environ: dict[str, Any]) -> float:
    """The request's SigV4 signing time (X-Amz-Date, e.g. 20261208T012210Z) in Unix seconds."""
    stamp = environ.get("HTTP_X_AMZ_DATE", "")
    try:
        return calendar.timegm(time.strptime(stamp, "%Y%m%dT%H%M%SZ"))
    except ValueError:
        return 0.0


_CREDENTIAL = re.compile(r"Credential=([A-Z0-9]+)/")


def caller_key(environ: dict[str, Any]) -> str:
    """The access key id that signed the request ("" when unsigned)."""
    match = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    if match:
        return match.group(1)
    query = parse_qs(environ.get("QUERY_STRING", ""))
    cred = (query.get("X-Amz-Credential") or [""])[0]
    return cred.split("/", 1)[0]


def caller_account(environ: dict[str, Any]) -> str:
    """The account of the access key that signed the request (moto's own mapping)."""
    key = caller_key(environ)
    if not key:
        return ""
    from moto.iam.models import get_account_id_from

    return get_account_id_from(key)


def describe_call(environ: dict[str, Any]) -> Call:
    service, operation = identify(environ)
    bucket = ""
    if service == "s3":
        bucket = environ.get("PATH_INFO", "/").lstrip("/").split("/", 1)[0]
    return Call(service, operation, caller_account(environ) if service else "", bucket, time.time(),
                caller_key(environ) if service else "", signing_time(environ) if service else 0.0)


class CallLog:
    """The last AWS calls, for tests that must prove what was (not) called."""

    def __init__(self, size: int = 50_000) -> None:
        self._lock = threading.Lock()
        self._calls: deque[Call] = deque(maxlen=size)

    def add(self, call: Call) -> None:
        with self._lock:
            self._calls.append(call)

    def query(self, filters: dict[str, list[str]]) -> list[dict[str, Any]]:
        want = {k: v[0] for k, v in filters.items() if v and k in ("service", "operation", "account", "bucket", "key")}
        with self._lock:
            calls = list(self._calls)
        return [c.to_json() for c in calls if all(getattr(c, k) == v for k, v in want.items())]


# --- AWS-shaped error answers -----------------------------------------------------


def _request_id() -> str:
    return str(uuid.uuid4())


def error_response(service: str, kind: str) -> tuple[str, list[tuple[str, str]], bytes]:
    """(status line, headers, body) of a throttling or internal error, shaped
    for the protocol of ``service``."""
    request_id = _request_id()
    if service == "s3":
        if kind == "denied":
            status, code, message = "403 Forbidden", "AccessDenied", "Access Denied"
        elif kind == "throttle":
            # S3's own throttling answer.
            status, code, message = "503 Slow Down", "SlowDown", "Please reduce your request rate."
        else:
            status, code, message = (
                "500 Internal Server Error",
                "InternalError",
                "We encountered an internal error. Please try again.",
            )
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>{message}</Message>"
            f"<RequestId>{request_id}</RequestId><HostId>ferry-emulator</HostId></Error>"
        ).encode()
        headers = [("Content-Type", "application/xml"), ("x-amz-request-id", request_id)]
        return status, headers, body
    if service in QUERY_SERVICES:
        if kind == "denied":
            status, code, message, typ = (
                "403 Forbidden",
                "AccessDenied",
                "User is not authorized to perform this action (ferry-emulator fault)",
                "Sender",
            )
        elif kind == "throttle":
            status, code, message, typ = "400 Bad Request", "Throttling", "Rate exceeded", "Sender"
        else:
            status, code, message, typ = (
                "500 Internal Server Error",
                "InternalFailure",
                "The request processing has failed because of an unknown error, exception or failure.",
                "Receiver",
            )
        xmlns = {
            "iam": "https://iam.amazonaws.com/doc/2010-05-08/",
            "sts": "https://sts.amazonaws.com/doc/2011-06-15/",
        }[service]
        body = (
            f'<ErrorResponse xmlns="{xmlns}"><Error><Type>{typ}</Type><Code>{code}</Code>'
            f"<Message>{message}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        headers = [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)]
        return status, headers, body
    # JSON protocols (DataSync and KMS speak awsJson1_1).
    if kind == "denied":
        status, code, message = "400 Bad Request", "AccessDeniedException", "Access denied (ferry-emulator fault)"
    elif kind == "throttle":
        status, code, message = "400 Bad Request", "ThrottlingException", "Rate exceeded"
    else:
        status, code, message = (
            "500 Internal Server Error",
            "InternalFailure",
            "The request processing has failed because of an unknown error, exception or failure.",
        )
    body = json.dumps({"__type": code, "message": message}).encode()
    headers = [
        ("Content-Type", "application/x-amz-json-1.1"),
        ("x-amzn-RequestId", request_id),
        ("x-amzn-ErrorType", code),
    ]
    return status, headers, body


# --- the WSGI layer ---------------------------------------------------------------


def _json_answer(start_response: Callable[..., Any], status: str, payload: Any) -> Iterable[bytes]:
    body = json.dumps(payload).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


class ControlMiddleware:
    """WSGI app in front of moto: control endpoints plus fault injection.

    ``config_get``/``config_set`` read and change the run-time settings owned by
    the DataSync extension; ``quotas_get``/``quotas_set``/``quotas_delete`` serve
    /ferry-emulator/quotas (``quotas.control_*``; the query string's parameters for GET
    and DELETE, the JSON body for POST).
    """

    def __init__(
        self,
        app: Callable[..., Any],
        switch: FaultSwitch,
        config_get: Callable[[], dict[str, Any]],
        config_set: Callable[[dict[str, Any]], dict[str, Any]],
        quotas_get: Callable[[dict[str, list[str]]], Any] | None = None,
        quotas_set: Callable[[Any], Any] | None = None,
        quotas_delete: Callable[[dict[str, list[str]]], Any] | None = None,
    ) -> None:
        self.app = app
        self.switch = switch
        self.config_get = config_get
        self.config_set = config_set
        self.quotas = {"GET": quotas_get, "POST": quotas_set, "DELETE": quotas_delete}
        self.calls = CallLog()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/"):
            return self._control(environ, start_response, path[len(CONTROL_PREFIX):].strip("/"))
        call = describe_call(environ)
        if call.service:
            self.calls.add(call)
        rule = self.switch.take(call) if call.service else None
        if rule is not None:
            if rule.kind == "slow":
                time.sleep(rule.delay_seconds)
            else:
                status, headers, body = error_response(call.service, rule.kind)
                headers.append(("Content-Length", str(len(body))))
                start_response(status, headers)
                return [body]
        return self.app(environ, start_response)

    def _control(self, environ: dict[str, Any], start_response: Callable[..., Any], what: str) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        try:
            if what == "health" and method == "GET":
                return _json_answer(start_response, "200 OK", {"status": "ok"})
            if what == "faults":
                if method == "GET":
                    return _json_answer(start_response, "200 OK", {"faults": self.switch.list()})
                if method == "DELETE":
                    self.switch.clear()
                    return _json_answer(start_response, "200 OK", {"faults": []})
                if method == "POST":
                    body = json.loads(_read_body(environ) or b"{}")
                    rules = body if isinstance(body, list) else [body]
                    added = [FaultRule.from_json(r) for r in rules]
                    for rule in added:
                        self.switch.add(rule)
                    payload = [r.to_json() for r in added]
                    return _json_answer(start_response, "200 OK", payload if isinstance(body, list) else payload[0])
            if what.startswith("faults/") and method == "DELETE":
                removed = self.switch.remove(what.split("/", 1)[1])
                return _json_answer(start_response, "200 OK" if removed else "404 Not Found", {"removed": removed})
            if what == "calls" and method == "GET":
                query = parse_qs(environ.get("QUERY_STRING", ""))
                return _json_answer(start_response, "200 OK", {"calls": self.calls.query(query)})
            if what == "config":
                if method == "GET":
                    return _json_answer(start_response, "200 OK", self.config_get())
                if method == "POST":
                    body = json.loads(_read_body(environ) or b"{}")
                    return _json_answer(start_response, "200 OK", self.config_set(body))
            if what == "quotas" and self.quotas.get(method) is not None:
                handler = self.quotas[method]
                if method == "POST":
                    argument: Any = json.loads(_read_body(environ) or b"{}")
                else:
                    argument = parse_qs(environ.get("QUERY_STRING", ""))
                return _json_answer(start_response, "200 OK", handler(argument))
        except (ValueError, TypeError) as err:
            return _json_answer(start_response, "400 Bad Request", {"error": str(err)})
        return _json_answer(start_response, "404 Not Found", {"error": f"no control endpoint {method} /{what}"})
