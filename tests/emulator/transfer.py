"""Task executions of the emulated DataSync: phases, filters and real copies.

This module owns what happens after StartTaskExecution:

* ``SETTINGS``: run-time settings (``phase_seconds``: how long each phase lasts).
* ``compile_filters``/``selected``: DataSync SIMPLE_PATTERN filters.
* ``make_plan``: the PREPARING step, comparing source and destination objects
  under the locations' prefixes (TransferMode, OverwriteMode,
  PreserveDeletedFiles), or only those a manifest lists (``_manifest_plan``; the
  manifest is read and parsed by ``manifests.py``).
* ``ExecutionRunner``: a thread per execution that walks QUEUED -> LAUNCHING ->
  PREPARING -> TRANSFERRING -> VERIFYING -> SUCCESS (or ERROR), copying the
  objects inside moto's S3 backends (across accounts) during TRANSFERRING and
  updating the execution's counters and Result as it goes.
* ``require``/``require_kms``/``require_readable``: what S3 and KMS ask of the
  location's role for each request (S3 policies; kms:Decrypt for SSE-KMS objects it
  reads, kms:GenerateDataKey for writes into an SSE-KMS bucket; SSE-C objects are
  unreadable for DataSync). Objects are written with the destination bucket's
  default encryption (``encryption.py``, ``kms_rules.py``).

The execution object it drives is ``datasync_ext.TaskExecution``; this module
only touches its ``lock``, ``cancel_event``, ``status``, time fields, ``counters``,
``result``, ``files_failed`` and ``report_items`` (per-object outcomes for task
reports). Problems of a location (its role cannot be assumed, its bucket is missing,
s3:ListBucket is refused) end the execution at once (``LocationProblem``). Problems of
one object (``ObjectProblem``: S3 or KMS refuses it, it is SSE-C, it vanished, it does
not verify) fail that object only, in the phase where DataSync meets them (Prepare:
its HeadObject; Transfer: GetObject/PutObject; Verify; Delete); the other objects are
still copied, and the execution ends ERROR once all phases ran.

``CLOCK`` is the emulated wall clock that schedules follow (``clockSpeed`` and
``clockTime`` in ``SETTINGS``).
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import access
import encryption
import kms_rules
import manifests
import rules


class Clock:
    """The emulated wall clock that DataSync schedules follow (epoch seconds, UTC).

    It starts at the real time and runs ``speed`` emulated seconds per real
    second, so an hourly schedule fires every second at speed 3600. API
    timestamps (StartTime, CreationTime, ...) stay real; only schedules use it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._speed = 1.0
        self._real_anchor = time.time()
        self._emulated_anchor = self._real_anchor

    def now(self) -> float:
        with self._lock:
            return self._emulated_anchor + (time.time() - self._real_anchor) * self._speed

    @property
    def speed(self) -> float:
        return self._speed

    def set(self, speed: float | None = None, now: float | None = None) -> None:
        current = self.now()
        with self._lock:
            self._real_anchor = time.time()
            self._emulated_anchor = current if now is None else now
            if speed is not None:
                self._speed = speed


CLOCK = Clock()


class Settings:
    """Run-time settings, changed through /ferry-emulator/config."""

    def __init__(self) -> None:
        self.phase_seconds = 1.0
        # Schedules (see schedules.py and datasync_ext.Scheduler).
        self.schedule_tick = 0.05  # real seconds between two checks of the schedules
        self.schedule_disable_after = 3  # failed executions in a row (same error) that disable a schedule

    def to_json(self) -> dict[str, Any]:
        return {
            "phaseSeconds": self.phase_seconds,
            "clockSpeed": CLOCK.speed,
            "clockTime": round(CLOCK.now(), 3),
            "scheduleTick": self.schedule_tick,
            "scheduleDisableAfterFailures": self.schedule_disable_after,
        }

    def update(self, body: dict[str, Any]) -> dict[str, Any]:
        if "phaseSeconds" in body:
            value = float(body["phaseSeconds"])
            if value < 0:
                raise ValueError("phaseSeconds must not be negative")
            self.phase_seconds = value
        if "clockSpeed" in body or "clockTime" in body:
            speed = float(body["clockSpeed"]) if "clockSpeed" in body else None
            if speed is not None and speed <= 0:
                raise ValueError("clockSpeed must be positive (emulated seconds per real second)")
            now = float(body["clockTime"]) if "clockTime" in body else None
            CLOCK.set(speed=speed, now=now)
        if "scheduleTick" in body:
            value = float(body["scheduleTick"])
            if not 0.001 <= value <= 60:
                raise ValueError("scheduleTick must be between 0.001 and 60 seconds")
            self.schedule_tick = value
        if "scheduleDisableAfterFailures" in body:
            value = int(body["scheduleDisableAfterFailures"])
            if value < 1:
                raise ValueError("scheduleDisableAfterFailures must be at least 1")
            self.schedule_disable_after = value
        return self.to_json()


