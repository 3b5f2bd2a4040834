"""AWS rules the emulator enforces beyond what the API model says.

This module owns

* the *history* of every IAM role (trust policy, inline and attached policies,
  permissions boundary) and every bucket policy, with timestamps, recorded by
  wrapping moto's IAM and S3 backends (``install``), and the *propagation delay*
  (``iamPropagationSeconds``): DataSync's checks read roles and bucket policies
  as they were that many seconds ago (IAM is eventually consistent);
* S3's 20 KB bucket-policy limit on PutBucketPolicy;
* IAM's permissions-boundary rules (CreateRole, PutRolePermissionsBoundary: the
  boundary must be an existing managed policy; DeletePolicy: not while it is a
  boundary; GetRole's ``PermissionsBoundaryType`` ``Policy``) and the boundary's
  documents for every decision about a role (``RoleView.boundary``);
* DataSync's checks: CreateLocationS3 (bucket exists, role exists and trusts
  DataSync, location access test as the caller and as the role), the object
  access of a running execution, and the task rules (filter length, Enhanced
  mode log group, Glacier verification, partitions, opt-in Regions).

Every rule names its AWS source in tests/emulator/README.md ("Rules enforced").
Policy evaluation itself is ``policy_eval``.
"""

from __future__ import annotations

import bisect
import functools
import inspect
import json
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import policy_eval
from policy_eval import Principal, Request

DATASYNC_SERVICE = "datasync.amazonaws.com"
BUCKET_POLICY_MAX_BYTES = 20 * 1024
FILTER_VALUE_MAX_CHARS = 102_400
ENHANCED_LOG_GROUP = "/aws/datasync"
# Regions launched after 2019-03-20 are disabled by default (opt-in Regions).
OPT_IN_REGIONS = frozenset({
    "af-south-1", "ap-east-1", "ap-east-2", "ap-south-2", "ap-southeast-3", "ap-southeast-4",
    "ap-southeast-5", "ap-southeast-6", "ap-southeast-7", "ca-west-1", "eu-central-2", "eu-south-1",
    "eu-south-2", "il-central-1", "me-central-1", "me-south-1", "mx-central-1",
})
GLACIER_CLASSES = ("GLACIER", "DEEP_ARCHIVE")

# AWS's own texts (quoted by terraform-provider-aws, which retries on them while
# IAM changes propagate).
ASSUME_ROLE_FAILED = "Unable to assume role. Reason: Access denied when calling sts:AssumeRole"


def access_test_failed(bucket: str) -> str:
    return (f"DataSync location access test failed: could not perform s3:ListObjectsV2 on bucket {bucket}. "
            "Access denied. Ensure bucket access role has s3:ListBucket permission.")


# --- settings ---------------------------------------------------------------------------


class RuleSettings:
    def __init__(self) -> None:
        self.iam_propagation_seconds = 0.0


SETTINGS = RuleSettings()


# --- history ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RoleView:
    arn: str
    trust: Any  # parsed trust policy
    policies: tuple[Any, ...]  # parsed inline and attached (default version) documents
    # The permissions boundary's default version (None: no boundary; empty: its policy is gone).
    boundary: tuple[Any, ...] | None = None


