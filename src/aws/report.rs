//! Reading a DataSync task report: the summary of an execution, and a few of the objects that
//! failed (<https://docs.aws.amazon.com/datasync/latest/userguide/task-reports.html>).
//!
//! DataSync writes, under the report's subdirectory, `Summary-Reports/<task-id>/<execution-id>/`
//! with the summary (`*.summary-v1.json`) and `Detailed-Reports/<task-id>/<execution-id>/` with
//! one list per kind (transferred, verified, deleted, skipped) whose entries carry a
//! `...Status` of `SUCCESS` or `FAILED`. Ferry lists the execution's folder rather than
//! guessing file names.

use serde_json::Value;

use super::{Account, Failure};
use crate::api::ReportSummary;
use crate::naming::{arn_resource_id, normalize_prefix};

/// How many failed objects the status lists.
pub const FAILED_SHOWN: usize = 5;

/// Where a report lives.
#[derive(Clone, Debug)]
pub struct ReportPlace<'a> {
    /// The report bucket.
    pub bucket: &'a str,
    /// Its region.
    pub region: &'a str,
    /// The report prefix from the spec.
    pub prefix: Option<&'a str>,
    /// The execution ARN (`arn:...:task/<task id>/execution/<execution id>`): it names its task.
    pub execution_arn: &'a str,
}

impl ReportPlace<'_> {
    /// Where a failed-only run's manifest goes: under the report's prefix, per task and failed
    /// execution, so writing it again after a crash writes the same object. Its key keeps to the
    /// characters DataSync accepts in `ManifestObjectPath` (`[a-zA-Z0-9_\-+./()\p{Zs}]`).
    pub fn manifest_key(&self) -> String {
        let (task, execution) = self.ids();
        format!(
            "{}ferry-manifests/{task}/{execution}.csv",
            normalize_prefix(self.prefix)
        )
    }

    /// The manifest as `s3://bucket/key`.
    pub fn manifest_uri(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.manifest_key())
    }

    /// The ids of the execution's task and of the execution, from its ARN.
    pub fn ids(&self) -> (&str, &str) {
        let task_arn = self.execution_arn.split("/execution/").next().unwrap_or_default();
        (arn_resource_id(task_arn), arn_resource_id(self.execution_arn))
    }
}

fn folder(place: &ReportPlace<'_>, kind: &str) -> String {
    let (task, execution) = place.ids();
    format!("{}{kind}/{task}/{execution}/", normalize_prefix(place.prefix))
}

async fn keys(account: &Account, place: &ReportPlace<'_>, prefix: &str) -> Result<Vec<String>, Failure> {
    let out = account
        .s3(place.region)
        .list_objects_v2()
        .bucket(place.bucket)
        .prefix(prefix)
        .max_keys(50)
        .send()
        .await?;
    Ok(out
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_string))
        .collect())
}

