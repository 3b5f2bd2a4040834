//! IAM and S3 policy documents: the DataSync role's trust and inline policies, Ferry's two
//! destination bucket-policy statements, and the merge that puts them into a bucket policy
//! without touching any other statement.
//!
//! All functions here are pure; the steps in `crate::steps` call them and apply the result.

use serde_json::{Map, Value, json};

use crate::naming::{bucket_arn, normalize_prefix, partition};

/// The actions the tutorial grants the DataSync role on the destination bucket itself.
pub const DESTINATION_BUCKET_ACTIONS: [&str; 3] =
    ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"];

/// The actions the DataSync role needs on the destination's objects: the tutorial's seven plus
/// `s3:GetObjectVersion` and `s3:GetObjectVersionTagging`, which DataSync's S3 location page
/// lists for the role it documents
/// (<https://docs.aws.amazon.com/datasync/latest/userguide/create-s3-location.html#create-role-manually>):
/// DataSync reads object versions of a versioned destination when it verifies and compares.
pub const DESTINATION_OBJECT_ACTIONS: [&str; 9] = [
    "s3:AbortMultipartUpload",
    "s3:DeleteObject",
    "s3:GetObject",
    "s3:ListMultipartUploadParts",
    "s3:PutObject",
    "s3:GetObjectTagging",
    "s3:PutObjectTagging",
    "s3:GetObjectVersion",
    "s3:GetObjectVersionTagging",
];

/// Read access DataSync needs on the source objects.
pub const SOURCE_OBJECT_ACTIONS: [&str; 5] = [
    "s3:GetObject",
    "s3:GetObjectTagging",
    "s3:GetObjectVersion",
    "s3:GetObjectVersionTagging",
    "s3:ListMultipartUploadParts",
];

/// Write access for DataSync task reports, and read access to the manifests of failed-only runs
/// Ferry writes under the report prefix (DataSync reads a manifest with `s3:GetObject` and
/// `s3:GetObjectVersion`: <https://docs.aws.amazon.com/datasync/latest/userguide/transferring-with-manifest.html>).
const REPORT_OBJECT_ACTIONS: [&str; 4] = [
    "s3:PutObject",
    "s3:GetObject",
    "s3:GetObjectVersion",
    "s3:AbortMultipartUpload",
];

/// Everything the role documents depend on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleInputs<'a> {
    /// Account A's id.
    pub account_id: &'a str,
    /// Regions DataSync uses the role in (task region first, then the source region).
    pub regions: Vec<&'a str>,
    /// Source bucket and optional prefix.
    pub source_bucket: &'a str,
    /// Source prefix.
    pub source_prefix: Option<&'a str>,
    /// Destination bucket.
    pub destination_bucket: &'a str,
    /// Account B's id: the only account whose bucket of that name the role may use.
    pub destination_account: &'a str,
    /// The source bucket's account: Account A (`account_id`), or another account when the
    /// destination account runs the copy.
    pub source_account: &'a str,
    /// Task report bucket and prefix, when a report is configured.
    pub report: Option<(&'a str, Option<&'a str>)>,
    /// Customer managed KMS keys (full ARNs) of the source objects: the role may decrypt.
    pub source_keys: Vec<String>,
    /// The destination bucket's customer managed KMS key: the role may encrypt new objects.
    pub destination_key: Option<String>,
}

/// What the DataSync role may do with the KMS key of the source objects: decrypt them
/// (<https://docs.aws.amazon.com/datasync/latest/userguide/create-s3-location.html#create-s3-location-encryption>,
/// <https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html>).
pub const SOURCE_KEY_ACTIONS: [&str; 1] = ["kms:Decrypt"];
/// What the DataSync role may do with the destination bucket's KMS key: a data key for each
/// new object, and decrypt for multipart uploads and verification.
pub const DESTINATION_KEY_ACTIONS: [&str; 2] = ["kms:Decrypt", "kms:GenerateDataKey"];
/// Sid of Ferry's statement in a destination KMS key's policy, shared by every transfer whose
/// DataSync role writes with the key.
pub const KEY_SID: &str = "FerryDataSyncKeyUse";
/// Sid of Ferry's statement in a source KMS key's policy (`initiator: Destination`), shared by
/// every transfer whose DataSync role reads objects encrypted with the key.
pub const KEY_READ_SID: &str = "FerryDataSyncKeyRead";

/// What the DataSync role does in the bucket of the other account, and so which statements
/// Ferry adds to that bucket's policy and its key's policy: it writes into the destination
/// (push, the tutorial), or reads the source when the destination account runs the copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Reach {
    /// The destination bucket of Account B: the tutorial's write access.
    #[default]
    Write,
    /// The source bucket of another account: read access only.
    Read,
}

impl Reach {
    /// The reach of a statement Ferry wrote, by its Sid: read-only for a pulled source's
    /// statements (`FerryDataSyncRead`, `FerryDataSyncKeyRead`), else the destination's.
    pub fn of_sid(sid: &str) -> Reach {
        if sid == READ_SID || sid == KEY_READ_SID {
            Reach::Read
        } else {
            Reach::Write
        }
    }