class History:
    """Timestamped versions of roles (by ARN) and bucket policies (by bucket)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._roles: dict[str, list[tuple[float, RoleView | None]]] = {}
        self._buckets: dict[str, list[tuple[float, Any]]] = {}

    def record_role(self, arn: str, view: RoleView | None) -> None:
        with self._lock:
            self._roles.setdefault(arn, []).append((time.time(), view))

    def record_bucket_policy(self, bucket: str, policy: Any) -> None:
        with self._lock:
            self._buckets.setdefault(bucket, []).append((time.time(), policy))

    @staticmethod
    def _at(entries: list[tuple[float, Any]] | None, when: float, missing: Any) -> Any:
        if not entries:
            return missing
        index = bisect.bisect_right([t for t, _ in entries], when)
        return entries[index - 1][1] if index else None

    def role(self, arn: str, when: float, missing: Any) -> Any:
        with self._lock:
            return self._at(self._roles.get(arn), when, missing)

    def bucket_policy(self, bucket: str, when: float, missing: Any) -> Any:
        with self._lock:
            return self._at(self._buckets.get(bucket), when, missing)


HISTORY = History()
_LIVE = object()


def _iam(account_id: str, partition: str) -> Any:
    from moto.iam.models import iam_backends

    return iam_backends[account_id][partition]


def _default_document(policy: Any) -> Any:
    for version in getattr(policy, "versions", []):
        if version.version_id == policy.default_version_id:
            return policy_eval.parse(version.document)
    return None


@functools.lru_cache(maxsize=1)
def _aws_managed_documents() -> dict[str, Any]:
    """'<path><name>' -> document of the AWS managed policies moto ships (moto loads them into its
    backends only with MOTO_IAM_LOAD_MANAGED_POLICIES; the emulator reads them for boundaries)."""
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    return {f"{d.get('Path') or '/'}{name}": d.get("Document")
            for name, d in json.loads(aws_managed_policies_data).items()}


_POLICY_ARN = re.compile(r"^arn:([a-z-]+):iam::(aws|\d{12}):policy(/.*)$")


def managed_policy_document(arn: str, account_id: str, partition: str) -> tuple[bool, Any]:
    """(exists, parsed default version) of the managed policy ``arn`` as IAM of ``account_id`` sees
    it: a customer managed policy of that account, or an AWS managed policy of its partition."""
    match = _POLICY_ARN.match(arn or "")
    if not match or match.group(1) != partition or match.group(2) not in ("aws", account_id):
        return False, None
    policy = _iam(account_id, partition).managed_policies.get(arn)
    if policy is not None:
        return True, _default_document(policy)
    if match.group(2) == "aws":
        documents = _aws_managed_documents()
        if match.group(3) in documents:
            return True, policy_eval.parse(documents[match.group(3)])
    return False, None


def _boundary_documents(role: Any) -> tuple[Any, ...] | None:
    arn = getattr(role, "permissions_boundary_arn", None)
    if not arn:
        return None
    _, document = managed_policy_document(arn, role.account_id, role.partition)
    return (document,) if document else ()


def _live_role_view(role: Any) -> RoleView:
    documents = [policy_eval.parse(doc) for doc in role.policies.values()]
    documents += [_default_document(p) for p in role.managed_policies.values()]
    return RoleView(role.arn, policy_eval.parse(role.assume_role_policy_document),
                    tuple(d for d in documents if d), _boundary_documents(role))


def _live_role(arn: str) -> RoleView | None:
    parts = arn.split(":")
    if len(parts) < 6:
        return None
    try:
        return _live_role_view(_iam(parts[4], parts[1]).get_role_by_arn(arn))
    except Exception:
        return None


def role_view(arn: str) -> RoleView | None:
    """The role as DataSync sees it now: as it was iamPropagationSeconds ago."""
    delay = SETTINGS.iam_propagation_seconds
    if delay <= 0:
        return _live_role(arn)
    seen = HISTORY.role(arn, time.time() - delay, _LIVE)
    return _live_role(arn) if seen is _LIVE else seen


def bucket_policy_view(bucket: str, backend: Any) -> Any:
    delay = SETTINGS.iam_propagation_seconds
    live = policy_eval.parse(backend.buckets[bucket].policy) if bucket in backend.buckets else None
    if delay <= 0:
        return live
    seen = HISTORY.bucket_policy(bucket, time.time() - delay, _LIVE)
    return live if seen is _LIVE else seen


# --- S3's bucket-policy size limit -------------------------------------------------------


def _policy_too_large() -> Exception:
    from moto.s3.exceptions import S3ClientError

    class PolicyTooLarge(S3ClientError):
        code = "PolicyTooLarge"

    return PolicyTooLarge("Policy exceeds the maximum allowed document size.")


def policy_size(raw: bytes | str) -> int:
    """Bytes of the policy without insignificant whitespace (whitespace outside JSON
    strings is not counted); the raw size when it is not JSON."""
    data = raw.encode("utf-8") if isinstance(raw, str) else bytes(raw)
    try:
        doc = json.loads(data)
    except ValueError:
        return len(data)
    return len(json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


# --- wrapping moto's backends ------------------------------------------------------------


def _wrap(cls: Any, name: str, after: Callable[..., None], before: Callable[..., None] | None = None) -> None:
    original = getattr(cls, name)
    if getattr(original, "_ferry_rules", False):
        return
    signature = inspect.signature(original)

    @functools.wraps(original)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(self, *args, **kwargs)
        arguments = dict(bound.arguments)
        token = before(self, arguments) if before else None
        result = original(self, *args, **kwargs)
        try:
            after(self, arguments, result, token)
        except Exception:  # history is best effort; never break the API call
            pass
        return result

    wrapper._ferry_rules = True  # type: ignore[attr-defined]
    setattr(cls, name, wrapper)


def _record_role_by_name(backend: Any, arguments: dict[str, Any], *_: Any) -> None:
    role = backend.get_role(arguments["role_name"])
    HISTORY.record_role(role.arn, _live_role_view(role))


def _role_arn_before(backend: Any, arguments: dict[str, Any]) -> str | None:
    try:
        return backend.get_role(arguments["role_name"]).arn
    except Exception:
        return None


def _record_role_deleted(backend: Any, arguments: dict[str, Any], result: Any, arn: str | None) -> None:
    if arn:
        HISTORY.record_role(arn, None)


def _record_policy_users(backend: Any, arguments: dict[str, Any], *_: Any) -> None:
    policy_arn = arguments.get("policy_arn")
    for role in list(backend.roles.values()):
        if policy_arn in role.managed_policies or getattr(role, "permissions_boundary_arn", None) == policy_arn:
            HISTORY.record_role(role.arn, _live_role_view(role))


# --- IAM: permissions boundaries -------------------------------------------------------------


def _boundary_problem(backend: Any, arn: str) -> Exception | None:
    """Why IAM refuses ``arn`` as a role's permissions boundary (None: it accepts it). moto already
    refuses ARNs that are not policy ARNs (InvalidParameterValue); left to it."""
    from moto.iam.exceptions import IAMException, NotFoundException

    if not arn or not backend.policy_arn_regex.match(arn):
        return None
    exists, _ = managed_policy_document(arn, backend.account_id, backend.partition)
    if not exists:
        # AWS's text, as users quote it (openshift/rosa test cases, NoSuchEntity, 404).
        return NotFoundException(f"Scope ARN: {arn} does not exist or is not attachable.")
    if ":policy/aws-service-role/" in arn:
        class PolicyNotAttachable(IAMException):
            code = "PolicyNotAttachable"

        # AttachRolePolicy's text for such a policy (terraform users quote it); assumed the same here.
        return PolicyNotAttachable("Cannot attach a Service Role Policy to a Customer Role.")
    return None


def _role_exists(backend: Any, name: Any) -> bool:
    try:
        backend.get_role(name)
    except Exception:
        return False
    return True


def _check_create_boundary(backend: Any, arguments: dict[str, Any]) -> None:
    boundary = arguments.get("permissions_boundary") or ""
    if not boundary or _role_exists(backend, arguments.get("role_name")):
        return None  # no boundary, or moto answers EntityAlreadyExists
    problem = _boundary_problem(backend, boundary)
    if problem:
        raise problem
    return None


def _check_put_boundary(backend: Any, arguments: dict[str, Any]) -> None:
    if not _role_exists(backend, arguments.get("role_name")):
        return None  # moto answers NoSuchEntity for the role
    problem = _boundary_problem(backend, arguments.get("permissions_boundary") or "")
    if problem:
        raise problem
    return None


def _check_not_a_boundary(backend: Any, arguments: dict[str, Any]) -> None:
    """IAM refuses to delete a managed policy that is some role's permissions boundary."""
    from moto.iam.exceptions import DeleteConflictException

    arn = arguments.get("policy_arn")
    if any(getattr(role, "permissions_boundary_arn", None) == arn for role in list(backend.roles.values())):
        raise DeleteConflictException("Cannot delete a policy attached to entities.")
    return None


