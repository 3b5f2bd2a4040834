"""Every AWS request checked against AWS's own API model before moto sees it.

AWS validates each request against the same model its SDKs are generated from
(botocore ships it as ``service-2.json``): required members, types, string
patterns and lengths, numeric ranges, list and map sizes, enums, recursively.
moto checks almost none of this, so a client that sends a value AWS refuses
would pass in the emulator and fail in AWS. ``ModelCheckMiddleware`` sits in
front of moto, parses each request of the services Ferry calls as the model's
protocol describes it and answers a violation the way the service does:

* DataSync and KMS (awsJson1_1): HTTP 400 ``ValidationException`` with AWS's
  ``N validation error(s) detected: Value '...' at 'member.path' failed to
  satisfy constraint: ...`` message; a JSON value of the wrong type gets a
  ``SerializationException``, as AWS's JSON services answer.
* IAM and STS (query protocol): HTTP 400 ``ValidationError`` with the same
  message in a query ``ErrorResponse``; a scalar that does not parse as its
  type (``DurationSeconds=abc``) gets ``InvalidParameterValue``.
* S3 (rest-xml): only the XML document of operations with a structure payload
  is checked (S3 checks its headers and query parameters one by one, with
  codes of their own): an empty required document is ``MissingRequestBodyError``,
  a document that is not well-formed or breaks the model (unknown enum value,
  missing required element, wrong type) is ``MalformedXML``.

Model patterns are Java regular expressions matched against the whole value;
they are translated to the third-party ``regex`` module (which knows
``\\p{Zs}``-style classes) with Java's ASCII meaning of ``\\w``, ``\\d``, ``\\s``
and ``.``. Lengths count Unicode code points.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
import xml.etree.ElementTree as ElementTree
from datetime import datetime
from functools import lru_cache
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs

import botocore.session
import regex
from botocore.model import OperationModel, ServiceModel, Shape

import faults

CHECKED_SERVICES = ("datasync", "kms", "iam", "sts", "s3")
SCALAR_TYPES = ("string", "integer", "long", "float", "double", "boolean", "timestamp", "blob")
NUMBER_TYPES = ("integer", "long", "float", "double")

# Java's ASCII-only shorthand classes and its "." (no line terminator), as
# bodies of a character class (usable inside one, or wrapped in [] outside).
_JAVA_CLASS_BODIES = {
    "w": "a-zA-Z0-9_",
    "d": "0-9",
    "s": " \\t\\n\\x0B\\f\\r",
    "W": "\\x00-\\x2F\\x3A-\\x40\\x5B-\\x5E\\x60\\x7B-\\U0010FFFF",
    "D": "\\x00-\\x2F\\x3A-\\U0010FFFF",
    "S": "\\x00-\\x08\\x0E-\\x1F\\x21-\\U0010FFFF",
}
_JAVA_DOT = "[^\\n\\r\\u0085\\u2028\\u2029]"


def java_pattern(pattern: str) -> str:
    """The ``regex``-module equivalent of a Java regular expression of the model.

    Java's ``\\w``, ``\\d``, ``\\s`` (and their negations) are ASCII-only and its
    ``.`` excludes every line terminator, while Python's are Unicode-aware and
    exclude only ``\\n``; everything else the models use means the same in both.
    """
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            escaped = pattern[i + 1]
            body = _JAVA_CLASS_BODIES.get(escaped)
            if body is None:
                out.append(pattern[i:i + 2])
            else:
                out.append(body if in_class else f"[{body}]")
            i += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == ".":
            char = _JAVA_DOT
        out.append(char)
        i += 1
    return "".join(out)


@lru_cache(maxsize=None)
def compiled(pattern: str) -> "regex.Pattern[str]":
    """The model pattern, translated and compiled once."""
    return regex.compile(java_pattern(pattern))


class TypeMismatch(Exception):
    """A wire value that cannot be read as its model type (message as AWS words it)."""


class Rejection:
    """An AWS-shaped error answer: status line, headers and body."""

    def __init__(self, status: str, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status = status
        self.headers = headers + [("Content-Length", str(len(body)))]
        self.body = body


# --- the constraints, checked on decoded values --------------------------------------------


def _lower_camel(name: str) -> str:
    """A member name as AWS writes it in a path: first letter lower-cased (``sAMLOptions``)."""
    return name[:1].lower() + name[1:]


def _render(value: Any) -> str | None:
    """A value as AWS (Java) prints it in a message; None for structures."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    if isinstance(value, list) and all(not isinstance(v, (list, dict)) for v in value):
        return "[" + ", ".join(str(_render(v)) for v in value) + "]"
    if isinstance(value, dict) and all(not isinstance(v, (list, dict)) for v in value.values()):
        return "{" + ", ".join(f"{k}={_render(v)}" for k, v in value.items()) + "}"
    return None


