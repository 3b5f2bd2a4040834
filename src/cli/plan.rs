//! `ferry plan -f FILE` and `ferry policy -f FILE`: what a manifest leads to in AWS, computed
//! offline with the same pure functions the controller uses.

use std::path::PathBuf;

use clap::Args;
use kube::ResourceExt;
use serde_json::Value;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Namespace;

use crate::api::{AccessMode, CrossAccountTransfer, RunPolicy, TransferPolicy};
use crate::desired::{Desired, Identities, Side};
use crate::naming::TransferId;
use crate::policy::{Grant, PolicyChange, Reach, grant, key_policy_with, shared_principals};
use crate::tenancy::{Verdict, evaluate};

/// Options shared by `plan` and `policy`.
#[derive(Args, Debug, Clone)]
pub struct ManifestArgs {
    /// Manifest file with one or more CrossAccountTransfer documents (`-` for stdin).
    #[arg(short = 'f', long = "filename")]
    pub file: PathBuf,
    /// Account A's id (the account Ferry runs as). Default: a placeholder.
    #[arg(long)]
    pub account_a_id: Option<String>,
    /// The identity Ferry runs as in Account A (statement two of the bucket policy).
    #[arg(long)]
    pub creator_arn: Option<String>,
    /// The transfer's metadata.uid (the Sids derive from it). Default: from the manifest, or
    /// from the cluster when the transfer exists there.
    #[arg(long)]
    pub uid: Option<String>,
}

/// Options of `ferry plan`.
#[derive(Args, Debug)]
pub struct PlanArgs {
    /// The manifest and identity options.
    #[command(flatten)]
    pub manifest: ManifestArgs,
    /// Files with the TransferPolicy documents to check the manifest against, offline.
    #[arg(long = "policies")]
    pub policies: Vec<PathBuf>,
    /// With `--policies`: labels of the transfer's namespace, `key=value`, for policies that
    /// select namespaces by label.
    #[arg(long = "namespace-label", value_parser = parse_label)]
    pub namespace_labels: Vec<(String, String)>,
    /// Check against the cluster's TransferPolicies and the namespace's labels (kubeconfig).
    #[arg(long, conflicts_with = "policies")]
    pub cluster: bool,
}

fn parse_label(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("`{text}` is not key=value"))
}

/// Reads the documents of `kind` in a YAML file (`-`: stdin), also the items of a `List` (what
/// `kubectl get -o yaml` prints); other kinds are skipped.
fn read_kind(file: &PathBuf, kind: &str) -> Result<Vec<Value>, String> {
    let text = if file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).map_err(|e| format!("reading stdin: {e}"))?
    } else {
        std::fs::read_to_string(file).map_err(|e| format!("reading {}: {e}", file.display()))?
    };
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(&text).map_err(|e| format!("{}: not YAML: {e}", file.display()))?;
    Ok(docs
        .into_iter()
        .flat_map(|d| match d.get("kind").and_then(Value::as_str) {
            Some("List") => d["items"].as_array().cloned().unwrap_or_default(),
            _ => vec![d],
        })
        .filter(|d| d.get("kind").and_then(Value::as_str) == Some(kind))
        .collect())
}

/// Reads the TransferPolicy documents of the files.
pub fn read_policies(files: &[PathBuf]) -> Result<Vec<TransferPolicy>, String> {
    let mut out = Vec::new();
    for file in files {
        for doc in read_kind(file, "TransferPolicy")? {
            let name = doc["metadata"]["name"].as_str().unwrap_or("?").to_string();
            out.push(serde_json::from_value(doc).map_err(|e| format!("TransferPolicy {name}: {e}"))?);
        }
    }
    Ok(out)
}

/// The policies' answer for a transfer as the plan's first lines (pure).
pub fn render_verdict(verdict: &Verdict) -> String {
    match verdict {
        Verdict::Permitted { policy } => format!("  Permitted by TransferPolicy {policy}."),
        Verdict::Refused { message } => format!("  NOT PERMITTED: {message}"),
    }
}