    /// The Sid of the statement that grants the DataSync roles.
    pub fn access_sid(self) -> &'static str {
        match self {
            Reach::Write => ACCESS_SID,
            Reach::Read => READ_SID,
        }
    }

    /// The actions that statement grants on the bucket and its objects.
    fn actions(self) -> Vec<&'static str> {
        let mut actions: Vec<&str> = DESTINATION_BUCKET_ACTIONS.to_vec();
        match self {
            Reach::Write => actions.extend(DESTINATION_OBJECT_ACTIONS),
            Reach::Read => actions.extend(SOURCE_OBJECT_ACTIONS),
        }
        actions
    }

    /// The Sid of Ferry's statement in the bucket key's policy.
    pub fn key_sid(self) -> &'static str {
        match self {
            Reach::Write => KEY_SID,
            Reach::Read => KEY_READ_SID,
        }
    }

    /// What the DataSync roles may do with the bucket's key.
    fn key_actions(self) -> &'static [&'static str] {
        match self {
            Reach::Write => &DESTINATION_KEY_ACTIONS,
            Reach::Read => &SOURCE_KEY_ACTIONS,
        }
    }
}

/// The condition that keeps a statement to buckets of one account: bucket names are global, so
/// a deleted bucket's name could be taken by a stranger's bucket
/// (<https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-resourceaccount>).
fn owned_by(account: &str) -> Value {
    json!({"StringEquals": {"s3:ResourceAccount": account}})
}

/// Trust policy of the DataSync role: only DataSync, only on behalf of Account A's DataSync
/// resources in the regions the transfer uses (the confused-deputy conditions).
pub fn trust_policy(inputs: &RoleInputs<'_>) -> Value {
    let mut regions: Vec<&str> = Vec::new();
    for r in &inputs.regions {
        if !regions.contains(r) {
            regions.push(r);
        }
    }
    let source_arns: Vec<String> = regions
        .iter()
        .map(|r| format!("arn:{}:datasync:{r}:{}:*", partition(r), inputs.account_id))
        .collect();
    let source_arn = if source_arns.len() == 1 {
        json!(source_arns[0])
    } else {
        json!(source_arns)
    };
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "datasync.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {
                "StringEquals": {"aws:SourceAccount": inputs.account_id},
                "ArnLike": {"aws:SourceArn": source_arn}
            }
        }]
    })
}