def _attached_boundary(self: Any) -> dict[str, str] | None:
    """GetRole's and CreateRole's ``PermissionsBoundary``: IAM answers ``PermissionsBoundaryType``
    ``Policy`` (moto answered the model's enum value ``PermissionsBoundaryPolicy``)."""
    if self.permissions_boundary_arn:
        return {"PermissionsBoundaryType": "Policy", "PermissionsBoundaryArn": self.permissions_boundary_arn}
    return None


def _no_user_boundaries(response: Any) -> None:
    """moto ignores CreateUser's PermissionsBoundary and would create the user unbounded, more lenient
    than AWS; the emulator does not model user boundaries (moto has no PutUserPermissionsBoundary), so
    it refuses the request: 400 ``NotImplemented`` (the emulator's answer, not AWS's)."""
    from moto.iam.exceptions import IAMException

    class NotImplementedByEmulator(IAMException):
        code = "NotImplemented"

    if response._get_param("PermissionsBoundary"):
        raise NotImplementedByEmulator("The emulator does not model permissions boundaries of IAM users "
                                       "(CreateUser with PermissionsBoundary).")


def _check_policy_size(backend: Any, arguments: dict[str, Any]) -> None:
    if policy_size(arguments.get("policy") or b"") > BUCKET_POLICY_MAX_BYTES:
        raise _policy_too_large()


