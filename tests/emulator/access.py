"""Who is calling, and may they reach a bucket: the emulator's access checks.

moto never evaluates bucket policies; ``policy_eval`` and ``rules`` do, with the
help of this module:

* ``caller_principals``: the principal ARNs a request's credentials stand for
  (an assumed-role session is mapped back to its IAM role ARN, path included
  when the role exists, plus the account root and the bare account id).
* ``role_problem``: a quick check that a role exists and names DataSync in its
  trust policy (used for task-report roles; locations go through
  ``rules.assume_datasync_role``, which evaluates the trust policy with its
  conditions).
* ``bucket_owner``: the account and backend that hold a bucket.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

from moto.iam.models import iam_backends
from moto.s3.models import s3_backends
from moto.sts.models import sts_backends


def _partition(region: str) -> str:
    from moto.utilities.utils import get_partition

    return get_partition(region)


def caller_principals(account_id: str, access_key: str, region: str) -> set[str]:
    """Every principal string that names the caller in a resource policy."""
    partition = _partition(region)
    principals = {account_id, f"arn:{partition}:iam::{account_id}:root"}
    iam = iam_backends[account_id][partition]
    key = iam.access_keys.get(access_key)
    if key is not None and key.role_arn:
        role_name = key.role_arn.rsplit("/", 1)[-1]
        try:
            principals.add(iam.get_role(role_name).arn)
        except Exception:  # role not created in IAM: use the ARN that was assumed
            principals.add(key.role_arn)
        assumed = sts_backends[account_id][partition].get_assumed_role_from_access_key(access_key)
        if assumed is not None:
            principals.add(assumed.arn)
    user = iam.get_user_from_access_key_id(access_key)
    if user is not None:
        principals.add(user.arn)
    # Whatever GetCallerIdentity answers (moto's stand-in identity for unknown keys too).
    principals.add(caller_description(account_id, access_key, region))
    return principals


def caller_description(account_id: str, access_key: str, region: str) -> str:
    """The ARN GetCallerIdentity would answer, for error messages."""
    partition = _partition(region)
    try:
        _, arn, _ = sts_backends[account_id][partition].get_caller_identity(access_key, region)
        return arn
    except Exception:
        return f"arn:{partition}:iam::{account_id}:root"


def bucket_owner(bucket_name: str) -> tuple[str, Any] | None:
    """(account id, S3 backend) of the account that owns the bucket, if it exists."""
    owner = s3_backends.bucket_accounts.get(bucket_name)
    if owner is None:
        return None
    partition, account_id = owner
    backend = s3_backends[account_id][partition]
    if bucket_name not in backend.buckets:
        return None
    return account_id, backend


def policy_document(raw: bytes | str | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    try:
        doc = json.loads(text)
    except ValueError:
        try:
            doc = json.loads(unquote(text))
        except ValueError:
            return None
    return doc if isinstance(doc, dict) else None


def role_problem(role_arn: str | None) -> str | None:
    """None when DataSync could assume the role, else why not."""
    if not role_arn:
        return "no bucket access role is configured for the location"
    parts = role_arn.split(":")
    if len(parts) < 6 or parts[2] != "iam" or not parts[5].startswith("role/"):
        return f"{role_arn} is not an IAM role ARN"
    account_id, partition = parts[4], parts[1]
    iam = iam_backends[account_id][partition]
    try:
        role = iam.get_role_by_arn(role_arn)
    except Exception:
        return f"the role {role_arn} does not exist"
    trust = unquote(str(role.assume_role_policy_document or ""))
    if "datasync.amazonaws.com" not in trust:
        return f"the trust policy of {role_arn} does not allow datasync.amazonaws.com to assume it"
    return None
