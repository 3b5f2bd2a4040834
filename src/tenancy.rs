//! Tenancy: which transfers the platform's `TransferPolicy`s permit (pure), and the caches of
//! policies and namespaces the controller decides with.
//!
//! A transfer is permitted when one policy that selects its namespace grants every field of
//! its spec that names an AWS resource or identity ([`wants`] lists them). The controller asks
//! before any AWS call, at every reconcile; `ferry plan` asks the same question offline.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::ResourceExt;
use kube::runtime::reflector::Store;

use crate::api::{
    CrossAccountTransfer, CrossAccountTransferSpec, TransferPolicy, TransferPolicySpec, TransferPolicyStatus,
};

/// Whether `value` matches `pattern` as a whole, `*` standing for any run of characters
/// (case-sensitive; no other wildcard).
pub fn glob_match(pattern: &str, value: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = value.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// Whether the key prefix `prefix` (a folder; `None`: the whole bucket) lies within the folder
/// `granted`: the same folder or one below it (`media/` is within `media`, `media-old/` is not).
pub fn within_folder(granted: &str, prefix: Option<&str>) -> bool {
    let granted = granted.trim_end_matches('/');
    let Some(prefix) = prefix.map(|p| p.trim_end_matches('/')) else {
        return false;
    };
    prefix == granted || prefix.strip_prefix(granted).is_some_and(|rest| rest.starts_with('/'))
}

/// A log group ARN without the `:*` some forms end with.
fn log_group(arn: &str) -> &str {
    arn.strip_suffix(":*").unwrap_or(arn)
}

/// How a field's value is compared with what a policy grants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Compare {
    /// The value matches one of the patterns.
    Pattern,
    /// A log group ARN matches one of the patterns (`:*` ignored).
    LogGroup,
    /// The folder is within one of the granted folders; no folder granted means any.
    Folder,
}

/// What a policy grants for one field, as strings.
type Allowed = fn(&TransferPolicySpec) -> Vec<&str>;

/// The strings of a grant list.
fn strs(list: &[String]) -> Vec<&str> {
    list.iter().map(String::as_str).collect()
}

/// One field of a transfer's spec that names an AWS resource or identity: its value (outer
/// `None`: nothing to grant; `Some(None)`: a folder left empty, the whole bucket), the policy
/// field that grants it, and how they compare. The one table [`wants`] reads.
struct Field {
    field: &'static str,
    value: fn(&CrossAccountTransferSpec) -> Option<Option<&str>>,
    grant: &'static str,
    allowed: Allowed,
    compare: Compare,
}

