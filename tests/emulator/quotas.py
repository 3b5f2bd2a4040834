"""AWS's default service quotas, enforced per account (and per Region where AWS scopes them so).

This module owns

* the quotas the emulator enforces (``QUOTAS``): AWS's default, whether AWS scopes it per Region,
  whether a quota increase can raise it and how far, and the source of each;
* the values set per account (and Region) through ``/ferry-emulator/quotas``, as a quota increase
  would (``LIMITS``; ``control_get``/``control_set``/``control_delete`` serve the endpoint);
* every check against them, one place per quota:
  - DataSync tasks per account and Region (``datasync_task_problem``, called by CreateTask),
  - tags per DataSync resource (``datasync_tags_problem``: CreateLocationS3, CreateTask,
    StartTaskExecution, TagResource),
  - the size of a task execution's manifest (``datasync_manifest_problem``, called by manifests.py
    when an execution reads its manifest),
  - IAM roles per account, the role trust policy length, the role's inline policies together and
    tags per role (``install`` wraps moto's CreateRole, UpdateAssumeRolePolicy, PutRolePolicy and
    TagRole; GetAccountSummary answers the values in force),
  - tags per S3 bucket (PutBucketTagging).

Every quota, its error and what of it is unconfirmed are in tests/emulator/README.md ("Quotas").
"""

from __future__ import annotations

import functools
import inspect
import re
import threading
from dataclasses import dataclass
from typing import Any, Callable

IAM_QUOTAS_URL = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html"


@dataclass(frozen=True)
class Quota:
    name: str  # the emulator's name, used by /ferry-emulator/quotas
    service: str  # the SigV4 signing name of the service that enforces it
    aws_name: str  # what AWS's quota page calls it
    default: int
    regional: bool  # per account and Region (else per account)
    adjustable: bool  # whether AWS raises it on request
    maximum: int | None  # the highest value AWS grants (None: not published; not adjustable: the default)
    unit: str
    source: str

    def to_json(self) -> dict[str, Any]:
        return {
            "quota": self.name, "service": self.service, "awsName": self.aws_name, "default": self.default,
            "scope": "account+region" if self.regional else "account", "adjustable": self.adjustable,
            "maximum": self.maximum, "unit": self.unit, "source": self.source,
        }


DATASYNC_TASKS = Quota(
    "DataSyncTasks", "datasync", "Maximum number of tasks you can create", 100, regional=True, adjustable=True,
    maximum=None, unit="tasks per account and Region",
    source="https://docs.aws.amazon.com/datasync/latest/userguide/datasync-limits.html")
DATASYNC_TAGS = Quota(
    "DataSyncResourceTags", "datasync", "Tags per resource", 50, regional=False, adjustable=False, maximum=50,
    unit="tags per location, task or task execution",
    source="https://docs.aws.amazon.com/datasync/latest/userguide/API_TagResource.html")
IAM_ROLES = Quota(
    "IamRoles", "iam", "Roles per account", 1000, regional=False, adjustable=True, maximum=5000,
    unit="roles per account", source=IAM_QUOTAS_URL)
IAM_TRUST_POLICY = Quota(
    "IamRoleTrustPolicyLength", "iam", "Role trust policy length", 2048, regional=False, adjustable=True,
    maximum=4096, unit="characters of a role's trust policy, white space not counted", source=IAM_QUOTAS_URL)
IAM_INLINE_POLICIES = Quota(
    "IamRoleInlinePolicySize", "iam", "Role policy size", 10240, regional=False, adjustable=False, maximum=10240,
    unit="characters of all of a role's inline policies together, white space not counted", source=IAM_QUOTAS_URL)
IAM_ROLE_TAGS = Quota(
    "IamRoleTags", "iam", "Tags per role", 50, regional=False, adjustable=False, maximum=50,
    unit="tags per role", source="https://docs.aws.amazon.com/IAM/latest/UserGuide/id_tags.html")
# "Maximum size for a manifest file with Enhanced mode tasks | 20 GB | No" (DataSync quotas). "GB" is
# read as 10^9 bytes (the smaller reading); AWS documents no limit for Basic mode tasks, and the emulator
# applies this one to both modes (the strict reading; see README "Manifests").
DATASYNC_MANIFEST_SIZE = Quota(
    "DataSyncManifestSize", "datasync", "Maximum size for a manifest file with Enhanced mode tasks",
    20 * 10**9, regional=True, adjustable=False, maximum=20 * 10**9, unit="bytes of a task execution's manifest",
    source="https://docs.aws.amazon.com/datasync/latest/userguide/datasync-limits.html")