/// Inline policy of the DataSync role: the tutorial's two statements on the destination bucket,
/// read access to the source bucket and prefix, and write access for the task report.
pub fn role_inline_policy(inputs: &RoleInputs<'_>, destination_region: &str, source_region: &str) -> Value {
    let dst = bucket_arn(destination_region, inputs.destination_bucket);
    let src = bucket_arn(source_region, inputs.source_bucket);
    let src_prefix = normalize_prefix(inputs.source_prefix);
    let (b, a) = (owned_by(inputs.destination_account), owned_by(inputs.source_account));
    let mut statements = vec![
        json!({
            "Sid": "DestinationBucket",
            "Action": DESTINATION_BUCKET_ACTIONS,
            "Effect": "Allow",
            "Resource": dst,
            "Condition": b
        }),
        json!({
            "Sid": "DestinationObjects",
            "Action": DESTINATION_OBJECT_ACTIONS,
            "Effect": "Allow",
            "Resource": format!("{dst}/*"),
            "Condition": b
        }),
        json!({
            "Sid": "SourceBucket",
            "Action": DESTINATION_BUCKET_ACTIONS,
            "Effect": "Allow",
            "Resource": src,
            "Condition": a
        }),
        json!({
            "Sid": "SourceObjects",
            "Action": SOURCE_OBJECT_ACTIONS,
            "Effect": "Allow",
            "Resource": format!("{src}/{src_prefix}*"),
            "Condition": a
        }),
    ];
    // The report bucket is in the account that runs the copy.
    let a = owned_by(inputs.account_id);
    if let Some((bucket, prefix)) = inputs.report {
        let report = bucket_arn(source_region, bucket);
        statements.push(json!({
            "Sid": "TaskReportBucket",
            "Action": ["s3:GetBucketLocation", "s3:ListBucket"],
            "Effect": "Allow",
            "Resource": report,
            "Condition": a
        }));
        statements.push(json!({
            "Sid": "TaskReportObjects",
            "Action": REPORT_OBJECT_ACTIONS,
            "Effect": "Allow",
            "Resource": format!("{report}/{}*", normalize_prefix(prefix)),
            "Condition": a
        }));
    }
    if !inputs.source_keys.is_empty() {
        statements.push(json!({
            "Sid": "SourceKey",
            "Action": SOURCE_KEY_ACTIONS,
            "Effect": "Allow",
            "Resource": inputs.source_keys
        }));
    }
    if let Some(key) = &inputs.destination_key {
        statements.push(json!({
            "Sid": "DestinationKey",
            "Action": DESTINATION_KEY_ACTIONS,
            "Effect": "Allow",
            "Resource": key
        }));
    }
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// Ferry's statement in a bucket's KMS key policy: the DataSync roles of the transfers writing
/// with the key (or, `Reach::Read`, reading with it) may use it (pure).
pub fn key_statement(reach: Reach, roles: &[String]) -> Value {
    json!({
        "Sid": reach.key_sid(),
        "Effect": "Allow",
        "Principal": {"AWS": roles},
        "Action": reach.key_actions(),
        "Resource": "*"
    })
}

/// Adds `add` to (or takes `remove` out of) the principals of Ferry's statement in a key
/// policy; the statement goes when no principal is left, and every other statement is kept
/// exactly. A key policy cannot be deleted, so the result is the document to write, or `None`
/// when nothing changes (pure).
pub fn key_policy_with(
    current: &str,
    reach: Reach,
    add: Option<&str>,
    remove: Option<&str>,
) -> Result<Option<String>, MalformedPolicy> {
    let doc = parse_policy(Some(current))?.ok_or_else(|| MalformedPolicy("empty key policy".into()))?;
    let list = statements(&doc)?;
    let ours = reach.key_sid();
    let mut roles: Vec<String> = list
        .iter()
        .find(|st| sid(st) == Some(ours))
        .map(|st| aws_principals(Some(st)))
        .unwrap_or_default();
    roles.retain(|r| Some(r.as_str()) != remove);
    let roles = union(roles, &add.map(str::to_string).into_iter().collect::<Vec<_>>());
    let fresh = (!roles.is_empty()).then(|| key_statement(reach, &roles));
    let mut out = Vec::new();
    let mut placed = false;
    for st in list {
        if sid(&st) == Some(ours) {
            if let Some(f) = &fresh {
                out.push(f.clone());
            }
            placed = true;
        } else {
            out.push(st);
        }
    }
    if !placed && let Some(f) = fresh {
        out.push(f);
    }
    let next = with_statements(doc.clone(), out);
    Ok((!same_policy(&doc, &next)).then(|| Value::Object(next).to_string()))
}

/// Sid of Ferry's statement that lets the DataSync roles of all its transfers into a bucket use
/// the bucket and its objects (tutorial step 3, statement one).
pub const ACCESS_SID: &str = "FerryDataSyncAccess";
/// Sid of Ferry's read-only statement for the DataSync roles in a source bucket of another
/// account (`initiator: Destination`): the bucket and object read actions DataSync's source
/// location needs, nothing that writes.
pub const READ_SID: &str = "FerryDataSyncRead";
/// Sid of Ferry's statement that lets the identities creating the locations list the bucket
/// (tutorial step 3, statement two). When Ferry changed the bucket's Object Ownership, the Sid
/// also records the value it found (`FerryCreateLocationWasObjectWriter`): the statement lives
/// exactly as long as some transfer uses the bucket, so the last one to leave knows what to put
/// back, whichever transfer changed it, without another call or permission.
pub const CREATE_LOCATION_SID: &str = "FerryCreateLocation";
/// Infix between [`CREATE_LOCATION_SID`] and the recorded original Object Ownership.
const ORIGIN_INFIX: &str = "Was";

/// The Sid of the create-location statement, recording `origin` when known.
fn create_location_sid(origin: Option<&str>) -> String {
    match origin {
        Some(o) => format!("{CREATE_LOCATION_SID}{ORIGIN_INFIX}{o}"),
        None => CREATE_LOCATION_SID.to_string(),
    }
}

/// Whether a Sid is one of Ferry's shared statements for `reach` (the other reach's access
/// statement is not), and the origin the create-location Sid records.
fn shared_sid(id: &str, reach: Reach) -> Option<(bool, Option<String>)> {
    if id == reach.access_sid() {
        return Some((true, None));
    }
    let rest = id.strip_prefix(CREATE_LOCATION_SID)?;
    match rest {
        "" => Some((false, None)),
        _ => rest.strip_prefix(ORIGIN_INFIX).map(|o| (false, Some(o.to_string()))),
    }
}
/// The Object Ownership Ferry sets on a destination bucket (ACLs disabled).
pub const BUCKET_OWNER_ENFORCED: &str = "BucketOwnerEnforced";
/// S3's limit on a bucket policy, in bytes
/// (<https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-iam-policies.html>).
pub const MAX_BUCKET_POLICY_BYTES: usize = 20 * 1024;

/// Ferry's two statements for a destination bucket, shared by every transfer into it: each
/// transfer's DataSync role and creating identity are principals of the one statement, so a
/// transfer adds about the length of one role ARN to the policy (pure).
pub fn shared_statements(bucket_arn: &str, reach: Reach, roles: &[String], creators: &[String]) -> Vec<Value> {
    shared_statements_with(bucket_arn, reach, roles, creators, None)
}

fn shared_statements_with(
    bucket_arn: &str,
    reach: Reach,
    roles: &[String],
    creators: &[String],
    origin: Option<&str>,
) -> Vec<Value> {
    let mut out = Vec::new();
    if !roles.is_empty() {
        out.push(json!({
            "Sid": reach.access_sid(),
            "Effect": "Allow",
            "Principal": {"AWS": roles},
            "Action": reach.actions(),
            "Resource": [bucket_arn, format!("{bucket_arn}/*")]
        }));
    }
    if !creators.is_empty() {
        out.push(json!({
            "Sid": create_location_sid(origin),
            "Effect": "Allow",
            "Principal": {"AWS": creators},
            "Action": "s3:ListBucket",
            "Resource": bucket_arn
        }));
    }
    out
}

/// The AWS principals of a statement (`"Principal": {"AWS": "..." | [...]}`).
fn aws_principals(statement: Option<&Value>) -> Vec<String> {
    match statement.and_then(|s| s.get("Principal")).and_then(|p| p.get("AWS")) {
        Some(Value::String(one)) => vec![one.clone()],
        Some(Value::Array(many)) => many.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
        _ => Vec::new(),
    }
}

/// Ferry's shared statements as found in a policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shared {
    /// The DataSync roles.
    pub roles: Vec<String>,
    /// The identities that create locations.
    pub creators: Vec<String>,
    /// The Object Ownership the first transfer found, when Ferry changed it.
    pub origin: Option<String>,
}

