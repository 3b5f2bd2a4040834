"""KMS as AWS enforces it, where Ferry and DataSync meet it.

moto keeps KMS keys, aliases and key policies but checks almost nothing: any
principal, any size and any policy are accepted, and its only authorization is a
DescribeKey refusal whenever a key policy has a Deny for ``kms:*`` (whoever it
names, whatever its conditions). This module owns

* the key-policy rules of ``PutKeyPolicy`` and ``CreateKey`` (``install``): at
  most 32 KB (``LimitExceededException``), every AWS principal must exist
  (``MalformedPolicyDocumentException``), and unless
  ``BypassPolicyLockoutSafetyCheck`` is true the new policy must still let the
  caller call ``kms:PutKeyPolicy`` (the lockout safety check);
* the authorization of the key-policy calls Ferry makes (``DescribeKey``,
  ``GetKeyPolicy``, ``PutKeyPolicy``) against the key policy and the caller's
  IAM policies, in place of moto's check;
* ``decide``: KMS's decision for a principal, an action and a key (the key
  policy is the key's resource policy; a statement for the account root only
  delegates to IAM policies; across accounts the key policy and the
  principal's IAM policies must both allow; a role's permissions boundary
  limits all but a key-policy grant to the role session itself);
* ``resolve``: which key a ``KMSMasterKeyID`` or an object's key id names (a key
  ARN names itself; a bare key id or an alias resolves in the *requester's*
  account; none means the AWS managed key ``aws/s3`` of the bucket owner);
* ``role_key_access``: S3 calling KMS for DataSync's role (``kms:Decrypt`` to
  read an SSE-KMS object, ``kms:GenerateDataKey`` to write one), with the
  context S3 sends (``kms:ViaService``, ``kms:CallerAccount``, the object's ARN
  as encryption context).

Sources are in tests/emulator/README.md ("KMS").
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from moto.core.exceptions import JsonRESTError

import policy_eval
from policy_eval import (ALLOW, BOUNDARY, IDENTITY_POLICY, RESOURCE_POLICY, Decision, Principal, Request,
                         all_allow, explicit_deny, implicit_deny)

KEY_POLICY_MAX_BYTES = 32 * 1024
KMS_ALGORITHMS = ("aws:kms", "aws:kms:dsse")
S3_MANAGED_ALIAS = "alias/aws/s3"

INVALID_PRINCIPALS = "Policy contains a statement with one or more invalid principals."
LOCKOUT = "The new key policy will not allow you to update the key policy in the future."
# Not published by AWS (the emulator's wording):
NOT_JSON = "The key policy is not a valid JSON document."
NO_PRINCIPAL = "Policy contains a statement without a Principal element."
TOO_LARGE = f"The key policy exceeds the maximum size of {KEY_POLICY_MAX_BYTES} bytes."

_ACCOUNT = re.compile(r"^\d{12}$")
_IAM_ARN = re.compile(r"^arn:(aws[a-z-]*):(iam|sts)::(\d{12}):(.+)$")
_KEY_ARN = re.compile(r"^arn:(aws[a-z-]*):kms:([a-z0-9-]+):(\d{12}):(key|alias)/(.+)$")


class KmsError(JsonRESTError):
    """A KMS error answer: HTTP 400 ``{"__type": code, "message": ...}``."""

    code = 400

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(error_type, message)


# --- keys ----------------------------------------------------------------------------------


def _backend(account: str, region: str) -> Any:
    from moto.kms.models import kms_backends

    return kms_backends[account][region]


def _partition(region: str) -> str:
    from moto.utilities.utils import get_partition

    return get_partition(region)


def aws_managed_s3_policy(account: str, region: str) -> dict[str, Any]:
    """The key policy of the AWS managed key aws/s3 (KMS developer guide, AWS managed keys):
    every principal of the account may use it through S3, the account may read its metadata."""
    return {
        "Version": "2012-10-17",
        "Id": "auto-s3-2",
        "Statement": [
            {"Sid": "Allow access through S3 for all principals in the account that are authorized to use S3",
             "Effect": "Allow", "Principal": {"AWS": "*"},
             "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
             "Resource": "*",
             "Condition": {"StringEquals": {"kms:CallerAccount": account,
                                            "kms:ViaService": f"s3.{region}.amazonaws.com"}}},
            {"Sid": "Allow direct access to key metadata to the account", "Effect": "Allow",
             "Principal": {"AWS": f"arn:{_partition(region)}:iam::{account}:root"},
             "Action": ["kms:Describe*", "kms:Get*", "kms:List*"], "Resource": "*"},
        ],
    }


def s3_managed_key(account: str, region: str) -> Any:
    """The account's AWS managed key for S3 in the Region, created on first use as S3 does."""
    backend = _backend(account, region)
    for key in backend.keys.values():
        if S3_MANAGED_ALIAS in getattr(key, "aliases", {}):
            break
    else:
        key_id = backend.get_key_id_from_alias(S3_MANAGED_ALIAS)  # moto creates reserved aliases on lookup
        key = backend.keys[key_id]
    if getattr(key, "_ferry_managed", False) is False:
        key.policy = json.dumps(aws_managed_s3_policy(account, region))
        key.key_manager = "AWS"
        key.description = "Default key that protects my S3 objects when no other key is defined"
        key._ferry_managed = True
    return key


