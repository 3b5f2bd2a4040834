//! Before step 1 (both accounts): how the buckets encrypt, and the KMS keys the DataSync role
//! must be allowed to use. After the bucket policy (the other account): Ferry's statement in the
//! foreign key's policy — the destination key's (push), or the source key's when the
//! destination account runs the copy, which a role of another account may use only when the
//! key policy allows it
//! (<https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-modifying-external-accounts.html>).
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
use crate::api::{BucketEncryption, CrossAccountTransfer, EncryptionStatus, ForeignBucketStatus, is_kms_key_arn};
use crate::aws::{Account, Failure, classify};
use crate::desired::{Keys, Side, bucket_of};
use crate::error::{Error, Result};
use crate::naming::{arn_account, bucket_arn};
use crate::policy::key_policy_with;

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

/// What Ferry can do with the other account's bucket's default encryption (pure).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ForeignKey {
    /// SSE-S3: no key to grant.
    None,
    /// A customer managed key named by ARN: grant it.
    Key(String),
    /// A configuration a DataSync role of another account cannot write (or read) with: why,
    /// and the fix.
    Unusable(String),
}

/// The key a role of another account uses for a bucket's default encryption (pure): writing
/// into a destination, or reading a source (`side`), whose objects Ferry cannot list keys of,
/// so an alias there stands for the spec's `kmsKeyArn` when it names one.
pub fn foreign_key(side: Side, bucket: &str, found: &DefaultEncryption, spec_key: Option<&str>) -> ForeignKey {
    if !found.kms() {
        return ForeignKey::None;
    }
    match (&found.key_id, side, spec_key) {
        (None, Side::Destination, _) => ForeignKey::Unusable(format!(
            "bucket {bucket} encrypts new objects with the AWS managed key aws/s3, which a role of another account cannot use; set the bucket's default encryption to a customer managed KMS key (by its full ARN) whose key policy Account B controls"
        )),
        (None, Side::Source, _) => ForeignKey::Unusable(format!(
            "bucket {bucket} encrypts its objects with the AWS managed key aws/s3, whose key policy lets no role of another account decrypt (https://docs.aws.amazon.com/kms/latest/developerguide/concepts.html#aws-managed-key); re-encrypt the objects with a customer managed KMS key, or run the copy from the source account (initiator: Source)"
        )),
        (Some(id), _, _) if is_kms_key_arn(id) => ForeignKey::Key(id.clone()),
        (Some(_), Side::Source, Some(key)) => ForeignKey::Key(key.to_string()),
        (Some(id), Side::Source, None) => ForeignKey::Unusable(format!(
            "bucket {bucket}'s default encryption names KMS key {id:?} by alias or key id, which Ferry cannot resolve in the source account; name the key's full ARN in spec.source.kmsKeyArn"
        )),
        (Some(id), Side::Destination, _) => ForeignKey::Unusable(format!(
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

/// The encryption of the bucket in the account Ferry runs in, and the customer managed key
/// found (an alias or id resolved by KMS; `aws/s3` needs no grant in its own account).
async fn observe_home(t: &Transfer<'_>, side: Side) -> Result<(BucketEncryption, Option<String>)> {
    let (bucket, region, spec_key) = bucket_of(t.spec, side);
    let arn = bucket_arn(region, bucket);
    let found = read_or_unknown(&t.account_a, region, bucket)
        .await
        .map_err(|f| t.aws_error(&f, t.account_a_id(), "s3:GetEncryptionConfiguration", &arn))?;
    let key = match found.key_id.as_deref().filter(|_| found.kms()) {
        Some(id) if is_kms_key_arn(id) => Some(id.to_string()),
        Some(id) => resolve(t, region, id).await?,
        None => None,
    };
    let encryption = BucketEncryption {
        algorithm: found.algorithm,
        key_arn: key.clone().or_else(|| spec_key.map(str::to_string)),
    };
    Ok((encryption, key))
}

/// The encryption of the other account's bucket, read with its credentials, or — Ferry may not
/// call it (External mode) — the key the spec names; and the key found.
async fn observe_foreign(
    t: &Transfer<'_>,
    foreign: Option<&Account>,
    side: Side,
) -> Result<(Option<BucketEncryption>, Option<String>)> {
    let (bucket, region, spec_key) = bucket_of(t.spec, side);
    let Some(account) = foreign else {
        let published = spec_key.map(|key| BucketEncryption {
            algorithm: "aws:kms".into(),
            key_arn: Some(key.to_string()),
        });
        return Ok((published, None));
    };
    let found = read_or_unknown(account, region, bucket).await.map_err(|f| {
        t.aws_error(
            &f,
            t.spec.foreign_account(),
            "s3:GetEncryptionConfiguration",
            &bucket_arn(region, bucket),
        )
    })?;
    let key = match foreign_key(side, bucket, &found, spec_key) {
        ForeignKey::None => None,
        ForeignKey::Key(key) => Some(key),
        ForeignKey::Unusable(message) => {
            return Err(Error::EncryptionNotSupported {
                bucket: bucket.to_string(),
                message,
            });
        }
    };
    let encryption = BucketEncryption {
        algorithm: found.algorithm,
        key_arn: key.clone().or_else(|| spec_key.map(str::to_string)),
    };
    Ok((Some(encryption), key))
}

/// Reads both buckets' encryption, builds the desired state with the keys found, and records
/// them in the status.
pub async fn observe(t: &mut Transfer<'_>, foreign: Option<&Account>) -> Result<()> {
    let spec = t.spec;
    let mut keys = Keys::from_spec(spec);
    let (home, home_key) = observe_home(t, Side::home(spec)).await?;
    let (away, away_key) = observe_foreign(t, foreign, Side::foreign(spec)).await?;
    let (source_key, destination_key, source, destination) = if spec.pulls() {
        (away_key, home_key, away, Some(home))
    } else {
        (home_key, away_key, Some(home), away)
    };
    if let Some(key) = source_key
        && !keys.source.contains(&key)
    {
        keys.source.push(key);
    }
    if destination_key.is_some() {
        keys.destination = destination_key;
    }
    t.status.encryption = Some(EncryptionStatus { source, destination });
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

/// Puts this transfer's DataSync role into Ferry's statement of the foreign key's policy
/// (AssumeRole mode, a key of the other account), or publishes the statement for that
/// account's administrator (External mode, or a key of a third account).
pub async fn ensure_key_policy(t: &mut Transfer<'_>, b_credentials: Option<&Account>) -> Result<()> {
    let role_arn = t.desired.role.arn.clone();
    let pulls = t.spec.pulls();
    let key = t.desired.keys.foreign(t.spec).map(str::to_string);
    let previous = t.status.foreign(pulls).and_then(|d| d.key_arn.clone());
    let account_b = t.spec.foreign_account().to_string();
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
    let required = t.desired.keys.required_key_policy(t.spec, &role_arn);
    let dest = t
        .status
        .foreign_mut(pulls)
        .get_or_insert_with(ForeignBucketStatus::default);
    dest.required_key_policy = None;
    let (Some(key), Some(b), true) = (key.clone(), b, editable) else {
        dest.key_arn = None;
        dest.required_key_policy = required;
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
    let reach = Side::foreign(t.spec).reach();
    let next = key_policy_with(policy, reach, Some(&role_arn), None).map_err(|source| Error::MalformedKeyPolicy {
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
            format!(
                "added the DataSync role {role_arn} to Ferry's statement {} of the policy of KMS key {key}; other statements kept",
                reach.key_sid()
            ),
        )
        .await;
    }
    if let Some(dest) = t.status.foreign_mut(pulls).as_mut() {
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
            .and_then(|s| s.foreign(o.spec.pulls()))
            .and_then(|d| d.key_arn.as_deref())
            == Some(key)
    };
    if t.role_shared(uses_key).await? {
        return Ok(());
    }
    let account_b = t.spec.foreign_account();
    let reach = Side::foreign(t.spec).reach();
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
    let next = key_policy_with(&current, reach, None, Some(&role_arn)).map_err(|source| Error::MalformedKeyPolicy {
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
            format!(
                "removed the DataSync role {role_arn} from Ferry's statement {} of the policy of KMS key {key}; other statements kept",
                reach.key_sid()
            ),
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
    fn a_foreign_key_must_be_a_customer_managed_key_named_by_arn() {
        let arn = "arn:aws:kms:us-east-1:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        let sse_s3 = DefaultEncryption {
            algorithm: SSE_S3.into(),
            key_id: None,
        };
        for side in [Side::Destination, Side::Source] {
            assert_eq!(
                foreign_key(side, "b", &kms(Some(arn)), None),
                ForeignKey::Key(arn.into())
            );
            assert_eq!(foreign_key(side, "b", &sse_s3, None), ForeignKey::None);
            for unusable in [
                kms(None),
                kms(Some("alias/data")),
                kms(Some("1234abcd-12ab-34cd-56ef-1234567890ab")),
            ] {
                let ForeignKey::Unusable(message) = foreign_key(side, "b", &unusable, None) else {
                    panic!("{unusable:?} must be refused");
                };
                assert!(message.contains("full ARN") || message.contains("aws/s3"), "{message}");
            }
        }
        // Reading a source, an alias stands for the key the spec names; aws/s3 never works.
        let named = Some(arn);
        assert_eq!(
            foreign_key(Side::Source, "b", &kms(Some("alias/data")), named),
            ForeignKey::Key(arn.into())
        );
        assert!(matches!(
            foreign_key(Side::Source, "b", &kms(None), named),
            ForeignKey::Unusable(_)
        ));
        assert!(matches!(
            foreign_key(Side::Destination, "b", &kms(Some("alias/data")), named),
            ForeignKey::Unusable(_)
        ));
    }

    #[test]
    fn key_region_is_read_from_the_arn() {
        assert_eq!(key_region("arn:aws:kms:eu-west-1:222222222222:key/k"), "eu-west-1");
    }
}
