//! Names, tags and identifiers Ferry derives for a transfer. Everything is derived from the
//! resource's namespace, name and `metadata.uid`, so a restarted operator finds what it made.

use sha2::{Digest, Sha256};

/// Tag on everything Ferry creates.
pub const TAG_MANAGED_BY: &str = "ferry.dev/managed-by";
/// Value of [`TAG_MANAGED_BY`].
pub const MANAGED_BY_VALUE: &str = "ferry";
/// Tag holding the owning resource's `metadata.uid`.
pub const TAG_UID: &str = "ferry.dev/uid";
/// Tag holding `<namespace>/<name>` of the owning resource.
pub const TAG_RESOURCE: &str = "ferry.dev/resource";
/// Tag on executions Ferry starts: which run request they answer.
pub const TAG_RUN: &str = "ferry.dev/run";
/// Tag on a failed-only run's execution: `<id of the execution it repeats the failures of>:<objects>`,
/// so a run adopted after a crash still says what it covers.
pub const TAG_FAILED_ONLY: &str = "ferry.dev/failed-only";
/// IAM's longest role name.
pub const MAX_ROLE_NAME: usize = 64;
/// The longest DataSync task name, and the longest tag value of IAM and DataSync.
pub const MAX_TAG_OR_NAME: usize = 256;
/// Name of the inline policy Ferry puts on a transfer's own DataSync role.
pub const INLINE_POLICY_NAME: &str = "ferry-datasync-access";
/// Tag on a shared DataSync role: `<namespace>/<pool hash>` of the pool it belongs to.
pub const TAG_ROLE_POOL: &str = "ferry.dev/role-pool";

/// The DataSync roles one namespace's transfers share in one account for one pair of regions
/// (the trust policy names the regions, so it is the same for every member). A pool is a row
/// of roles, `ferry-<namespace>-<hash>-<n>`; each transfer is one inline policy on one of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RolePool {
    /// The namespace of its transfers.
    pub namespace: String,
    /// 8 hex characters of a SHA-256 of the account, namespace and regions.
    pub hash: String,
}

impl RolePool {
    /// The pool of a namespace's transfers in `account` whose tasks run in `regions` (task
    /// region first).
    pub fn new(account: &str, namespace: &str, regions: &[&str]) -> Self {
        let mut hasher = Sha256::new();
        for part in [account, namespace].iter().chain(regions) {
            hasher.update(part.as_bytes());
            hasher.update([0]);
        }
        let hash = hasher.finalize().iter().take(4).map(|b| format!("{b:02x}")).collect();
        Self {
            namespace: namespace.to_string(),
            hash,
        }
    }

    /// The name of role `shard` of the pool, at most IAM's 64 characters: the namespace is cut
    /// when it is too long (the hash keeps pools of namespaces with the same start apart).
    pub fn role_name(&self, shard: u32) -> String {
        let tail = format!("-{}-{shard}", self.hash);
        let room = MAX_ROLE_NAME - "ferry-".len() - tail.len();
        let ns = &self.namespace[..self.namespace.len().min(room)];
        format!("ferry-{}{tail}", ns.trim_end_matches(['-', '.']))
    }

    /// The shard of a role ARN of this pool, if it is one.
    pub fn shard_of(&self, role_arn: &str) -> Option<u32> {
        let name = role_name_from_arn(role_arn)?;
        let (head, shard) = name.rsplit_once('-')?;
        let shard: u32 = shard.parse().ok()?;
        (head.ends_with(&format!("-{}", self.hash)) && self.role_name(shard) == name).then_some(shard)
    }

    /// The key of the pool's lock: its members take turns at its roles.
    pub fn lock_key(hash: &str) -> String {
        format!("iam-role-pool/{hash}")
    }

    /// The value of [`TAG_ROLE_POOL`].
    pub fn tag(&self) -> String {
        format!("{}/{}", self.namespace, self.hash)
    }

