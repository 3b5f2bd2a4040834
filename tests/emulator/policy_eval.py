"""IAM policy language evaluation for the emulator (bucket, trust and identity policies).

moto stores policies but evaluates none of them. DataSync, however, only works when
AWS's evaluation says so, so this module implements the part of the policy
language that AWS documents and that Ferry's documents use:

* statements: ``Effect`` (explicit ``Deny`` wins over any ``Allow``),
  ``Principal``/``NotPrincipal`` (``"*"``, ``{"AWS": ...}`` with account ids,
  ``arn:aws:iam::ID:root``, role/user/assumed-role ARNs, lists;
  ``{"Service": ...}``), ``Action``/``NotAction`` (wildcards, action names
  case-insensitive), ``Resource``/``NotResource`` (wildcards, case-sensitive);
* ``Condition``: String(Not)Equals, StringEqualsIgnoreCase,
  StringNotEqualsIgnoreCase, String(Not)Like, Arn(Not)Equals, Arn(Not)Like,
  Bool, Null, Numeric*, the ``ForAnyValue:``/``ForAllValues:`` set prefixes and
  the ``...IfExists`` suffix. A key the request does not carry makes a
  condition false, except for the negated operators (true), ``...IfExists``
  (true) and ``Null`` (which tests exactly that);
* the decision (``decide``): explicit Deny in any policy denies; within one
  account either an identity-based or a resource-based Allow suffices; across
  accounts both are needed;
* permissions boundaries (``decide``'s ``boundary``): the identity side allows
  only what the boundary allows too; within one account a resource-based Allow
  that names the role *session* ARN itself is not limited by the boundary, any
  other resource-based Allow (the role ARN, the account, ``*``) is; a resource
  policy's ``Deny`` with ``NotPrincipal`` denies every principal that has a
  boundary.

Sources (AWS IAM User Guide):
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policy-eval-denyallow.html
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html
https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policy-eval-basics.html
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Iterable
from urllib.parse import unquote

ALLOW = "Allow"
DENY = "Deny"


# --- documents -------------------------------------------------------------------------


def parse(document: Any) -> dict[str, Any] | None:
    """A policy document from a dict, JSON text, bytes or IAM's URL-encoded text."""
    if document is None:
        return None
    if isinstance(document, dict):
        return document
    text = document.decode("utf-8") if isinstance(document, bytes) else str(document)
    for candidate in (text, unquote(text)):
        try:
            doc = json.loads(candidate)
        except ValueError:
            continue
        return doc if isinstance(doc, dict) else None
    return None


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple, set)) else [value]


def statements(document: Any) -> list[dict[str, Any]]:
    doc = parse(document)
    if not doc:
        return []
    return [s for s in as_list(doc.get("Statement")) if isinstance(s, dict)]


# --- wildcard matching ---------------------------------------------------------------