/// Where the plan's policies and namespace labels come from.
enum Policies {
    /// Not checked.
    None,
    /// These policies; these labels for every namespace.
    Given(Vec<TransferPolicy>, BTreeMap<String, String>),
    /// The cluster's.
    Cluster(kube::Client, Vec<TransferPolicy>),
}

impl Policies {
    async fn load(args: &PlanArgs) -> Result<Self, String> {
        if args.cluster {
            let client = kube::Client::try_default()
                .await
                .map_err(|e| format!("no Kubernetes configuration: {e}"))?;
            let list = kube::Api::<TransferPolicy>::all(client.clone())
                .list(&Default::default())
                .await
                .map_err(|e| format!("listing TransferPolicies: {e}"))?;
            return Ok(Policies::Cluster(client, list.items));
        }
        if args.policies.is_empty() {
            return Ok(Policies::None);
        }
        let labels = args.namespace_labels.iter().cloned().collect();
        Ok(Policies::Given(read_policies(&args.policies)?, labels))
    }

    async fn decide(&self, obj: &CrossAccountTransfer) -> Result<Option<Verdict>, String> {
        let namespace = obj.namespace().unwrap_or_else(|| "default".into());
        match self {
            Policies::None => Ok(None),
            Policies::Given(policies, labels) => Ok(Some(evaluate(&obj.spec, &namespace, labels, policies))),
            Policies::Cluster(client, policies) => {
                let ns = kube::Api::<Namespace>::all(client.clone())
                    .get_opt(&namespace)
                    .await
                    .map_err(|e| format!("reading namespace {namespace}: {e}"))?;
                let labels = ns.map(|n| n.labels().clone()).unwrap_or_default();
                Ok(Some(evaluate(&obj.spec, &namespace, &labels, policies)))
            }
        }
    }
}

/// Options of `ferry policy`.
#[derive(Args, Debug)]
pub struct PolicyArgs {
    /// The manifest and identity options.
    #[command(flatten)]
    pub manifest: ManifestArgs,
    /// Account B's current bucket policy (JSON file): Ferry's statements are merged into it,
    /// every other statement kept as it is.
    #[arg(long)]
    pub existing: Option<PathBuf>,
    /// Never ask the cluster; compute from the manifest and the options only.
    #[arg(long)]
    pub offline: bool,
    /// Print the policy of the destination bucket's KMS key instead (`destination.kmsKeyArn`,
    /// External mode): Ferry's statement merged into `--existing`, the key's current policy.
    #[arg(long)]
    pub key_policy: bool,
}

/// Reads the CrossAccountTransfer documents of a manifest file (other kinds are skipped).
pub fn read_transfers(file: &PathBuf) -> Result<Vec<CrossAccountTransfer>, String> {
    let mut out = Vec::new();
    for doc in read_kind(file, "CrossAccountTransfer")? {
        let name = doc["metadata"]["name"].as_str().unwrap_or("?").to_string();
        let obj: CrossAccountTransfer =
            serde_json::from_value(doc).map_err(|e| format!("CrossAccountTransfer {name}: {e}"))?;
        out.push(obj);
    }
    if out.is_empty() {
        return Err(format!("{}: no CrossAccountTransfer in it", file.display()));
    }
    Ok(out)
}

struct Identity {
    id: TransferId,
    who: Identities,
}