    /// The tags of a pool's role: Ferry's, and the pool's (no transfer's uid: it is shared).
    pub fn tags(&self) -> Vec<(String, String)> {
        vec![
            (TAG_MANAGED_BY.to_string(), MANAGED_BY_VALUE.to_string()),
            (TAG_ROLE_POOL.to_string(), self.tag()),
        ]
    }

    /// True when a role's tags say it is this pool's.
    pub fn owns<'a>(&self, tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> bool {
        let want = self.tag();
        tags.into_iter().any(|(k, v)| k == TAG_ROLE_POOL && v == want)
    }
}

/// Whether a role ARN has the shape of a pool's shared role, `ferry-<namespace>-<8 hex>-<n>`,
/// of any pool (pure): a transfer that moved to another pool (its Regions changed) still knows
/// the role it left is shared.
pub fn looks_shared(role_arn: &str) -> bool {
    let Some(name) = role_name_from_arn(role_arn) else {
        return false;
    };
    let mut parts = name.rsplitn(3, '-');
    let (Some(shard), Some(hash), Some(head)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    head.starts_with("ferry-")
        && !shard.is_empty()
        && shard.bytes().all(|b| b.is_ascii_digit())
        && hash.len() == 8
        && hash.bytes().all(|b| b.is_ascii_hexdigit())
}

/// True when a role's tags say it is a shared role of some pool (its members are its inline
/// policies, so it is deleted only once it has none).
pub fn is_pool_role<'a>(tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> bool {
    tags.into_iter().any(|(k, _)| k == TAG_ROLE_POOL)
}

/// Identity of one transfer resource, as far as naming is concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferId {
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.uid`.
    pub uid: String,
}

impl TransferId {
    /// Builds the id from its three parts.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>, uid: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
            uid: uid.into(),
        }
    }

    /// 10 hex characters of a SHA-256 of the uid: short, stable, unique enough per cluster.
    pub fn hash(&self) -> String {
        let digest = Sha256::digest(self.uid.as_bytes());
        digest.iter().take(5).map(|b| format!("{b:02x}")).collect()
    }

    /// `<namespace>/<name>`.
    pub fn resource(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// `text` when it fits in `max` characters, else its start and `-<uid hash>` in `max`
    /// characters: stable across restarts (the hash comes from the uid) and unique per transfer.
    fn within(&self, text: String, max: usize) -> String {
        if text.len() <= max {
            return text;
        }
        let hash = self.hash();
        let keep = max - hash.len() - 1;
        // Kubernetes names are ASCII, so any byte index is a character boundary.
        format!("{}-{hash}", text[..keep].trim_end_matches(['-', '/', '.']))
    }

    /// Default DataSync role name: `ferry-<namespace>-<name>`, cut to IAM's 64 characters with
    /// the uid hash appended when it is too long.
    pub fn default_role_name(&self) -> String {
        self.within(format!("ferry-{}-{}", self.namespace, self.name), MAX_ROLE_NAME)
    }

    /// DataSync task name: `ferry-<namespace>-<name>`, cut to DataSync's 256 characters with the
    /// uid hash appended when it is too long (a namespace and name can reach 317).
    pub fn task_name(&self) -> String {
        self.within(format!("ferry-{}-{}", self.namespace, self.name), MAX_TAG_OR_NAME)
    }

    /// The value of the [`TAG_RESOURCE`] tag: `<namespace>/<name>`, cut to the 256 characters
    /// IAM and DataSync allow a tag value with the uid hash appended when it is too long. The
    /// uid tag, not this one, says who owns a resource.
    pub fn resource_tag(&self) -> String {
        self.within(self.resource(), MAX_TAG_OR_NAME)
    }

    /// Name of this transfer's inline policy on a shared DataSync role: `ferry-<uid hash>`.
    pub fn member_policy_name(&self) -> String {
        format!("ferry-{}", self.hash())
    }

    /// Sid of the bucket-policy statement that lets the DataSync role use the bucket.
    pub fn access_sid(&self) -> String {
        format!("Ferry{}DataSyncAccess", self.hash())
    }

    /// Sid of the bucket-policy statement that lets Ferry's identity create the location.
    pub fn create_location_sid(&self) -> String {
        format!("Ferry{}CreateLocation", self.hash())
    }

    /// The tags Ferry puts on everything it creates, as (key, value) pairs.
    pub fn tags(&self) -> Vec<(String, String)> {
        vec![
            (TAG_MANAGED_BY.to_string(), MANAGED_BY_VALUE.to_string()),
            (TAG_UID.to_string(), self.uid.clone()),
            (TAG_RESOURCE.to_string(), self.resource_tag()),
        ]
    }

    /// True when a tag set carries this transfer's uid tag.
    pub fn owns<'a>(&self, tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> bool {
        tags.into_iter().any(|(k, v)| k == TAG_UID && v == self.uid)
    }
}

pub use crate::api::partition;

/// `arn:<partition>:s3:::<bucket>`.
pub fn bucket_arn(region: &str, bucket: &str) -> String {
    format!("arn:{}:s3:::{bucket}", partition(region))
}

/// A prefix normalised to DataSync's form: no leading slash, one trailing slash, or empty.
pub fn normalize_prefix(prefix: Option<&str>) -> String {
    let trimmed = prefix.unwrap_or("").trim_matches('/');
    if trimmed.is_empty() {
        String::new()
    } else {
        format!("{trimmed}/")
    }
}

/// The DataSync `Subdirectory` for a prefix (`/media/`), or `/` for the whole bucket.
pub fn subdirectory(prefix: Option<&str>) -> String {
    format!("/{}", normalize_prefix(prefix))
}

/// The `LocationUri` DataSync reports for an S3 location: `s3://bucket/prefix/`.
pub fn location_uri(bucket: &str, prefix: Option<&str>) -> String {
    format!("s3://{bucket}/{}", normalize_prefix(prefix))
}