def _message(value: Any, path: str, constraint: str) -> str:
    """One ``Value '...' at 'path' failed to satisfy constraint: ...`` entry."""
    shown = _render(value)
    where = f"Value '{shown}' at" if shown is not None else "Value at"
    return f"{where} '{path}' failed to satisfy constraint: {constraint}"


def _scalar_constraints(shape: Shape) -> list[str]:
    """Every constraint of a scalar shape, in the order AWS lists them."""
    meta = shape.metadata
    out: list[str] = []
    if shape.type_name in NUMBER_TYPES:
        if "max" in meta:
            out.append(f"Member must have value less than or equal to {meta['max']}")
        if "min" in meta:
            out.append(f"Member must have value greater than or equal to {meta['min']}")
        return out
    if "max" in meta:
        out.append(f"Member must have length less than or equal to {meta['max']}")
    if "min" in meta:
        out.append(f"Member must have length greater than or equal to {meta['min']}")
    if "pattern" in meta:
        out.append(f"Member must satisfy regular expression pattern: {meta['pattern']}")
    if shape.enum:
        out.append(f"Member must satisfy enum value set: [{', '.join(shape.enum)}]")
    return out


def _scalar_violations(value: Any, shape: Shape) -> list[str]:
    """The constraints of a scalar shape that ``value`` breaks."""
    meta = shape.metadata
    out: list[str] = []
    if shape.type_name in NUMBER_TYPES:
        if "max" in meta and value > meta["max"]:
            out.append(f"Member must have value less than or equal to {meta['max']}")
        if "min" in meta and value < meta["min"]:
            out.append(f"Member must have value greater than or equal to {meta['min']}")
        return out
    if shape.type_name not in ("string", "blob"):
        return out
    if shape.enum and value not in shape.enum:
        out.append(f"Member must satisfy enum value set: [{', '.join(shape.enum)}]")
    if "pattern" in meta and compiled(meta["pattern"]).fullmatch(value) is None:
        out.append(f"Member must satisfy regular expression pattern: {meta['pattern']}")
    if "max" in meta and len(value) > meta["max"]:
        out.append(f"Member must have length less than or equal to {meta['max']}")
    if "min" in meta and len(value) < meta["min"]:
        out.append(f"Member must have length greater than or equal to {meta['min']}")
    return out