SETTINGS = Settings()

# DataSync storage class names -> moto's S3 storage class names.
_STORAGE_CLASSES = {
    "STANDARD": "STANDARD",
    "STANDARD_IA": "STANDARD_IA",
    "ONEZONE_IA": "ONEZONE_IA",
    "INTELLIGENT_TIERING": "INTELLIGENT_TIERING",
    "GLACIER": "GLACIER",
    "DEEP_ARCHIVE": "DEEP_ARCHIVE",
    "GLACIER_INSTANT_RETRIEVAL": "GLACIER_IR",
}


# --- filters ------------------------------------------------------------------------


def filter_patterns(filter_list: list[dict[str, Any]] | None) -> list[str]:
    """The patterns of a FilterList: each rule's Value split on '|'."""
    patterns: list[str] = []
    for rule in filter_list or []:
        for pattern in str(rule.get("Value", "")).split("|"):
            pattern = pattern.strip()
            if pattern:
                patterns.append(pattern)
    return patterns


def compile_filters(filter_list: list[dict[str, Any]] | None) -> list[re.Pattern[str]]:
    """SIMPLE_PATTERN: '*' matches any run of characters (slashes included),
    everything else is literal; a trailing '/' is ignored."""
    compiled = []
    for pattern in filter_patterns(filter_list):
        if len(pattern) > 1:
            pattern = pattern.rstrip("/") or "/"
        regex = "".join(".*" if ch == "*" else re.escape(ch) for ch in pattern)
        compiled.append(re.compile(regex + r"\Z", re.DOTALL))
    return compiled


def _path_and_parents(path: str) -> list[str]:
    """'/a/b/c.txt' -> ['/a/b/c.txt', '/a', '/a/b']: a pattern naming a folder
    applies to everything inside it."""
    parts = [p for p in path.split("/") if p]
    candidates = [path.rstrip("/") or "/"]
    for i in range(1, len(parts)):
        candidates.append("/" + "/".join(parts[:i]))
    return candidates


def _matches(path: str, patterns: list[re.Pattern[str]]) -> bool:
    candidates = _path_and_parents(path)
    return any(p.match(c) for p in patterns for c in candidates)


def selected(path: str, includes: list[re.Pattern[str]], excludes: list[re.Pattern[str]]) -> bool:
    """Whether a path (relative to the location root, starting with '/') is in
    scope: matched by an include filter when there are any, and by no exclude."""
    if includes and not _matches(path, includes):
        return False
    return not (excludes and _matches(path, excludes))


# --- planning -----------------------------------------------------------------------


class LocationProblem(Exception):
    """An execution cannot reach a location (Result.ErrorCode, ErrorDetail)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


class ObjectProblem(Exception):
    """One object could not be transferred, verified or deleted; the execution goes on."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def object_metadata(key: Any) -> dict[str, Any]:
    """What a task report says of an object (SrcMetadata / DstMetadata)."""
    if key is None:
        return {}
    modified = getattr(key, "last_modified", None)
    return {
        "Type": "Regular",
        "ContentSize": int(getattr(key, "size", 0) or 0),
        "Mtime": modified.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if hasattr(modified, "strftime") else None,
        "ETag": str(getattr(key, "etag", "") or "").strip('"'),
    }


def current_object(endpoint: "Endpoint", rel: str, version_id: str | None = None) -> Any:
    """The object as it is now (None when gone): DataSync reads it when it copies. ``version_id``: that
    version of it (a manifest entry's S3 object version ID), None when there is no such version."""
    return manifests.object_version(endpoint.backend, endpoint.bucket, endpoint.prefix + rel[1:], version_id)


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class Endpoint:
    """One side of a transfer, resolved to moto's S3 backend of the bucket owner."""

    bucket: str
    prefix: str  # "" or "dir/sub/"
    backend: Any
    storage_class: str
    session: Any = None  # rules.RoleSession: DataSync's session of the location's role
    bucket_arn: str = ""

    def objects(self, includes: list[re.Pattern[str]], excludes: list[re.Pattern[str]]) -> dict[str, Any]:
        """Relative path ('/x/y') -> moto FakeKey, for the objects in scope."""
        from moto.s3.models import FakeKey

        bucket = self.backend.buckets.get(self.bucket)
        if bucket is None:
            raise LocationProblem("NoSuchBucket", f"The bucket {self.bucket} does not exist.")
        found: dict[str, Any] = {}
        for name in list(bucket.keys.keys()):
            if not name.startswith(self.prefix):
                continue
            key = bucket.keys.get(name)
            if not isinstance(key, FakeKey):  # delete markers
                continue
            rel = "/" + name[len(self.prefix):]
            if rel == "/":
                continue  # the prefix's own folder marker
            if selected(rel, includes, excludes):
                found[rel] = key
        return found