@dataclass
class Resolved:
    key: Any  # moto Key, None when it does not exist
    arn: str  # the key (or alias) ARN as KMS names it in messages


def resolve(key_id: str | None, requester: str, region: str, bucket_owner: str) -> Resolved:
    """The key an S3 request uses. A key or alias ARN names its own account and Region; a
    bare key id or ``alias/...`` resolves in the requester's account (S3's PutBucketEncryption
    and PutObject documentation); no key id means the bucket owner's aws/s3 key."""
    partition = _partition(region)
    if not key_id:
        key = s3_managed_key(bucket_owner, region)
        return Resolved(key, key.arn)
    match = _KEY_ARN.match(key_id)
    if match:
        _, region, account, kind, name = match.groups()
    else:
        account = requester
        kind, name = ("alias", key_id[len("alias/"):]) if key_id.startswith("alias/") else ("key", key_id)
    backend = _backend(account, region)
    arn = f"arn:{partition}:kms:{region}:{account}:{kind}/{name}"
    if kind == "alias":
        if f"alias/{name}" == S3_MANAGED_ALIAS:
            key = s3_managed_key(account, region)
            return Resolved(key, key.arn)
        for key in backend.keys.values():
            if f"alias/{name}" in getattr(key, "aliases", {}):
                return Resolved(key, key.arn)
        return Resolved(None, arn)
    key = backend.keys.get(name)
    return Resolved(key, key.arn if key is not None else arn)


def state_problem(resolved: Resolved) -> tuple[str, str] | None:
    """(KMS error type, message) when the key cannot be used at all."""
    key = resolved.key
    if key is None:
        if ":alias/" in resolved.arn:
            return "NotFoundException", f"Alias {resolved.arn} is not found."
        return "NotFoundException", f"Key '{resolved.arn}' does not exist"
    if key.key_state == "Disabled":
        return "DisabledException", f"{key.arn} is disabled."
    if key.key_state == "PendingDeletion":
        return "KMSInvalidStateException", f"{key.arn} is pending deletion."
    if key.key_state != "Enabled":
        return "KMSInvalidStateException", f"{key.arn} is {key.key_state}."
    return None


# --- the decision --------------------------------------------------------------------------


def context(principal: Principal, key_account: str, via_service: str | None = None,
            object_arn: str | None = None) -> dict[str, Any]:
    """Condition keys of a KMS request by an IAM principal (directly, or by S3 on its behalf)."""
    out: dict[str, Any] = {"aws:SecureTransport": True, "aws:ResourceAccount": key_account}
    if principal.account:
        out["kms:CallerAccount"] = principal.account
        out["aws:PrincipalAccount"] = principal.account
        named = sorted(a for a in principal.arns if ":role/" in a or ":user/" in a)
        if named:
            out["aws:PrincipalArn"] = named[0]
    if via_service:
        out["kms:ViaService"] = via_service
    if object_arn:
        # S3 uses the object's ARN as encryption context (no S3 Bucket Key).
        out["kms:EncryptionContext:aws:s3:arn"] = object_arn
        out["kms:EncryptionContextKeys"] = ["aws:s3:arn"]
    return out