def violations(value: Any, shape: Shape, path: str = "") -> list[str]:
    """AWS's validation messages for a decoded request value, in model order.

    Scalars report each broken constraint; a list or map of scalars reports its
    elements once, listing all their constraints (``Member must satisfy
    constraint: [...]``, ``Map keys/value must satisfy constraint: [...]``);
    members of structures inside lists are at ``path.N.member.name``.
    """
    kind = shape.type_name
    if kind == "structure":
        out: list[str] = []
        for name, member in shape.members.items():
            child_path = f"{path}.{_lower_camel(name)}" if path else _lower_camel(name)
            child = value.get(name)
            if child is None:
                if name in shape.required_members:
                    out.append(f"Value null at '{child_path}' failed to satisfy constraint: Member must not be null")
                continue
            out += violations(child, member, child_path)
        return out
    if kind == "list":
        out = [_message(value, path, c) for c in _size_violations(value, shape)]
        element = shape.member
        if element.type_name in SCALAR_TYPES:
            if any(_scalar_violations(v, element) for v in value):
                out.append(_message(value, path, _all_of("Member", element)))
            return out
        for index, item in enumerate(value, 1):
            out += violations(item, element, f"{path}.{index}.member")
        return out
    if kind == "map":
        out = [_message(value, path, c) for c in _size_violations(value, shape)]
        if any(_scalar_violations(k, shape.key) for k in value):
            out.append(_message(value, path, _all_of("Map keys", shape.key)))
        if shape.value.type_name in SCALAR_TYPES:
            if any(_scalar_violations(v, shape.value) for v in value.values()):
                out.append(_message(value, path, _all_of("Map value", shape.value)))
            return out
        for key, item in value.items():
            out += violations(item, shape.value, f"{path}.{key}")
        return out
    return [_message(value, path, c) for c in _scalar_violations(value, shape)]


def _size_violations(value: list[Any] | dict[str, Any], shape: Shape) -> list[str]:
    """The size limits of a list or map that ``value`` breaks."""
    meta = shape.metadata
    out = []
    if "max" in meta and len(value) > meta["max"]:
        out.append(f"Member must have length less than or equal to {meta['max']}")
    if "min" in meta and len(value) < meta["min"]:
        out.append(f"Member must have length greater than or equal to {meta['min']}")
    return out


def _all_of(subject: str, shape: Shape) -> str:
    """``<subject> must satisfy constraint: [...]`` with every constraint of ``shape``."""
    return f"{subject} must satisfy constraint: [{', '.join(_scalar_constraints(shape))}]"


def validation_message(found: list[str]) -> str:
    """``N validation error(s) detected: ...; ...`` as AWS joins them."""
    plural = "error" if len(found) == 1 else "errors"
    return f"{len(found)} validation {plural} detected: " + "; ".join(found)


# --- reading each protocol's wire format into model-typed values ---------------------------

_JAVA_TYPES = {"string": "String", "integer": "Integer", "long": "Long", "float": "Float", "double": "Double",
               "boolean": "Boolean", "timestamp": "Date"}


def _json_token(value: Any) -> str:
    """The JSON token name AWS's JSON parser reports for a scalar."""
    if isinstance(value, bool):
        return "TRUE_VALUE" if value else "FALSE_VALUE"
    if isinstance(value, int):
        return "NUMBER_VALUE"
    if isinstance(value, float):
        return "DECIMAL_VALUE"
    return "STRING_VALUE"


def decode_json(value: Any, shape: Shape) -> Any:
    """A JSON request value checked against its shape's type, nulls dropped.

    AWS's JSON services treat ``null`` as an absent member and ignore members
    the model does not know; a value of the wrong JSON type is refused with the
    parser's wording (raised as ``TypeMismatch``).
    """
    kind = shape.type_name
    if isinstance(value, dict) and kind not in ("structure", "map"):
        raise TypeMismatch("Start of structure or map found where not expected")
    if kind in ("structure", "map"):
        if isinstance(value, list):
            raise TypeMismatch("Start of list found where not expected")
        if not isinstance(value, dict):
            raise TypeMismatch("Unexpected field type")
        if kind == "map":
            return {k: decode_json(v, shape.value) for k, v in value.items() if v is not None}
        members = shape.members
        return {k: decode_json(v, members[k]) for k, v in value.items() if k in members and v is not None}
    if kind == "list":
        if not isinstance(value, list):
            raise TypeMismatch("Unexpected field type")
        return [decode_json(v, shape.member) for v in value if v is not None]
    if kind == "blob":
        if isinstance(value, str):
            try:
                return base64.b64decode(value, validate=True)
            except binascii.Error:
                pass
        raise TypeMismatch("only base-64-encoded strings are convertible to bytes")
    if isinstance(value, list):
        raise TypeMismatch(f"Unrecognized collection type class java.lang.{_JAVA_TYPES[kind]}")
    if kind == "string" and isinstance(value, str):
        return value
    if kind in NUMBER_TYPES + ("timestamp",) and isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str):
            raise TypeMismatch("Unexpected token received from parser")
    raise TypeMismatch(f"{_json_token(value)} cannot be converted to {_JAVA_TYPES[kind]}")