fn identity(obj: &CrossAccountTransfer, args: &ManifestArgs) -> Identity {
    let uid = args
        .uid
        .clone()
        .or_else(|| obj.metadata.uid.clone())
        .unwrap_or_else(|| "<uid>".into());
    // Pulling, Ferry runs in the destination's account, which the spec names.
    let account_a = args.account_a_id.clone().unwrap_or_else(|| {
        if obj.spec.pulls() {
            obj.spec.destination.account_id.clone()
        } else {
            "<account-a-id>".into()
        }
    });
    let creator = args
        .creator_arn
        .clone()
        .unwrap_or_else(|| format!("<identity Ferry runs as in account {account_a}>"));
    Identity {
        id: TransferId::new(obj.namespace().unwrap_or_else(|| "default".into()), obj.name_any(), uid),
        who: Identities {
            account_a,
            creator_arn: creator,
        },
    }
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("      {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The plan of one transfer as text (pure).
pub fn render_plan(obj: &CrossAccountTransfer, args: &ManifestArgs) -> String {
    let spec = &obj.spec;
    let who = identity(obj, args);
    let mut out = Vec::new();
    out.push(format!("CrossAccountTransfer {}", who.id.resource()));
    let problems = spec.validate();
    if !problems.is_empty() {
        out.push(format!("  INVALID: {}", problems.join("; ")));
    }
    if who.id.uid == "<uid>" {
        out.push("  (the Sids and tags use the uid Kubernetes gives the resource: shown as <uid>)".into());
    }

    let desired = Desired::build(spec, &who.id, &who.who);
    plan_role(&mut out, spec, &desired, &who);
    plan_foreign(&mut out, spec, &desired);
    plan_locations_and_task(&mut out, spec, &desired);
    plan_run(&mut out, spec);
    let text = out.join("\n");
    if who.id.uid == "<uid>" {
        text.replace(&who.id.hash(), "<uid-hash>")
    } else {
        text
    }
}

/// Steps 0 and 1 of the plan: the encryption read and the DataSync role.
fn plan_role(out: &mut Vec<String>, spec: &crate::api::CrossAccountTransferSpec, desired: &Desired, who: &Identity) {
    let role_arn = &desired.role.arn;
    let foreign = &desired.foreign_bucket;
    let home = home_label(spec);
    let home_bucket = match foreign.side {
        Side::Destination => &spec.source.bucket,
        Side::Source => &spec.destination.bucket,
    };
    let field = foreign.side.label();
    let alias = match foreign.side {
        Side::Source => " (unless source.kmsKeyArn names it by ARN)",
        Side::Destination => "",
    };
    out.push(format!(
        "\n0. Encryption: read the default encryption of buckets {home_bucket} ({home}) and {} ({}); a customer managed KMS key found there is granted to the DataSync role like the keys below. SSE-C, the AWS managed key aws/s3 or a key named by alias on the {field}{alias} are refused.",
        foreign.bucket,
        match foreign.access {
            AccessMode::AssumeRole => format!("{}, through the access role", foreign.side.owner(&foreign.account_id)),
            AccessMode::External => format!("not read in External mode: name its key in {field}.kmsKeyArn"),
        }
    ));
    for key in &desired.keys.source {
        out.push(format!("   source objects: the role may kms:Decrypt with {key}"));
    }
    if let Some(key) = &desired.keys.destination {
        out.push(format!(
            "   destination objects: the role may kms:Decrypt and kms:GenerateDataKey with {key}"
        ));
    }
    match &desired.role.managed {
        None => out.push(format!(
            "\n1. DataSync IAM role ({home}): use the existing role {role_arn} unchanged"
        )),
        Some(managed) if managed.pool.is_some() => {
            out.push(format!(
                "\n1. DataSync IAM role ({home}): a role shared by namespace {}'s transfers, {role_arn} or the next of its row with room (IAM allows 10,240 characters of inline policies per role); created if missing, deleted with its last transfer",
                who.id.namespace
            ));
            out.push("   trust policy (the same for the whole row):".into());
            out.push(indent(&pretty(&managed.trust)));
            out.push(format!(
                "   this transfer's own inline policy {} on it (the role grants nothing else for it):",
                managed.inline_name
            ));
            out.push(indent(&pretty(&managed.inline)));
        }
        Some(managed) => {
            out.push(format!("\n1. DataSync IAM role ({home}): create and manage {role_arn}"));
            out.push("   trust policy:".into());
            out.push(indent(&pretty(&managed.trust)));
            out.push(format!("   inline policy {}:", managed.inline_name));
            out.push(indent(&pretty(&managed.inline)));
        }
    }
}

/// Steps 2 and 3: the other account's bucket (ownership, policy) and the foreign key's policy.
fn plan_foreign(out: &mut Vec<String>, spec: &crate::api::CrossAccountTransferSpec, desired: &Desired) {
    let role_arn = &desired.role.arn;
    let b = &desired.foreign_bucket;
    let who = b.side.owner(&b.account_id);
    let role = spec.foreign_access().1.unwrap_or("<roleArn>");
    let ownership = match (b.side, b.access) {
        (Side::Source, _) => format!(
            "\n2. Object Ownership of bucket {}: unchanged (the DataSync role writes into its own account's bucket, whose owner owns what it writes)",
            spec.destination.bucket
        ),
        (Side::Destination, AccessMode::AssumeRole) => format!(
            "\n2. Object Ownership of bucket {} ({who}): set to BucketOwnerEnforced (ACLs disabled), the previous value kept to restore on deletion; via {role}",
            b.bucket
        ),
        (Side::Destination, AccessMode::External) => format!(
            "\n2. Object Ownership of bucket {} ({who}): its administrator sets BucketOwnerEnforced (External mode: Ferry never calls Account B)",
            b.bucket
        ),
    };
    out.push(ownership);
    out.push(match b.access {
        AccessMode::AssumeRole => format!(
            "\n3. Bucket policy of {} ({who}, via {role}): statements {} put in by Sid, every other statement kept:",
            b.bucket,
            b.sids.join(", ")
        ),
        AccessMode::External => format!(
            "\n3. Bucket policy of {} ({who}): its administrator adds these statements (`ferry policy -f ...` prints the whole policy):",
            b.bucket
        ),
    });
    out.push(indent(&pretty(&Value::Array(b.statements.clone()))));
    if let Some(key) = desired.keys.foreign(spec) {
        let editable =
            crate::naming::arn_account(key) == Some(b.account_id.as_str()) && b.access == AccessMode::AssumeRole;
        out.push(if editable {
            format!(
                "   key policy of {key}: statement {} (the DataSync role added by Sid, every other statement kept):",
                b.side.reach().key_sid()
            )
        } else {
            format!(
                "   key policy of {key}: its administrator adds this statement (also in status.{}.requiredKeyPolicy):",
                b.side.label()
            )
        });
        if let Some(doc) = desired.keys.required_key_policy(spec, role_arn) {
            out.push(indent(&doc));
        }
    }
}

/// The account that runs the copy, in the plan's words.
fn home_label(spec: &crate::api::CrossAccountTransferSpec) -> &'static str {
    if spec.pulls() {
        "the destination account, which runs the copy"
    } else {
        "Account A"
    }
}

/// Steps 4 to 6: the two locations and the task.
fn plan_locations_and_task(out: &mut Vec<String>, spec: &crate::api::CrossAccountTransferSpec, desired: &Desired) {
    let role_arn = &desired.role.arn;
    let (src, dst) = (&desired.source, &desired.destination);
    let home = home_label(spec);
    out.push(format!(
        "\n4. Source location ({home}, {}): {} (subdirectory {}), bucket access role {role_arn}",
        src.region, src.uri, src.subdirectory
    ));
    out.push(format!(
        "\n5. Destination location ({home}, {}): {} (subdirectory {}), storage class {}, bucket access role {role_arn}",
        dst.region,
        dst.uri,
        dst.subdirectory,
        dst.storage_class.as_deref().unwrap_or("STANDARD")
    ));

    let settings = &desired.task;
    out.push(format!(
        "\n6. Task {} ({home}, {}): mode {}, verify {}, overwrite {}, transfer {}, deleted files {}, object tags {}, log level {}{}",
        settings.name,
        spec.destination.region,
        settings.mode,
        settings.options.verify,
        settings.options.overwrite,
        settings.options.transfer,
        settings.options.preserve_deleted,
        settings.options.object_tags,
        settings.options.log_level,
        if settings.options.bytes_per_second > 0 {
            format!(", {} bytes/s", settings.options.bytes_per_second)
        } else {
            String::new()
        }
    ));
    if let Some(i) = &settings.includes {
        out.push(format!("   includes: {i}"));
    }
    if let Some(e) = &settings.excludes {
        out.push(format!("   excludes: {e}"));
    }
    if let Some((expr, enabled)) = &settings.schedule {
        out.push(format!(
            "   schedule: {expr} ({})",
            if *enabled { "enabled" } else { "disabled: suspended" }
        ));
    }
    if let Some(g) = &settings.log_group_arn {
        out.push(format!("   log group: {g}"));
    }
    if let Some(r) = &settings.report {
        out.push(format!(
            "   task report: {}{} ({}, {})",
            r.bucket_arn, r.subdirectory, r.output, r.level
        ));
    }
}

/// Step 7 and deletion: when executions start and what deletion takes back.
fn plan_run(out: &mut Vec<String>, spec: &crate::api::CrossAccountTransferSpec) {
    let run = match (spec.suspend, spec.run) {
        (true, _) => "suspended: no execution is started".to_string(),
        (false, RunPolicy::OnChange) => {
            "one execution for every new spec generation (and for each new ferry.dev/run annotation value)".to_string()
        }
        (false, RunPolicy::Manual) => {
            "an execution each time the annotation ferry.dev/run gets a new value".to_string()
        }
    };
    out.push(format!("\n7. Execution: {run}"));
    match (spec.failed_only_blocker(), &spec.task.report) {
        (Some(why), _) => out.push(format!("   no failed-only runs (ferry.dev/run=failed:...): {why}")),
        (None, Some(report)) => out.push(format!(
            "   a ferry.dev/run value starting with `failed:` runs only the objects the last run's task report lists as failed, through a manifest Ferry writes to s3://{}/{}ferry-manifests/",
            report.bucket,
            crate::naming::normalize_prefix(report.prefix.as_deref())
        )),
        (None, None) => {} // the blocker names a missing report
    }
    out.push(format!(
        "\nOn deletion ({}): {}",
        spec.deletion_policy,
        match spec.deletion_policy {
            crate::api::DeletionPolicy::Delete => "the task, both locations, Ferry's bucket-policy statements and the role Ferry created are removed; Object Ownership is put back",
            crate::api::DeletionPolicy::Retain => "everything stays in AWS",
        }
    ));
}

/// Runs `ferry plan`.
pub async fn plan(args: &PlanArgs) -> i32 {
    let loaded = match read_transfers(&args.manifest.file) {
        Ok(transfers) => Policies::load(args).await.map(|p| (transfers, p)),
        Err(e) => Err(e),
    };
    let (transfers, policies) = match loaded {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("ferry plan: {e}");
            return 1;
        }
    };
    let mut plans = Vec::new();
    let mut failed = false;
    for t in &transfers {
        let mut text = render_plan(t, &args.manifest);
        let verdict = match policies.decide(t).await {
            Ok(v) => v,
            Err(e) => {
                eprintln!("ferry plan: {e}");
                return 1;
            }
        };
        let tenancy = match &verdict {
            Some(v) => render_verdict(v),
            None => "  TransferPolicies not checked: give --policies FILE or --cluster".to_string(),
        };
        // Right under the heading: whether the rest may happen at all.
        let heading = text.find('\n').unwrap_or(text.len());
        text.insert_str(heading, &format!("\n{tenancy}"));
        failed |= !t.spec.validate().is_empty() || verdict.is_some_and(|v| !v.permitted());
        plans.push(text);
    }
    println!("{}", plans.join("\n\n---\n\n"));
    i32::from(failed)
}

