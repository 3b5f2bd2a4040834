//! Before step 1 (both accounts): how the buckets encrypt, and the KMS keys the DataSync role
//! must be allowed to use. After the bucket policy (Account B): Ferry's statement in the
//! destination key's policy.
//!
//! DataSync's S3 location page: for a bucket encrypted with a customer managed KMS key, the
//! DataSync role needs the key (by its full ARN) and, across accounts, the key's policy must
//! name the role
//! (<https://docs.aws.amazon.com/datasync/latest/userguide/create-s3-location.html#create-s3-location-encryption>).
//! S3 resolves a default-encryption key given by alias or id in the *writer's* account, so a
//! cross-account destination must name its key by ARN
//! (<https://docs.aws.amazon.com/AmazonS3/latest/API/API_ServerSideEncryptionByDefault.html>);
//! the AWS managed key `aws/s3` cannot be used from another account at all.

use super::transfer::Transfer;
use crate::api::{BucketEncryption, CrossAccountTransfer, DestinationStatus, EncryptionStatus, is_kms_key_arn};
use crate::aws::{Account, Failure, classify};
use crate::desired::Keys;
use crate::error::{Error, Result};
use crate::naming::{arn_account, bucket_arn};
use crate::policy::{KEY_SID, key_policy_with};

/// SSE-S3: S3's own keys, nothing for Ferry to grant.
pub const SSE_S3: &str = "AES256";

/// A bucket's default encryption as S3 answers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefaultEncryption {
    /// `AES256`, `aws:kms` or `aws:kms:dsse`.
    pub algorithm: String,
    /// `KMSMasterKeyID` as configured: a key ARN, key id, alias name or alias ARN; `None` for
    /// the AWS managed key `aws/s3`.
    pub key_id: Option<String>,
}

impl DefaultEncryption {
    /// Whether objects are encrypted with KMS.
    pub fn kms(&self) -> bool {
        self.algorithm.starts_with("aws:kms")
    }
}

/// What Ferry can do with a destination bucket's default encryption (pure).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DestinationKey {
    /// SSE-S3: no key to grant.
    None,
    /// A customer managed key named by ARN: grant it.
    Key(String),
    /// A configuration DataSync's role in Account A cannot write with: why, and the fix.
    Unusable(String),
}

/// The key a cross-account writer uses for a destination bucket's default encryption (pure).
pub fn destination_key(bucket: &str, found: &DefaultEncryption) -> DestinationKey {
    if !found.kms() {
        return DestinationKey::None;
    }
    match &found.key_id {
        None => DestinationKey::Unusable(format!(
            "bucket {bucket} encrypts new objects with the AWS managed key aws/s3, which a role of another account cannot use; set the bucket's default encryption to a customer managed KMS key (by its full ARN) whose key policy Account B controls"
        )),
        Some(id) if is_kms_key_arn(id) => DestinationKey::Key(id.clone()),
        Some(id) => DestinationKey::Unusable(format!(
            "bucket {bucket}'s default encryption names KMS key {id:?} by alias or key id, which S3 resolves in the writer's account (Account A's DataSync role) rather than Account B's; set the bucket's default encryption to the key's full ARN (arn:aws:kms:<region>:<account>:key/<id>)"
        )),
    }
}

/// Reads a bucket's default encryption. A bucket without a configuration encrypts with SSE-S3
/// (S3's default for every bucket since January 2023).
pub async fn read(account: &Account, region: &str, bucket: &str) -> std::result::Result<DefaultEncryption, Failure> {
    match account.s3(region).get_bucket_encryption().bucket(bucket).send().await {
        Ok(out) => {
            let rule = out
                .server_side_encryption_configuration()
                .and_then(|c| c.rules().first())
                .and_then(|r| r.apply_server_side_encryption_by_default());
            Ok(DefaultEncryption {
                algorithm: rule.map_or(SSE_S3.to_string(), |r| r.sse_algorithm().as_str().to_string()),
                key_id: rule.and_then(|r| r.kms_master_key_id()).map(str::to_string),
            })
        }
        Err(e) => {
            let failure = classify(&e);
            if failure.code == "ServerSideEncryptionConfigurationNotFoundError" {
                Ok(DefaultEncryption {
                    algorithm: SSE_S3.into(),
                    key_id: None,
                })
            } else {
                Err(failure)
            }
        }
    }
}

/// The algorithm recorded when Ferry may not read a bucket's encryption.
pub const UNREAD: &str = "unknown (s3:GetEncryptionConfiguration denied)";

/// [`read`], but a refusal leaves the encryption unknown instead of stopping the transfer: an
/// operator whose policy predates encryption support keeps working with the spec's keys.
async fn read_or_unknown(
    account: &Account,
    region: &str,
    bucket: &str,
) -> std::result::Result<DefaultEncryption, Failure> {
    match read(account, region, bucket).await {
        Err(f) if f.kind == crate::aws::FailureKind::AccessDenied => {
            tracing::warn!(
                bucket,
                "may not read the default encryption ({}): using the spec's kmsKeyArn only",
                f.message
            );
            Ok(DefaultEncryption {
                algorithm: UNREAD.into(),
                key_id: None,
            })
        }
        other => other,
    }
}