class TextTypeMismatch(TypeMismatch):
    """A scalar sent as text (query parameter, XML element) that does not parse as its type."""

    def __init__(self, parameter: str, text: str, kind: str) -> None:
        super().__init__(f"Invalid value '{text}' for parameter {parameter}: it must be a valid {kind}")


def _scalar_from_text(text: str, shape: Shape, where: str) -> Any:
    """A scalar sent as text (query parameter, XML element) in its model type."""
    kind = shape.type_name
    try:
        if kind in ("integer", "long"):
            return int(text)
        if kind in ("float", "double"):
            return float(text)
        if kind == "boolean":
            if text.lower() not in ("true", "false"):
                raise ValueError(text)
            return text.lower() == "true"
        if kind == "timestamp":
            return datetime.fromisoformat(text)
        if kind == "blob":
            return base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error):
        raise TextTypeMismatch(where, text, kind) from None
    return text


def decode_query(params: dict[str, str], shape: Shape, prefix: str) -> Any:
    """A query-protocol request value (``Tags.member.1.Key=...``) as model values.

    Names follow botocore's query serializer: structure members are
    ``Prefix.Name``, lists ``Prefix.member.N`` (``Prefix.N`` when flattened, an
    empty list is ``Prefix=``), maps ``Prefix.entry.N.key``/``.value``.
    Returns None when nothing of the value was sent.
    """
    kind = shape.type_name
    if kind == "structure":
        out = {}
        for name, member in shape.members.items():
            wire = member.serialization.get("name", name)
            child = decode_query(params, member, f"{prefix}.{wire}" if prefix else wire)
            if child is not None:
                out[name] = child
        return out if out or not prefix else None
    if kind == "list":
        if shape.serialization.get("flattened"):
            base = prefix
        else:
            base = f"{prefix}.{shape.member.serialization.get('name', 'member')}"
        indexes = _indexes(params, base)
        if not indexes:
            return [] if prefix in params else None
        return [decode_query(params, shape.member, f"{base}.{i}") for i in indexes]
    if kind == "map":
        base = prefix if shape.serialization.get("flattened") else f"{prefix}.entry"
        key_name = shape.key.serialization.get("name", "key")
        value_name = shape.value.serialization.get("name", "value")
        indexes = _indexes(params, base)
        if not indexes:
            return {} if prefix in params else None
        return {params.get(f"{base}.{i}.{key_name}", ""): decode_query(params, shape.value, f"{base}.{i}.{value_name}")
                for i in indexes}
    text = params.get(prefix)
    return None if text is None else _scalar_from_text(text, shape, prefix)


def _indexes(params: dict[str, str], base: str) -> list[int]:
    """The element numbers N present as ``base.N`` or ``base.N.*``, in order."""
    found = set()
    for key in params:
        if key.startswith(base + "."):
            head = key[len(base) + 1:].split(".", 1)[0]
            if head.isdigit():
                found.add(int(head))
    return sorted(found)


def _local(tag: str) -> str:
    """An XML element or attribute name without its ``{namespace}``."""
    return tag.rsplit("}", 1)[-1]