def resolve_endpoint(location: Any, side: str) -> Endpoint:
    """Check what DataSync checks when it launches: the role can be assumed and
    the bucket exists."""
    session, problem = rules.assume_datasync_role(location.bucket_access_role_arn, location.account_id,
                                                  location.arn)
    if session is None:
        raise LocationProblem(
            "AccessDenied",
            f"DataSync could not assume the bucket access role of the {side} location "
            f"{location.uri}: {problem}. {rules.ASSUME_ROLE_FAILED}.",
        )
    owner = access.bucket_owner(location.bucket)
    if owner is None:
        raise LocationProblem(
            "NoSuchBucket",
            f"DataSync location access test failed for the {side} location {location.uri}: "
            f"could not perform s3:ListObjectsV2 on bucket {location.bucket}. "
            "The specified bucket does not exist.",
        )
    _, backend = owner
    endpoint = Endpoint(location.bucket, location.prefix, backend, location.storage_class, session,
                        location.bucket_arn)
    require(endpoint, "s3:ListBucket", None, f"list the {side} location {location.uri}")
    return endpoint


def require(endpoint: Endpoint, action: str, key: str | None, doing: str,
            request_keys: dict[str, str] | None = None) -> None:
    """The location's role must be allowed the S3 action (its IAM policies and, for a
    bucket of another account, the bucket policy). A refused bucket action (``key`` None:
    s3:ListBucket) ends the execution (LocationProblem); a refused object action fails
    that object only (ObjectProblem, with S3's AccessDenied message as a task report
    shows it). ``request_keys``: condition keys of this request only (PutObject's
    encryption headers)."""
    if endpoint.session is None:
        return
    resource = endpoint.bucket_arn if key is None else f"{endpoint.bucket_arn}/{key}"
    decision = rules.role_s3_decision(endpoint.session, action, resource, endpoint.bucket, request_keys)
    if not decision:
        text = rules.denied_text(endpoint.session.principal, action, resource, decision)
        if key is None:
            raise LocationProblem("AccessDenied", f"DataSync could not {doing}: S3 answered AccessDenied: {text}")
        raise ObjectProblem("AccessDenied", text)


def require_kms(endpoint: Endpoint, action: str, key_id: str | None, key: str) -> Any:
    """S3 calls KMS ``action`` for the location's role on the object ``key`` (kms:Decrypt to read
    an SSE-KMS object, kms:GenerateDataKey to write one); a refusal fails that object
    (ObjectProblem ``AccessDenied``: KMS's AccessDeniedException message as AWS's task report
    example shows it; other KMS answers keep their exception name in front). Returns the KMS
    key (moto's)."""
    bucket = endpoint.backend.buckets[endpoint.bucket]
    access_ = kms_rules.role_key_access(endpoint.session, action, key_id, bucket.region_name,
                                        bucket.account_id, f"{endpoint.bucket_arn}/{key}")
    if access_.error:
        code, message = access_.error
        raise ObjectProblem("AccessDenied", message if code == "AccessDeniedException" else f"{code}: {message}")
    return access_.key


def require_readable(endpoint: Endpoint, key: str, stored: Any) -> None:
    """What S3 asks beyond s3:GetObject to hand an object's data to DataSync: SSE-C objects are
    refused (DataSync sends no customer key: S3's InvalidRequest), SSE-KMS objects need
    kms:Decrypt on their key. Either fails that object only (ObjectProblem)."""
    algorithm, key_id = encryption.object_encryption(stored)
    if algorithm == encryption.SSE_C:
        raise ObjectProblem("InvalidRequest", encryption.SSE_C_UNREADABLE)
    if algorithm in kms_rules.KMS_ALGORITHMS:
        require_kms(endpoint, "kms:Decrypt", key_id, key)