def _record_bucket_policy(backend: Any, arguments: dict[str, Any], *_: Any) -> None:
    name = arguments["bucket_name"]
    bucket = backend.buckets.get(name)
    HISTORY.record_bucket_policy(name, policy_eval.parse(bucket.policy) if bucket is not None else None)


def install() -> None:
    """Wrap moto's IAM and S3 backends (once, before serving)."""
    from moto.iam.models import IAMBackend
    from moto.s3.models import S3Backend

    _wrap(IAMBackend, "create_role", _record_role_by_name, before=_check_create_boundary)
    _wrap(IAMBackend, "put_role_permissions_boundary", _record_role_by_name, before=_check_put_boundary)
    for name in ("update_assume_role_policy", "put_role_policy", "delete_role_policy",
                 "attach_role_policy", "detach_role_policy", "delete_role_permissions_boundary"):
        _wrap(IAMBackend, name, _record_role_by_name)
    _wrap(IAMBackend, "delete_role", _record_role_deleted, before=_role_arn_before)
    for name in ("create_policy_version", "set_default_policy_version"):
        _wrap(IAMBackend, name, _record_policy_users)
    _wrap(IAMBackend, "delete_policy", lambda *_: None, before=_check_not_a_boundary)
    _install_role_boundary_output()
    _wrap(S3Backend, "put_bucket_policy", _record_bucket_policy, before=_check_policy_size)
    _wrap(S3Backend, "delete_bucket_policy", _record_bucket_policy)
    _wrap(S3Backend, "delete_bucket", _record_bucket_policy)
    IAMBackend.get_roles = _roles_snapshot  # type: ignore[method-assign]
    _install_setting()
    _install_bucket_permission()


def _install_role_boundary_output() -> None:
    from moto.iam.models import Role
    from moto.iam.responses import IamResponse

    Role.permissions_boundary = property(_attached_boundary)  # type: ignore[assignment,method-assign]
    original = IamResponse.create_user
    if getattr(original, "_ferry_rules", False):
        return

    @functools.wraps(original)
    def create_user(self: Any) -> Any:
        _no_user_boundaries(self)
        return original(self)

    create_user._ferry_rules = True  # type: ignore[attr-defined]
    IamResponse.create_user = create_user  # type: ignore[method-assign]


def _roles_snapshot(self: Any) -> list[Any]:
    """moto's ``get_roles`` returns the live ``dict.values()``, which ``get_role`` and
    ``get_role_by_arn`` walk in Python: a CreateRole on another server thread meanwhile raises
    "dictionary changed size during iteration", and a role that exists looked missing to
    DataSync (seen with 1,000 transfers at once). ``list()`` copies the values in one step."""
    return list(self.roles.values())


# --- who is asking -----------------------------------------------------------------------


def _partition(region: str) -> str:
    from moto.utilities.utils import get_partition

    return get_partition(region)