S3_BUCKET_TAGS = Quota(
    "S3BucketTags", "s3", "Tags per bucket", 50, regional=False, adjustable=False, maximum=50,
    unit="tags per bucket", source="https://docs.aws.amazon.com/AmazonS3/latest/userguide/tagging.html")

QUOTAS: dict[str, Quota] = {q.name: q for q in (
    DATASYNC_TASKS, DATASYNC_TAGS, DATASYNC_MANIFEST_SIZE, IAM_ROLES, IAM_TRUST_POLICY, IAM_INLINE_POLICIES,
    IAM_ROLE_TAGS, S3_BUCKET_TAGS)}

_ACCOUNT = re.compile(r"^[0-9]{12}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]+$")


# --- the values in force ------------------------------------------------------------------


class Limits:
    """The values set through /ferry-emulator/quotas, by (quota, account, region); region is ""
    for quotas AWS scopes per account. Anything not set is AWS's default. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[tuple[str, str, str], int] = {}

    def value(self, quota: Quota, account: str, region: str = "") -> int:
        key = (quota.name, account, region if quota.regional else "")
        with self._lock:
            return self._values.get(key, quota.default)

    @staticmethod
    def parse(body: Any) -> tuple[Quota, str, str, int | None]:
        """(quota, account, region or "", value or None) of one change ``{"account", "region" (quotas
        per Region only), "quota", "value"}``; ValueError when the change is not one AWS would grant."""
        if not isinstance(body, dict):
            raise ValueError("a quota change is an object {account, region, quota, value}")
        unknown = set(body) - {"account", "region", "quota", "value"}
        if unknown:
            raise ValueError(f"unknown field(s) {', '.join(sorted(unknown))}; a quota change has account, "
                             "region, quota and value")
        name = body.get("quota")
        quota = QUOTAS.get(name) if isinstance(name, str) else None
        if quota is None:
            raise ValueError(f"unknown quota {name!r}; quotas: {', '.join(QUOTAS)}")
        account = body.get("account")
        if not isinstance(account, str) or not _ACCOUNT.match(account):
            raise ValueError("account must be a 12-digit account id (quotas are set per account)")
        region = body.get("region")
        if quota.regional:
            if not isinstance(region, str) or not _REGION.match(region):
                raise ValueError(f"{quota.name} is a quota per account and Region: region (e.g. us-east-1) "
                                 "is required")
        elif region is not None:
            raise ValueError(f"{quota.name} is a quota per account, not per Region: leave region out")
        if "value" not in body:
            raise ValueError("value is required (null goes back to AWS's default)")
        value = body["value"]
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError("value must be a whole number of at least 0 (or null for AWS's default)")
            if quota.maximum is not None and value > quota.maximum:
                if quota.adjustable:
                    raise ValueError(f"{quota.name}: AWS raises this quota to at most {quota.maximum}")
                raise ValueError(f"{quota.name}: AWS does not adjust this quota ({quota.default}); the emulator "
                                 "accepts only lower values")
        return quota, account, region or "", value

    def set(self, changes: list[tuple[Quota, str, str, int | None]]) -> list[dict[str, Any]]:
        """Applies parsed changes (``value`` None: back to AWS's default); answers the values now in force."""
        with self._lock:
            for quota, account, region, value in changes:
                key = (quota.name, account, region)
                if value is None:
                    self._values.pop(key, None)
                else:
                    self._values[key] = value
        return [self._entry(q, account, region, self.value(q, account, region)) for q, account, region, _ in changes]

    def clear(self, account: str | None = None) -> None:
        with self._lock:
            if account is None:
                self._values.clear()
            else:
                self._values = {k: v for k, v in self._values.items() if k[1] != account}

    def overrides(self) -> list[dict[str, Any]]:
        with self._lock:
            items = sorted(self._values.items())
        return [self._entry(QUOTAS[name], account, region, value) for (name, account, region), value in items]

    @staticmethod
    def _entry(quota: Quota, account: str, region: str, value: int) -> dict[str, Any]:
        entry: dict[str, Any] = {"account": account}
        if quota.regional:
            entry["region"] = region
        entry.update(quota=quota.name, value=value)
        return entry


LIMITS = Limits()


# --- /ferry-emulator/quotas -----------------------------------------------------------------


def _query_value(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


def control_get(query: dict[str, list[str]]) -> dict[str, Any]:
    """Every quota with the value in force for ``account`` (and ``region``; without them, AWS's
    defaults; a quota per Region without ``region`` shows the default), plus every value set."""
    account, region = _query_value(query, "account"), _query_value(query, "region")
    if account is not None and not _ACCOUNT.match(account):
        raise ValueError("account must be a 12-digit account id")
    if region is not None and not _REGION.match(region):
        raise ValueError("region must be a Region name such as us-east-1")
    quotas = []
    for quota in QUOTAS.values():
        entry = quota.to_json()
        in_force = account is not None and (region is not None or not quota.regional)
        entry["value"] = LIMITS.value(quota, account, region or "") if in_force else quota.default
        quotas.append(entry)
    return {"account": account, "region": region, "quotas": quotas, "overrides": LIMITS.overrides()}


def control_set(body: Any) -> Any:
    """One change or a list of them (all checked before any is made); answers the value(s) now in force."""
    changes = [Limits.parse(change) for change in (body if isinstance(body, list) else [body])]
    answers = LIMITS.set(changes)
    return answers if isinstance(body, list) else answers[0]


def control_delete(query: dict[str, list[str]]) -> dict[str, Any]:
    """Back to AWS's defaults: every value set, or only those of ``account``."""
    account = _query_value(query, "account")
    if account is not None and not _ACCOUNT.match(account):
        raise ValueError("account must be a 12-digit account id")
    LIMITS.clear(account)
    return {"overrides": LIMITS.overrides()}


# --- DataSync -------------------------------------------------------------------------------


def datasync_task_problem(account: str, region: str, existing: int) -> str | None:
    """None when the account may create one more task in ``region`` (it has ``existing``), else
    CreateTask's InvalidRequestException message (AWS does not publish it: the emulator's text)."""
    limit = LIMITS.value(DATASYNC_TASKS, account, region)
    if existing < limit:
        return None
    return (f"Cannot create the task: the account {account} has {existing} tasks in {region}, and the quota "
            f"of tasks per account and Region is {limit}. Delete tasks you no longer need or request a quota "
            "increase.")


def datasync_tags_problem(account: str, count: int) -> str | None:
    """None when a DataSync resource may carry ``count`` tags, else the InvalidRequestException message
    (the emulator's text)."""
    limit = LIMITS.value(DATASYNC_TAGS, account)
    if count <= limit:
        return None
    return f"A resource can have at most {limit} tags; the request would give it {count}."


def datasync_manifest_problem(account: str, region: str, size: int) -> str | None:
    """None when a task of ``account`` in ``region`` may read a manifest of ``size`` bytes, else the
    execution's ErrorDetail (AWS does not publish it: the emulator's text)."""
    limit = LIMITS.value(DATASYNC_MANIFEST_SIZE, account, region)
    if size <= limit:
        return None
    return (f"The manifest is {size} bytes; the quota for a manifest file is {limit} bytes "
            "(Maximum size for a manifest file, not adjustable).")


# --- IAM --------------------------------------------------------------------------------------


# JSON's white space; IAM policy documents hold no other white space characters but U+0085 and U+00A0,
# which are counted (the strict reading).
_WHITE_SPACE = re.compile(r"[ \t\n\r]")


def policy_characters(document: str | bytes | None) -> int:
    """The size of an IAM policy as IAM counts it against its quotas: characters, white space not
    counted ("IAM doesn't count white space when calculating the size of a policy against these limits")."""
    if document is None:
        return 0
    text = document.decode("utf-8", "replace") if isinstance(document, bytes) else str(document)
    return len(_WHITE_SPACE.sub("", text))


def _limit_exceeded(message: str) -> Exception:
    from moto.iam.exceptions import LimitExceededException

    return LimitExceededException(message)  # 409 LimitExceeded, as botocore's IAM model says


def _trust_policy_problem(backend: Any, document: Any) -> Exception | None:
    limit = LIMITS.value(IAM_TRUST_POLICY, backend.account_id)
    if policy_characters(document) <= limit:
        return None
    # AWS's text (kubeflow/kubeflow issue #6687: UpdateAssumeRolePolicy, 409).
    return _limit_exceeded(f"Cannot exceed quota for ACLSizePerRole: {limit}")


def _tag_keys(tags: Any) -> set[str]:
    """Tag keys as IAM compares them: "Tag key-value pairs are not case sensitive, but case is preserved"."""
    return {str(t.get("Key", "")).lower() for t in tags or [] if isinstance(t, dict)}


def _tags_problem(backend: Any, count: int) -> Exception | None:
    limit = LIMITS.value(IAM_ROLE_TAGS, backend.account_id)
    if count <= limit:
        return None
    # The text S3-compatible and IAM-compatible servers answer; AWS does not publish it.
    return _limit_exceeded("The number of tags has reached the maximum limit.")


def _existing_role(backend: Any, name: Any) -> Any:
    try:
        return backend.get_role(name)
    except Exception:
        return None


def _check_create_role(backend: Any, arguments: dict[str, Any]) -> None:
    if _existing_role(backend, arguments.get("role_name")) is not None:
        return  # moto answers EntityAlreadyExists
    problem = (_trust_policy_problem(backend, arguments.get("assume_role_policy_document"))
               or _tags_problem(backend, len(_tag_keys(arguments.get("tags")))))
    if problem:
        raise problem
    limit = LIMITS.value(IAM_ROLES, backend.account_id)
    if len(backend.roles) >= limit:
        raise _limit_exceeded(f"Cannot exceed quota for RolesPerAccount: {limit}")


def _check_trust_policy(backend: Any, arguments: dict[str, Any]) -> None:
    if _existing_role(backend, arguments.get("role_name")) is None:
        return  # moto answers NoSuchEntity
    problem = _trust_policy_problem(backend, arguments.get("policy_document"))
    if problem:
        raise problem


def _check_inline_policies(backend: Any, arguments: dict[str, Any]) -> None:
    role = _existing_role(backend, arguments.get("role_name"))
    if role is None:
        return  # moto answers NoSuchEntity
    name = arguments.get("policy_name")
    total = policy_characters(arguments.get("policy_json"))
    total += sum(policy_characters(document) for policy, document in list(role.policies.items()) if policy != name)
    limit = LIMITS.value(IAM_INLINE_POLICIES, backend.account_id)
    if total > limit:
        # AWS's text (kubernetes/kops issue #12558: PutRolePolicy, LimitExceeded).
        raise _limit_exceeded(f"Maximum policy size of {limit} bytes exceeded for role {role.name}")


def _check_tag_role(backend: Any, arguments: dict[str, Any]) -> None:
    role = _existing_role(backend, arguments.get("role_name"))
    if role is None:
        return  # moto answers NoSuchEntity
    problem = _tags_problem(backend, len(_tag_keys(role.tags) | _tag_keys(arguments.get("tags"))))
    if problem:
        raise problem


def _account_summary(original: Any) -> Any:
    """GetAccountSummary's RolesQuota, AssumeRolePolicySizeQuota and RolePolicySizeQuota: the values in force."""

    @functools.wraps(original.fget)
    def summary_map(self: Any) -> dict[str, Any]:
        out = dict(original.fget(self))
        account = self._iam_backend.account_id
        out["RolesQuota"] = LIMITS.value(IAM_ROLES, account)
        out["AssumeRolePolicySizeQuota"] = LIMITS.value(IAM_TRUST_POLICY, account)
        out["RolePolicySizeQuota"] = LIMITS.value(IAM_INLINE_POLICIES, account)
        return out

    return property(summary_map)


# --- S3 ---------------------------------------------------------------------------------------


def _check_bucket_tags(backend: Any, arguments: dict[str, Any]) -> None:
    import access
    from moto.s3.exceptions import S3ClientError

    owner = access.bucket_owner(arguments.get("bucket_name") or "")
    account = owner[0] if owner else backend.account_id
    limit = LIMITS.value(S3_BUCKET_TAGS, account)
    if len(arguments.get("tags") or {}) > limit:
        # The text S3-compatible servers answer (versitygw tests it against S3); AWS does not publish it.
        raise S3ClientError("BadRequest", f"Bucket tag count cannot be greater than {limit}")


# --- wrapping moto ----------------------------------------------------------------------------

# A check and the change it allows happen under one lock (CreateRole's count and the new role), so
# concurrent calls cannot overshoot a quota.
_LOCK = threading.RLock()


def _guard(cls: Any, name: str, check: Callable[[Any, dict[str, Any]], None]) -> None:
    original = getattr(cls, name)
    if getattr(original, "_ferry_quotas", False):
        return
    signature = inspect.signature(original)

    @functools.wraps(original)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        arguments = dict(signature.bind(self, *args, **kwargs).arguments)
        with _LOCK:
            check(self, arguments)
            return original(self, *args, **kwargs)

    wrapper._ferry_quotas = True  # type: ignore[attr-defined]
    setattr(cls, name, wrapper)


def install() -> None:
    """Wrap moto's IAM and S3 backends (once, before serving; after rules.install)."""
    from moto.iam.models import AccountSummary, IAMBackend
    from moto.s3.models import S3Backend

    _guard(IAMBackend, "create_role", _check_create_role)
    _guard(IAMBackend, "update_assume_role_policy", _check_trust_policy)
    _guard(IAMBackend, "put_role_policy", _check_inline_policies)
    _guard(IAMBackend, "tag_role", _check_tag_role)
    _guard(S3Backend, "put_bucket_tagging", _check_bucket_tags)
    if not getattr(AccountSummary.summary_map.fget, "_ferry_quotas", False):
        AccountSummary.summary_map = _account_summary(AccountSummary.summary_map)  # type: ignore[method-assign]
        AccountSummary.summary_map.fget._ferry_quotas = True  # type: ignore[attr-defined]