@dataclass
class Plan:
    to_copy: list[str] = field(default_factory=list)
    to_delete: list[str] = field(default_factory=list)
    skipped: int = 0
    skipped_paths: list[str] = field(default_factory=list)
    listed_at_source: int = 0
    listed_at_destination: int = 0
    bytes_to_copy: int = 0
    source_objects: dict[str, Any] = field(default_factory=dict)
    destination_objects: dict[str, Any] = field(default_factory=dict)
    # Source objects whose metadata DataSync could not read while preparing (their HeadObject
    # failed): relative path -> the problem. They are neither transferred nor skipped.
    unreadable: dict[str, "ObjectProblem"] = field(default_factory=dict)
    # With a manifest: the S3 object version of each entry that names one (relative path -> version ID).
    versions: dict[str, str] = field(default_factory=dict)


def _same_object(a: Any, b: Any) -> bool:
    return a.size == b.size and a.etag == b.etag


def make_plan(source: Endpoint, destination: Endpoint, options: dict[str, Any],
              includes: list[re.Pattern[str]], excludes: list[re.Pattern[str]],
              entries: "list[manifests.Entry] | None" = None) -> Plan:
    """What to transfer and delete: everything in scope (the filters), or, with a manifest
    (``entries``), only what it lists (``_manifest_plan``)."""
    if entries is not None:
        return _manifest_plan(source, destination, options, entries)
    plan = Plan()
    src = source.objects(includes, excludes)
    dst = destination.objects(includes, excludes)
    plan.source_objects, plan.destination_objects = src, dst
    plan.listed_at_source = len(src)
    for rel in sorted(src):
        try:
            head_source(source, rel, src[rel])
        except ObjectProblem as problem:
            plan.unreadable[rel] = problem
            continue
    _classify(plan, options)
    if options.get("PreserveDeletedFiles") == "REMOVE":
        plan.to_delete = sorted(rel for rel in dst if rel not in src)
        plan.listed_at_destination = len(dst)
    plan.bytes_to_copy = sum(src[rel].size for rel in plan.to_copy)
    return plan


def _classify(plan: Plan, options: dict[str, Any]) -> None:
    """The readable source objects of the plan: to copy, or skipped (TransferMode, OverwriteMode)."""
    src, dst = plan.source_objects, plan.destination_objects
    for rel in sorted(src):
        if rel in plan.unreadable:
            continue
        existing = dst.get(rel)
        if existing is None:
            plan.to_copy.append(rel)
        elif options.get("OverwriteMode") == "NEVER":
            plan.skipped += 1
            plan.skipped_paths.append(rel)
        elif options.get("TransferMode") == "ALL" or not _same_object(src[rel], existing):
            plan.to_copy.append(rel)
        else:
            plan.skipped += 1
            plan.skipped_paths.append(rel)


def _manifest_plan(source: Endpoint, destination: Endpoint, options: dict[str, Any],
                   entries: "list[manifests.Entry]") -> Plan:
    """The plan of an execution with a manifest (https://docs.aws.amazon.com/datasync/latest/userguide/
    transferring-with-manifest.html: "DataSync transfers only the objects that you list in your
    manifest"). Only the listed paths are looked at, on both sides: FilesListed.AtSource counts the
    entries ("With a manifest, DataSync lists only what's in your manifest", TaskExecutionFilesListedDetail),
    TransferMode and OverwriteMode decide per listed object as without a manifest, verification covers only
    them ("If you use a manifest, DataSync only scans and verifies what's listed in the manifest",
    Options.VerifyMode), and nothing is deleted ("doesn't delete anything in the destination").

    Each entry is HEADed as any source object (``head_source``, with ``s3:GetObjectVersion`` for an entry
    naming a version): a refusal fails that object alone (report: Skipped, FAILED). A listed object that
    does not exist at the source (or not in that version) is AWS's ``ManifestFileDoesNotExist`` ("a file
    within the manifest was not found at the source", Troubleshooting). AWS does not say whether that
    ends the execution or fails the entry: the emulator ends the execution ERROR while preparing, before
    anything is transferred (the stricter reading), naming the missing paths in ErrorDetail."""
    plan = Plan()
    plan.listed_at_source = len(entries)
    missing: list[str] = []
    for entry in entries:
        rel = "/" + entry.path
        name = source.prefix + entry.path
        if entry.version_id is not None:
            plan.versions[rel] = entry.version_id
        try:
            # S3 authorizes a HEAD before it says whether the object exists.
            require(source, "s3:GetObjectVersion" if entry.version_id else "s3:GetObject", name,
                    f"read the metadata of s3://{source.bucket}/{name}")
        except ObjectProblem as problem:
            plan.unreadable[rel] = problem
            continue
        stored = current_object(source, rel, entry.version_id)
        if stored is None:
            missing.append(entry.path + (f" (version {entry.version_id})" if entry.version_id else ""))
            continue
        plan.source_objects[rel] = stored
        if encryption.object_encryption(stored)[0] == encryption.SSE_C:
            plan.unreadable[rel] = ObjectProblem("InvalidRequest", encryption.SSE_C_UNREADABLE)
    if missing:
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        raise LocationProblem(
            "ManifestFileDoesNotExist",
            f"{len(missing)} of the {len(entries)} files listed in the manifest were not found at the source "
            f"location s3://{source.bucket}/{source.prefix}: {shown}.")
    for rel in plan.source_objects:
        existing = current_object(destination, rel)
        if existing is not None:
            plan.destination_objects[rel] = existing
    _classify(plan, options)
    plan.bytes_to_copy = sum(plan.source_objects[rel].size for rel in plan.to_copy)
    return plan


