"""Transfer manifests (``ManifestConfig``) of the emulated DataSync.

This module owns

* the API rules of a ``ManifestConfig`` (CreateTask, UpdateTask, StartTaskExecution):
  ``validate_config`` and ``combination_problem``;
* reading an execution's manifest as DataSync does, with the manifest's own bucket access role
  (``read``), and its limits;
* the manifest's CSV format (``parse``).

What an execution does with the entries (only they are prepared, transferred and verified, nothing is
deleted, a listed object missing at the source ends the execution) is ``transfer.make_plan``.

AWS's sources (each rule below names the sentence it follows):

* MANIFEST_PAGE, https://docs.aws.amazon.com/datasync/latest/userguide/transferring-with-manifest.html:
  the format ("Guidelines": Do / Don't), the role's permissions ("Providing DataSync access to your
  manifest"), "Limitations" and "Troubleshooting";
* https://docs.aws.amazon.com/datasync/latest/userguide/API_ManifestConfig.html,
  https://docs.aws.amazon.com/datasync/latest/userguide/API_SourceManifestConfig.html,
  https://docs.aws.amazon.com/datasync/latest/userguide/API_S3ManifestConfig.html: the request shapes
  (checked against botocore's model by ``model_check.py``), ``Source`` required since February 7, 2024,
  ``ManifestObjectVersionId`` ("If you don't set this, DataSync uses the latest version");
* https://docs.aws.amazon.com/datasync/latest/userguide/API_UpdateTask.html and
  https://docs.aws.amazon.com/datasync/latest/userguide/API_StartTaskExecution.html: "To remove a
  manifest configuration, specify this parameter as empty" / "with an empty value";
* https://docs.aws.amazon.com/datasync/latest/userguide/datasync-limits.html: "Maximum size for a
  manifest file with Enhanced mode tasks", 20 GB, not adjustable (``quotas.DATASYNC_MANIFEST_SIZE``);
* https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html: S3 authorizes a read of a
  specific version as ``s3:GetObjectVersion`` ("The s3:GetObject permission is not required in this
  scenario"), and answers a missing key with 403 AccessDenied when the requester may not
  ``s3:ListBucket``.

Where AWS says nothing, the emulator takes the stricter reading and says so here and in
tests/emulator/README.md ("Manifests").
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

import access
import encryption
import kms_rules
import quotas
import rules

MANIFEST_PAGE = "https://docs.aws.amazon.com/datasync/latest/userguide/transferring-with-manifest.html"
# "Don't: Specify a file or object path that exceeds 4,096 characters." / "Specify a file path, object
# path, or Amazon S3 object version ID that exceeds 1,024 bytes."
MAX_PATH_CHARACTERS = 4096
MAX_FIELD_BYTES = 1024
_BUCKET_ARN = re.compile(r"^arn:[a-z-]+:s3:::([a-zA-Z0-9.\-_]{1,255})$")


class ManifestConfigError(Exception):
    """A ManifestConfig DataSync refuses: ``code`` is the JSON error type (``ValidationException`` or
    ``InvalidRequestException``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class ManifestProblem(Exception):
    """The execution cannot use its manifest (Result.ErrorCode, ErrorDetail): it ends ERROR while
    preparing, as a location problem does (transfer.py turns it into one)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


# --- the API ------------------------------------------------------------------------------------


def validate_config(config: Any) -> dict[str, Any] | None:
    """The ManifestConfig of a request as DataSync keeps it; None for none or an empty one ("To remove a
    manifest configuration, specify this parameter as empty"). Raises ManifestConfigError.

    The model check (model_check.py) has already refused wrong types, enums (``Action`` TRANSFER,
    ``Format`` CSV) and missing members of ``Source.S3`` (ManifestObjectPath, BucketAccessRoleArn,
    S3BucketArn). Beyond the model:

    * ``Source`` is required: "You must specify this parameter if you're configuring a new manifest on
      or after February 7, 2024. If you don't, you'll get a 400 status code and ValidationException
      error stating that you're missing the IAM role for DataSync to access the S3 bucket where you're
      hosting your manifest" (API_ManifestConfig; the wording of the message is the emulator's);
    * ``ManifestObjectPath`` must name an object (an empty key names none; the model allows "": the
      refusal is the emulator's);
    * ``S3BucketArn`` must be a bucket ARN: the model also allows access point and Outposts ARNs, which
      the emulator does not model (the emulator's limit, stricter than AWS)."""
    if config is None or config == {}:
        return None
    if not isinstance(config, dict):
        raise ManifestConfigError("InvalidRequestException", "ManifestConfig must be an object.")
    source = config.get("Source")
    s3 = source.get("S3") if isinstance(source, dict) else None
    if not isinstance(s3, dict) or not s3.get("BucketAccessRoleArn"):
        raise ManifestConfigError(
            "ValidationException",
            "ManifestConfig.Source.S3 is missing: DataSync needs the IAM role (BucketAccessRoleArn) to access "
            f"the S3 bucket where you're hosting your manifest. See {MANIFEST_PAGE}#transferring-with-manifest-access")
    if not s3.get("ManifestObjectPath"):
        raise ManifestConfigError("InvalidRequestException",
                                  "ManifestConfig.Source.S3.ManifestObjectPath must be the S3 object key of "
                                  "your manifest.")
    if not isinstance(s3.get("S3BucketArn"), str) or not _BUCKET_ARN.match(s3["S3BucketArn"]):
        raise ManifestConfigError("InvalidRequestException",
                                  f"ManifestConfig.Source.S3.S3BucketArn {s3.get('S3BucketArn')!r}: the emulator "
                                  "supports only bucket ARNs (arn:aws:s3:::bucket), not access points.")
    return copy.deepcopy(config)


def combination_problem(manifest: dict[str, Any] | None, includes: Any, excludes: Any,
                        options: dict[str, Any]) -> str | None:
    """Why a task or an execution may not combine its manifest with the rest of its settings (None: it
    may). MANIFEST_PAGE, "Limitations":

    * "You can't use a manifest together with filters." (includes and excludes alike);
    * "You can't use the Keep deleted files task option (PreserveDeletedFiles in the API) to maintain
      files or objects in the destination that aren't in the source. DataSync only transfers what's
      listed in your manifest and doesn't delete anything in the destination."

    AWS does not say whether it refuses such a request or ignores the filters or ``REMOVE``: the
    emulator refuses it (InvalidRequestException in CreateTask, UpdateTask and StartTaskExecution, with
    the task's settings and the start's overrides together; the text is the emulator's), the stricter
    reading. TransferMode, OverwriteMode and VerifyMode combine with a manifest (see transfer.py)."""
    if not manifest:
        return None
    if includes or excludes:
        which = " and ".join(n for n, v in (("Includes", includes), ("Excludes", excludes)) if v)
        return (f"You can't use a manifest together with filters: this execution would have a ManifestConfig "
                f"and {which}. Remove the filters or the manifest ({MANIFEST_PAGE}#transferring-with-manifest-limitations).")
    if options.get("PreserveDeletedFiles") == "REMOVE":
        return ("You can't use a manifest with PreserveDeletedFiles REMOVE: with a manifest DataSync only "
                "transfers what's listed in it and doesn't delete anything in the destination. Use "
                f"PreserveDeletedFiles PRESERVE ({MANIFEST_PAGE}#transferring-with-manifest-limitations).")
    return None


# --- reading the manifest ------------------------------------------------------------------------


def _object(bucket: Any, key: str, version_id: str | None) -> Any:
    """The stored object (moto's FakeKey) at ``key``, its version ``version_id`` when given; None when
    there is none (or the current version is a delete marker)."""
    from moto.s3.models import FakeKey

    if version_id is None:
        found = bucket.keys.get(key)
    else:
        found = next((v for v in bucket.keys.getlist(key, default=[]) if str(v.version_id) == version_id), None)
    return found if isinstance(found, FakeKey) else None


def object_version(backend: Any, bucket_name: str, key: str, version_id: str | None) -> Any:
    bucket = backend.buckets.get(bucket_name)
    return _object(bucket, key, version_id) if bucket is not None else None


def read(config: dict[str, Any], task_account: str, task_region: str, task_arn: str) -> bytes:
    """The manifest's bytes, read as DataSync reads them when an execution prepares; raises
    ManifestProblem (the execution then ends ERROR while preparing).

    1. DataSync assumes ``Source.S3.BucketAccessRoleArn``: its trust policy must let
       datasync.amazonaws.com call sts:AssumeRole (with ``aws:SourceAccount`` the task's account and
       ``aws:SourceArn`` the task's ARN, as the page's recommended trust policy conditions
       ``arn:aws:datasync:<region>:<account>:*``), else ``AccessDenied``.
    2. The bucket must exist (``NoSuchBucket``). "This bucket doesn't have to be in the same AWS Region
       or account where you're using DataSync": no Region check.
    3. "This role must include the following permissions: s3:GetObject, s3:GetObjectVersion", on the
       manifest object: both are asked, whether or not ``ManifestObjectVersionId`` is given (the page
       asks for both; S3 itself asks only one of them per request), by the role's IAM policies (and its
       permissions boundary) and, for a bucket of another account, the bucket policy ("in the AWS
       account where your manifest is located, you need to include the role in the S3 bucket
       policy"). A refusal is ``AccessDenied`` with S3's message.
    4. The object (or the version ``ManifestObjectVersionId``; without it, the latest version) must
       exist: else ``NoSuchKey`` / ``NoSuchVersion``, or 403 ``AccessDenied`` when the role may not
       ``s3:ListBucket`` the bucket (S3's GetObject).
    5. Its size must be within the quota (``ManifestTooLarge``, the emulator's code).
    6. S3 must hand over its data: an SSE-C manifest cannot be read (``InvalidRequest``), an SSE-KMS one
       needs ``kms:Decrypt`` for the role (``AccessDenied``), as for any object DataSync reads.

    The ErrorCodes and the wording around S3's and KMS's messages are the emulator's."""
    s3 = config["Source"]["S3"]
    role_arn, bucket_arn = s3["BucketAccessRoleArn"], s3["S3BucketArn"]
    key, version_id = s3["ManifestObjectPath"], s3.get("ManifestObjectVersionId")
    bucket = _BUCKET_ARN.match(bucket_arn).group(1)  # type: ignore[union-attr]  # validate_config checked it
    where = f"s3://{bucket}/{key}" + (f" (version {version_id})" if version_id else "")
    session, why = rules.assume_datasync_role(role_arn, task_account, task_arn)
    if session is None:
        raise ManifestProblem("AccessDenied", f"DataSync could not assume the manifest's bucket access role "
                                              f"{role_arn}: {why}. {rules.ASSUME_ROLE_FAILED}.")
    owner = access.bucket_owner(bucket)
    if owner is None:
        raise ManifestProblem("NoSuchBucket", f"DataSync could not read the manifest {where}: the bucket {bucket} "
                                              "does not exist.")
    owner_account, backend = owner
    object_arn = f"{bucket_arn}/{key}"
    actions = ("s3:GetObjectVersion", "s3:GetObject") if version_id else ("s3:GetObject", "s3:GetObjectVersion")
    for action in actions:
        decision = rules.role_s3_decision(session, action, object_arn, bucket)
        if not decision:
            raise ManifestProblem("AccessDenied", f"DataSync could not read the manifest {where}: S3 answered "
                                                  "AccessDenied: "
                                                  + rules.denied_text(session.principal, action, object_arn, decision))
    stored = object_version(backend, bucket, key, version_id)
    if stored is None:
        if not rules.role_s3_decision(session, "s3:ListBucket", bucket_arn, bucket):
            raise ManifestProblem("AccessDenied", f"DataSync could not read the manifest {where}: S3 answered "
                                                  "AccessDenied: Access Denied")
        code, text = (("NoSuchVersion", "The specified version does not exist.") if version_id
                      else ("NoSuchKey", "The specified key does not exist."))
        raise ManifestProblem(code, f"DataSync could not read the manifest {where}: S3 answered {code}: {text}")
    problem = quotas.datasync_manifest_problem(task_account, task_region, int(stored.size or 0))
    if problem:
        raise ManifestProblem("ManifestTooLarge", f"DataSync could not use the manifest {where}: {problem}")
    algorithm, key_id = encryption.object_encryption(stored)
    if algorithm == encryption.SSE_C:
        raise ManifestProblem("InvalidRequest", f"DataSync could not read the manifest {where}: S3 answered "
                                                f"InvalidRequest: {encryption.SSE_C_UNREADABLE}")
    if algorithm in kms_rules.KMS_ALGORITHMS:
        fake_bucket = backend.buckets[bucket]
        outcome = kms_rules.role_key_access(session, "kms:Decrypt", key_id, fake_bucket.region_name, owner_account,
                                            object_arn)
        if outcome.error:
            code, message = outcome.error
            raise ManifestProblem("AccessDenied", f"DataSync could not read the manifest {where}: "
                                                  + (message if code == "AccessDeniedException" else f"{code}: {message}"))
    return bytes(stored.value)


# --- the CSV format -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One line of a manifest: a path relative to the source location, and an S3 object version."""

    number: int  # 1-based position of the entry in the manifest
    path: str
    version_id: str | None = None


def _invalid(number: int, why: str) -> ManifestProblem:
    return ManifestProblem("InvalidManifest", f"The manifest is not valid: entry {number}: {why} (see "
                                              f"{MANIFEST_PAGE}#transferring-with-manifest-guidelines).")


def _field(text: str, i: int, number: int) -> tuple[str, int]:
    """One field starting at ``i``: (its value, the index after it). MANIFEST_PAGE: a field is quoted
    when it holds "special characters (commas, quotes, and line endings)", may then span lines, and "if a
    manifest field has a quote, you must escape it with another quote", in quoted fields and in unquoted
    ones alike (``filename""with""quotes.txt`` is ``filename"with"quotes.txt``). After a closing quote only
    a comma or the line's end may follow ("Don't include unintentional spaces in your entry fields outside
    of quotes"); a lone quote in an unquoted field is refused (the strict reading)."""
    n = len(text)
    out: list[str] = []
    if i < n and text[i] == '"':
        i += 1
        while True:
            if i >= n:
                raise _invalid(number, "a quoted field has no closing quote")
            c = text[i]
            if c == '"':
                if i + 1 < n and text[i + 1] == '"':
                    out.append('"')
                    i += 2
                    continue
                i += 1
                if i < n and text[i] not in ",\r\n":
                    raise _invalid(number, f"{text[i]!r} after a closing quote (only a comma or the end of the "
                                           "line may follow it)")
                return "".join(out), i
            out.append(c)
            i += 1
    while i < n and text[i] not in ",\r\n":
        c = text[i]
        if c == '"':
            if i + 1 < n and text[i + 1] == '"':
                out.append('"')
                i += 2
                continue
            raise _invalid(number, "a quote in a field must be escaped with another quote")
        out.append(c)
        i += 1
    return "".join(out), i


def parse(data: bytes) -> list[Entry]:
    """The entries of a CSV manifest (``Format`` CSV, the only one); raises ManifestProblem
    ``InvalidManifest`` (the emulator's code) for a manifest that breaks MANIFEST_PAGE's guidelines:

    * "Include characters that don't conform to UTF-8 encoding" (Don't): the bytes must be UTF-8;
    * "Separate each file or object entry with a new line" (LF, CR or CRLF); one line ending after the
      last entry is allowed;
    * "Include more than two fields in a manifest entry" (Don't): a path and, optionally, an S3 object
      version ID ("separate the object's path and version ID by using a comma");
    * "Specify only a directory or folder" (Don't): a path ending in ``/`` is refused (a path that names
      only a prefix, with no object, is a file missing at the source: transfer.py);
    * "Specify a file or object path that exceeds 4,096 characters" / "... or Amazon S3 object version
      ID that exceeds 1,024 bytes" (Don't);
    * "Specify duplicate file or object paths" (Don't): the same path twice, whatever its versions.

    AWS says nothing of these, and the emulator refuses them (the strict reading): an empty manifest,
    an empty line or empty path, an empty version ID field (``a.txt,``). AWS documents no header row:
    every line is an entry, so a header such as ``path,version`` is read as the path ``path``.
    A path is taken as written, relative to the location's prefix ("Make sure that each file or object
    path is relative to the ... prefix"): no leading ``/`` is stripped, spaces are part of it."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ManifestProblem("InvalidManifest", f"The manifest is not valid: it is not UTF-8 (byte {err.start}: "
                                                 f"{err.reason}; see {MANIFEST_PAGE}#transferring-with-manifest-guidelines).")
    entries: list[Entry] = []
    seen: set[str] = set()
    i, n = 0, len(text)
    while i < n:
        number = len(entries) + 1
        fields: list[str] = []
        while True:
            value, i = _field(text, i, number)
            fields.append(value)
            if i < n and text[i] == ",":
                i += 1
                continue
            if i < n and text[i] == "\r":
                i += 1
            if i < n and text[i] == "\n":
                i += 1
            break
        if len(fields) > 2:
            raise _invalid(number, f"{len(fields)} fields; an entry has a path and, optionally, an S3 object "
                                   "version ID")
        path = fields[0]
        if not path:
            raise _invalid(number, "an empty path (an empty line?)")
        if path.endswith("/"):
            raise _invalid(number, f"{path!r} is a folder; a manifest lists only full paths of files or objects")
        if len(path) > MAX_PATH_CHARACTERS:
            raise _invalid(number, f"the path has {len(path)} characters (at most {MAX_PATH_CHARACTERS})")
        if len(path.encode("utf-8")) > MAX_FIELD_BYTES:
            raise _invalid(number, f"the path has {len(path.encode('utf-8'))} bytes (at most {MAX_FIELD_BYTES})")
        version_id = fields[1] if len(fields) == 2 else None
        if version_id is not None:
            if not version_id:
                raise _invalid(number, "an empty version ID")
            if len(version_id.encode("utf-8")) > MAX_FIELD_BYTES:
                raise _invalid(number, f"the version ID has {len(version_id.encode('utf-8'))} bytes (at most "
                                       f"{MAX_FIELD_BYTES})")
        if path in seen:
            raise _invalid(number, f"the path {path!r} is listed twice")
        seen.add(path)
        entries.append(Entry(number, path, version_id))
    if not entries:
        raise ManifestProblem("InvalidManifest", "The manifest is not valid: it lists no file or object.")
    return entries
