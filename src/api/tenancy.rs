//! The `TransferPolicy` API (`ferry.dev/v1alpha1`, cluster-scoped): what a platform admin
//! grants the transfers of some namespaces. A transfer runs only when one policy that selects
//! its namespace grants every AWS resource and identity its spec names; what no policy grants
//! is refused before any AWS call (see [`crate::tenancy`]).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::AccessMode;

/// A bucket-name pattern: S3's bucket characters, `*` for any run of characters.
const BUCKET_GRANT: &str = r"^[a-z0-9.*-]{1,63}$";
/// A Region pattern, e.g. `us-east-1`, `eu-*` or `*`.
const REGION_GRANT: &str = r"^[a-z0-9*-]{1,32}$";
/// An account-id pattern: 12 digits, or `*`.
const ACCOUNT_GRANT: &str = r"^([0-9]{12}|\*)$";
/// An ARN pattern (`*` for any run of characters), or `*` for any ARN.
const ARN_GRANT: &str = r"^(arn:aws[a-z-]*:[a-z0-9*-]+:[a-z0-9*-]*:([0-9]{12}|\*)?:[^\s]+|\*)$";
/// A role-name pattern: IAM's role-name characters and `*`.
const ROLE_NAME_GRANT: &str = r"^[A-Za-z0-9+=,.@_*-]{1,64}$";
/// A key prefix (folder) a transfer must stay inside, e.g. `exports/`.
const PREFIX_GRANT: &str = r"^[A-Za-z0-9_+.() -]+(/[A-Za-z0-9_+.() -]+)*/?$";

/// Grants the `CrossAccountTransfer`s of some namespaces the buckets, accounts, Regions and
/// roles they may name.
///
/// A transfer is permitted when one policy that selects its namespace grants every field of
/// its spec that names an AWS resource or identity. Several policies add up: each grants its
/// own combinations, and a transfer needs one policy that grants all of its fields. Patterns
/// match the whole value, case-sensitively; `*` stands for any run of characters. A list left
/// empty grants nothing, except where a field's description says otherwise.
// clippy mistakes the repeated `type_` of the printcolumn entries for duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, JsonSchema, PartialEq)]
#[kube(
    group = "ferry.dev",
    version = "v1alpha1",
    kind = "TransferPolicy",
    plural = "transferpolicies",
    shortname = "xtp",
    category = "ferry",
    status = "TransferPolicyStatus",
    derive = "PartialEq",
    doc = "TransferPolicy grants the CrossAccountTransfers of some namespaces the AWS buckets, accounts, Regions, roles, keys and log groups they may name; Ferry refuses, before any AWS call, a transfer that no policy grants.",
    printcolumn(
        name = "Namespaces",
        type_ = "integer",
        json_path = ".status.namespaceCount",
        description = "How many namespaces the policy selects"
    ),
    printcolumn(
        name = "Transfers",
        type_ = "integer",
        json_path = ".status.transfers",
        description = "How many transfers the policy permits"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct TransferPolicySpec {
    /// The namespaces whose transfers this policy grants: by name, by label selector, or both.
    pub namespaces: NamespaceGrant,

    /// What transfers may read from (Account A).
    pub source: SourceGrant,

    /// Where transfers may write (Account B) and how Ferry may reach it.
    pub destination: DestinationGrant,

    /// The DataSync roles transfers may name. The default role (`ferry-<namespace>-<name>`,
    /// created and owned by Ferry) is always permitted.
    #[serde(default)]
    pub data_sync_role: RoleGrant,

    /// The buckets DataSync task reports (`spec.task.report`) may go to.
    #[serde(default)]
    pub report: ReportGrant,

    /// CloudWatch Logs log group ARNs (patterns) `spec.task.logGroupArn` may name; a trailing
    /// `:*` is ignored on both sides.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100), inner(regex(pattern = ARN_GRANT), length(max = 2048)))]
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub log_group_arns: Vec<String>,
}

/// Which namespaces a policy selects.
#[derive(Deserialize, Serialize, Clone, Debug, JsonSchema, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "has(self.names) || has(self.selector)", "message": "spec.namespaces: name namespaces (names) or select them by label (selector)"}
]))]
pub struct NamespaceGrant {
    /// Namespaces by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 1000),
        inner(regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"), length(max = 63))
    )]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub names: Vec<String>,

    /// Namespaces by label, as in a Deployment's selector. An empty selector (`{}`) selects
    /// every namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
}