@lru_cache(maxsize=4096)
def _glob(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    """'*' matches any run of characters, '?' one character, everything else literal."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(regex + r"\Z", re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def glob_match(pattern: str, value: str, ignore_case: bool = False) -> bool:
    return _glob(pattern, ignore_case).match(value) is not None


def arn_like(pattern: str, value: str) -> bool:
    """ArnLike/ArnEquals: each of the six colon-separated parts is matched on its own
    (wildcards do not cross a colon, except in the last part, the resource)."""
    p_parts = pattern.split(":", 5)
    v_parts = value.split(":", 5)
    if len(p_parts) != 6 or len(v_parts) != 6:
        return False
    return all(glob_match(p, v) for p, v in zip(p_parts, v_parts))


# --- the request ---------------------------------------------------------------------


@dataclass
class Principal:
    """Who makes a request.

    ``arns``: every string a policy may use to name this principal exactly (the
    role ARN for a role session, the session ARN, a user ARN); ``account``: its
    account id (a policy naming the account, or its root, names every principal
    of the account); ``service``: a service principal such as
    ``datasync.amazonaws.com`` instead of an AWS principal.
    """

    account: str | None = None
    arns: set[str] = field(default_factory=set)
    service: str | None = None
    partition: str = "aws"

    @classmethod
    def for_service(cls, service: str) -> "Principal":
        return cls(service=service)

    @classmethod
    def for_role(cls, role_arn: str, session_arn: str | None = None) -> "Principal":
        parts = role_arn.split(":")
        arns = {role_arn}
        if session_arn:
            arns.add(session_arn)
        return cls(account=parts[4] if len(parts) > 4 else None, arns=arns,
                   partition=parts[1] if len(parts) > 1 else "aws")

    @property
    def primary_arn(self) -> str:
        if self.service:
            return self.service
        for arn in sorted(self.arns, key=lambda a: (":assumed-role/" not in a, a)):
            return arn
        return f"arn:{self.partition}:iam::{self.account}:root"


@dataclass
class Request:
    principal: Principal
    action: str
    resource: str | None = None
    context: dict[str, Any] = field(default_factory=dict)  # condition key -> value or list

    def key(self, name: str) -> list[str] | None:
        """The values of a condition key (key names are case-insensitive), None when absent."""
        lowered = name.lower()
        for key, value in self.context.items():
            if key.lower() == lowered:
                if value is None:
                    return None
                return [_text(v) for v in as_list(value)]
        return None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --- statements ----------------------------------------------------------------------


def _names_principal(spec: Any, principal: Principal) -> bool:
    if spec == "*":
        return True
    if not isinstance(spec, dict):
        return False
    if principal.service:
        return any(v == "*" or v == principal.service for v in as_list(spec.get("Service")))
    for value in as_list(spec.get("AWS")):
        if not isinstance(value, str):
            continue
        if value == "*" or value in principal.arns:
            return True
        if principal.account and value in (principal.account, f"arn:{principal.partition}:iam::{principal.account}:root"):
            return True
    return False


def _matches_action(patterns: Iterable[Any], action: str) -> bool:
    return any(isinstance(p, str) and glob_match(p, action, ignore_case=True) for p in patterns)


def _matches_resource(patterns: Iterable[Any], resource: str) -> bool:
    return any(isinstance(p, str) and glob_match(p, resource) for p in patterns)


def _names_exactly(spec: Any, names: set[str]) -> bool:
    """Whether a ``Principal`` lists one of ``names`` itself (not ``*``, not an account)."""
    if not isinstance(spec, dict):
        return False
    return any(isinstance(v, str) and v in names for v in as_list(spec.get("AWS")))


def statement_applies(statement: dict[str, Any], request: Request, resource_policy: bool,
                      bounded: bool = False, exactly: set[str] | None = None) -> bool:
    """Whether a statement covers the request (principal, action, resource, conditions).

    ``bounded``: the principal has a permissions boundary, so a resource-policy ``Deny`` with
    ``NotPrincipal`` covers it whatever the ``NotPrincipal`` names (AWS's boundaries page).
    ``exactly``: only a ``Principal`` listing one of these ARNs itself names the principal."""
    if resource_policy:
        if exactly is not None:
            if not _names_exactly(statement.get("Principal"), exactly):
                return False
        elif "Principal" in statement:
            if not _names_principal(statement["Principal"], request.principal):
                return False
        elif "NotPrincipal" in statement:
            if not (bounded and statement.get("Effect") == DENY) and \
                    _names_principal(statement["NotPrincipal"], request.principal):
                return False
        else:
            return False  # a resource-based policy statement without a principal names nobody
    if "Action" in statement:
        if not _matches_action(as_list(statement["Action"]), request.action):
            return False
    elif "NotAction" in statement:
        if _matches_action(as_list(statement["NotAction"]), request.action):
            return False
    else:
        return False
    if request.resource is not None:
        if "Resource" in statement:
            if not _matches_resource(as_list(statement["Resource"]), request.resource):
                return False
        elif "NotResource" in statement:
            if _matches_resource(as_list(statement["NotResource"]), request.resource):
                return False
    return conditions_hold(statement.get("Condition"), request)


def evaluate(documents: Iterable[Any], request: Request, resource_policy: bool, bounded: bool = False,
             exactly: set[str] | None = None) -> str | None:
    """DENY when a matching statement denies, else ALLOW when one allows, else None
    (implicit deny). ``bounded`` and ``exactly``: see ``statement_applies``."""
    allowed = False
    for document in documents:
        for statement in statements(document):
            if not statement_applies(statement, request, resource_policy, bounded, exactly):
                continue
            effect = statement.get("Effect")
            if effect == DENY:
                return DENY
            if effect == ALLOW:
                allowed = True
    return ALLOW if allowed else None


@dataclass
class Decision:
    allowed: bool
    reason: str  # "" when allowed; otherwise AWS's wording of why not

    def __bool__(self) -> bool:
        return self.allowed


def session_arns(principal: Principal) -> set[str]:
    """The role session ARNs (``arn:aws:sts::ID:assumed-role/R/S``) among a principal's names."""
    return {a for a in principal.arns if ":assumed-role/" in a}


# The kinds of policy a decision names in its reason, in AWS's wording.
RESOURCE_POLICY = "resource-based policy"
IDENTITY_POLICY = "identity-based policy"
BOUNDARY = "permissions boundary"


def explicit_deny(verdicts: Iterable[tuple[str, str | None]]) -> Decision | None:
    """The refusal for the first explicit Deny among ``verdicts`` ((kind, ``evaluate``'s answer)
    pairs, in the order their messages take precedence); None when none of them denies."""
    for kind, verdict in verdicts:
        if verdict == DENY:
            article = "an" if kind[0] in "aeiou" else "a"
            return Decision(False, f"with an explicit deny in {article} {kind}")
    return None


def implicit_deny(action: str, kind: str) -> Decision:
    """The refusal when no policy of ``kind`` allows ``action``."""
    return Decision(False, f"because no {kind} allows the {action} action")


def all_allow(action: str, verdicts: Iterable[tuple[str, str | None]]) -> Decision:
    """Allowed when every one of ``verdicts`` ((kind, ``evaluate``'s answer) pairs) is ALLOW, else
    the implicit deny of the first that is not."""
    for kind, verdict in verdicts:
        if verdict != ALLOW:
            return implicit_deny(action, kind)
    return Decision(True, "")


def decide(request: Request, identity_policies: list[Any] | None, resource_policy: Any,
           resource_account: str | None, boundary: list[Any] | None = None) -> Decision:
    """AWS's decision for a request by an IAM principal on a resource.

    ``identity_policies`` None means the identity's policies are unknown to the
    emulator and taken as allowing everything (see README). ``boundary``: the
    documents of the principal's permissions boundary (None: it has none)."""
    if boundary is not None:
        return _decide_bounded(request, identity_policies, resource_policy, resource_account, boundary)
    identity = ALLOW if identity_policies is None else evaluate(identity_policies, request, resource_policy=False)
    resource = evaluate([resource_policy] if resource_policy is not None else [], request, resource_policy=True)
    action = request.action
    denied = explicit_deny([(RESOURCE_POLICY, resource), (IDENTITY_POLICY, identity)])
    if denied is not None:
        return denied
    same_account = resource_account is None or request.principal.account == resource_account
    if same_account:
        if identity == ALLOW or resource == ALLOW:
            return Decision(True, "")
        return implicit_deny(action, IDENTITY_POLICY)
    return all_allow(action, [(IDENTITY_POLICY, identity), (RESOURCE_POLICY, resource)])


def _decide_bounded(request: Request, identity_policies: list[Any] | None, resource_policy: Any,
                    resource_account: str | None, boundary: list[Any]) -> Decision:
    """``decide`` for a principal with a permissions boundary (AWS IAM User Guide, "Permissions
    boundaries for IAM entities" and "Policy evaluation for requests within a single account").

    The identity side allows only what the identity policies *and* the boundary allow; an
    explicit Deny in either denies. Within one account a resource-based Allow naming the role
    session ARN itself grants directly to the session, which the boundary does not limit; an
    Allow naming the role ARN (or the account, or ``*``) is limited by the boundary. Across
    accounts the identity policies, the boundary and the resource policy must all allow."""
    identity = ALLOW if identity_policies is None else evaluate(identity_policies, request, resource_policy=False)
    documents = [resource_policy] if resource_policy is not None else []
    resource = evaluate(documents, request, resource_policy=True, bounded=True)
    limit = evaluate(boundary, request, resource_policy=False)
    action = request.action
    denied = explicit_deny([(RESOURCE_POLICY, resource), (IDENTITY_POLICY, identity), (BOUNDARY, limit)])
    if denied is not None:
        return denied
    same_account = resource_account is None or request.principal.account == resource_account
    if same_account:
        sessions = session_arns(request.principal)
        if sessions and evaluate(documents, request, resource_policy=True, bounded=True, exactly=sessions) == ALLOW:
            return Decision(True, "")
        if identity == ALLOW or resource == ALLOW:
            return all_allow(action, [(BOUNDARY, limit)])
        return implicit_deny(action, IDENTITY_POLICY)
    return all_allow(action, [(IDENTITY_POLICY, identity), (BOUNDARY, limit), (RESOURCE_POLICY, resource)])


# --- conditions ----------------------------------------------------------------------


def _string_equals(policy: str, value: str) -> bool:
    return policy == value


def _string_equals_ignore_case(policy: str, value: str) -> bool:
    return policy.lower() == value.lower()


def _string_like(policy: str, value: str) -> bool:
    return glob_match(policy, value)


def _bool(policy: str, value: str) -> bool:
    return policy.lower() == value.lower()


def _numeric(op: str):  # type: ignore[no-untyped-def]
    def compare(policy: str, value: str) -> bool:
        try:
            p, v = float(policy), float(value)
        except ValueError:
            return False
        return {
            "NumericEquals": v == p, "NumericLessThan": v < p, "NumericLessThanEquals": v <= p,
            "NumericGreaterThan": v > p, "NumericGreaterThanEquals": v >= p,
        }[op]
    return compare


# operator name -> (matcher, negated)
_OPERATORS: dict[str, tuple[Any, bool]] = {
    "StringEquals": (_string_equals, False),
    "StringNotEquals": (_string_equals, True),
    "StringEqualsIgnoreCase": (_string_equals_ignore_case, False),
    "StringNotEqualsIgnoreCase": (_string_equals_ignore_case, True),
    "StringLike": (_string_like, False),
    "StringNotLike": (_string_like, True),
    "ArnEquals": (arn_like, False),
    "ArnLike": (arn_like, False),
    "ArnNotEquals": (arn_like, True),
    "ArnNotLike": (arn_like, True),
    "Bool": (_bool, False),
    "NumericEquals": (_numeric("NumericEquals"), False),
    "NumericNotEquals": (_numeric("NumericEquals"), True),
    "NumericLessThan": (_numeric("NumericLessThan"), False),
    "NumericLessThanEquals": (_numeric("NumericLessThanEquals"), False),
    "NumericGreaterThan": (_numeric("NumericGreaterThan"), False),
    "NumericGreaterThanEquals": (_numeric("NumericGreaterThanEquals"), False),
}


def conditions_hold(block: Any, request: Request) -> bool:
    """All operators, and all keys within each, must hold."""
    if not block:
        return True
    if not isinstance(block, dict):
        return False
    for operator, keys in block.items():
        if not isinstance(keys, dict):
            return False
        for key, values in keys.items():
            if not _condition_holds(str(operator), str(key), [_text(v) for v in as_list(values)], request):
                return False
    return True


def _condition_holds(operator: str, key: str, policy_values: list[str], request: Request) -> bool:
    present = request.key(key)
    if operator == "Null":
        # {"key": "true"}: the key is absent; "false": it is present.
        wants_absent = any(v.lower() == "true" for v in policy_values)
        return (present is None) == wants_absent
    set_op = None
    if ":" in operator:
        set_op, operator = operator.split(":", 1)
        set_op = set_op.lower()
    if_exists = operator.endswith("IfExists")
    if if_exists:
        operator = operator[: -len("IfExists")]
    if operator not in _OPERATORS:
        return False  # AWS refuses unknown operators when the policy is written
    matcher, negated = _OPERATORS[operator]
    if present is None:
        if if_exists:
            return True
        if set_op == "forallvalues":
            return True  # no values: "all of them" match, as AWS documents
        if set_op == "foranyvalue":
            return False
        return negated

    def value_matches(value: str) -> bool:
        hit = any(matcher(p, value) for p in policy_values)
        return not hit if negated else hit

    if set_op == "forallvalues":
        return all(value_matches(v) for v in present)
    if set_op == "foranyvalue":
        return any(value_matches(v) for v in present)
    # Single-valued key: the (first) value against the policy's values (OR; NOR when negated).
    if negated:
        return all(value_matches(v) for v in present)
    return any(value_matches(v) for v in present)