/// The roles, creators and recorded origin in Ferry's shared statements of a policy (pure).
pub fn shared(current: Option<&str>, reach: Reach) -> Result<Shared, MalformedPolicy> {
    let Some(doc) = parse_policy(current)? else {
        return Ok(Shared::default());
    };
    let mut found = Shared::default();
    for statement in statements(&doc)? {
        match sid(&statement).and_then(|id| shared_sid(id, reach)) {
            Some((true, _)) => found.roles = aws_principals(Some(&statement)),
            Some((false, origin)) => {
                found.creators = aws_principals(Some(&statement));
                found.origin = origin;
            }
            None => {}
        }
    }
    Ok(found)
}

/// The roles and creators in Ferry's shared statements of a policy (pure).
pub fn shared_principals(current: Option<&str>, reach: Reach) -> Result<(Vec<String>, Vec<String>), MalformedPolicy> {
    let found = shared(current, reach)?;
    Ok((found.roles, found.creators))
}

/// Rewrites Ferry's shared statements with the given principals: in place where they are, at
/// the end otherwise, gone when empty; statements with a Sid in `legacy_sids` (Ferry's older
/// per-transfer statements) are dropped; every other statement is kept exactly (pure).
fn with_shared(
    current: Option<&str>,
    bucket_arn: &str,
    reach: Reach,
    roles: &[String],
    creators: &[String],
    origin: Option<&str>,
    legacy_sids: &[String],
) -> Result<PolicyChange, MalformedPolicy> {
    let existing = parse_policy(current)?;
    let base = existing.clone().unwrap_or_else(|| {
        let mut m = Map::new();
        m.insert("Version".into(), json!("2012-10-17"));
        m
    });
    let mut fresh: Vec<Value> = shared_statements_with(bucket_arn, reach, roles, creators, origin);
    let mut list = Vec::new();
    for statement in statements(&base)? {
        let id = sid(&statement).unwrap_or_default();
        if legacy_sids.iter().any(|l| l == id) {
            continue;
        }
        match shared_sid(id, reach) {
            Some((access, _)) => {
                let is_access = |f: &Value| {
                    sid(f)
                        .and_then(|id| shared_sid(id, reach))
                        .is_some_and(|(a, _)| a == access)
                };
                if let Some(pos) = fresh.iter().position(is_access) {
                    list.push(fresh.remove(pos));
                }
            }
            None => list.push(statement),
        }
    }
    list.extend(fresh);
    match &existing {
        Some(doc) if same_policy(doc, &with_statements(doc.clone(), list.clone())) => Ok(PolicyChange::Unchanged),
        _ if list.is_empty() => Ok(PolicyChange::Delete),
        _ => Ok(PolicyChange::Put(
            Value::Object(with_statements(base, list)).to_string(),
        )),
    }
}

fn union(mut list: Vec<String>, add: &[String]) -> Vec<String> {
    list.extend(add.iter().cloned());
    list.sort();
    list.dedup();
    list
}

/// What a transfer adds to Ferry's shared statements of a bucket policy.
#[derive(Debug, Clone, Copy, Default)]
pub struct Grant<'a> {
    /// Whether the roles write into the bucket or read it.
    pub reach: Reach,
    /// Its DataSync role(s).
    pub roles: &'a [String],
    /// The identity that creates its locations.
    pub creators: &'a [String],
    /// Roles it used before (e.g. under another name): taken out.
    pub stale_roles: &'a [String],
    /// The Object Ownership Ferry found before changing it, when this transfer changed it (kept
    /// when the statements already record one).
    pub origin: Option<&'a str>,
    /// Its statements as older Ferry versions wrote them: taken out.
    pub legacy_sids: &'a [String],
}

/// Adds a transfer's principals to Ferry's shared statements of a bucket policy (pure).
pub fn grant(current: Option<&str>, bucket_arn: &str, g: Grant<'_>) -> Result<PolicyChange, MalformedPolicy> {
    let mut found = shared(current, g.reach)?;
    found.roles.retain(|r| !g.stale_roles.contains(r));
    let origin = found.origin.as_deref().or(g.origin);
    with_shared(
        current,
        bucket_arn,
        g.reach,
        &union(found.roles, g.roles),
        &union(found.creators, g.creators),
        origin,
        g.legacy_sids,
    )
}

/// What is left of Ferry's grants after one transfer leaves a bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct Revoked {
    /// The policy change.
    pub change: PolicyChange,
    /// Roles of other transfers still in the shared statement: the bucket is still in use.
    pub others_remain: bool,
    /// The Object Ownership the statements recorded (to put back when no other remains).
    pub origin: Option<String>,
}

