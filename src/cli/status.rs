//! `ferry status`: transfers with their phase and a progress bar; `-w` follows them live.

use std::collections::BTreeMap;
use std::io::IsTerminal;

use clap::Args;
use futures::StreamExt;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};

use crate::api::{CrossAccountTransfer, condition};

/// Options of `ferry status`.
#[derive(Args, Debug)]
pub struct StatusArgs {
    /// All namespaces.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Namespace (default: the kubeconfig's).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Keep watching and redraw on every change.
    #[arg(short = 'w', long)]
    pub watch: bool,
}

/// A 20-character progress bar (pure).
pub fn bar(percent: i32) -> String {
    let filled = usize::try_from(percent.clamp(0, 100) / 5).unwrap_or(0);
    format!("[{}{}]", "#".repeat(filled), ".".repeat(20 - filled))
}

/// Bytes for humans (pure).
pub fn human_bytes(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// One table line per transfer (pure).
pub fn render(transfers: &[CrossAccountTransfer], with_namespace: bool) -> String {
    let mut notes = Vec::new();
    let mut rows = vec![{
        let mut h = Vec::new();
        if with_namespace {
            h.push("NAMESPACE".to_string());
        }
        h.extend(["NAME", "PHASE", "PROGRESS", "COPIED", "MESSAGE"].map(String::from));
        h
    }];
    for t in transfers {
        let status = t.status.clone().unwrap_or_default();
        let exec = status.execution.clone();
        let percent = exec.as_ref().map(|e| e.percent_done).unwrap_or(0);
        let copied = exec
            .as_ref()
            .map(|e| {
                let mut cell = format!("{} objects, {}", e.files_transferred, human_bytes(e.bytes_transferred));
                if let Some(listed) = e.files_listed {
                    cell.push_str(&format!(" of {listed} listed"));
                }
                if e.files_failed > 0 {
                    cell.push_str(&format!(", {} failed", e.files_failed));
                }
                cell
            })
            .unwrap_or_else(|| "-".into());
        notes.extend(details(t, &status));
        let message = status
            .conditions
            .iter()
            .find(|c| c.type_ == condition::READY)
            .map(|c| c.message.clone())
            .unwrap_or_default();
        let mut row = Vec::new();
        if with_namespace {
            row.push(t.namespace().unwrap_or_default());
        }
        row.push(t.name_any());
        row.push(
            status
                .phase
                .map(|p| p.as_str().to_string())
                .unwrap_or_else(|| "Pending".into()),
        );
        row.push(format!("{} {percent:>3}%", bar(percent)));
        row.push(copied);
        row.push(message.chars().take(80).collect());
        rows.push(row);
    }
    let columns = rows[0].len();
    let widths: Vec<usize> = (0..columns)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let table = rows
        .iter()
        .map(|r| {
            r.iter()
                .enumerate()
                .map(|(i, cell)| {
                    if i + 1 == columns {
                        cell.clone()
                    } else {
                        format!("{cell:<w$}", w = widths[i])
                    }
                })
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n");
    if notes.is_empty() {
        table
    } else {
        format!("{table}\n\n{}", notes.join("\n"))
    }
}

/// The lines under the table for one transfer: a failed-only run, its task report and the KMS
/// keys its DataSync role uses.
fn details(t: &CrossAccountTransfer, status: &crate::api::CrossAccountTransferStatus) -> Vec<String> {
    let name = format!("{}/{}", t.namespace().unwrap_or_default(), t.name_any());
    let mut out = Vec::new();
    if let Some(run) = status.last_run.as_ref().and_then(|r| r.failed_only.as_ref()) {
        out.push(format!(
            "{name}: failed-only run: {} objects that execution {} failed{}",
            run.objects,
            run.of_execution,
            run.manifest
                .as_deref()
                .map(|m| format!(" (manifest {m})"))
                .unwrap_or_else(|| ", none to run again".into())
        ));
    }
    if let Some(r) = status.execution.as_ref().and_then(|e| e.report.as_ref()) {
        let mut line = format!(
            "{name}: report {}: {} transferred, {} verified, {} failed",
            r.location, r.transferred, r.verified, r.failed
        );
        if !r.failed_objects.is_empty() {
            line.push_str(&format!(" ({})", r.failed_objects.join("; ")));
        }
        out.push(line);
    }
    if let Some(enc) = &status.encryption {
        let key = |b: &Option<crate::api::BucketEncryption>| {
            b.as_ref()
                .map(|b| {
                    format!(
                        "{}{}",
                        b.algorithm,
                        b.key_arn.as_deref().map(|k| format!(" {k}")).unwrap_or_default()
                    )
                })
                .unwrap_or_else(|| "unknown".into())
        };
        if [&enc.source, &enc.destination]
            .iter()
            .any(|b| b.as_ref().is_some_and(|b| b.key_arn.is_some()))
        {
            out.push(format!(
                "{name}: encryption: source {}, destination {}",
                key(&enc.source),
                key(&enc.destination)
            ));
        }
    }
    out
}

/// Runs `ferry status`.
pub async fn status(args: &StatusArgs) -> i32 {
    let client = match Client::try_default().await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ferry status: no Kubernetes configuration: {e}");
            return 1;
        }
    };
    let api: Api<CrossAccountTransfer> = if args.all_namespaces {
        Api::all(client.clone())
    } else {
        let ns = args
            .namespace
            .clone()
            .unwrap_or_else(|| client.default_namespace().to_string());
        Api::namespaced(client.clone(), &ns)
    };
    if !args.watch {
        return match api.list(&Default::default()).await {
            Ok(list) => {
                if list.items.is_empty() {
                    println!("No CrossAccountTransfers found.");
                } else {
                    println!("{}", render(&list.items, args.all_namespaces));
                }
                0
            }
            Err(e) => {
                eprintln!("ferry status: {e}");
                1
            }
        };
    }
    let tty = std::io::stdout().is_terminal();
    let mut seen: BTreeMap<(String, String), CrossAccountTransfer> = BTreeMap::new();
    let mut last = String::new();
    let mut stream = watcher(api, watcher::Config::default()).default_backoff().boxed();
    while let Some(event) = stream.next().await {
        match event {
            Ok(watcher::Event::Apply(t) | watcher::Event::InitApply(t)) => {
                seen.insert((t.namespace().unwrap_or_default(), t.name_any()), t);
            }
            Ok(watcher::Event::Delete(t)) => {
                seen.remove(&(t.namespace().unwrap_or_default(), t.name_any()));
            }
            Ok(watcher::Event::Init) => seen.clear(),
            Ok(watcher::Event::InitDone) => {}
            Err(e) => {
                eprintln!("ferry status: watch: {e}");
                continue;
            }
        }
        let items: Vec<CrossAccountTransfer> = seen.values().cloned().collect();
        let table = render(&items, args.all_namespaces);
        if table != last {
            if tty {
                // Clear the screen and draw the table at the top.
                print!("\x1b[2J\x1b[H");
            }
            println!("{table}\n");
            last = table;
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_and_bytes() {
        assert_eq!(bar(0), "[....................]");
        assert_eq!(bar(50), "[##########..........]");
        assert_eq!(bar(100), "[####################]");
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 * 1024 * 1024 * 1024), "5.0 GiB");
    }

    /// The transfer `data/media` with `status`.
    fn transfer(status: serde_json::Value) -> CrossAccountTransfer {
        let mut t: CrossAccountTransfer = serde_json::from_value(serde_json::json!({
            "apiVersion": "ferry.dev/v1alpha1", "kind": "CrossAccountTransfer",
            "metadata": {"name": "media", "namespace": "data"},
            "spec": {"source": {"bucket": "src", "region": "us-east-1"},
                     "destination": {"bucket": "dst", "region": "us-east-1", "accountId": "222222222222",
                                     "access": {"mode": "External"}}}
        }))
        .unwrap();
        t.status = Some(serde_json::from_value(status).unwrap());
        t
    }

    #[test]
    fn a_table_row_per_transfer() {
        let t = transfer(serde_json::json!({
            "phase": "Transferring",
            "execution": {"arn": "e", "status": "TRANSFERRING", "percentDone": 40, "filesTransferred": 3, "bytesTransferred": 2048}
        }));
        let table = render(&[t], true);
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("NAMESPACE"));
        assert!(lines[1].contains("data") && lines[1].contains("Transferring"));
        assert!(lines[1].contains("[########............]  40%"), "{table}");
        assert!(lines[1].contains("3 objects, 2.0 KiB"), "{table}");
    }

    #[test]
    fn a_failed_only_run_is_named_under_the_table() {
        let t = transfer(serde_json::json!({
            "phase": "Succeeded",
            "lastRun": {"token": "failed:1", "executionArn": "e2",
                        "failedOnly": {"ofExecution": "e1", "objects": 2, "manifest": "s3://r/ferry-manifests/t/e1.csv"}}
        }));
        let table = render(&[t], true);
        assert!(
            table.contains("data/media: failed-only run: 2 objects that execution e1 failed (manifest s3://r/ferry-manifests/t/e1.csv)"),
            "{table}"
        );
    }
}