/// Every field of the spec that names an AWS resource or identity (one row each).
#[rustfmt::skip]
const FIELDS: &[Field] = &[
    Field { field: "spec.source.bucket", value: |s| Some(Some(&s.source.bucket)), grant: "spec.source.buckets", allowed: |p| strs(&p.source.buckets), compare: Compare::Pattern },
    Field { field: "spec.source.region", value: |s| Some(Some(&s.source.region)), grant: "spec.source.regions", allowed: |p| strs(&p.source.regions), compare: Compare::Pattern },
    Field { field: "spec.source.prefix", value: |s| Some(s.source.prefix.as_deref()), grant: "spec.source.prefixes", allowed: |p| strs(&p.source.prefixes), compare: Compare::Folder },
    Field { field: "spec.source.roleArn", value: |s| s.source.role_arn.as_deref().map(Some), grant: "spec.source.roleArns", allowed: |p| strs(&p.source.role_arns), compare: Compare::Pattern },
    Field { field: "spec.source.accountId", value: |s| s.source.account_id.as_deref().map(Some), grant: "spec.source.accounts", allowed: |p| strs(&p.source.accounts), compare: Compare::Pattern },
    Field { field: "spec.source.access.mode", value: |s| s.source.access.as_ref().map(|a| Some(a.mode.as_str())), grant: "spec.source.modes", allowed: |p| p.source.modes.iter().map(|m| m.as_str()).collect(), compare: Compare::Pattern },
    Field { field: "spec.source.access.roleArn", value: |s| s.source.access.as_ref().and_then(|a| a.role_arn.as_deref()).map(Some), grant: "spec.source.accessRoleArns", allowed: |p| strs(&p.source.access_role_arns), compare: Compare::Pattern },
    Field { field: "spec.source.kmsKeyArn", value: |s| s.source.kms_key_arn.as_deref().map(Some), grant: "spec.source.kmsKeyArns", allowed: |p| strs(&p.source.kms_key_arns), compare: Compare::Pattern },
    Field { field: "spec.destination.accountId", value: |s| Some(Some(&s.destination.account_id)), grant: "spec.destination.accounts", allowed: |p| strs(&p.destination.accounts), compare: Compare::Pattern },
    Field { field: "spec.destination.roleArn", value: |s| s.destination.role_arn.as_deref().map(Some), grant: "spec.destination.runAsRoleArns", allowed: |p| strs(&p.destination.run_as_role_arns), compare: Compare::Pattern },
    Field { field: "spec.destination.bucket", value: |s| Some(Some(&s.destination.bucket)), grant: "spec.destination.buckets", allowed: |p| strs(&p.destination.buckets), compare: Compare::Pattern },
    Field { field: "spec.destination.region", value: |s| Some(Some(&s.destination.region)), grant: "spec.destination.regions", allowed: |p| strs(&p.destination.regions), compare: Compare::Pattern },
    Field { field: "spec.destination.prefix", value: |s| Some(s.destination.prefix.as_deref()), grant: "spec.destination.prefixes", allowed: |p| strs(&p.destination.prefixes), compare: Compare::Folder },
    Field { field: "spec.destination.access.mode", value: |s| s.destination.access.as_ref().map(|a| Some(a.mode.as_str())), grant: "spec.destination.modes", allowed: |p| p.destination.modes.iter().map(|m| m.as_str()).collect(), compare: Compare::Pattern },
    Field { field: "spec.destination.access.roleArn", value: |s| s.destination.access.as_ref().and_then(|a| a.role_arn.as_deref()).map(Some), grant: "spec.destination.roleArns", allowed: |p| strs(&p.destination.role_arns), compare: Compare::Pattern },
    Field { field: "spec.destination.kmsKeyArn", value: |s| s.destination.kms_key_arn.as_deref().map(Some), grant: "spec.destination.kmsKeyArns", allowed: |p| strs(&p.destination.kms_key_arns), compare: Compare::Pattern },
    Field { field: "spec.dataSyncRole.name", value: |s| s.data_sync_role.name.as_deref().map(Some), grant: "spec.dataSyncRole.names", allowed: |p| strs(&p.data_sync_role.names), compare: Compare::Pattern },
    Field { field: "spec.dataSyncRole.arn", value: |s| s.data_sync_role.arn.as_deref().map(Some), grant: "spec.dataSyncRole.arns", allowed: |p| strs(&p.data_sync_role.arns), compare: Compare::Pattern },
    Field { field: "spec.task.report.bucket", value: |s| s.task.report.as_ref().map(|r| Some(r.bucket.as_str())), grant: "spec.report.buckets", allowed: |p| strs(&p.report.buckets), compare: Compare::Pattern },
    Field { field: "spec.task.report.prefix", value: |s| s.task.report.as_ref().map(|r| r.prefix.as_deref()), grant: "spec.report.prefixes", allowed: |p| strs(&p.report.prefixes), compare: Compare::Folder },
    Field { field: "spec.task.logGroupArn", value: |s| s.task.log_group_arn.as_deref().map(Some), grant: "spec.logGroupArns", allowed: |p| strs(&p.log_group_arns), compare: Compare::LogGroup },
];

/// One field of a transfer's spec that a policy must grant.
#[derive(Clone, Debug)]
pub struct Want {
    /// The spec field, e.g. `spec.destination.accountId`.
    pub field: &'static str,
    /// Its value (`None`: a folder field left empty, the whole bucket).
    pub value: Option<String>,
    /// The policy field that grants it, e.g. `spec.destination.accounts`.
    pub grant: &'static str,
    allowed: Allowed,
    compare: Compare,
}

/// The fields of a transfer that name an AWS resource or identity, with what grants each (pure).
/// Fields left empty need no grant, except the folders (an empty prefix is the whole bucket).
pub fn wants(spec: &CrossAccountTransferSpec) -> Vec<Want> {
    FIELDS
        .iter()
        .filter_map(|f| {
            (f.value)(spec).map(|value| Want {
                field: f.field,
                value: value.map(str::to_string),
                grant: f.grant,
                allowed: f.allowed,
                compare: f.compare,
            })
        })
        .collect()
}