/// Reads both buckets' encryption, builds the desired state with the keys found, and records
/// them in the status.
pub async fn observe(t: &mut Transfer<'_>, account_b: Option<&Account>) -> Result<()> {
    let spec = t.spec;
    let mut keys = Keys::from_spec(spec);
    let account_a = t.account_a_id().to_string();

    let source_arn = bucket_arn(&spec.source.region, &spec.source.bucket);
    let found = read_or_unknown(&t.account_a, &spec.source.region, &spec.source.bucket)
        .await
        .map_err(|f| t.aws_error(&f, &account_a, "s3:GetEncryptionConfiguration", &source_arn))?;
    let source_key = match found.key_id.as_deref().filter(|_| found.kms()) {
        Some(id) if is_kms_key_arn(id) => Some(id.to_string()),
        // An alias or key id of Account A: KMS tells its ARN (and whether AWS manages it).
        Some(id) => resolve(t, &spec.source.region, id).await?,
        // aws/s3: its key policy lets every principal of the account use it through S3.
        None => None,
    };
    if let Some(key) = &source_key
        && !keys.source.contains(key)
    {
        keys.source.push(key.clone());
    }
    let source = BucketEncryption {
        algorithm: found.algorithm,
        key_arn: source_key.or_else(|| spec.source.kms_key_arn.clone()),
    };

    let destination = match account_b {
        Some(b) => {
            let (bucket, region) = (&spec.destination.bucket, &spec.destination.region);
            let found = read_or_unknown(b, region, bucket).await.map_err(|f| {
                t.aws_error(
                    &f,
                    &spec.destination.account_id,
                    "s3:GetEncryptionConfiguration",
                    &bucket_arn(region, bucket),
                )
            })?;
            match destination_key(bucket, &found) {
                DestinationKey::None => {}
                DestinationKey::Key(key) => keys.destination = Some(key),
                DestinationKey::Unusable(message) => {
                    return Err(Error::EncryptionNotSupported {
                        bucket: bucket.clone(),
                        message,
                    });
                }
            }
            Some(BucketEncryption {
                algorithm: found.algorithm,
                key_arn: keys.destination.clone(),
            })
        }
        // Ferry may not call Account B (External mode): the spec names the key, if any.
        None => keys.destination.clone().map(|key| BucketEncryption {
            algorithm: "aws:kms".into(),
            key_arn: Some(key),
        }),
    };
    t.status.encryption = Some(EncryptionStatus {
        source: Some(source),
        destination,
    });
    let slot = t.desired.role.slot;
    t.rebuild_desired(keys, slot);
    Ok(())
}

/// The ARN of a key of Account A named by alias or id; `None` for a key AWS manages.
async fn resolve(t: &Transfer<'_>, region: &str, key_id: &str) -> Result<Option<String>> {
    let out = t
        .account_a
        .kms(region)
        .describe_key()
        .key_id(key_id)
        .send()
        .await
        .map_err(|e| t.sdk_error(&e, t.account_a_id(), "kms:DescribeKey", key_id))?;
    let Some(meta) = out.key_metadata() else {
        return Ok(None);
    };
    let aws_managed = meta.key_manager().is_some_and(|m| m.as_str() == "AWS");
    Ok((!aws_managed).then(|| meta.arn().unwrap_or(meta.key_id()).to_string()))
}

