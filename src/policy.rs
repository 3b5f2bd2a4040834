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
const SOURCE_OBJECT_ACTIONS: [&str; 5] = [
    "s3:GetObject",
    "s3:GetObjectTagging",
    "s3:GetObjectVersion",
    "s3:GetObjectVersionTagging",
    "s3:ListMultipartUploadParts",
];

/// Write access for DataSync task reports.
const REPORT_OBJECT_ACTIONS: [&str; 3] = ["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"];

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
    /// Task report bucket and prefix, when a report is configured.
    pub report: Option<(&'a str, Option<&'a str>)>,
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
    let mut statements = vec![
        json!({
            "Sid": "DestinationBucket",
            "Action": DESTINATION_BUCKET_ACTIONS,
            "Effect": "Allow",
            "Resource": dst
        }),
        json!({
            "Sid": "DestinationObjects",
            "Action": DESTINATION_OBJECT_ACTIONS,
            "Effect": "Allow",
            "Resource": format!("{dst}/*")
        }),
        json!({
            "Sid": "SourceBucket",
            "Action": DESTINATION_BUCKET_ACTIONS,
            "Effect": "Allow",
            "Resource": src
        }),
        json!({
            "Sid": "SourceObjects",
            "Action": SOURCE_OBJECT_ACTIONS,
            "Effect": "Allow",
            "Resource": format!("{src}/{src_prefix}*")
        }),
    ];
    if let Some((bucket, prefix)) = inputs.report {
        let report = bucket_arn(source_region, bucket);
        statements.push(json!({
            "Sid": "TaskReportBucket",
            "Action": ["s3:GetBucketLocation", "s3:ListBucket"],
            "Effect": "Allow",
            "Resource": report
        }));
        statements.push(json!({
            "Sid": "TaskReportObjects",
            "Action": REPORT_OBJECT_ACTIONS,
            "Effect": "Allow",
            "Resource": format!("{report}/{}*", normalize_prefix(prefix))
        }));
    }
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// Ferry's two statements for the destination bucket policy (tutorial step 3): the DataSync role
/// may use the bucket and its objects; the identity that creates the location may list it.
pub fn destination_statements(
    destination_region: &str,
    bucket: &str,
    access_sid: &str,
    create_location_sid: &str,
    role_arn: &str,
    creator_arn: &str,
) -> Vec<Value> {
    let arn = bucket_arn(destination_region, bucket);
    let mut actions: Vec<&str> = DESTINATION_BUCKET_ACTIONS.to_vec();
    actions.extend(DESTINATION_OBJECT_ACTIONS);
    vec![
        json!({
            "Sid": access_sid,
            "Effect": "Allow",
            "Principal": {"AWS": role_arn},
            "Action": actions,
            "Resource": [arn.clone(), format!("{arn}/*")]
        }),
        json!({
            "Sid": create_location_sid,
            "Effect": "Allow",
            "Principal": {"AWS": creator_arn},
            "Action": "s3:ListBucket",
            "Resource": arn
        }),
    ]
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

/// Puts `ours` into `current`: statements whose Sid is one of `our_sids` are replaced, every
/// other statement is kept exactly as it is, in place, and ours are added at the end.
pub fn merge_statements(
    current: Option<&str>,
    our_sids: &[String],
    ours: &[Value],
) -> Result<PolicyChange, MalformedPolicy> {
    let existing = parse_policy(current)?;
    let base = existing.clone().unwrap_or_else(|| {
        let mut m = Map::new();
        m.insert("Version".into(), json!("2012-10-17"));
        m
    });
    let mut list: Vec<Value> = statements(&base)?
        .into_iter()
        .filter(|s| !sid(s).is_some_and(|id| our_sids.iter().any(|o| o == id)))
        .collect();
    list.extend(ours.iter().cloned());
    let merged = with_statements(base, list);
    match &existing {
        Some(doc) if same_policy(doc, &merged) => Ok(PolicyChange::Unchanged),
        _ => Ok(PolicyChange::Put(Value::Object(merged).to_string())),
    }
}

/// Takes Ferry's statements (by Sid) out of `current`, keeping everything else exactly.
pub fn remove_statements(current: Option<&str>, our_sids: &[String]) -> Result<PolicyChange, MalformedPolicy> {
    let Some(doc) = parse_policy(current)? else {
        return Ok(PolicyChange::Unchanged);
    };
    let all = statements(&doc)?;
    let kept: Vec<Value> = all
        .iter()
        .filter(|s| !sid(s).is_some_and(|id| our_sids.iter().any(|o| o == id)))
        .cloned()
        .collect();
    if kept.len() == all.len() {
        return Ok(PolicyChange::Unchanged);
    }
    if kept.is_empty() {
        return Ok(PolicyChange::Delete);
    }
    Ok(PolicyChange::Put(Value::Object(with_statements(doc, kept)).to_string()))
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

    fn sids() -> Vec<String> {
        vec!["FerryabcDataSyncAccess".into(), "FerryabcCreateLocation".into()]
    }

    fn ours() -> Vec<Value> {
        destination_statements(
            "us-west-1",
            "dst",
            "FerryabcDataSyncAccess",
            "FerryabcCreateLocation",
            "arn:aws:iam::111111111111:role/ferry-data-x",
            "arn:aws:iam::111111111111:role/ops/operator",
        )
    }

    fn inputs() -> RoleInputs<'static> {
        RoleInputs {
            account_id: "111111111111",
            regions: vec!["us-west-1", "us-east-1"],
            source_bucket: "src",
            source_prefix: Some("media"),
            destination_bucket: "dst",
            report: None,
        }
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
    fn destination_statements_match_the_tutorial() {
        let st = ours();
        assert_eq!(st[0]["Action"].as_array().unwrap().len(), 12);
        assert_eq!(st[0]["Resource"], json!(["arn:aws:s3:::dst", "arn:aws:s3:::dst/*"]));
        assert_eq!(st[1]["Action"], "s3:ListBucket");
        assert_eq!(st[1]["Principal"]["AWS"], "arn:aws:iam::111111111111:role/ops/operator");
    }

    #[test]
    fn merge_into_nothing_creates_a_policy() {
        let PolicyChange::Put(doc) = merge_statements(None, &sids(), &ours()).unwrap() else {
            panic!("expected a write");
        };
        let v: Value = serde_json::from_str(&doc).unwrap();
        assert_eq!(v["Statement"].as_array().unwrap().len(), 2);
        assert_eq!(v["Version"], "2012-10-17");
    }

    #[test]
    fn merge_keeps_other_statements_and_is_idempotent() {
        let existing = json!({
            "Version": "2008-10-17",
            "Id": "keep-me",
            "Statement": [
                {"Sid": "DenyOthers", "Effect": "Deny", "Principal": {"AWS": "arn:aws:iam::999999999999:root"},
                 "Action": "s3:*", "Resource": ["arn:aws:s3:::dst", "arn:aws:s3:::dst/*"]},
                {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::dst/public/*"}
            ]
        })
        .to_string();
        let PolicyChange::Put(merged) = merge_statements(Some(&existing), &sids(), &ours()).unwrap() else {
            panic!("expected a write");
        };
        let v: Value = serde_json::from_str(&merged).unwrap();
        let e: Value = serde_json::from_str(&existing).unwrap();
        assert_eq!(v["Statement"][0], e["Statement"][0]);
        assert_eq!(v["Statement"][1], e["Statement"][1]);
        assert_eq!(v["Id"], "keep-me");
        assert_eq!(v["Version"], "2008-10-17");
        assert_eq!(
            merge_statements(Some(&merged), &sids(), &ours()).unwrap(),
            PolicyChange::Unchanged
        );
        assert_eq!(
            remove_statements(Some(&merged), &sids()).unwrap(),
            PolicyChange::Put(e.to_string())
        );
    }

    #[test]
    fn merge_replaces_a_stale_statement_of_ours() {
        let mut stale = ours();
        stale[0]["Principal"]["AWS"] = json!("arn:aws:iam::111111111111:role/old");
        let existing = json!({"Version": "2012-10-17", "Statement": stale}).to_string();
        let PolicyChange::Put(merged) = merge_statements(Some(&existing), &sids(), &ours()).unwrap() else {
            panic!("expected a write");
        };
        let v: Value = serde_json::from_str(&merged).unwrap();
        assert_eq!(v["Statement"], json!(ours()));
    }

    #[test]
    fn removal_of_only_ours_deletes_the_policy() {
        let PolicyChange::Put(merged) = merge_statements(None, &sids(), &ours()).unwrap() else {
            panic!("expected a write");
        };
        assert_eq!(remove_statements(Some(&merged), &sids()).unwrap(), PolicyChange::Delete);
        assert_eq!(remove_statements(None, &sids()).unwrap(), PolicyChange::Unchanged);
    }

    #[test]
    fn a_single_statement_object_is_understood() {
        let existing = json!({"Version": "2012-10-17", "Statement":
            {"Sid": "Solo", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::dst/*"}})
        .to_string();
        let PolicyChange::Put(merged) = merge_statements(Some(&existing), &sids(), &ours()).unwrap() else {
            panic!("expected a write");
        };
        let v: Value = serde_json::from_str(&merged).unwrap();
        assert_eq!(v["Statement"][0]["Sid"], "Solo");
        assert_eq!(v["Statement"].as_array().unwrap().len(), 3);
    }

    #[test]
    fn malformed_policies_are_refused_not_overwritten() {
        assert!(merge_statements(Some("{not json"), &sids(), &ours()).is_err());
        assert!(merge_statements(Some("[1,2]"), &sids(), &ours()).is_err());
        assert!(remove_statements(Some("{\"Statement\": 3}"), &sids()).is_err());
    }

    #[test]
    fn iam_documents_are_url_decoded() {
        assert_eq!(decode_iam_document("%7B%22a%22%3A1%7D"), "{\"a\":1}");
        assert!(same_document("{ \"a\" : 1 }", &json!({"a": 1})));
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
    }

    proptest! {
        #[test]
        fn merge_never_changes_other_statements(others in prop::collection::vec(arb_statement(), 0..6)) {
            let existing = json!({"Version": "2012-10-17", "Statement": others}).to_string();
            let merged = match merge_statements(Some(&existing), &sids(), &ours()).unwrap() {
                PolicyChange::Put(doc) => doc,
                other => panic!("expected a write, got {other:?}"),
            };
            let v: Value = serde_json::from_str(&merged).unwrap();
            let list = v["Statement"].as_array().unwrap();
            prop_assert_eq!(&list[..others.len()], &others[..]);
            prop_assert_eq!(&list[others.len()..], &ours()[..]);
            // merge then removal gives back the original
            match remove_statements(Some(&merged), &sids()).unwrap() {
                PolicyChange::Put(doc) => {
                    let back: Value = serde_json::from_str(&doc).unwrap();
                    let orig: Value = serde_json::from_str(&existing).unwrap();
                    prop_assert_eq!(back, orig);
                }
                PolicyChange::Delete => prop_assert!(others.is_empty()),
                PolicyChange::Unchanged => prop_assert!(false, "removal must change a merged policy"),
            }
            // merging twice writes nothing the second time
            prop_assert_eq!(merge_statements(Some(&merged), &sids(), &ours()).unwrap(), PolicyChange::Unchanged);
        }
    }
}