/// The partition of an ARN (`arn:aws-cn:...` → `aws-cn`). Every ARN Ferry reads is taken apart
/// by these helpers (`arn:partition:service:region:account:resource`), nowhere else.
pub fn arn_partition(arn: &str) -> Option<&str> {
    arn.split(':').nth(1).filter(|p| !p.is_empty())
}

/// The account id inside an ARN (`arn:aws:iam::123456789012:role/x` → `123456789012`).
pub fn arn_account(arn: &str) -> Option<&str> {
    arn.split(':').nth(4).filter(|a| !a.is_empty())
}

/// The region inside an ARN, if it has one.
pub fn arn_region(arn: &str) -> Option<&str> {
    arn.split(':').nth(3).filter(|r| !r.is_empty())
}

/// The last path segment of an ARN's resource: the id of a DataSync task, location or
/// execution (`...:task/task-1/execution/exec-2` → `exec-2`).
pub fn arn_resource_id(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// The role name of an IAM role ARN (the last path segment).
pub fn role_name_from_arn(arn: &str) -> Option<&str> {
    arn.split_once(":role/").and_then(|(_, rest)| rest.rsplit('/').next())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(ns: &str, name: &str) -> TransferId {
        TransferId::new(ns, name, "5f0c6f1e-3b7a-4a8e-9d62-3f1f1c2b9a77")
    }

    #[test]
    fn hash_is_ten_hex_chars_and_stable() {
        let h = id("data", "x").hash();
        assert_eq!(h.len(), 10);
        assert!(h.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(h, id("other", "y").hash(), "depends on the uid only");
    }

    #[test]
    fn role_name_is_cut_to_64_with_hash() {
        assert_eq!(id("data", "media").default_role_name(), "ferry-data-media");
        let long = id(
            "a-very-long-namespace-name-for-testing",
            "and-an-even-longer-transfer-name",
        );
        let name = long.default_role_name();
        assert_eq!(name.len(), 64);
        assert!(name.ends_with(&long.hash()));
        assert!(name.starts_with("ferry-a-very-long-namespace"));
    }

    #[test]
    fn long_names_fit_aws_limits_and_stay_stable() {
        let ns = "n".repeat(63);
        let name = format!("{}.x", "a".repeat(251));
        let long = id(&ns, &name);
        let task = long.task_name();
        assert_eq!(task.len(), 256);
        assert!(task.ends_with(&long.hash()));
        assert_eq!(task, id(&ns, &name).task_name(), "the same uid gives the same name");
        let tag = long.resource_tag();
        assert_eq!(tag.len(), 256);
        assert!(tag.starts_with(&format!("{ns}/aaa")));
        assert!(long.tags().iter().all(|(k, v)| k.len() <= 128 && v.len() <= 256));
        assert_eq!(id("data", "media").task_name(), "ferry-data-media");
        assert_eq!(id("data", "media").resource_tag(), "data/media");
    }

    #[test]
    fn pool_role_names_fit_iam_and_read_back_as_their_shard() {
        let pool = RolePool::new("111111111111", "data", &["us-west-1", "us-east-1"]);
        assert_eq!(pool.hash.len(), 8);
        let name = pool.role_name(3);
        assert_eq!(name, format!("ferry-data-{}-3", pool.hash));
        let arn = format!("arn:aws:iam::111111111111:role/{name}");
        assert_eq!(pool.shard_of(&arn), Some(3));
        assert_eq!(pool.shard_of("arn:aws:iam::111111111111:role/ferry-data-media"), None);
        let other = RolePool::new("111111111111", "data", &["us-east-1", "us-east-1"]);
        assert_ne!(other.hash, pool.hash, "other regions, another pool");
        assert_eq!(other.shard_of(&arn), None);
        let long = RolePool::new("111111111111", &"n".repeat(63), &["us-east-1"]);
        for shard in [0, 99, u32::MAX] {
            let name = long.role_name(shard);
            assert!(name.len() <= MAX_ROLE_NAME, "{name}");
            assert_eq!(long.shard_of(&format!("arn:aws:iam::1:role/{name}")), Some(shard));
        }
        assert!(pool.owns(pool.tags().iter().map(|(k, v)| (k.as_str(), v.as_str()))));
        assert!(!other.owns(pool.tags().iter().map(|(k, v)| (k.as_str(), v.as_str()))));
        assert!(is_pool_role(pool.tags().iter().map(|(k, v)| (k.as_str(), v.as_str()))));
        assert!(looks_shared(&arn));
        assert!(looks_shared(&format!("arn:aws:iam::1:role/{}", long.role_name(7))));
        assert!(!looks_shared("arn:aws:iam::111111111111:role/ferry-data-media"));
        assert!(!looks_shared("arn:aws:iam::111111111111:role/mine-0123abcd-1"));
    }

    #[test]
    fn sids_are_alphanumeric() {
        let t = id("data", "media");
        for sid in [t.access_sid(), t.create_location_sid()] {
            assert!(sid.chars().all(|c| c.is_ascii_alphanumeric()), "{sid}");
        }
    }

    #[test]
    fn prefixes_normalise() {
        assert_eq!(subdirectory(None), "/");
        assert_eq!(subdirectory(Some("media")), "/media/");
        assert_eq!(subdirectory(Some("media/2024/")), "/media/2024/");
        assert_eq!(location_uri("b", Some("/x/")), "s3://b/x/");
        assert_eq!(location_uri("b", None), "s3://b/");
    }

    #[test]
    fn arn_parts() {
        let task = "arn:aws-cn:datasync:cn-north-1:123456789012:task/task-1";
        assert_eq!(
            (arn_partition(task), arn_region(task), arn_account(task)),
            (Some("aws-cn"), Some("cn-north-1"), Some("123456789012"))
        );
        let arn = "arn:aws:iam::123456789012:role/path/to/ferry-role";
        assert_eq!(arn_account(arn), Some("123456789012"));
        assert_eq!(role_name_from_arn(arn), Some("ferry-role"));
        assert_eq!(arn_region("arn:aws:datasync:us-west-1:1:task/t"), Some("us-west-1"));
        assert_eq!(partition("cn-north-1"), "aws-cn");
        assert_eq!(bucket_arn("us-east-1", "b"), "arn:aws:s3:::b");
    }
}