/// Puts this transfer's DataSync role into Ferry's statement of the destination key's policy
/// (AssumeRole mode, a key of Account B), or publishes the statement for Account B's
/// administrator (External mode, or a key of another account).
pub async fn ensure_key_policy(t: &mut Transfer<'_>, b_credentials: Option<&Account>) -> Result<()> {
    let role_arn = t.desired.role.arn.clone();
    let key = t.desired.keys.destination.clone();
    let previous = t.status.destination.as_ref().and_then(|d| d.key_arn.clone());
    let account_b = t.spec.destination.account_id.clone();
    let editable = key
        .as_deref()
        .filter(|k| arn_account(k) == Some(account_b.as_str()))
        .is_some();
    let b = b_credentials;
    if let (Some(b), Some(old)) = (b, previous.as_deref())
        && Some(old) != key.as_deref()
    {
        release_key(t, b, old).await?;
    }
    let dest = t.status.destination.get_or_insert_with(DestinationStatus::default);
    dest.required_key_policy = None;
    let (Some(key), Some(b), true) = (key.clone(), b, editable) else {
        dest.key_arn = None;
        dest.required_key_policy = t.desired.keys.required_key_policy(&role_arn);
        return Ok(());
    };
    let _turn = t.ctx.locks.lock(&key).await;
    let kms = b.kms(key_region(&key));
    let current = kms
        .get_key_policy()
        .key_id(&key)
        .policy_name("default")
        .send()
        .await
        .map_err(|e| t.sdk_error(&e, &account_b, "kms:GetKeyPolicy", &key))?;
    let policy = current.policy().unwrap_or_default();
    let next = key_policy_with(policy, Some(&role_arn), None).map_err(|source| Error::MalformedKeyPolicy {
        key: key.clone(),
        source,
    })?;
    if let Some(doc) = next {
        if let Err(e) = kms
            .put_key_policy()
            .key_id(&key)
            .policy_name("default")
            .policy(doc)
            .send()
            .await
        {
            let failure = classify(&e);
            // KMS checks that every principal exists; a role created moments ago may not be
            // visible to it yet.
            if failure.code == "MalformedPolicyDocumentException" && t.propagating() {
                return Err(Error::IamPropagation {
                    action: "kms:PutKeyPolicy".into(),
                    resource: key,
                    message: failure.message,
                });
            }
            return Err(t.aws_error(&failure, &account_b, "kms:PutKeyPolicy", &key));
        }
        t.permissions_changed();
        t.changed(
            "KeyPolicyUpdated",
            format!("added the DataSync role {role_arn} to Ferry's statement {KEY_SID} of the policy of KMS key {key}; other statements kept"),
        )
        .await;
    }
    if let Some(dest) = t.status.destination.as_mut() {
        dest.key_arn = Some(key);
    }
    Ok(())
}

/// Takes this transfer's role out of Ferry's statement of a key's policy (the statement goes
/// when no role is left; every other statement is kept exactly). A key that is gone counts as
/// released.
pub async fn release_key(t: &Transfer<'_>, b: &Account, key: &str) -> Result<()> {
    let role_arn = t.role_arn_in_use();
    // Another transfer writing with the same key and the same role (`dataSyncRole.arn`) still
    // needs the role in the key policy.
    let uses_key = |o: &CrossAccountTransfer| {
        o.status
            .as_ref()
            .and_then(|s| s.destination.as_ref())
            .and_then(|d| d.key_arn.as_deref())
            == Some(key)
    };
    if t.role_shared(uses_key).await? {
        return Ok(());
    }
    let account_b = t.spec.destination.account_id.as_str();
    let _turn = t.ctx.locks.lock(key).await;
    let kms = b.kms(key_region(key));
    let current = match kms.get_key_policy().key_id(key).policy_name("default").send().await {
        Ok(out) => out.policy().unwrap_or_default().to_string(),
        Err(e) => {
            let failure = classify(&e);
            if failure.kind == crate::aws::FailureKind::NotFound || failure.code == "KMSInvalidStateException" {
                return Ok(());
            }
            return Err(t.aws_error(&failure, account_b, "kms:GetKeyPolicy", key));
        }
    };
    let next = key_policy_with(&current, None, Some(&role_arn)).map_err(|source| Error::MalformedKeyPolicy {
        key: key.to_string(),
        source,
    })?;
    if let Some(doc) = next {
        kms.put_key_policy()
            .key_id(key)
            .policy_name("default")
            .policy(doc)
            .send()
            .await
            .map_err(|e| t.sdk_error(&e, account_b, "kms:PutKeyPolicy", key))?;
        t.changed(
            "KeyPolicyReleased",
            format!("removed the DataSync role {role_arn} from Ferry's statement {KEY_SID} of the policy of KMS key {key}; other statements kept"),
        )
        .await;
    }
    Ok(())
}

/// The region of a key ARN (`arn:aws:kms:<region>:...`).
fn key_region(key: &str) -> &str {
    crate::naming::arn_region(key).unwrap_or("us-east-1")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kms(key: Option<&str>) -> DefaultEncryption {
        DefaultEncryption {
            algorithm: "aws:kms".into(),
            key_id: key.map(str::to_string),
        }
    }

    #[test]
    fn a_destination_key_must_be_a_customer_managed_key_named_by_arn() {
        let arn = "arn:aws:kms:us-east-1:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        assert_eq!(destination_key("b", &kms(Some(arn))), DestinationKey::Key(arn.into()));
        let sse_s3 = DefaultEncryption {
            algorithm: SSE_S3.into(),
            key_id: None,
        };
        assert_eq!(destination_key("b", &sse_s3), DestinationKey::None);
        for unusable in [
            kms(None),
            kms(Some("alias/data")),
            kms(Some("1234abcd-12ab-34cd-56ef-1234567890ab")),
        ] {
            let DestinationKey::Unusable(message) = destination_key("b", &unusable) else {
                panic!("{unusable:?} must be refused");
            };
            assert!(message.contains("full ARN") || message.contains("aws/s3"), "{message}");
        }
    }

    #[test]
    fn key_region_is_read_from_the_arn() {
        assert_eq!(key_region("arn:aws:kms:eu-west-1:222222222222:key/k"), "eu-west-1");
    }
}