async fn json(account: &Account, place: &ReportPlace<'_>, key: &str) -> Result<Value, Failure> {
    let out = account
        .s3(place.region)
        .get_object()
        .bucket(place.bucket)
        .key(key)
        .send()
        .await?;
    let bytes = out
        .body
        .collect()
        .await
        .map_err(|e| Failure {
            kind: super::FailureKind::Unavailable,
            code: "NoResponse".into(),
            message: e.to_string(),
        })?
        .into_bytes();
    Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// The failed objects in a detailed report list (pure): `"<path>: <code> <detail>"`.
pub fn failed_entries(list: &Value) -> Vec<String> {
    let Some(map) = list.as_object() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entries in map.values().filter_map(Value::as_array) {
        for entry in entries {
            let failed = entry
                .as_object()
                .is_some_and(|e| e.iter().any(|(k, v)| k.ends_with("Status") && v == "FAILED"));
            if failed {
                // Enhanced-mode reports say ErrorCode/ErrorDetail, Basic-mode ones
                // FailureCode/FailureReason.
                let text = |keys: &[&str]| {
                    keys.iter()
                        .find_map(|k| entry.get(*k))
                        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                        .unwrap_or_default()
                };
                let path = text(&["RelativePath", "FileName", "Key"]);
                let code = text(&["ErrorCode", "FailureCode"]);
                let detail = text(&["ErrorDetail", "FailureReason"]);
                out.push(format!("{path}: {code} {detail}").trim_end().to_string());
            }
        }
    }
    out
}

/// Counts from a summary (pure).
pub fn summary_counts(summary: &Value) -> (i64, i64, i64) {
    let n = |k: &str| summary.get(k).and_then(Value::as_i64).unwrap_or_default();
    let failed = match summary.get("FilesFailed") {
        Some(Value::Object(m)) => m.values().filter_map(Value::as_i64).sum(),
        Some(v) => v.as_i64().unwrap_or_default(),
        None => 0,
    };
    (n("FilesTransferred"), n("FilesVerified"), failed)
}

/// Reads an execution's report; `None` when DataSync has not written it (yet).
pub async fn read(account: &Account, place: &ReportPlace<'_>) -> Result<Option<ReportSummary>, Failure> {
    let summaries = keys(account, place, &folder(place, "Summary-Reports")).await?;
    let Some(key) = summaries.iter().find(|k| k.ends_with(".json")) else {
        return Ok(None);
    };
    let summary = json(account, place, key).await?;
    let (transferred, verified, failed) = summary_counts(&summary);
    let mut failed_objects = Vec::new();
    if failed > 0 {
        for key in keys(account, place, &folder(place, "Detailed-Reports")).await? {
            if failed_objects.len() >= FAILED_SHOWN {
                break;
            }
            failed_objects.extend(failed_entries(&json(account, place, &key).await?));
        }
        failed_objects.truncate(FAILED_SHOWN);
    }
    Ok(Some(ReportSummary {
        location: format!("s3://{}/{key}", place.bucket),
        transferred,
        verified,
        failed,
        failed_objects,
    }))
}

/// The report lists whose failed entries a failed-only run copies again: objects that failed to
/// transfer, to verify, or to be read while preparing (listed as skipped). A failed delete is
/// not among them: a manifest never deletes
/// (<https://docs.aws.amazon.com/datasync/latest/userguide/transferring-with-manifest.html>).
const RERUN_LISTS: [&str; 3] = ["Transferred", "Verified", "Skipped"];

/// The paths (relative to the source location, without the report's leading `/`) of the
/// objects a detailed report list says failed, except failed deletes (pure).
pub fn failed_paths_in(list: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for name in RERUN_LISTS {
        for entry in list.get(name).and_then(Value::as_array).into_iter().flatten() {
            let failed = entry
                .as_object()
                .is_some_and(|e| e.iter().any(|(k, v)| k.ends_with("Status") && v == "FAILED"));
            if let Some(path) = entry.get("RelativePath").and_then(Value::as_str).filter(|_| failed) {
                out.push(path.trim_start_matches('/').to_string());
            }
        }
    }
    out
}

/// A DataSync manifest listing `paths` (pure): UTF-8 CSV, one path per line, no header; a path
/// holding a comma, a quote or a line break is quoted, its quotes doubled
/// (<https://docs.aws.amazon.com/datasync/latest/userguide/transferring-with-manifest.html>).
pub fn manifest_csv(paths: &[String]) -> String {
    let mut out = String::new();
    for path in paths {
        if path.contains([',', '"', '\n', '\r']) {
            out.push('"');
            out.push_str(&path.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(path);
        }
        out.push('\n');
    }
    out
}

/// Every path an ended execution's report lists as failed (over every page and list file),
/// sorted and each once.
pub async fn failed_paths(account: &Account, place: &ReportPlace<'_>) -> Result<Vec<String>, Failure> {
    let prefix = folder(place, "Detailed-Reports");
    let mut pages = account
        .s3(place.region)
        .list_objects_v2()
        .bucket(place.bucket)
        .prefix(&prefix)
        .into_paginator()
        .send();
    let mut keys = Vec::new();
    while let Some(page) = pages.next().await {
        keys.extend(page?.contents().iter().filter_map(|o| o.key().map(str::to_string)));
    }
    let mut paths = std::collections::BTreeSet::new();
    for key in keys {
        paths.extend(failed_paths_in(&json(account, place, &key).await?));
    }
    Ok(paths.into_iter().collect())
}

/// Writes the manifest into the report bucket with Ferry's own identity.
pub async fn put_manifest(account: &Account, place: &ReportPlace<'_>, key: &str, body: String) -> Result<(), Failure> {
    account
        .s3(place.region)
        .put_object()
        .bucket(place.bucket)
        .key(key)
        .content_type("text/csv")
        .body(body.into_bytes().into())
        .send()
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn failed_entries_and_counts_are_read_from_the_report() {
        let list = json!({"TaskExecutionArn": "x", "Transferred": [
            {"RelativePath": "/a.txt", "TransferStatus": "SUCCESS"},
            {"RelativePath": "/b.txt", "TransferStatus": "FAILED", "ErrorCode": "AccessDenied", "ErrorDetail": "kms:Decrypt"}
        ]});
        assert_eq!(failed_entries(&list), vec!["/b.txt: AccessDenied kms:Decrypt"]);
        let basic = json!({"Skipped": [{"RelativePath": "/c.txt", "SkippedStatus": "FAILED",
            "FailureCode": 40974, "FailureReason": "S3 Get Object Failed"}]});
        assert_eq!(failed_entries(&basic), vec!["/c.txt: 40974 S3 Get Object Failed"]);
        let summary = json!({"FilesTransferred": 3, "FilesVerified": 2, "FilesFailed": {"Transfer": 1, "Verify": 1}});
        assert_eq!(summary_counts(&summary), (3, 2, 2));
    }

    #[test]
    fn the_report_folder_follows_the_task_and_execution_ids() {
        let place = ReportPlace {
            bucket: "r",
            region: "us-east-1",
            prefix: Some("reports"),
            execution_arn: "arn:aws:datasync:us-east-1:1:task/task-1/execution/exec-2",
        };
        assert_eq!(
            folder(&place, "Summary-Reports"),
            "reports/Summary-Reports/task-1/exec-2/"
        );
    }

    #[test]
    fn failed_paths_leave_out_deletes_and_the_manifest_quotes_what_csv_needs() {
        let list = json!({
            "Transferred": [
                {"RelativePath": "/a.txt", "TransferStatus": "SUCCESS"},
                {"RelativePath": "/dir/b.txt", "TransferStatus": "FAILED", "ErrorCode": "AccessDenied"}
            ],
            "Skipped": [{"RelativePath": "/c,d.txt", "SkippedStatus": "FAILED"}],
            "Deleted": [{"RelativePath": "/gone.txt", "DeleteStatus": "FAILED"}]
        });
        let paths = failed_paths_in(&list);
        assert_eq!(paths, vec!["dir/b.txt", "c,d.txt"]);
        let quoted = vec!["say \"hi\".txt".to_string()];
        assert_eq!(manifest_csv(&paths), "dir/b.txt\n\"c,d.txt\"\n");
        assert_eq!(manifest_csv(&quoted), "\"say \"\"hi\"\".txt\"\n");
    }

    #[test]
    fn the_manifest_key_is_one_per_failed_execution_in_characters_datasync_accepts() {
        let place = ReportPlace {
            bucket: "r",
            region: "us-east-1",
            prefix: Some("reports/"),
            execution_arn: "arn:aws:datasync:us-east-1:1:task/task-1/execution/exec-2",
        };
        let key = place.manifest_key();
        assert_eq!(key, "reports/ferry-manifests/task-1/exec-2.csv");
        assert!(key.chars().all(|c| c.is_ascii_alphanumeric() || "_-+./() ".contains(c)));
    }
}