def decide(principal: Principal, identity_policies: list[Any] | None, action: str, key_arn: str,
           key_account: str, key_policy: Any, condition_keys: dict[str, Any],
           boundary: list[Any] | None = None) -> Decision:
    """KMS's answer for ``action`` on a key ("Determining access to a KMS key").

    The key policy is the key's resource policy. A statement that names the
    principal itself (or ``*``) allows it; a statement that names only its
    account (``arn:aws:iam::ID:root`` or the account id) enables IAM policies,
    so the principal's IAM policies must allow the action on the key ARN too.
    Across accounts both the key policy and the IAM policies must allow. An
    explicit Deny anywhere wins. ``identity_policies`` None: an identity the
    emulator does not know, taken as allowed everything (see README).
    ``boundary``: the documents of the principal's permissions boundary (None: it has none)."""
    if boundary is not None:
        return _decide_bounded(principal, identity_policies, action, key_arn, key_account, key_policy,
                               condition_keys, boundary)
    _, _, named, direct, identity = _verdicts(principal, identity_policies, action, key_arn, key_policy,
                                              condition_keys, bounded=False)
    denied = explicit_deny([(RESOURCE_POLICY, named), (IDENTITY_POLICY, identity)])
    if denied is not None:
        return denied
    if principal.account == key_account:
        if _granted(named, direct, identity):
            return Decision(True, "")
        return _not_granted(action, named)
    return all_allow(action, [(RESOURCE_POLICY, named), (IDENTITY_POLICY, identity)])


def _verdicts(principal: Principal, identity_policies: list[Any] | None, action: str, key_arn: str,
              key_policy: Any, condition_keys: dict[str, Any],
              bounded: bool) -> tuple[Request, list[Any], str | None, str | None, str | None]:
    """(the request, the key-policy documents, and ``evaluate``'s answers for them) of ``decide``:
    the key policy for the principal as named (its account too), the key policy for the principal's
    own ARNs alone (a direct grant, no IAM policies needed), and the principal's IAM policies (ALLOW
    when unknown). ``bounded``: the principal has a permissions boundary."""
    request = Request(principal, action, key_arn, condition_keys)
    documents = [key_policy] if key_policy is not None else []
    named = policy_eval.evaluate(documents, request, resource_policy=True, bounded=bounded)
    itself = Principal(account=None, arns=set(principal.arns), service=principal.service,
                       partition=principal.partition)
    direct = policy_eval.evaluate(documents, Request(itself, action, key_arn, condition_keys), resource_policy=True,
                                  bounded=bounded)
    identity = ALLOW if identity_policies is None else policy_eval.evaluate(identity_policies, request,
                                                                            resource_policy=False)
    return request, documents, named, direct, identity


def _granted(named: str | None, direct: str | None, identity: str | None) -> bool:
    """Whether, in the key's account, the key policy grants directly or enables an IAM policy that allows."""
    return direct == ALLOW or (named == ALLOW and identity == ALLOW)


def _not_granted(action: str, named: str | None) -> Decision:
    """The refusal in the key's account when ``_granted`` is false."""
    return implicit_deny(action, IDENTITY_POLICY if named == ALLOW else RESOURCE_POLICY)


def _decide_bounded(principal: Principal, identity_policies: list[Any] | None, action: str, key_arn: str,
                    key_account: str, key_policy: Any, condition_keys: dict[str, Any],
                    boundary: list[Any]) -> Decision:
    """``decide`` for a principal with a permissions boundary. As for any resource policy
    (``policy_eval._decide_bounded``): only a key-policy statement naming the role session ARN
    itself allows past the boundary (in the key's account); a statement naming the role ARN or
    ``*``, and IAM policies enabled by a statement for the account, are limited by the boundary;
    a key-policy ``Deny`` with ``NotPrincipal`` denies a principal that has a boundary."""
    request, documents, named, direct, identity = _verdicts(principal, identity_policies, action, key_arn,
                                                            key_policy, condition_keys, bounded=True)
    limit = policy_eval.evaluate(boundary, request, resource_policy=False)
    denied = explicit_deny([(RESOURCE_POLICY, named), (RESOURCE_POLICY, direct), (IDENTITY_POLICY, identity),
                            (BOUNDARY, limit)])
    if denied is not None:
        return denied
    if principal.account == key_account:
        sessions = policy_eval.session_arns(principal)
        if sessions and policy_eval.evaluate(documents, request, resource_policy=True, bounded=True,
                                             exactly=sessions) == ALLOW:
            return Decision(True, "")
        if _granted(named, direct, identity):
            return all_allow(action, [(BOUNDARY, limit)])
        return _not_granted(action, named)
    return all_allow(action, [(RESOURCE_POLICY, named), (IDENTITY_POLICY, identity), (BOUNDARY, limit)])