/// The identities a transfer's AWS calls are made with, besides the operator's own: the only
/// fields a cleanup needs granted (it removes only what Ferry made for the transfer).
pub const IDENTITY_FIELDS: &[&str] = &[
    "spec.source.roleArn",
    "spec.destination.roleArn",
    "spec.source.access.roleArn",
    "spec.destination.access.roleArn",
];

/// Whether `policy` grants `want` (pure).
pub fn grants(policy: &TransferPolicySpec, want: &Want) -> bool {
    let allowed = (want.allowed)(policy);
    let value = want.value.as_deref();
    match want.compare {
        Compare::Folder => allowed.is_empty() || allowed.iter().any(|g| within_folder(g, value)),
        Compare::Pattern => value.is_some_and(|v| allowed.iter().any(|p| glob_match(p, v))),
        Compare::LogGroup => value.is_some_and(|v| allowed.iter().any(|p| glob_match(log_group(p), log_group(v)))),
    }
}

/// Whether a label selector selects a namespace with these labels (Kubernetes' semantics: every
/// `matchLabels` entry and every expression must hold; `{}` selects everything).
pub fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let by_label = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let by_expression = selector.match_expressions.iter().flatten().all(|e| {
        let values = e.values.as_deref().unwrap_or_default();
        let value = labels.get(&e.key);
        match e.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        }
    });
    by_label && by_expression
}

/// Whether a policy selects the namespace `name` with `labels` (pure).
pub fn selects(policy: &TransferPolicySpec, name: &str, labels: &BTreeMap<String, String>) -> bool {
    policy.namespaces.names.iter().any(|n| n == name)
        || policy
            .namespaces
            .selector
            .as_ref()
            .is_some_and(|s| selector_matches(s, labels))
}

/// The answer for one transfer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The named policy grants every field.
    Permitted {
        /// The first policy (by name) that does.
        policy: String,
    },
    /// No policy grants it; the message names the field, the value and what to grant.
    Refused {
        /// What is missing and how a platform admin grants it.
        message: String,
    },
}

impl Verdict {
    /// Whether the transfer may go ahead.
    pub fn permitted(&self) -> bool {
        matches!(self, Verdict::Permitted { .. })
    }
}

fn shown(want: &Want) -> String {
    match &want.value {
        Some(v) => format!("{v:?}"),
        None => "(empty: the whole bucket)".to_string(),
    }
}

/// Decides a transfer of `namespace` (with `labels`) against `policies`, checking only the
/// fields `only` keeps (pure). With several policies selecting the namespace and none granting
/// all fields, the message is about the policy that misses the fewest.
pub fn decide<'p>(
    spec: &CrossAccountTransferSpec,
    namespace: &str,
    labels: &BTreeMap<String, String>,
    policies: impl IntoIterator<Item = &'p TransferPolicy>,
    only: impl Fn(&str) -> bool,
) -> Verdict {
    let wants: Vec<Want> = wants(spec).into_iter().filter(|w| only(w.field)).collect();
    if wants.is_empty() {
        return Verdict::Permitted {
            policy: "(nothing to grant)".into(),
        };
    }
    let mut selecting: Vec<&TransferPolicy> = policies
        .into_iter()
        .filter(|p| selects(&p.spec, namespace, labels))
        .collect();
    selecting.sort_by_key(|p| p.name_any());
    let mut closest: Option<(String, Vec<&Want>, &TransferPolicy)> = None;
    for policy in selecting {
        let missing: Vec<&Want> = wants.iter().filter(|w| !grants(&policy.spec, w)).collect();
        if missing.is_empty() {
            return Verdict::Permitted {
                policy: policy.name_any(),
            };
        }
        if closest.as_ref().is_none_or(|(_, m, _)| missing.len() < m.len()) {
            closest = Some((policy.name_any(), missing, policy));
        }
    }
    let Some((name, missing, policy)) = closest else {
        return Verdict::Refused {
            message: format!(
                "no TransferPolicy selects namespace {namespace}: a platform admin must create one that lists {namespace} in spec.namespaces.names (or selects its labels) and grants this transfer's buckets, accounts, Regions and roles (kubectl get transferpolicies; ferry plan shows what is missing)"
            ),
        };
    };
    let first = missing[0];
    let now = (first.allowed)(&policy.spec);
    let now = if now.is_empty() {
        "nothing".to_string()
    } else {
        now.join(", ")
    };
    let mut message = format!(
        "{} {} is not granted to namespace {namespace}: TransferPolicy {name} grants {} = {now}; a platform admin must add it to {} of a TransferPolicy that selects {namespace}",
        first.field,
        shown(first),
        first.grant,
        first.grant,
    );
    if missing.len() > 1 {
        let rest: Vec<String> = missing[1..]
            .iter()
            .map(|w| format!("{} {}", w.field, shown(w)))
            .collect();
        let _ = write!(message, " (not granted either: {})", rest.join(", "));
    }
    Verdict::Refused { message }
}