def decode_xml(element: ElementTree.Element, shape: Shape) -> Any:
    """A rest-xml request document (or part of it) as model values."""
    kind = shape.type_name
    if kind == "structure":
        out: dict[str, Any] = {}
        for name, member in shape.members.items():
            wire = member.serialization.get("name", name)
            if member.serialization.get("xmlAttribute"):
                # "xsi:type" is read back as "{http://www.w3.org/2001/XMLSchema-instance}type".
                found = [v for k, v in element.attrib.items() if _local(k) == wire.rsplit(":", 1)[-1]]
                if found:
                    out[name] = _scalar_from_text(found[0], member, wire)
                continue
            children = [c for c in element if _local(c.tag) == wire]
            if member.type_name == "list" and member.serialization.get("flattened"):
                if children:
                    out[name] = [decode_xml(c, member.member) for c in children]
            elif children:
                out[name] = decode_xml(children[0], member)
        return out
    if kind == "list":
        item = shape.member.serialization.get("name", "member")
        return [decode_xml(c, shape.member) for c in element if _local(c.tag) == item]
    if kind == "map":
        key_name = shape.key.serialization.get("name", "key")
        value_name = shape.value.serialization.get("name", "value")
        entries = element if shape.serialization.get("flattened") else [c for c in element if _local(c.tag) == "entry"]
        out = {}
        for entry in entries:
            parts = {_local(c.tag): c for c in entry}
            if key_name in parts and value_name in parts:
                out[parts[key_name].text or ""] = decode_xml(parts[value_name], shape.value)
        return out
    return _scalar_from_text(element.text or "", shape, _local(element.tag))


# --- AWS-shaped answers --------------------------------------------------------------------------


def _escape(text: str) -> str:
    """Text made safe for an XML element."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def json_error(code: str, message: str | None, message_key: str = "message") -> Rejection:
    """An awsJson error (DataSync); ``message`` None sends the bare type as AWS does."""
    request_id = str(uuid.uuid4())
    payload: dict[str, str] = {"__type": code}
    if message is not None:
        payload[message_key] = message
    headers = [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-RequestId", request_id),
               ("x-amzn-ErrorType", code)]
    return Rejection("400 Bad Request", headers, json.dumps(payload).encode())


def query_error(model: ServiceModel, code: str, message: str) -> Rejection:
    """A query-protocol ``ErrorResponse`` (IAM, STS), laid out as AWS sends it."""
    request_id = str(uuid.uuid4())
    body = (
        f'<ErrorResponse xmlns="{model.metadata["xmlNamespace"]}">\n  <Error>\n    <Type>Sender</Type>\n'
        f"    <Code>{code}</Code>\n    <Message>{_escape(message)}</Message>\n  </Error>\n"
        f"  <RequestId>{request_id}</RequestId>\n</ErrorResponse>\n"
    ).encode()
    return Rejection("400 Bad Request", [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)], body)


def s3_error(code: str, message: str) -> Rejection:
    """S3's XML error document."""
    request_id = uuid.uuid4().hex[:16].upper()
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        f"<RequestId>{request_id}</RequestId><HostId>ferry-emulator</HostId></Error>"
    ).encode()
    return Rejection("400 Bad Request", [("Content-Type", "application/xml"), ("x-amz-request-id", request_id)], body)


MALFORMED_XML = "The XML you provided was not well-formed or did not validate against our published schema"
# S3 answers a document that breaks its schema with MalformedXML, ACL documents
# with MalformedACLError (same text); CreateBucket's location constraint has its
# own check and code (InvalidLocationConstraint), left to moto.
S3_SCHEMA_ERRORS = {"PutBucketAcl": "MalformedACLError", "PutObjectAcl": "MalformedACLError"}
S3_OWN_CHECKS = frozenset({"CreateBucket"})


# --- the WSGI layer ---------------------------------------------------------------------------------