def role_session_arn(role_arn: str, session: str) -> str:
    parts = role_arn.split(":")
    return f"arn:{parts[1]}:sts::{parts[4]}:assumed-role/{role_arn.rsplit('/', 1)[-1]}/{session}"


@dataclass
class Caller:
    principal: Principal
    identity_policies: list[Any] | None  # None: not an IAM identity the emulator knows (taken as admin)
    description: str
    boundary: list[Any] | None = None  # the role's permissions boundary documents (None: none)


def caller(account_id: str, access_key: str, region: str) -> Caller:
    """The principal behind a request's credentials, with its IAM policies when known."""
    import access

    partition = _partition(region)
    arns = {a for a in access.caller_principals(account_id, access_key, region)
            if a.startswith("arn:") and not a.endswith(":root")}
    principal = Principal(account=account_id, arns=arns, partition=partition)
    iam = _iam(account_id, partition)
    policies: list[Any] | None = None
    boundary: list[Any] | None = None
    key = iam.access_keys.get(access_key)
    if key is not None and getattr(key, "role_arn", None):
        view = role_view_by_any_arn(key.role_arn, iam)
        if view is not None:
            principal.arns.add(view.arn)
            policies = list(view.policies)
            boundary = list(view.boundary) if view.boundary is not None else None
    else:
        user = iam.get_user_from_access_key_id(access_key)
        if user is not None:
            policies = [policy_eval.parse(d) for d in user.policies.values()]
            policies += [_default_document(p) for p in user.managed_policies.values()]
            for group in iam.get_groups_for_user(user.name):
                policies += [policy_eval.parse(d) for d in group.policies.values()]
                policies += [_default_document(p) for p in group.managed_policies.values()]
    return Caller(principal, policies, access.caller_description(account_id, access_key, region), boundary)


def role_view_by_any_arn(role_arn: str, iam: Any) -> RoleView | None:
    """The caller's role (assumed without its path) as DataSync sees it, if it exists."""
    name = role_arn.rsplit("/", 1)[-1]
    try:
        arn = iam.get_role(name).arn
    except Exception:
        return None
    return role_view(arn)


# --- S3 access as DataSync's role ------------------------------------------------------


def s3_context(principal: Principal, bucket_account: str) -> dict[str, Any]:
    """Condition keys of an S3 request made by an IAM principal through the SDK.

    DataSync and the SDKs always use TLS, so aws:SecureTransport is true even
    though the emulator speaks plain HTTP."""
    context: dict[str, Any] = {
        "aws:SecureTransport": True,
        "aws:ResourceAccount": bucket_account,
        "s3:ResourceAccount": bucket_account,
    }
    if principal.account:
        context["aws:PrincipalAccount"] = principal.account
        role_arns = [a for a in principal.arns if ":role/" in a or ":user/" in a]
        if role_arns:
            context["aws:PrincipalArn"] = role_arns[0]
    return context


def s3_decision(principal: Principal, identity_policies: list[Any] | None, action: str, resource: str,
                bucket: str, bucket_account: str, bucket_backend: Any,
                request_keys: dict[str, Any] | None = None,
                boundary: list[Any] | None = None) -> policy_eval.Decision:
    """``request_keys``: condition keys of this request only (PutObject's encryption headers);
    ``boundary``: the principal's permissions boundary documents (None: it has none)."""
    keys = s3_context(principal, bucket_account)
    keys.update(request_keys or {})
    request = Request(principal=principal, action=action, resource=resource, context=keys)
    return policy_eval.decide(request, identity_policies, bucket_policy_view(bucket, bucket_backend), bucket_account,
                              boundary)


def denied_text(principal: Principal, action: str, resource: str, decision: policy_eval.Decision) -> str:
    """S3's AccessDenied message (the format AWS documents for access denied errors)."""
    return (f"User: {principal.primary_arn} is not authorized to perform: {action} on resource: "
            f"\"{resource}\" {decision.reason}")


# --- DataSync: the role ----------------------------------------------------------------