def denied_text(principal: Principal, action: str, key_arn: str, decision: Decision) -> str:
    """KMS's AccessDeniedException message."""
    return f"User: {principal.primary_arn} is not authorized to perform: {action} on resource: {key_arn} {decision.reason}"


# --- DataSync's role through S3 --------------------------------------------------------------


@dataclass
class KeyAccess:
    key: Any  # the moto Key when usable
    arn: str
    error: tuple[str, str] | None  # (KMS error type, message) when refused


def role_key_access(session: Any, action: str, key_id: str | None, region: str, bucket_owner: str,
                    object_arn: str) -> KeyAccess:
    """S3 calling KMS ``action`` for DataSync's role session on an object of a bucket in ``region``."""
    principal = session.principal if session is not None else Principal()
    requester = principal.account or bucket_owner
    resolved = resolve(key_id, requester, region, bucket_owner)
    problem = state_problem(resolved)
    if problem:
        return KeyAccess(None, resolved.arn, problem)
    key = resolved.key
    if session is None:
        return KeyAccess(key, key.arn, None)
    keys = context(principal, key.account_id, via_service=f"s3.{region}.amazonaws.com", object_arn=object_arn)
    decision = decide(principal, list(session.view.policies), action, key.arn, key.account_id,
                      policy_eval.parse(key.policy), keys, session.boundary)
    if not decision:
        return KeyAccess(None, key.arn, ("AccessDeniedException", denied_text(principal, action, key.arn, decision)))
    return KeyAccess(key, key.arn, None)


# --- key policies: PutKeyPolicy and CreateKey ---------------------------------------------------


def _principal_exists(value: Any) -> bool:
    """Whether a ``{"AWS": ...}`` value names a principal that exists (and IAM shows KMS: roles
    follow iamPropagationSeconds like DataSync's checks)."""
    import rules

    if not isinstance(value, str):
        return False
    if value == "*" or _ACCOUNT.match(value):
        return True
    match = _IAM_ARN.match(value)
    if not match:
        return False
    partition, service, account, resource = match.groups()
    iam = rules._iam(account, partition)
    if service == "iam":
        if resource == "root":
            return True
        if resource.startswith("role/"):
            return rules.role_view(value) is not None
        if resource.startswith("user/"):
            return any(user.arn == value for user in iam.users.values())
        return False
    parts = resource.split("/")
    if parts[0] == "assumed-role" and len(parts) == 3:
        return rules.role_view_by_any_arn(f"arn:{partition}:iam::{account}:role/{parts[1]}", iam) is not None
    return False


def policy_problem(raw: Any) -> tuple[str, str] | None:
    """(error type, message) when a key policy breaks KMS's size, syntax or principal rules."""
    text = raw if isinstance(raw, str) else ""
    if len(text.encode("utf-8")) > KEY_POLICY_MAX_BYTES:
        return "LimitExceededException", TOO_LARGE
    try:
        document = json.loads(text)
    except ValueError:
        return "MalformedPolicyDocumentException", NOT_JSON
    if not isinstance(document, dict):
        return "MalformedPolicyDocumentException", NOT_JSON
    for statement in policy_eval.as_list(document.get("Statement")):
        if not isinstance(statement, dict):
            return "MalformedPolicyDocumentException", NOT_JSON
        spec = statement.get("Principal", statement.get("NotPrincipal"))
        if spec is None:
            return "MalformedPolicyDocumentException", NO_PRINCIPAL
        if spec == "*":
            continue
        if not isinstance(spec, dict) or not spec:
            return "MalformedPolicyDocumentException", INVALID_PRINCIPALS
        for value in policy_eval.as_list(spec.get("AWS")):
            if not _principal_exists(value):
                return "MalformedPolicyDocumentException", INVALID_PRINCIPALS
    return None