/// The bucket policy Account B applies: the principals of a transfer's required statements
/// added to Ferry's shared statements of `existing`, every other statement kept (pure).
pub fn merged_policy(required: &str, existing: Option<&str>) -> Result<String, String> {
    let doc: Value = serde_json::from_str(required).map_err(|e| format!("the required policy is not JSON: {e}"))?;
    let bucket_arn = doc["Statement"][0]["Resource"][0]
        .as_str()
        .ok_or("the required policy names no bucket")?
        .to_string();
    let reach = Reach::of_sid(doc["Statement"][0]["Sid"].as_str().unwrap_or_default());
    let (roles, creators) =
        shared_principals(Some(required), reach).map_err(|e| format!("the required policy: {e}"))?;
    let additions = Grant {
        reach,
        roles: &roles,
        creators: &creators,
        ..Grant::default()
    };
    match grant(existing, &bucket_arn, additions).map_err(|e| format!("--existing: {e}"))? {
        PolicyChange::Put(doc) => {
            let v: Value = serde_json::from_str(&doc).map_err(|e| e.to_string())?;
            Ok(pretty(&v))
        }
        PolicyChange::Unchanged => Ok(existing.unwrap_or_default().to_string()),
        PolicyChange::Delete => Ok(String::new()),
    }
}