/// Takes a transfer's role out of Ferry's shared statements (unless `keep_role`: another
/// transfer uses the same role), and its creator when no role of the creator's account is left
/// (pure).
pub fn revoke(
    current: Option<&str>,
    bucket_arn: &str,
    reach: Reach,
    role_arn: &str,
    creator_arn: &str,
    keep_role: bool,
    legacy_sids: &[String],
) -> Result<Revoked, MalformedPolicy> {
    let Shared {
        mut roles,
        mut creators,
        origin,
    } = shared(current, reach)?;
    if !keep_role {
        roles.retain(|r| r != role_arn);
    }
    let account = |arn: &str| crate::naming::arn_account(arn).map(str::to_string);
    if !roles.iter().any(|r| account(r) == account(creator_arn)) {
        creators.retain(|c| c != creator_arn);
    }
    let change = with_shared(
        current,
        bucket_arn,
        reach,
        &roles,
        &creators,
        origin.as_deref(),
        legacy_sids,
    )?;
    Ok(Revoked {
        change,
        others_remain: !roles.is_empty(),
        origin,
    })
}

/// The condition key S3 sets when a request carries a customer-provided key (SSE-C).
const SSE_C_KEY: &str = "s3:x-amz-server-side-encryption-customer-algorithm";

/// Whether a bucket policy requires SSE-C for uploads: a Deny of `s3:PutObject` conditioned on
/// the SSE-C header (S3's documented way to require SSE-C). DataSync cannot write objects with
/// customer-provided keys, so such a bucket cannot be a destination (pure).
pub fn requires_sse_c(current: Option<&str>) -> bool {
    let Ok(Some(doc)) = parse_policy(current) else {
        return false;
    };
    let denies_put = |st: &Value| {
        let actions = match st.get("Action") {
            Some(Value::String(a)) => vec![a.as_str()],
            Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        st.get("Effect").and_then(Value::as_str) == Some("Deny")
            && actions.iter().any(|a| matches!(*a, "s3:PutObject" | "s3:*" | "*"))
    };
    let on_sse_c = |st: &Value| {
        st.get("Condition")
            .and_then(Value::as_object)
            .is_some_and(|ops| ops.values().any(|keys| keys.get(SSE_C_KEY).is_some()))
    };
    statements(&doc).is_ok_and(|list| list.iter().any(|st| denies_put(st) && on_sse_c(st)))
}

/// The size S3 counts for a policy document: its bytes without insignificant whitespace.
pub fn policy_size(doc: &str) -> usize {
    serde_json::from_str::<Value>(doc).map_or(doc.len(), |v| v.to_string().len())
}

/// A bucket policy that could not be read as a JSON policy document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the bucket policy is not a JSON policy document ({0}); Ferry leaves it untouched")]
pub struct MalformedPolicy(pub String);

/// What the bucket policy should become.
#[derive(Debug, Clone, PartialEq)]
pub enum PolicyChange {
    /// The current policy already has exactly the wanted statements: write nothing.
    Unchanged,
    /// Write this document.
    Put(String),
    /// No statement is left: delete the bucket policy.
    Delete,
}

fn parse_policy(current: Option<&str>) -> Result<Option<Map<String, Value>>, MalformedPolicy> {
    let Some(text) = current.filter(|t| !t.trim().is_empty()) else {
        return Ok(None);
    };
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(Some(map)),
        Ok(_) => Err(MalformedPolicy("not a JSON object".into())),
        Err(e) => Err(MalformedPolicy(e.to_string())),
    }
}

/// The statements of a policy as a list, whether `Statement` is a list or a single object.
fn statements(doc: &Map<String, Value>) -> Result<Vec<Value>, MalformedPolicy> {
    match doc.get("Statement") {
        None => Ok(Vec::new()),
        Some(Value::Array(list)) => Ok(list.clone()),
        Some(obj @ Value::Object(_)) => Ok(vec![obj.clone()]),
        Some(_) => Err(MalformedPolicy("Statement is neither a list nor an object".into())),
    }
}

fn sid(statement: &Value) -> Option<&str> {
    statement.get("Sid").and_then(Value::as_str)
}

/// Two policies mean the same when their statements are equal in order, whatever the shape of
/// `Statement`, and their other top-level keys are equal.
fn same_policy(a: &Map<String, Value>, b: &Map<String, Value>) -> bool {
    let strip = |m: &Map<String, Value>| {
        let mut m = m.clone();
        m.remove("Statement");
        m
    };
    statements(a).ok() == statements(b).ok() && strip(a) == strip(b)
}

fn with_statements(mut doc: Map<String, Value>, list: Vec<Value>) -> Map<String, Value> {
    doc.insert("Statement".into(), Value::Array(list));
    doc
}

/// A standalone policy document holding only Ferry's statements (External mode).
pub fn standalone_policy(ours: &[Value]) -> String {
    let doc = json!({"Version": "2012-10-17", "Statement": ours});
    serde_json::to_string_pretty(&doc).unwrap_or_else(|_| doc.to_string())
}

/// True when two JSON policy documents are the same document (IAM may return other spacing).
pub fn same_document(current: &str, desired: &Value) -> bool {
    serde_json::from_str::<Value>(current).is_ok_and(|v| &v == desired)
}