def _caller(response: Any) -> Any:
    import rules

    return rules.caller(response.current_account, response.get_access_key(), response.region)


def _lockout_problem(response: Any, key_arn: str, key_account: str, policy: str) -> tuple[str, str] | None:
    who = _caller(response)
    keys = context(who.principal, key_account)
    decision = decide(who.principal, who.identity_policies, "kms:PutKeyPolicy", key_arn, key_account,
                      policy_eval.parse(policy), keys, who.boundary)
    return None if decision else ("MalformedPolicyDocumentException", LOCKOUT)


def _params(response: Any) -> dict[str, Any]:
    try:
        params = json.loads(response.body or "{}")
    except ValueError:
        return {}
    return params if isinstance(params, dict) else {}


def _existing_key(response: Any, key_id: Any) -> Any:
    """The caller's key named by ``key_id`` (id, ARN, alias), None when moto would refuse it."""
    if not isinstance(key_id, str):
        return None
    backend = response.kms_backend
    try:
        return backend.keys.get(backend.any_id_to_key_id(key_id))
    except Exception:
        return None


def _authorize(response: Any, action: str, key: Any) -> None:
    """The caller must be allowed ``action`` on the key (key policy and IAM policies)."""
    who = _caller(response)
    keys = context(who.principal, key.account_id)
    decision = decide(who.principal, who.identity_policies, action, key.arn, key.account_id,
                      policy_eval.parse(key.policy), keys, who.boundary)
    if not decision:
        raise KmsError("AccessDeniedException", denied_text(who.principal, action, key.arn, decision))


def _wrap(cls: Any, name: str, action: str | None, check_policy: bool) -> None:
    original = getattr(cls, name)
    if getattr(original, "_ferry_kms", False):
        return

    def wrapper(self: Any) -> Any:
        params = _params(self)
        key = _existing_key(self, params.get("KeyId")) if action else None
        if key is not None:
            _authorize(self, action, key)
        if check_policy and params.get("Policy") is not None and (key is not None or action is None):
            policy = params["Policy"]
            problem = policy_problem(policy)
            if problem is None and params.get("BypassPolicyLockoutSafetyCheck") is not True:
                if key is not None:
                    arn, account = key.arn, key.account_id
                else:  # CreateKey: the key does not exist yet
                    account = self.current_account
                    arn = f"arn:{_partition(self.region)}:kms:{self.region}:{account}:key/*"
                problem = _lockout_problem(self, arn, account, policy)
            if problem:
                raise KmsError(*problem)
        return original(self)

    wrapper._ferry_kms = True  # type: ignore[attr-defined]
    wrapper.__name__ = original.__name__
    setattr(cls, name, wrapper)


def _install_aws_managed_keys() -> None:
    """Keys moto creates for reserved aliases (alias/aws/s3, ...) are AWS managed keys; aws/s3 gets
    AWS's key policy however it is first looked up."""
    from moto.kms.models import KmsBackend

    original = KmsBackend._generate_default_keys
    if getattr(original, "_ferry_kms", False):
        return

    def generate_default_keys(self: Any, alias_name: str) -> Any:
        key_id = original(self, alias_name)
        key = self.keys.get(key_id) if key_id else None
        if key is not None:
            key.key_manager = "AWS"
            if alias_name == S3_MANAGED_ALIAS:
                s3_managed_key(self.account_id, self.region_name)
        return key_id

    generate_default_keys._ferry_kms = True  # type: ignore[attr-defined]
    KmsBackend._generate_default_keys = generate_default_keys  # type: ignore[method-assign]


def install() -> None:
    """Put the key-policy rules and the authorization in front of moto's KMS."""
    from moto.kms.responses import KmsResponse

    _install_aws_managed_keys()

    _wrap(KmsResponse, "create_key", None, check_policy=True)
    _wrap(KmsResponse, "put_key_policy", "kms:PutKeyPolicy", check_policy=True)
    _wrap(KmsResponse, "get_key_policy", "kms:GetKeyPolicy", check_policy=False)
    _wrap(KmsResponse, "describe_key", "kms:DescribeKey", check_policy=False)
    # moto's own DescribeKey check (any Deny for kms:* refuses everyone) is replaced by _authorize.
    KmsResponse._validate_key_policy = lambda self, key_id, action: None  # type: ignore[method-assign]