/// Decides every field of a transfer (pure); see [`decide`].
pub fn evaluate<'p>(
    spec: &CrossAccountTransferSpec,
    namespace: &str,
    labels: &BTreeMap<String, String>,
    policies: impl IntoIterator<Item = &'p TransferPolicy>,
) -> Verdict {
    decide(spec, namespace, labels, policies, |_| true)
}

/// How many selected namespaces a policy's status lists by name.
const LISTED_NAMESPACES: usize = 100;

/// The status of each policy, in order (pure): the existing namespaces it selects, the
/// transfers it permits, and the transfers in its namespaces that no policy permits.
pub fn policy_reports<'a>(
    policies: impl IntoIterator<Item = &'a TransferPolicy>,
    namespaces: impl IntoIterator<Item = &'a Namespace>,
    transfers: impl IntoIterator<Item = &'a CrossAccountTransfer>,
) -> Vec<TransferPolicyStatus> {
    let policies: Vec<&TransferPolicy> = policies.into_iter().collect();
    let mut labels: BTreeMap<String, BTreeMap<String, String>> = namespaces
        .into_iter()
        .map(|n| (n.name_any(), n.labels().clone()))
        .collect();
    let transfers: Vec<&CrossAccountTransfer> = transfers.into_iter().collect();
    for t in &transfers {
        labels.entry(t.namespace().unwrap_or_default()).or_default();
    }
    let mut reports: Vec<TransferPolicyStatus> = policies
        .iter()
        .map(|p| TransferPolicyStatus {
            observed_generation: p.metadata.generation,
            ..Default::default()
        })
        .collect();
    for (policy, report) in policies.iter().zip(reports.iter_mut()) {
        let selected: Vec<&String> = labels
            .iter()
            .filter(|(name, l)| selects(&policy.spec, name, l))
            .map(|(name, _)| name)
            .collect();
        report.namespace_count = u32::try_from(selected.len()).unwrap_or(u32::MAX);
        report.namespaces = selected.into_iter().take(LISTED_NAMESPACES).cloned().collect();
    }
    for t in transfers {
        let namespace = t.namespace().unwrap_or_default();
        let ns_labels = labels.get(&namespace).cloned().unwrap_or_default();
        let wants = wants(&t.spec);
        let mut permitted = false;
        let mut selecting = Vec::new();
        for (i, policy) in policies.iter().enumerate() {
            if !selects(&policy.spec, &namespace, &ns_labels) {
                continue;
            }
            selecting.push(i);
            if wants.iter().all(|w| grants(&policy.spec, w)) {
                permitted = true;
                reports[i].transfers += 1;
            }
        }
        if !permitted {
            for i in selecting {
                reports[i].refused += 1;
            }
        }
    }
    reports
}

/// Whether transfers are checked against the policies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum Enforcement {
    /// Every transfer needs a policy that grants it (the default).
    #[default]
    Enforce,
    /// Policies are not consulted: any transfer in a watched namespace directs Ferry's AWS
    /// identity. Only for clusters where everyone who may create a transfer is trusted.
    Disabled,
}

/// The policies and namespaces the controller decides with, cached by their watches.
#[derive(Clone)]
pub struct Tenancy {
    /// Whether transfers are checked at all.
    pub enforcement: Enforcement,
    /// Every `TransferPolicy`.
    pub policies: Store<TransferPolicy>,
    /// The namespaces transfers may live in (their labels are what selectors match).
    pub namespaces: Store<Namespace>,
    /// True once both caches hold their first full list (set by the controller). A store's own
    /// `wait_until_ready` wakes only the last of several waiters, so reconciles wait on this.
    pub listed: tokio::sync::watch::Receiver<bool>,
}

impl Tenancy {
    /// Waits until both caches hold the first full list: before that, a missing policy may only
    /// not have arrived yet.
    pub async fn ready(&self) {
        if self.enforcement == Enforcement::Disabled {
            return;
        }
        let _ = self.listed.clone().wait_for(|listed| *listed).await;
    }