async fn published_policy(obj: &CrossAccountTransfer, key: bool) -> Option<String> {
    let client = kube::Client::try_default().await.ok()?;
    let ns = obj
        .namespace()
        .unwrap_or_else(|| client.default_namespace().to_string());
    let api: kube::Api<CrossAccountTransfer> = kube::Api::namespaced(client, &ns);
    let live = api.get_opt(&obj.name_any()).await.ok()??;
    let destination = live.status?.foreign(live.spec.pulls()).cloned()?;
    if key {
        destination.required_key_policy
    } else {
        destination.required_bucket_policy
    }
}

/// Ferry's key statement merged into a key's current policy (or on its own), by Sid.
pub fn merged_key_policy(required: &str, existing: Option<&str>) -> Result<String, String> {
    let doc: Value = serde_json::from_str(required).map_err(|e| format!("the required key policy is not JSON: {e}"))?;
    let role = doc["Statement"][0]["Principal"]["AWS"][0]
        .as_str()
        .ok_or("the required key policy names no role")?
        .to_string();
    let Some(existing) = existing else {
        return Ok(required.to_string());
    };
    let reach = Reach::of_sid(doc["Statement"][0]["Sid"].as_str().unwrap_or_default());
    match key_policy_with(existing, reach, Some(&role), None).map_err(|e| format!("--existing: {e}"))? {
        Some(doc) => {
            let v: Value = serde_json::from_str(&doc).map_err(|e| e.to_string())?;
            Ok(pretty(&v))
        }
        None => Ok(existing.to_string()),
    }
}