class ModelCheckMiddleware:
    """WSGI app in front of moto that refuses requests AWS's model refuses.

    The models are loaded once, here; patterns are compiled on first use.
    Requests of other services, unknown operations and the emulator's own
    endpoints go through unchanged.
    """

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app
        session = botocore.session.get_session()
        self.models = {name: session.get_service_model(name) for name in CHECKED_SERVICES}
        self.operations = {name: frozenset(model.operation_names) for name, model in self.models.items()}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        rejection = self.check(environ)
        if rejection is None:
            return self.app(environ, start_response)
        start_response(rejection.status, rejection.headers)
        return [rejection.body]

    def check(self, environ: dict[str, Any]) -> Rejection | None:
        """The answer AWS would give if the request breaks the model, else None."""
        if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            return None  # no Content-Length: the body cannot be read ahead of moto
        service, operation = faults.identify(environ)
        if operation not in self.operations.get(service, ()):
            return None
        model = self.models[service]
        op = model.operation_model(operation)
        if op.input_shape is None:
            return None
        if "json" in model.metadata.get("protocols", [model.metadata.get("protocol")]):  # DataSync, KMS
            return self._check_json(environ, op)
        if service == "s3":
            return self._check_rest_xml(environ, op)
        return self._check_query(environ, op, model)

    @staticmethod
    def _check_json(environ: dict[str, Any], op: OperationModel) -> Rejection | None:
        if "json" not in environ.get("CONTENT_TYPE", ""):
            return None  # another protocol (CBOR): not ours to read
        raw = faults._read_body(environ)
        try:
            body = json.loads(raw) if raw.strip() else {}
        except ValueError:
            return json_error("SerializationException", None)
        try:
            value = decode_json(body, op.input_shape)
        except TypeMismatch as err:
            return json_error("SerializationException", str(err), "Message")
        found = violations(value, op.input_shape)
        return json_error("ValidationException", validation_message(found)) if found else None

    @staticmethod
    def _check_query(environ: dict[str, Any], op: OperationModel, model: ServiceModel) -> Rejection | None:
        params = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True).items()}
        if environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
            form = parse_qs(faults._read_body(environ).decode("utf-8", "replace"), keep_blank_values=True)
            for key, values in form.items():
                params.setdefault(key, values[0])
        try:
            value = decode_query(params, op.input_shape, "")
        except TypeMismatch as err:
            return query_error(model, "InvalidParameterValue", str(err))
        found = violations(value, op.input_shape)
        return query_error(model, "ValidationError", validation_message(found)) if found else None

    @staticmethod
    def _check_rest_xml(environ: dict[str, Any], op: OperationModel) -> Rejection | None:
        if op.name in S3_OWN_CHECKS or not _same_route(environ, op):
            return None
        payload_name = op.input_shape.serialization.get("payload")
        payload = op.input_shape.members.get(payload_name) if payload_name else None
        if payload is None or payload.type_name != "structure":
            return None  # S3 checks its headers, query and blob payloads itself
        if environ.get("HTTP_X_AMZ_CONTENT_SHA256", "").startswith("STREAMING-"):
            return None  # aws-chunked body: moto decodes it
        raw = faults._read_body(environ)
        if not raw.strip():
            if payload_name in op.input_shape.required_members:
                return s3_error("MissingRequestBodyError", "Request Body is empty")
            return None
        malformed = s3_error(S3_SCHEMA_ERRORS.get(op.name, "MalformedXML"), MALFORMED_XML)
        try:
            root = ElementTree.fromstring(raw)
            if _local(root.tag) != payload.serialization.get("name", payload_name):
                return malformed
            value = decode_xml(root, payload)
        except (ElementTree.ParseError, TypeMismatch):
            return malformed
        return malformed if violations(value, payload) else None


def _same_route(environ: dict[str, Any], op: OperationModel) -> bool:
    """Whether method, path and query fit the operation's ``http`` binding.

    ``faults.identify`` infers S3 operations from method, path and query; this
    guards against checking a request against the wrong operation's model: the
    path must have an object key exactly when ``requestUri`` has ``{Key+}``
    (path-style: ``/{Bucket}/{Key+}``), and the literal query keys of
    ``requestUri`` (``?ownershipControls``, ``?list-type=2``) must be sent.
    """
    if environ.get("REQUEST_METHOD") != op.http.get("method"):
        return False
    uri_path, _, literal = op.http.get("requestUri", "").partition("?")
    path = environ.get("PATH_INFO", "/").lstrip("/").split("/", 1)
    if ("{Key+}" in uri_path) != (len(path) == 2 and path[1] != ""):
        return False
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    for part in filter(None, literal.split("&")):
        key, _, want = part.partition("=")
        if key not in query or (want and query[key][0] != want):
            return False
    return True