/// IAM returns policy documents URL-encoded; decode them.
pub fn decode_iam_document(raw: &str) -> String {
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map(|s| s.into_owned())
        .unwrap_or_else(|_| raw.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const BUCKET: &str = "arn:aws:s3:::dst";
    const CREATOR: &str = "arn:aws:iam::111111111111:role/ops/operator";

    fn role(n: usize) -> String {
        format!("arn:aws:iam::111111111111:role/ferry-data-t{n}")
    }

    fn inputs() -> RoleInputs<'static> {
        RoleInputs {
            account_id: "111111111111",
            regions: vec!["us-west-1", "us-east-1"],
            source_bucket: "src",
            source_prefix: Some("media"),
            destination_bucket: "dst",
            destination_account: "222222222222",
            source_account: "111111111111",
            report: None,
            source_keys: Vec::new(),
            destination_key: None,
        }
    }

    fn add(current: Option<&str>, n: usize) -> String {
        match grant(
            current,
            BUCKET,
            Grant {
                roles: &[role(n)],
                creators: &[CREATOR.to_string()],
                ..Grant::default()
            },
        )
        .unwrap()
        {
            PolicyChange::Put(doc) => doc,
            other => panic!("expected a write, got {other:?}"),
        }
    }

    #[test]
    fn key_policy_statement_is_shared_and_foreign_statements_stay_exact() {
        let root = json!({"Sid": "Enable IAM User Permissions", "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::222222222222:root"}, "Action": "kms:*", "Resource": "*"});
        let original = json!({"Version": "2012-10-17", "Statement": [root]}).to_string();
        let one = key_policy_with(&original, Reach::Write, Some(&role(1)), None)
            .unwrap()
            .expect("a write");
        let two = key_policy_with(&one, Reach::Write, Some(&role(2)), None)
            .unwrap()
            .expect("a write");
        // Adding a role that is there already writes nothing.
        assert_eq!(key_policy_with(&two, Reach::Write, Some(&role(1)), None).unwrap(), None);
        let doc: Value = serde_json::from_str(&two).unwrap();
        assert_eq!(
            doc["Statement"][0], root,
            "the account's statement is kept first, exactly"
        );
        assert_eq!(doc["Statement"][1]["Sid"], KEY_SID);
        assert_eq!(doc["Statement"][1]["Principal"]["AWS"], json!([role(1), role(2)]));
        // The first to leave takes only its role; the last takes the statement.
        let left = key_policy_with(&two, Reach::Write, None, Some(&role(1)))
            .unwrap()
            .expect("a write");
        let left_doc: Value = serde_json::from_str(&left).unwrap();
        assert_eq!(left_doc["Statement"][1]["Principal"]["AWS"], json!([role(2)]));
        let gone = key_policy_with(&left, Reach::Write, None, Some(&role(2)))
            .unwrap()
            .expect("a write");
        assert_eq!(
            serde_json::from_str::<Value>(&gone).unwrap(),
            serde_json::from_str::<Value>(&original).unwrap()
        );
        assert!(key_policy_with("not json", Reach::Write, Some(&role(1)), None).is_err());
    }

    #[test]
    fn a_policy_requiring_sse_c_uploads_is_recognised() {
        let deny = |action: Value, condition: Value| {
            json!({"Statement": [{"Effect": "Deny", "Principal": "*", "Action": action,
                "Resource": "arn:aws:s3:::b/*", "Condition": condition}]})
            .to_string()
        };
        let null = json!({"Null": {"s3:x-amz-server-side-encryption-customer-algorithm": "true"}});
        assert!(requires_sse_c(Some(&deny(json!("s3:PutObject"), null.clone()))));
        assert!(requires_sse_c(Some(&deny(json!(["s3:GetObject", "s3:*"]), null))));
        // A policy that asks for SSE-KMS (or none at all) is not an SSE-C requirement.
        let kms = json!({"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}});
        assert!(!requires_sse_c(Some(&deny(json!("s3:PutObject"), kms))));
        assert!(!requires_sse_c(None));
        assert!(!requires_sse_c(Some("not json")));
    }

    #[test]
    fn trust_policy_has_confused_deputy_conditions() {
        let doc = trust_policy(&inputs());
        let st = &doc["Statement"][0];
        assert_eq!(st["Principal"]["Service"], "datasync.amazonaws.com");
        assert_eq!(st["Action"], "sts:AssumeRole");
        assert_eq!(st["Condition"]["StringEquals"]["aws:SourceAccount"], "111111111111");
        assert_eq!(
            st["Condition"]["ArnLike"]["aws:SourceArn"],
            json!([
                "arn:aws:datasync:us-west-1:111111111111:*",
                "arn:aws:datasync:us-east-1:111111111111:*"
            ])
        );
        let mut same = inputs();
        same.regions = vec!["us-east-1", "us-east-1"];
        assert_eq!(
            trust_policy(&same)["Statement"][0]["Condition"]["ArnLike"]["aws:SourceArn"],
            "arn:aws:datasync:us-east-1:111111111111:*"
        );
    }

    #[test]
    fn inline_policy_is_the_tutorials_plus_source_read() {
        let doc = role_inline_policy(&inputs(), "us-west-1", "us-east-1");
        let st = doc["Statement"].as_array().unwrap();
        assert_eq!(st[0]["Resource"], "arn:aws:s3:::dst");
        assert_eq!(st[0]["Action"], json!(DESTINATION_BUCKET_ACTIONS));
        assert_eq!(st[1]["Resource"], "arn:aws:s3:::dst/*");
        assert_eq!(st[1]["Action"], json!(DESTINATION_OBJECT_ACTIONS));
        assert_eq!(st[2]["Resource"], "arn:aws:s3:::src");
        assert_eq!(st[3]["Resource"], "arn:aws:s3:::src/media/*");
        assert_eq!(st.len(), 4);
        let mut with_report = inputs();
        with_report.report = Some(("reports", Some("ferry")));
        let doc = role_inline_policy(&with_report, "us-west-1", "us-east-1");
        assert_eq!(doc["Statement"][5]["Resource"], "arn:aws:s3:::reports/ferry/*");
    }

    #[test]
    fn iam_documents_are_url_decoded() {
        assert_eq!(decode_iam_document("%7B%22a%22%3A1%7D"), "{\"a\":1}");
        assert!(same_document("{ \"a\" : 1 }", &json!({"a": 1})));
    }

    #[test]
    fn shared_statements_match_the_tutorial_with_a_principal_list() {
        let st = shared_statements(BUCKET, Reach::Write, &[role(1)], &[CREATOR.to_string()]);
        assert_eq!(st[0]["Sid"], ACCESS_SID);
        assert_eq!(st[0]["Action"].as_array().unwrap().len(), 12);
        assert_eq!(st[0]["Resource"], json!(["arn:aws:s3:::dst", "arn:aws:s3:::dst/*"]));
        assert_eq!(st[0]["Principal"]["AWS"], json!([role(1)]));
        assert_eq!(st[1]["Sid"], CREATE_LOCATION_SID);
        assert_eq!(st[1]["Action"], "s3:ListBucket");
        assert_eq!(st[1]["Principal"]["AWS"], json!([CREATOR]));
    }

    #[test]
    fn transfers_share_two_statements_and_each_adds_only_its_role() {
        let one = add(None, 1);
        let two = add(Some(&one), 2);
        let (roles, creators) = shared_principals(Some(&two), Reach::Write).unwrap();
        assert_eq!(roles, vec![role(1), role(2)]);
        assert_eq!(creators, vec![CREATOR.to_string()]);
        let v: Value = serde_json::from_str(&two).unwrap();
        assert_eq!(
            v["Statement"].as_array().unwrap().len(),
            2,
            "two statements, whatever the count"
        );
        assert_eq!(
            grant(
                Some(&two),
                BUCKET,
                Grant {
                    roles: &[role(1)],
                    creators: &[CREATOR.to_string()],
                    ..Grant::default()
                }
            )
            .unwrap(),
            PolicyChange::Unchanged,
            "granting again writes nothing"
        );
        // One leaves: the other keeps its access and the creator stays.
        let left = revoke(Some(&two), BUCKET, Reach::Write, &role(1), CREATOR, false, &[]).unwrap();
        assert!(left.others_remain);
        let PolicyChange::Put(after) = left.change else {
            panic!("expected a write")
        };
        assert_eq!(
            shared_principals(Some(&after), Reach::Write).unwrap(),
            (vec![role(2)], vec![CREATOR.to_string()])
        );
        // The last one leaves: the policy is gone.
        let last = revoke(Some(&after), BUCKET, Reach::Write, &role(2), CREATOR, false, &[]).unwrap();
        assert!(!last.others_remain);
        assert_eq!(last.change, PolicyChange::Delete);
        // A renamed role replaces the old one.
        let renamed = grant(
            Some(&two),
            BUCKET,
            Grant {
                roles: &[role(3)],
                creators: &[CREATOR.to_string()],
                stale_roles: &[role(1)],
                ..Grant::default()
            },
        )
        .unwrap();
        let PolicyChange::Put(renamed) = renamed else {
            panic!("expected a write")
        };
        assert_eq!(
            shared_principals(Some(&renamed), Reach::Write).unwrap().0,
            vec![role(2), role(3)]
        );
        // A role another transfer shares stays.
        let kept = revoke(Some(&two), BUCKET, Reach::Write, &role(1), CREATOR, true, &[]).unwrap();
        assert_eq!(kept.change, PolicyChange::Unchanged);
    }

    #[test]
    fn the_original_ownership_lives_in_the_shared_statement_until_the_last_transfer_leaves() {
        let first = match grant(
            None,
            BUCKET,
            Grant {
                roles: &[role(1)],
                creators: &[CREATOR.to_string()],
                origin: Some("ObjectWriter"),
                ..Grant::default()
            },
        )
        .unwrap()
        {
            PolicyChange::Put(doc) => doc,
            other => panic!("{other:?}"),
        };
        assert!(first.contains("FerryCreateLocationWasObjectWriter"));
        // A second transfer found the bucket enforced already: the record stays.
        let second = add(Some(&first), 2);
        assert_eq!(
            shared(Some(&second), Reach::Write).unwrap().origin.as_deref(),
            Some("ObjectWriter")
        );
        // The first leaves, the second is last and learns what to put back.
        let PolicyChange::Put(after) = revoke(Some(&second), BUCKET, Reach::Write, &role(1), CREATOR, false, &[])
            .unwrap()
            .change
        else {
            panic!("expected a write")
        };
        let last = revoke(Some(&after), BUCKET, Reach::Write, &role(2), CREATOR, false, &[]).unwrap();
        assert!(!last.others_remain);
        assert_eq!(last.origin.as_deref(), Some("ObjectWriter"));
    }

    #[test]
    fn a_hundred_transfers_fit_in_s3s_limit() {
        let mut doc = add(None, 0);
        for n in 1..100 {
            doc = add(Some(&doc), n);
        }
        assert!(
            policy_size(&doc) < MAX_BUCKET_POLICY_BYTES,
            "{} bytes",
            policy_size(&doc)
        );
        // Whitespace does not count.
        let pretty = serde_json::to_string_pretty(&serde_json::from_str::<Value>(&doc).unwrap()).unwrap();
        assert_eq!(policy_size(&pretty), policy_size(&doc));
    }

    #[test]
    fn older_per_transfer_statements_are_replaced() {
        let legacy = json!({"Version": "2012-10-17", "Statement": [
            {"Sid": "Mine", "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": BUCKET},
            {"Sid": "FerryabcDataSyncAccess", "Effect": "Allow", "Principal": {"AWS": role(1)}, "Action": "s3:*", "Resource": BUCKET},
            {"Sid": "FerryabcCreateLocation", "Effect": "Allow", "Principal": {"AWS": CREATOR}, "Action": "s3:ListBucket", "Resource": BUCKET}
        ]}).to_string();
        let sids = vec![
            "FerryabcDataSyncAccess".to_string(),
            "FerryabcCreateLocation".to_string(),
        ];
        let PolicyChange::Put(doc) = grant(
            Some(&legacy),
            BUCKET,
            Grant {
                roles: &[role(1)],
                creators: &[CREATOR.to_string()],
                legacy_sids: &sids,
                ..Grant::default()
            },
        )
        .unwrap() else {
            panic!("expected a write");
        };
        let v: Value = serde_json::from_str(&doc).unwrap();
        let ids: Vec<&str> = v["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s["Sid"].as_str())
            .collect();
        assert_eq!(ids, vec!["Mine", ACCESS_SID, CREATE_LOCATION_SID]);
    }

    #[test]
    fn malformed_policies_are_refused_not_overwritten() {
        assert!(
            grant(
                Some("{not json"),
                BUCKET,
                Grant {
                    roles: &[role(1)],
                    ..Grant::default()
                }
            )
            .is_err()
        );
        assert!(
            grant(
                Some("[1,2]"),
                BUCKET,
                Grant {
                    roles: &[role(1)],
                    ..Grant::default()
                }
            )
            .is_err()
        );
        assert!(
            revoke(
                Some("{\"Statement\": 3}"),
                BUCKET,
                Reach::Write,
                &role(1),
                CREATOR,
                false,
                &[]
            )
            .is_err()
        );
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            any::<bool>().prop_map(Value::from),
            any::<i32>().prop_map(Value::from),
            "[a-zA-Z0-9:/*._-]{0,24}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map("[A-Za-z]{1,10}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn arb_statement() -> impl Strategy<Value = Value> {
        (
            prop::option::of("[A-Za-z0-9]{1,20}"),
            prop_oneof![Just("Allow"), Just("Deny")],
            arb_json(),
            arb_json(),
        )
            .prop_map(|(sid, effect, principal, extra)| {
                let mut m = Map::new();
                if let Some(s) = sid {
                    m.insert("Sid".into(), Value::from(s));
                }
                m.insert("Effect".into(), Value::from(effect));
                m.insert("Principal".into(), principal);
                m.insert("Action".into(), Value::from("s3:GetObject"));
                m.insert("Resource".into(), Value::from("arn:aws:s3:::dst/*"));
                m.insert("Condition".into(), extra);
                Value::Object(m)
            })
            .prop_filter("not one of Ferry's Sids", |s| {
                !matches!(
                    s.get("Sid").and_then(Value::as_str),
                    Some(ACCESS_SID | CREATE_LOCATION_SID)
                )
            })
    }

    proptest! {
        #[test]
        fn grants_never_change_other_statements(
            others in prop::collection::vec(arb_statement(), 0..6),
            count in 1usize..5,
        ) {
            let existing = json!({"Version": "2012-10-17", "Statement": others}).to_string();
            let mut doc = existing.clone();
            for n in 0..count {
                doc = add(Some(&doc), n);
            }
            let v: Value = serde_json::from_str(&doc).unwrap();
            let list = v["Statement"].as_array().unwrap();
            prop_assert_eq!(&list[..others.len()], &others[..]);
            prop_assert_eq!(list.len(), others.len() + 2);
            // Every transfer leaving gives back the original document.
            for n in 0..count {
                match revoke(Some(&doc), BUCKET, Reach::Write, &role(n), CREATOR, false, &[]).unwrap().change {
                    PolicyChange::Put(next) => doc = next,
                    PolicyChange::Delete => { prop_assert!(others.is_empty()); doc = String::new(); }
                    PolicyChange::Unchanged => prop_assert!(false, "leaving must change the policy"),
                }
            }
            if !others.is_empty() {
                let back: Value = serde_json::from_str(&doc).unwrap();
                let orig: Value = serde_json::from_str(&existing).unwrap();
                prop_assert_eq!(back, orig);
            }
        }
    }
}