/// Runs `ferry policy`.
pub async fn policy(args: &PolicyArgs) -> i32 {
    let transfers = match read_transfers(&args.manifest.file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("ferry policy: {e}");
            return 1;
        }
    };
    let existing = match &args.existing {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(text) => Some(text),
            Err(e) => {
                eprintln!("ferry policy: reading {}: {e}", path.display());
                return 1;
            }
        },
        None => None,
    };
    let mut current = existing;
    for obj in &transfers {
        let published = if args.offline {
            None
        } else {
            published_policy(obj, args.key_policy).await
        };
        let required = match published {
            Some(p) => p,
            None => {
                let m = &args.manifest;
                if m.uid.is_none() && obj.metadata.uid.is_none() || m.account_a_id.is_none() || m.creator_arn.is_none()
                {
                    eprintln!(
                        "ferry policy: {}: the statements name the DataSync role, Ferry's identity in Account A and Sids derived from the transfer's uid. Apply the manifest first (Ferry publishes the exact policy in status.destination.requiredBucketPolicy, or status.source's with initiator Destination, and this command reads it), or pass --uid, --account-a-id and --creator-arn",
                        obj.name_any()
                    );
                    return 1;
                }
                let who = identity(obj, m);
                let desired = Desired::build(&obj.spec, &who.id, &who.who);
                if args.key_policy {
                    match desired.keys.required_key_policy(&obj.spec, &desired.role.arn) {
                        Some(doc) => doc,
                        None => {
                            eprintln!(
                                "ferry policy --key-policy: {}: no kmsKeyArn of the other account's bucket (destination.kmsKeyArn, or source.kmsKeyArn with initiator Destination), so no key policy to change",
                                obj.name_any()
                            );
                            return 1;
                        }
                    }
                } else {
                    desired.foreign_bucket.required_policy()
                }
            }
        };
        let merged = if args.key_policy {
            merged_key_policy(&required, current.as_deref())
        } else {
            merged_policy(&required, current.as_deref())
        };
        match merged {
            Ok(doc) => current = Some(doc),
            Err(e) => {
                eprintln!("ferry policy: {e}");
                return 1;
            }
        }
    }
    println!("{}", current.unwrap_or_default());
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj() -> CrossAccountTransfer {
        let mut overrides = crate::fixtures::external();
        crate::fixtures::merge(
            &mut overrides,
            &serde_json::json!({"source": {"prefix": "media/"}, "task": {"excludes": ["*.tmp"]}, "schedule": "rate(1 day)"}),
        );
        crate::fixtures::transfer(overrides)
    }

    fn args() -> ManifestArgs {
        ManifestArgs {
            file: PathBuf::from("-"),
            account_a_id: Some("111111111111".into()),
            creator_arn: Some("arn:aws:iam::111111111111:role/ops/ferry".into()),
            uid: None,
        }
    }

    #[test]
    fn the_key_policy_statement_is_merged_by_sid() {
        let mut overrides = crate::fixtures::external();
        crate::fixtures::merge(
            &mut overrides,
            &serde_json::json!({"destination": {"kmsKeyArn": "arn:aws:kms:us-east-1:222222222222:key/k-1"}}),
        );
        let t = crate::fixtures::transfer(overrides);
        let who = identity(&t, &args());
        let desired = Desired::build(&t.spec, &who.id, &who.who);
        let required = desired
            .keys
            .required_key_policy(&t.spec, &desired.role.arn)
            .expect("a key statement");
        let existing = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::222222222222:root"},"Action":"kms:*","Resource":"*"}]}"#;
        let merged: Value =
            serde_json::from_str(&merged_key_policy(&required, Some(existing)).expect("merged")).expect("json");
        let statements = merged["Statement"].as_array().expect("statements");
        assert_eq!(statements.len(), 2);
        assert_eq!(statements[0]["Sid"], "Enable IAM User Permissions");
        assert_eq!(statements[1]["Sid"], crate::policy::KEY_SID);
        assert_eq!(statements[1]["Principal"]["AWS"], serde_json::json!([desired.role.arn]));
        let text = render_plan(&t, &args());
        assert!(
            text.contains("key policy of arn:aws:kms:us-east-1:222222222222:key/k-1"),
            "{text}"
        );
        assert!(text.contains("kms:GenerateDataKey"), "{text}");
    }

    #[test]
    fn the_plan_names_every_step() {
        let text = render_plan(&obj(), &args());
        let pool = crate::naming::RolePool::new("111111111111", "data", &["us-west-1", "us-east-1"]);
        assert!(text.contains(&pool.role_name(0)), "{text}");
        for needle in [
            "a role shared by namespace data's transfers",
            "this transfer's own inline policy ferry-",
            "datasync.amazonaws.com",
            "External mode: Ferry never calls Account B",
            "s3://src/media/",
            "s3://dst/",
            "excludes: *.tmp",
            "schedule: rate(1 day)",
            "arn:aws:iam::111111111111:role/ops/ferry",
            "mode ENHANCED",
        ] {
            assert!(text.contains(needle), "{needle} missing in\n{text}");
        }
    }

    #[test]
    fn the_policy_merges_into_the_existing_one() {
        let one = |role: &str| {
            crate::policy::standalone_policy(&crate::policy::shared_statements(
                "arn:aws:s3:::dst",
                Reach::Write,
                &[role.to_string()],
                &["arn:aws:iam::111111111111:role/ops/ferry".to_string()],
            ))
        };
        let existing =
            serde_json::json!({"Version": "2012-10-17", "Statement": [{"Sid": "Mine", "Effect": "Deny"}]}).to_string();
        let merged: Value =
            serde_json::from_str(&merged_policy(&one("arn:aws:iam::111111111111:role/a"), Some(&existing)).unwrap())
                .unwrap();
        assert_eq!(merged["Statement"][0]["Sid"], "Mine");
        assert_eq!(merged["Statement"][1]["Sid"], "FerryDataSyncAccess");
        // A second transfer's statements add its role next to the first one's.
        let both: Value = serde_json::from_str(
            &merged_policy(&one("arn:aws:iam::111111111111:role/b"), Some(&merged.to_string())).unwrap(),
        )
        .unwrap();
        assert_eq!(
            both["Statement"][1]["Principal"]["AWS"],
            serde_json::json!(["arn:aws:iam::111111111111:role/a", "arn:aws:iam::111111111111:role/b"])
        );
        let again = merged_policy(&one("arn:aws:iam::111111111111:role/b"), Some(&both.to_string())).unwrap();
        assert_eq!(serde_json::from_str::<Value>(&again).unwrap(), both);
    }

    #[test]
    fn a_pull_plans_read_only_statements_in_the_source_account_and_no_ownership_change() {
        let t = crate::fixtures::transfer(crate::fixtures::pull());
        let no_account = ManifestArgs {
            account_a_id: None,
            creator_arn: Some("arn:aws:iam::222222222222:role/ops/ferry".into()),
            ..args()
        };
        let text = render_plan(&t, &no_account);
        for needle in [
            "the source account (111111111111), through the access role",
            "DataSync IAM role (the destination account, which runs the copy)",
            "arn:aws:iam::222222222222:role/ferry-",
            "Object Ownership of bucket dst: unchanged",
            "Bucket policy of src (the source account (111111111111), via arn:aws:iam::111111111111:role/admin)",
            "FerryDataSyncRead",
            "Task ferry-data-media (the destination account, which runs the copy, us-west-1)",
        ] {
            assert!(text.contains(needle), "{needle} missing in\n{text}");
        }
        assert!(!text.contains("BucketOwnerEnforced"), "{text}");
        let step3 = &text[text.find("\n3. ").unwrap()..text.find("\n4. ").unwrap()];
        assert!(step3.contains("s3:GetObject"), "{step3}");
        assert!(
            !step3.contains("s3:PutObject"),
            "no write access on the source: {step3}"
        );
        // `ferry policy` merges a pull's read-only statements by their own Sid, next to a push's.
        let who = identity(&t, &no_account);
        let required = Desired::build(&t.spec, &who.id, &who.who)
            .foreign_bucket
            .required_policy();
        let push = crate::policy::standalone_policy(&crate::policy::shared_statements(
            "arn:aws:s3:::src",
            Reach::Write,
            &["arn:aws:iam::333333333333:role/w".to_string()],
            &["arn:aws:iam::333333333333:role/ops".to_string()],
        ));
        let merged: Value = serde_json::from_str(&merged_policy(&required, Some(&push)).unwrap()).unwrap();
        let sids: Vec<&str> = merged["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|st| st["Sid"].as_str())
            .collect();
        assert_eq!(
            sids,
            ["FerryDataSyncAccess", "FerryCreateLocation", "FerryDataSyncRead"]
        );
        assert_eq!(
            merged["Statement"][1]["Principal"]["AWS"],
            serde_json::json!([
                "arn:aws:iam::222222222222:role/ops/ferry",
                "arn:aws:iam::333333333333:role/ops"
            ])
        );
    }
}