def head_source(source: Endpoint, rel: str, stored: Any) -> None:
    """DataSync's HeadObject of a source object while preparing (AWS: HEAD requests "retrieve object
    metadata during a task's preparing and verifying phases"). S3 authorizes HeadObject as
    s3:GetObject and answers an SSE-C object only to a request carrying its key, which DataSync
    does not send; either refusal fails that object (ObjectProblem)."""
    name = source.prefix + rel[1:]
    require(source, "s3:GetObject", name, f"read the metadata of s3://{source.bucket}/{name}")
    if encryption.object_encryption(stored)[0] == encryption.SSE_C:
        raise ObjectProblem("InvalidRequest", encryption.SSE_C_UNREADABLE)


def copy_one(source: Endpoint, destination: Endpoint, rel: str, src_key: Any, options: dict[str, Any],
             version_id: str | None = None) -> int:
    """Copy one object (``version_id``: that version of it, a manifest entry's); returns its size.
    Reading a version is ``s3:GetObjectVersion`` and its tags ``s3:GetObjectVersionTagging`` (S3's
    GetObject and GetObjectTagging; the manifest page's troubleshooting names both for the source
    role)."""
    dest_name = destination.prefix + rel[1:]
    src_name = source.prefix + rel[1:]
    require(source, "s3:GetObjectVersion" if version_id else "s3:GetObject", src_name,
            f"read s3://{source.bucket}/{src_name}")
    require_readable(source, src_name, src_key)
    copy_tags = options.get("ObjectTags", "PRESERVE") == "PRESERVE"
    tags = source.backend.tagger.get_tag_dict_for_resource(src_key.arn) if copy_tags else {}
    if copy_tags:
        require(source, "s3:GetObjectVersionTagging" if version_id else "s3:GetObjectTagging", src_name,
                f"read the tags of s3://{source.bucket}/{src_name}")
    require(destination, "s3:PutObject", dest_name, f"write s3://{destination.bucket}/{dest_name}",
            encryption.put_object_condition_keys(encryption.DATASYNC_PUT_HEADERS))
    if tags:
        require(destination, "s3:PutObjectTagging", dest_name,
                f"tag s3://{destination.bucket}/{dest_name}")
    # The object is stored with the destination bucket's default encryption.
    algorithm, key_id, bucket_key = encryption.bucket_default(destination.backend.buckets[destination.bucket])
    sse: dict[str, Any] = {"encryption": algorithm}
    if algorithm in kms_rules.KMS_ALGORITHMS:
        kms_key = require_kms(destination, "kms:GenerateDataKey", key_id, dest_name)
        sse.update(kms_key_id=kms_key.arn, bucket_key_enabled=bucket_key)
    storage = _STORAGE_CLASSES.get(destination.storage_class or "STANDARD", "STANDARD")
    new_key = destination.backend.put_object(
        bucket_name=destination.bucket,
        key_name=dest_name,
        value=src_key.value,
        storage=storage,
        etag=src_key.etag.strip('"'),
        disable_notification=True,
        **sse,
    )
    if options.get("ObjectMetadata", "PRESERVE") == "PRESERVE":
        new_key.set_metadata(dict(src_key.metadata))
    if options.get("ObjectTags", "PRESERVE") == "PRESERVE":
        tags = source.backend.tagger.get_tag_dict_for_resource(src_key.arn)
        if tags:
            destination.backend.put_object_tagging(new_key, tags)
    return src_key.size