def trust_allows_datasync(view: RoleView, source_account: str, source_arn: str) -> bool:
    request = Request(
        principal=Principal.for_service(DATASYNC_SERVICE),
        action="sts:AssumeRole",
        resource=view.arn,
        context={"aws:SourceAccount": source_account, "aws:SourceArn": source_arn, "aws:SecureTransport": True},
    )
    return policy_eval.evaluate([view.trust], request, resource_policy=True) == policy_eval.ALLOW


@dataclass
class RoleSession:
    role_arn: str
    view: RoleView
    principal: Principal = field(init=False)

    def __post_init__(self) -> None:
        self.principal = Principal.for_role(self.role_arn, role_session_arn(self.role_arn, "AWS-DataSync"))

    @property
    def boundary(self) -> list[Any] | None:
        """The role's permissions boundary documents (None: it has none)."""
        return list(self.view.boundary) if self.view.boundary is not None else None


def assume_datasync_role(role_arn: str | None, source_account: str, source_arn: str) -> tuple[RoleSession | None, str]:
    """DataSync assuming a location's bucket access role: (session, "") or (None, why not)."""
    if not role_arn:
        return None, "no bucket access role is configured for the location"
    view = role_view(role_arn)
    if view is None:
        return None, f"the role {role_arn} does not exist (or is not visible to DataSync yet)"
    if not trust_allows_datasync(view, source_account, source_arn):
        return None, (f"the trust policy of {role_arn} does not allow {DATASYNC_SERVICE} to call "
                      f"sts:AssumeRole for aws:SourceAccount {source_account} and aws:SourceArn {source_arn}")
    return RoleSession(role_arn, view), ""


def role_s3_decision(session: RoleSession, action: str, resource: str, bucket: str,
                     request_keys: dict[str, Any] | None = None) -> policy_eval.Decision:
    import access

    owner = access.bucket_owner(bucket)
    if owner is None:
        return policy_eval.Decision(False, "because the bucket does not exist")
    account, backend = owner
    return s3_decision(session.principal, list(session.view.policies), action, resource, bucket, account, backend,
                       request_keys, session.boundary)


# --- DataSync: CreateLocationS3 ------------------------------------------------------


def create_location_problem(account_id: str, access_key: str, region: str, bucket: str, bucket_arn: str,
                            role_arn: str, location_arn: str) -> str | None:
    """None when CreateLocationS3 may succeed, else the InvalidRequestException message.

    The same for a location that will be a source or a destination, push or pull: a bucket of another
    account needs its bucket policy *and* the caller's and the role's identity policies to allow
    s3:ListBucket (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html);
    a bucket of the caller's own account needs either (``policy_eval.decide``)."""
    import access

    owner = access.bucket_owner(bucket)
    if owner is None:
        return (f"DataSync location access test failed: could not perform s3:ListObjectsV2 on bucket {bucket}. "
                "The specified bucket does not exist.")
    bucket_account, backend = owner
    session, _why = assume_datasync_role(role_arn, account_id, location_arn)
    if session is None:
        return ASSUME_ROLE_FAILED
    who = caller(account_id, access_key, region)
    for principal, policies, boundary in ((who.principal, who.identity_policies, who.boundary),
                                          (session.principal, list(session.view.policies), session.boundary)):
        decision = s3_decision(principal, policies, "s3:ListBucket", bucket_arn, bucket, bucket_account, backend,
                               boundary=boundary)
        if not decision:
            return access_test_failed(bucket)
    return None


# --- DataSync: tasks -----------------------------------------------------------------


def filter_problem(filters: Any, name: str) -> str | None:
    for index, rule in enumerate(filters or [], start=1):
        value = rule.get("Value") if isinstance(rule, dict) else None
        if isinstance(value, str) and len(value) > FILTER_VALUE_MAX_CHARS:
            return (f"1 validation error detected: Value at '{name[:1].lower()}{name[1:]}.{index}.member.value' "
                    f"failed to satisfy constraint: Member must have length less than or equal to "
                    f"{FILTER_VALUE_MAX_CHARS}")
    return None


_LOG_GROUP = re.compile(r"^arn:[a-z-]+:logs:[a-z0-9-]*:[0-9]{12}:log-group:([^:*]*)(:\*)?$")