    /// The labels of a namespace (none when it is not cached).
    pub fn labels(&self, namespace: &str) -> BTreeMap<String, String> {
        self.namespaces
            .get(&kube::runtime::reflector::ObjectRef::new(namespace))
            .map(|ns| ns.labels().clone())
            .unwrap_or_default()
    }

    /// Decides a transfer in `namespace`; every transfer is permitted when enforcement is off.
    pub fn decide(&self, spec: &CrossAccountTransferSpec, namespace: &str, only: impl Fn(&str) -> bool) -> Verdict {
        if self.enforcement == Enforcement::Disabled {
            return Verdict::Permitted {
                policy: "(enforcement disabled)".into(),
            };
        }
        let policies = self.policies.state();
        decide(
            spec,
            namespace,
            &self.labels(namespace),
            policies.iter().map(|p| &**p),
            only,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::AccessMode;
    use crate::fixtures;
    use serde_json::json;

    fn policy(name: &str, spec: serde_json::Value) -> TransferPolicy {
        let spec: TransferPolicySpec = serde_json::from_value(spec).unwrap();
        TransferPolicy::new(name, spec)
    }

    fn team_a() -> serde_json::Value {
        json!({
            "namespaces": {"names": ["team-a"]},
            "source": {"buckets": ["src"], "regions": ["us-east-1"]},
            "destination": {"accounts": ["222222222222"], "buckets": ["ds*"], "regions": ["*"],
                            "roleArns": ["arn:aws:iam::222222222222:role/admin"]}
        })
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn patterns_match_the_whole_value() {
        assert!(glob_match("media", "media"));
        assert!(!glob_match("media", "media-other"), "a granted name is not a prefix");
        assert!(!glob_match("media", "medi"));
        assert!(!glob_match("Media", "media"), "case counts");
        assert!(glob_match("media-*", "media-exports"));
        assert!(glob_match("media-*", "media-"));
        assert!(!glob_match("media-*", "media"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "aXbYc"));
        assert!(!glob_match("a*b*c", "aXbYcZ"));
        assert!(glob_match("*-logs", "team-logs"));
        assert!(!glob_match("ab*ba", "aba"), "the ends must not overlap");
    }

    #[test]
    fn folders_contain_their_subfolders_only() {
        assert!(within_folder("exports/", Some("exports/")));
        assert!(within_folder("exports", Some("exports/2024/")));
        assert!(within_folder("exports/", Some("exports")));
        assert!(!within_folder("exports/", Some("exports-old/")));
        assert!(
            !within_folder("exports/2024/", Some("exports/")),
            "a wider folder is not granted"
        );
        assert!(
            !within_folder("exports/", None),
            "the whole bucket is wider than a folder"
        );
    }

    #[test]
    fn a_transfer_of_the_granted_namespace_is_permitted() {
        let spec = fixtures::spec(json!({}));
        let policies = [policy("team-a", team_a())];
        assert_eq!(
            evaluate(&spec, "team-a", &labels(&[]), &policies),
            Verdict::Permitted {
                policy: "team-a".into()
            }
        );
    }

    #[test]
    fn a_namespace_no_policy_selects_is_refused_with_what_to_create() {
        let spec = fixtures::spec(json!({}));
        let policies = [policy("team-a", team_a())];
        let Verdict::Refused { message } = evaluate(&spec, "team-b", &labels(&[]), &policies) else {
            panic!("permitted")
        };
        assert!(
            message.contains("no TransferPolicy selects namespace team-b"),
            "{message}"
        );
        assert!(message.contains("spec.namespaces.names"), "{message}");
    }

    #[test]
    fn the_refusal_names_field_value_and_grant() {
        let mut spec = fixtures::spec(json!({}));
        spec.destination.account_id = "333333333333".into();
        let policies = [policy("team-a", team_a())];
        let Verdict::Refused { message } = evaluate(&spec, "team-a", &labels(&[]), &policies) else {
            panic!("permitted")
        };
        assert!(
            message.starts_with("spec.destination.accountId \"333333333333\" is not granted to namespace team-a: TransferPolicy team-a grants spec.destination.accounts = 222222222222; a platform admin must add it to spec.destination.accounts"),
            "{message}"
        );
    }

    #[test]
    fn every_field_that_names_a_resource_or_identity_needs_a_grant() {
        let base = fixtures::spec(json!({}));
        let policies = [policy("team-a", team_a())];
        type Edit = fn(&mut CrossAccountTransferSpec);
        let edits: &[(&str, Edit)] = &[
            ("spec.source.bucket", |s| s.source.bucket = "other-team-bucket".into()),
            ("spec.source.region", |s| s.source.region = "eu-west-1".into()),
            ("spec.source.roleArn", |s| {
                s.source.role_arn = Some("arn:aws:iam::111111111111:role/admin".into())
            }),
            ("spec.source.kmsKeyArn", |s| {
                s.source.kms_key_arn = Some("arn:aws:kms:us-east-1:111111111111:key/k".into())
            }),
            ("spec.destination.accountId", |s| {
                s.destination.account_id = "333333333333".into()
            }),
            ("spec.destination.bucket", |s| s.destination.bucket = "elsewhere".into()),
            ("spec.destination.access.roleArn", |s| {
                s.destination.access = Some(crate::api::DestinationAccess {
                    role_arn: Some("arn:aws:iam::222222222222:role/other".into()),
                    ..Default::default()
                })
            }),
            ("spec.destination.kmsKeyArn", |s| {
                s.destination.kms_key_arn = Some("arn:aws:kms:us-east-1:222222222222:key/k".into())
            }),
            ("spec.dataSyncRole.name", |s| {
                s.data_sync_role.name = Some("admin".into())
            }),
            ("spec.dataSyncRole.arn", |s| {
                s.data_sync_role.arn = Some("arn:aws:iam::111111111111:role/admin".into())
            }),
            ("spec.task.report.bucket", |s| {
                s.task.report = Some(crate::api::TaskReportSpec {
                    bucket: "reports".into(),
                    ..Default::default()
                })
            }),
            ("spec.task.logGroupArn", |s| {
                s.task.log_group_arn = Some("arn:aws:logs:us-east-1:111111111111:log-group:/aws/datasync".into())
            }),
        ];
        assert_eq!(
            evaluate(&base, "team-a", &labels(&[]), &policies),
            Verdict::Permitted {
                policy: "team-a".into()
            }
        );
        for (field, edit) in edits {
            let mut spec = base.clone();
            edit(&mut spec);
            match evaluate(&spec, "team-a", &labels(&[]), &policies) {
                Verdict::Refused { message } => assert!(message.starts_with(field), "{field}: {message}"),
                Verdict::Permitted { .. } => panic!("{field} was permitted without a grant"),
            }
        }
    }

    #[test]
    fn prefixes_restrict_only_when_granted() {
        let mut narrow = team_a();
        narrow["source"]["prefixes"] = json!(["exports/2024/"]);
        narrow["destination"]["prefixes"] = json!(["archive/"]);
        let policies = [policy("narrow", narrow)];
        let mut spec = fixtures::spec(json!({}));
        spec.source.prefix = Some("exports/2024/march/".into());
        spec.destination.prefix = Some("archive/".into());
        assert!(evaluate(&spec, "team-a", &labels(&[]), &policies).permitted());
        spec.source.prefix = Some("exports/".into());
        let Verdict::Refused { message } = evaluate(&spec, "team-a", &labels(&[]), &policies) else {
            panic!("a wider prefix was permitted")
        };
        assert!(message.starts_with("spec.source.prefix \"exports/\""), "{message}");
        spec.source.prefix = None;
        let Verdict::Refused { message } = evaluate(&spec, "team-a", &labels(&[]), &policies) else {
            panic!("the whole bucket was permitted")
        };
        assert!(
            message.starts_with("spec.source.prefix (empty: the whole bucket)"),
            "{message}"
        );
    }

    #[test]
    fn one_policy_must_grant_every_field_and_the_closest_is_named() {
        // Policy one grants the source, policy two the destination: together they do not make
        // a transfer from one's bucket into the other's account.
        let mut one = team_a();
        one["destination"]["accounts"] = json!(["444444444444"]);
        let mut two = team_a();
        two["source"]["buckets"] = json!(["another-bucket"]);
        two["source"]["regions"] = json!(["eu-west-1"]);
        let policies = [policy("one", one), policy("two", two)];
        let Verdict::Refused { message } = evaluate(&fixtures::spec(json!({})), "team-a", &labels(&[]), &policies)
        else {
            panic!("permitted by a mix of two policies")
        };
        assert!(
            message.contains("TransferPolicy one"),
            "the policy missing one field: {message}"
        );
        let policies = [policy("one", team_a()), policy("zwei", team_a())];
        assert_eq!(
            evaluate(&fixtures::spec(json!({})), "team-a", &labels(&[]), &policies),
            Verdict::Permitted { policy: "one".into() }
        );
    }

    #[test]
    fn namespaces_are_selected_by_name_or_labels() {
        let mut by_label = team_a();
        by_label["namespaces"] = json!({"selector": {
            "matchLabels": {"ferry.dev/tenant": "media"},
            "matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]}]
        }});
        let policy = policy("media", by_label);
        let spec = fixtures::spec(json!({}));
        let check = |ls: &[(&str, &str)]| evaluate(&spec, "any", &labels(ls), [&policy]).permitted();
        assert!(check(&[("ferry.dev/tenant", "media")]));
        assert!(check(&[("ferry.dev/tenant", "media"), ("env", "dev")]));
        assert!(!check(&[("ferry.dev/tenant", "media"), ("env", "prod")]));
        assert!(!check(&[("ferry.dev/tenant", "film")]));
        assert!(!check(&[]));
        let mut everyone = team_a();
        everyone["namespaces"] = json!({"selector": {}});
        assert!(evaluate(&spec, "any", &labels(&[]), [&self::policy("all", everyone)]).permitted());
    }

    #[test]
    fn modes_default_to_both_and_can_be_narrowed() {
        let open = policy("open", team_a());
        assert!(open.spec.destination.modes.contains(&AccessMode::External));
        let mut external_only = team_a();
        external_only["destination"]["modes"] = json!(["External"]);
        let policies = [policy("ext", external_only)];
        let Verdict::Refused { message } = evaluate(&fixtures::spec(json!({})), "team-a", &labels(&[]), &policies)
        else {
            panic!("AssumeRole permitted")
        };
        assert!(
            message.starts_with("spec.destination.access.mode \"AssumeRole\""),
            "{message}"
        );
    }

    #[test]
    fn log_groups_match_with_or_without_the_trailing_star() {
        let mut with_logs = team_a();
        with_logs["logGroupArns"] = json!(["arn:aws:logs:us-east-1:111111111111:log-group:/aws/datasync:*"]);
        let policies = [policy("logs", with_logs)];
        let mut spec = fixtures::spec(json!({}));
        spec.task.log_group_arn = Some("arn:aws:logs:us-east-1:111111111111:log-group:/aws/datasync".into());
        assert!(evaluate(&spec, "team-a", &labels(&[]), &policies).permitted());
        spec.task.log_group_arn = Some("arn:aws:logs:us-east-1:111111111111:log-group:/aws/datasync-other".into());
        assert!(!evaluate(&spec, "team-a", &labels(&[]), &policies).permitted());
    }

    #[test]
    fn policy_reports_count_namespaces_and_transfers() {
        let mut namespace = Namespace::default();
        namespace.metadata.name = Some("team-a".into());
        let other = Namespace {
            metadata: kube::api::ObjectMeta {
                name: Some("team-b".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let mut everyone = team_a();
        everyone["namespaces"] = json!({"selector": {}});
        let policies = [policy("team-a", team_a()), policy("everyone", everyone)];
        let mut permitted = fixtures::transfer(json!({}));
        permitted.metadata.namespace = Some("team-a".into());
        let refused = fixtures::transfer(
            json!({"destination": {"accountId": "333333333333", "access": {"roleArn": "arn:aws:iam::333333333333:role/x"}}}),
        );
        let mut refused_b = refused.clone();
        refused_b.metadata.namespace = Some("team-b".into());
        let reports = policy_reports(&policies, [&namespace, &other], [&permitted, &refused, &refused_b]);
        assert_eq!(reports[0].namespaces, ["team-a"]);
        assert_eq!((reports[0].transfers, reports[0].refused), (1, 0));
        // The fixture's namespace `data` has a transfer but no Namespace object: still counted.
        assert_eq!(reports[1].namespaces, ["data", "team-a", "team-b"]);
        assert_eq!(reports[1].namespace_count, 3);
        assert_eq!((reports[1].transfers, reports[1].refused), (1, 2));
    }

    #[test]
    fn identity_fields_are_decided_alone() {
        let mut spec = fixtures::spec(json!({}));
        spec.destination.bucket = "not-granted".into();
        let policies = [policy("team-a", team_a())];
        assert!(!evaluate(&spec, "team-a", &labels(&[]), &policies).permitted());
        assert!(
            decide(&spec, "team-a", &labels(&[]), &policies, |f| IDENTITY_FIELDS
                .contains(&f))
            .permitted()
        );
    }

    /// Every string leaf of the spec's schema is either decided by the policies or listed here
    /// as naming no AWS resource or identity: a new field fails this test until it is classified.
    #[test]
    fn every_spec_field_is_classified() {
        use kube::CustomResourceExt;
        const NOT_RESOURCES: &[&str] = &[
            // Which account runs the copy; the accounts themselves are granted.
            "spec.initiator",
            "spec.destination.storageClass",
            "spec.task.mode",
            "spec.task.verify",
            "spec.task.overwrite",
            "spec.task.transfer",
            "spec.task.deleted",
            "spec.task.objectTags",
            "spec.task.includes",
            "spec.task.excludes",
            "spec.task.logLevel",
            "spec.task.release",
            "spec.task.report.level",
            "spec.task.report.output",
            "spec.schedule",
            "spec.run",
            "spec.deletionPolicy",
        ];
        let crd = crate::api::CrossAccountTransfer::crd();
        let schema = serde_json::to_value(&crd.spec.versions[0].schema).unwrap();
        let spec = &schema["openAPIV3Schema"]["properties"]["spec"];
        let mut leaves = Vec::new();
        fn walk(path: String, node: &serde_json::Value, out: &mut Vec<String>) {
            match node["type"].as_str() {
                Some("object") => {
                    for (k, v) in node["properties"].as_object().into_iter().flatten() {
                        walk(format!("{path}.{k}"), v, out);
                    }
                }
                Some("string") | Some("array") => out.push(path),
                _ => {}
            }
        }
        walk("spec".into(), spec, &mut leaves);
        assert!(
            leaves.contains(&"spec.source.bucket".to_string()) && leaves.len() > 25,
            "{leaves:?}"
        );
        let mut full = fixtures::spec(json!({}));
        full.source.role_arn = Some("r".into());
        full.source.kms_key_arn = Some("k".into());
        full.source.prefix = Some("p".into());
        full.destination.prefix = Some("p".into());
        full.destination.kms_key_arn = Some("k".into());
        full.destination.access = Some(crate::api::DestinationAccess {
            role_arn: Some("r".into()),
            ..Default::default()
        });
        full.source.account_id = Some("a".into());
        full.destination.role_arn = Some("r".into());
        full.source.access = Some(crate::api::SourceAccess {
            role_arn: Some("r".into()),
            ..Default::default()
        });
        full.data_sync_role.name = Some("n".into());
        full.data_sync_role.arn = Some("a".into());
        full.task.log_group_arn = Some("l".into());
        full.task.report = Some(crate::api::TaskReportSpec {
            bucket: "b".into(),
            prefix: Some("p".into()),
            ..Default::default()
        });
        let decided: Vec<&str> = wants(&full).iter().map(|w| w.field).collect();
        for leaf in &leaves {
            assert!(
                decided.contains(&leaf.as_str()) || NOT_RESOURCES.contains(&leaf.as_str()),
                "{leaf} is neither granted by TransferPolicy nor listed as naming no AWS resource"
            );
        }
    }

    #[test]
    fn a_pull_needs_its_source_account_and_access_granted() {
        let spec = fixtures::spec(fixtures::pull());
        let mut grants = team_a();
        let refused = |grants: &serde_json::Value| match evaluate(
            &spec,
            "team-a",
            &labels(&[]),
            &[policy("team-a", grants.clone())],
        ) {
            Verdict::Refused { message } => Some(message),
            Verdict::Permitted { .. } => None,
        };
        let message = refused(&grants).expect("a policy without source accounts grants no pull");
        assert!(
            message.starts_with("spec.source.accountId \"111111111111\""),
            "{message}"
        );
        grants["source"]["accounts"] = json!(["111111111111"]);
        let message = refused(&grants).expect("the source's admin role is an identity to grant");
        assert!(message.starts_with("spec.source.access.roleArn"), "{message}");
        grants["source"]["accessRoleArns"] = json!(["arn:aws:iam::111111111111:role/*"]);
        grants["destination"]["accounts"] = json!(["222222222222"]);
        assert_eq!(refused(&grants), None);
        grants["source"]["modes"] = json!(["External"]);
        let message = refused(&grants).expect("AssumeRole not granted");
        assert!(message.starts_with("spec.source.access.mode"), "{message}");
    }
}