/// What a policy grants on the source side.
#[derive(Deserialize, Serialize, Clone, Debug, JsonSchema, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct SourceGrant {
    /// Source bucket names (patterns), e.g. `media-exports` or `media-*`.
    #[schemars(length(min = 1, max = 100), inner(regex(pattern = BUCKET_GRANT)))]
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub buckets: Vec<String>,

    /// Source Regions (patterns), e.g. `us-east-1` or `*`.
    #[schemars(length(min = 1, max = 50), inner(regex(pattern = REGION_GRANT)))]
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub regions: Vec<String>,

    /// Folders a transfer's `spec.source.prefix` must be, or be inside, e.g. `exports/`. Empty:
    /// any prefix, the whole bucket included.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100), inner(regex(pattern = PREFIX_GRANT), length(max = 1024)))]
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub prefixes: Vec<String>,

    /// Roles of Account A (ARN patterns) that `spec.source.roleArn` may name. Empty: transfers
    /// use the operator's own identity.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100), inner(regex(pattern = ARN_GRANT), length(max = 2048)))]
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub role_arns: Vec<String>,

    /// KMS keys (ARN patterns) that `spec.source.kmsKeyArn` may name. Empty: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100), inner(regex(pattern = ARN_GRANT), length(max = 2048)))]
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub kms_key_arns: Vec<String>,

    /// Source accounts (12 digits, quoted, or `*`) that `spec.source.accountId` may name: the
    /// accounts whose buckets transfers run by the destination account (`initiator:
    /// Destination`) may read. Empty: no such transfer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100), inner(regex(pattern = ACCOUNT_GRANT)))]
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub accounts: Vec<String>,

    /// The access modes `spec.source.access.mode` may use (`initiator: Destination`). Default:
    /// both; AssumeRole needs a granted role ARN too.
    #[serde(default = "all_modes")]
    #[schemars(length(max = 2))]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub modes: Vec<AccessMode>,

    /// Roles of source accounts (ARN patterns) that `spec.source.access.roleArn` may name, e.g.
    /// `arn:aws:iam::111111111111:role/ferry-access`. Empty: no AssumeRole pull.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100), inner(regex(pattern = ARN_GRANT), length(max = 2048)))]
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub access_role_arns: Vec<String>,
}

fn all_modes() -> Vec<AccessMode> {
    vec![AccessMode::AssumeRole, AccessMode::External]
}

/// What a policy grants on the destination side.
#[derive(Deserialize, Serialize, Clone, Debug, JsonSchema, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct DestinationGrant {
    /// Destination account ids (12 digits, quoted), or `*` for any account.
    #[schemars(length(min = 1, max = 100), inner(regex(pattern = ACCOUNT_GRANT)))]
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub accounts: Vec<String>,

    /// Destination bucket names (patterns).
    #[schemars(length(min = 1, max = 100), inner(regex(pattern = BUCKET_GRANT)))]
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub buckets: Vec<String>,

    /// Destination Regions (patterns).
    #[schemars(length(min = 1, max = 50), inner(regex(pattern = REGION_GRANT)))]
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub regions: Vec<String>,

    /// Folders a transfer's `spec.destination.prefix` must be, or be inside. Empty: any prefix.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100), inner(regex(pattern = PREFIX_GRANT), length(max = 1024)))]
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub prefixes: Vec<String>,

    /// The access modes transfers may use. Default: both; AssumeRole needs a granted role ARN
    /// too.
    #[serde(default = "all_modes")]
    #[schemars(length(max = 2))]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub modes: Vec<AccessMode>,

    /// Roles of Account B (ARN patterns) that `spec.destination.access.roleArn` may name, e.g.
    /// `arn:aws:iam::222222222222:role/ferry-access`. Empty: no AssumeRole transfer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100), inner(regex(pattern = ARN_GRANT), length(max = 2048)))]
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub role_arns: Vec<String>,

    /// Roles of destination accounts (ARN patterns) that `spec.destination.roleArn` may name:
    /// the roles Ferry runs pulls as (`initiator: Destination`). Empty: pulls run as the
    /// operator's own identity.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100), inner(regex(pattern = ARN_GRANT), length(max = 2048)))]
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub run_as_role_arns: Vec<String>,

    /// KMS keys (ARN patterns) that `spec.destination.kmsKeyArn` may name. Empty: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100), inner(regex(pattern = ARN_GRANT), length(max = 2048)))]
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub kms_key_arns: Vec<String>,
}

/// The DataSync roles transfers may name.
#[derive(Deserialize, Serialize, Clone, Debug, JsonSchema, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RoleGrant {
    /// Names (patterns) of roles Ferry may create and manage for `spec.dataSyncRole.name`, e.g.
    /// `media-*`. Empty: only the default role.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100), inner(regex(pattern = ROLE_NAME_GRANT)))]
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub names: Vec<String>,

    /// Existing roles (ARN patterns) that `spec.dataSyncRole.arn` may name. Empty: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100), inner(regex(pattern = ARN_GRANT), length(max = 2048)))]
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub arns: Vec<String>,
}

/// Where task reports may go.
#[derive(Deserialize, Serialize, Clone, Debug, JsonSchema, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ReportGrant {
    /// Report bucket names (patterns). Empty: no task report.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100), inner(regex(pattern = BUCKET_GRANT)))]
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub buckets: Vec<String>,

    /// Folders `spec.task.report.prefix` must be, or be inside. Empty: any prefix.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100), inner(regex(pattern = PREFIX_GRANT), length(max = 1024)))]
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub prefixes: Vec<String>,
}

/// What Ferry last saw of a policy: whom it selects and how many transfers it permits.
#[derive(Deserialize, Serialize, Clone, Debug, JsonSchema, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
// The counts are u32 in Rust; their schemas say int32 (a format the API server knows, whose
// range the counts never leave), or the API server warns `unrecognized format "uint32"` on
// every apply of the CRD (kubectl, helm, the demo).
pub struct TransferPolicyStatus {
    /// The `metadata.generation` these counts were made for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// How many existing namespaces the policy selects.
    #[serde(default)]
    #[schemars(extend("format" = "int32"))]
    pub namespace_count: u32,

    /// The selected namespaces, sorted (the first 100).
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub namespaces: Vec<String>,

    /// How many transfers this policy permits (a transfer that two policies permit counts for
    /// both).
    #[serde(default)]
    #[schemars(extend("format" = "int32"))]
    pub transfers: u32,

    /// How many transfers in the selected namespaces no policy permits.
    #[serde(default)]
    #[schemars(extend("format" = "int32"))]
    pub refused: u32,
}