def log_group_problem(task_mode: str, log_group_arn: str | None) -> str | None:
    if task_mode != "ENHANCED" or not log_group_arn:
        return None
    match = _LOG_GROUP.match(log_group_arn)
    if match and match.group(1) == ENHANCED_LOG_GROUP:
        return None
    return (f"Invalid CloudWatchLogGroupArn {log_group_arn}: Enhanced mode tasks can only log to the "
            f"log group {ENHANCED_LOG_GROUP} (for example arn:aws:logs:<region>:<account>:log-group:"
            f"{ENHANCED_LOG_GROUP}:*).")


def verify_mode_problem(requested_options: dict[str, Any] | None, destination_storage_class: str | None) -> str | None:
    if not requested_options or requested_options.get("VerifyMode") != "POINT_IN_TIME_CONSISTENT":
        return None
    if (destination_storage_class or "STANDARD") in GLACIER_CLASSES:
        return (f"VerifyMode POINT_IN_TIME_CONSISTENT is not supported when transferring to the "
                f"{destination_storage_class} storage class (S3 Glacier Flexible Retrieval or S3 Glacier "
                "Deep Archive); use ONLY_FILES_TRANSFERRED or NONE.")
    return None


def region_problem(task_region: str, source_region: str, destination_region: str) -> str | None:
    partitions = {_partition(r) for r in (task_region, source_region, destination_region)}
    if len(partitions) > 1:
        return (f"Locations in {source_region} and {destination_region} and a task in {task_region} are in "
                f"different AWS partitions ({', '.join(sorted(partitions))}); DataSync transfers only "
                "between Regions of the same partition.")
    if source_region != destination_region:
        opt_in = sorted({r for r in (source_region, destination_region) if r in OPT_IN_REGIONS})
        if opt_in:
            return (f"DataSync does not support transfers between AWS Regions when one of them is an "
                    f"opt-in Region ({', '.join(opt_in)}); source {source_region}, destination "
                    f"{destination_region}.")
    return None


# --- run-time setting ------------------------------------------------------------------


def _install_setting() -> None:
    """Add iamPropagationSeconds to /ferry-emulator/config (transfer.Settings serves it)."""
    import transfer

    cls = type(transfer.SETTINGS)
    if getattr(cls, "_ferry_rules", False):
        return
    original_json, original_update = cls.to_json, cls.update

    def to_json(self: Any) -> dict[str, Any]:
        out = original_json(self)
        out["iamPropagationSeconds"] = SETTINGS.iam_propagation_seconds
        return out

    def update(self: Any, body: dict[str, Any]) -> dict[str, Any]:
        if "iamPropagationSeconds" in body:
            value = float(body["iamPropagationSeconds"])
            if value < 0:
                raise ValueError("iamPropagationSeconds must not be negative")
            SETTINGS.iam_propagation_seconds = value
        original_update(self, body)
        return self.to_json()

    cls.to_json, cls.update = to_json, update
    cls._ferry_rules = True


# --- moto's own bucket-policy check ----------------------------------------------------------


def _bucket_permission(self: Any, action: str, resource: str) -> Any:
    """moto's FakeBucket.get_permission, with conditions evaluated.

    moto denies object requests when a bucket-policy statement for Principal "*"
    denies the action, ignoring its Condition; AWS's recommended TLS-only
    statement would then deny everything. Statements for "*" are evaluated here
    with the keys every SDK request carries (aws:SecureTransport true)."""
    from moto.iam.access_control import PermissionResult

    if self.policy is None:
        return PermissionResult.NEUTRAL
    anyone = Principal(account=None, arns=set())
    request = Request(anyone, action, resource, {"aws:SecureTransport": True})
    effect = policy_eval.evaluate([self.policy], request, resource_policy=True)
    if effect == policy_eval.DENY:
        return PermissionResult.DENIED
    if effect == policy_eval.ALLOW:
        return PermissionResult.PERMITTED
    return PermissionResult.NEUTRAL


def _install_bucket_permission() -> None:
    from moto.s3.models import FakeBucket

    FakeBucket.get_permission = _bucket_permission  # type: ignore[method-assign]