def delete_one(destination: Endpoint, rel: str) -> None:
    require(destination, "s3:DeleteObject", destination.prefix + rel[1:],
            f"delete s3://{destination.bucket}/{destination.prefix + rel[1:]}")
    destination.backend.delete_object(destination.bucket, destination.prefix + rel[1:])


# --- the execution thread -----------------------------------------------------------

# Result.ErrorDetail of a Basic mode execution that failed some objects (AWS's texts:
# https://docs.aws.amazon.com/datasync/latest/userguide/troubleshooting-task-verification.html).
FILES_SKIPPED_DETAIL = ("Transfer and verification completed. Selected files transferred except for files skipped "
                        "due to errors. If no skipped files are listed in Cloud Watch Logs, please contact AWS Support "
                        "for further assistance.")
VERIFY_MISMATCH_DETAIL = ("Transfer and verification completed. Verification detected mismatches. Files with "
                          "mismatches are listed in Cloud Watch Logs")


def _ms(seconds: float) -> int:
    return max(0, int(round(seconds * 1000)))


class ExecutionRunner(threading.Thread):
    """Drives one execution through AWS's phases in real time."""

    TRANSFER_STEPS = 4  # counters grow in this many steps during TRANSFERRING

    def __init__(self, execution: Any, source_location: Any, destination_location: Any,
                 on_finish: Callable[[Any], None]) -> None:
        super().__init__(name=f"datasync-{execution.arn.rsplit('/', 1)[-1]}", daemon=True)
        self.ex = execution
        self.source_location = source_location
        self.destination_location = destination_location
        self.on_finish = on_finish
        self.started = time.monotonic()

    # -- helpers

    def _wait(self, fraction: float = 1.0) -> bool:
        """Wait a phase (or part of one); False when cancelled meanwhile. The
        phase length is re-read while waiting, so config changes apply at once."""
        start = time.monotonic()
        while time.monotonic() - start < SETTINGS.phase_seconds * fraction:
            if self.ex.cancel_event.wait(0.02):
                return False
        return not self.ex.cancel_event.is_set()

    def _set(self, **fields: Any) -> None:
        with self.ex.lock:
            for name, value in fields.items():
                setattr(self.ex, name, value)

    def _count(self, **deltas: int) -> None:
        with self.ex.lock:
            for name, delta in deltas.items():
                self.ex.counters[name] = self.ex.counters.get(name, 0) + delta

    def _result(self, **fields: Any) -> None:
        with self.ex.lock:
            self.ex.result.update(fields)

    def _finish(self, status: str, code: str | None = None, detail: str | None = None) -> None:
        with self.ex.lock:
            self.ex.status = status
            self.ex.end_time = time.time()
            self.ex.result["TotalDuration"] = _ms(time.monotonic() - self.started)
            if code:
                self.ex.result["ErrorCode"] = code
                self.ex.result["ErrorDetail"] = detail or code
        self.on_finish(self.ex)

    def _cancelled(self) -> None:
        # AWS shows CANCELLING for a moment before the execution ends.
        with self.ex.lock:
            self.ex.status = "CANCELLING"
        time.sleep(min(0.5, SETTINGS.phase_seconds))
        with self.ex.lock:
            for phase in ("Prepare", "Transfer", "Verify"):
                if self.ex.result.get(f"{phase}Status") == "PENDING":
                    self.ex.result[f"{phase}Status"] = "ERROR"
                    break
        self._finish("ERROR", "Cancelled", "Task execution was cancelled by the user.")

    def _files_failed_error(self, failed: dict[str, int], items: dict[str, list[dict[str, Any]]]) -> tuple[str, str]:
        """Result.ErrorCode and ErrorDetail of an execution that went through but failed some objects.

        Basic mode: DataSync's documented texts (troubleshooting-task-verification), "...Selected
        files transferred except for files skipped due to errors..." when objects failed to
        transfer or delete, "...Verification detected mismatches..." when only verification
        failed; the code ``FilesFailed`` is the emulator's. Enhanced mode: the first failed
        object's ErrorCode and ErrorDetail (AWS shows an Enhanced execution ending with the
        object's own error, "Verification failed due to a difference in metadata")."""
        if self.ex.task_mode == "ENHANCED":
            for kind, status in (("Skipped", "SkippedStatus"), ("Transferred", "TransferStatus"),
                                 ("Deleted", "DeleteStatus"), ("Verified", "VerifyStatus")):
                for entry in items.get(kind, []):
                    if entry.get(status) == "FAILED":
                        return entry["ErrorCode"], entry["ErrorDetail"]
        if failed["Prepare"] or failed["Transfer"] or failed["Delete"]:
            return "FilesFailed", FILES_SKIPPED_DETAIL
        return "FilesFailed", VERIFY_MISMATCH_DETAIL

    def _manifest_entries(self) -> "list[manifests.Entry] | None":
        """The entries of the execution's manifest (None without one), read with the manifest's own role
        (manifests.read, manifests.parse); a manifest that cannot be read or is not valid ends the
        execution while preparing (LocationProblem)."""
        config = self.ex.manifest_config
        if not config:
            return None
        _, _, _, region, account, _ = self.ex.task_arn.split(":", 5)
        try:
            return manifests.parse(manifests.read(config, account, region, self.ex.task_arn))
        except manifests.ManifestProblem as problem:
            raise LocationProblem(problem.code, problem.detail)

    # -- the phases

    def run(self) -> None:
        phase = "Prepare"
        try:
            if not self._wait():  # QUEUED
                return self._cancelled()
            self._set(status="LAUNCHING", launch_time=time.time())
            if not self._wait():
                return self._cancelled()

            self._set(status="PREPARING")
            prepare_start = time.monotonic()
            options = self.ex.options
            includes = compile_filters(self.ex.includes)
            excludes = compile_filters(self.ex.excludes)
            source = resolve_endpoint(self.source_location, "source")
            destination = resolve_endpoint(self.destination_location, "destination")
            entries = self._manifest_entries()
            plan = make_plan(source, destination, options, includes, excludes, entries)
            with self.ex.lock:
                self.ex.counters.update(
                    EstimatedFilesToTransfer=len(plan.to_copy),
                    EstimatedBytesToTransfer=plan.bytes_to_copy,
                    EstimatedFilesToDelete=len(plan.to_delete),
                    FilesPrepared=len(plan.to_copy),
                    FilesSkipped=plan.skipped,
                )
                self.ex.files_listed = {
                    "AtSource": plan.listed_at_source,
                    "AtDestinationForDelete": plan.listed_at_destination,
                }
            if not self._wait():
                return self._cancelled()
            failed: dict[str, int] = {"Prepare": len(plan.unreadable), "Transfer": 0, "Verify": 0, "Delete": 0}
            with self.ex.lock:
                self.ex.files_failed.update(failed)
            self._result(PrepareStatus="ERROR" if plan.unreadable else "SUCCESS",
                         PrepareDuration=_ms(time.monotonic() - prepare_start))

            items = self.ex.report_items
            for rel, problem in sorted(plan.unreadable.items()):
                # "DataSync skips a file, object, or directory in your source location because it can't
                # read it" (task reports): a skipped entry with an error.
                items["Skipped"].append({
                    "RelativePath": rel, "SrcMetadata": object_metadata(plan.source_objects.get(rel)),
                    "SkippedTimestamp": _now_iso(), "SkippedStatus": "FAILED",
                    "ErrorCode": problem.code, "ErrorDetail": problem.detail,
                })
            for rel in plan.skipped_paths:
                items["Skipped"].append({
                    "RelativePath": rel, "SrcMetadata": object_metadata(plan.source_objects.get(rel)),
                    "SkippedTimestamp": _now_iso(), "SkippedStatus": "SUCCESS",
                })

            phase = "Transfer"
            self._set(status="TRANSFERRING")
            transfer_start = time.monotonic()
            steps = self.TRANSFER_STEPS
            chunks = [plan.to_copy[i::steps] for i in range(steps)]
            copied: list[str] = []
            for index, chunk in enumerate(chunks):
                for rel in chunk:
                    entry: dict[str, Any] = {
                        "RelativePath": rel,
                        "SrcMetadata": object_metadata(plan.source_objects[rel]),
                        "Overwrite": "True" if rel in plan.destination_objects else "False",
                        "TransferType": "CONTENT_AND_METADATA",
                    }
                    try:
                        src_key = current_object(source, rel, plan.versions.get(rel))
                        if src_key is None:
                            raise ObjectProblem(
                                "NoSuchKey", f"The source object {source.prefix}{rel[1:]} no longer exists."
                            )
                        size = copy_one(source, destination, rel, src_key, options, plan.versions.get(rel))
                    except LocationProblem:
                        raise
                    except ObjectProblem as problem:
                        entry.update(TransferStatus="FAILED", ErrorCode=problem.code, ErrorDetail=problem.detail)
                        failed["Transfer"] += 1
                    except Exception as err:  # one object's trouble does not end the execution
                        entry.update(TransferStatus="FAILED", ErrorCode="InternalError", ErrorDetail=repr(err))
                        failed["Transfer"] += 1
                    else:
                        entry["TransferStatus"] = "SUCCESS"
                        copied.append(rel)
                        self._count(FilesTransferred=1, BytesTransferred=size, BytesWritten=size, BytesCompressed=size)
                    entry["TransferTimestamp"] = _now_iso()
                    items["Transferred"].append(entry)
                if index == steps - 1:
                    for rel in plan.to_delete:
                        entry = {"RelativePath": rel,
                                 "DstMetadata": object_metadata(plan.destination_objects.get(rel))}
                        try:
                            delete_one(destination, rel)
                        except LocationProblem:
                            raise
                        except Exception as err:
                            code = err.code if isinstance(err, ObjectProblem) else "InternalError"
                            entry.update(DeleteStatus="FAILED", ErrorCode=code, ErrorDetail=str(err))
                            failed["Delete"] += 1
                        else:
                            entry["DeleteStatus"] = "SUCCESS"
                            self._count(FilesDeleted=1)
                        entry["DeleteTimestamp"] = _now_iso()
                        items["Deleted"].append(entry)
                with self.ex.lock:
                    self.ex.files_failed.update(failed)
                if not self._wait(1.0 / steps):
                    return self._cancelled()
            transfer_ok = failed["Transfer"] == 0 and failed["Delete"] == 0
            self._result(TransferStatus="SUCCESS" if transfer_ok else "ERROR",
                         TransferDuration=_ms(time.monotonic() - transfer_start))

            phase = "Verify"
            self._set(status="VERIFYING")
            verify_start = time.monotonic()
            verify_mode = options.get("VerifyMode")
            if verify_mode == "POINT_IN_TIME_CONSISTENT":
                # Everything in scope, objects that failed to transfer included (AWS: only "verify only
                # transferred data" leaves out "files or objects that fail to transfer"); objects that
                # failed while preparing are left out.
                to_verify = sorted(r for r in plan.source_objects if r not in plan.unreadable)
            elif verify_mode == "ONLY_FILES_TRANSFERRED":
                to_verify = copied
            else:
                to_verify = []
            verified = 0
            for rel in to_verify:
                src_key = current_object(source, rel, plan.versions.get(rel))
                dst_key = current_object(destination, rel)
                if src_key is None and dst_key is None:
                    continue  # gone from both sides since PREPARING: nothing to compare
                entry = {"RelativePath": rel, "SrcMetadata": object_metadata(src_key),
                         "DstMetadata": object_metadata(dst_key), "VerifyTimestamp": _now_iso()}
                try:
                    # Verifying reads both sides' data: encrypted objects must be readable by the roles.
                    for side, stored in ((source, src_key), (destination, dst_key)):
                        if stored is not None:
                            require_readable(side, side.prefix + rel[1:], stored)
                except ObjectProblem as problem:
                    entry.update(VerifyStatus="FAILED", ErrorCode=problem.code, ErrorDetail=problem.detail)
                    failed["Verify"] += 1
                else:
                    if src_key is not None and dst_key is not None and _same_object(src_key, dst_key):
                        entry["VerifyStatus"] = "SUCCESS"
                        verified += 1
                    else:
                        entry.update(VerifyStatus="FAILED", ErrorCode="VerificationFailed",
                                     ErrorDetail="The destination object differs from the source object.")
                        failed["Verify"] += 1
                items["Verified"].append(entry)
            if not self._wait():
                return self._cancelled()
            self._count(FilesVerified=verified)
            with self.ex.lock:
                self.ex.files_failed.update(failed)
            self._result(VerifyStatus="SUCCESS" if failed["Verify"] == 0 else "ERROR",
                         VerifyDuration=_ms(time.monotonic() - verify_start))
            if any(failed.values()):
                return self._finish("ERROR", *self._files_failed_error(failed, items))
            self._finish("SUCCESS")
        except LocationProblem as problem:
            self._result(**{f"{phase}Status": "ERROR"})
            self._finish("ERROR", problem.code, problem.detail)
        except Exception as err:  # anything unexpected still ends the execution
            self._result(**{f"{phase}Status": "ERROR"})
            self._finish("ERROR", "InternalError", f"Unexpected error in the emulator: {err!r}")
