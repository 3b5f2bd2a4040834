//! Steps 4 and 5 (the account that runs the copy): the DataSync S3 locations, the source in
//! the source region and the destination in the destination region; the other account's bucket
//! is reached through the DataSync role and that bucket's policy. Before any create Ferry looks for a location of its own with the same URI (crash
//! safety); a location that no longer matches the spec is retired and a new one made.

use aws_sdk_datasync::types::{S3Config, S3StorageClass};

use super::transfer::Transfer;
use crate::api::condition;
use crate::aws::datasync::{create, list_locations, same_uri, sent_once, tag_entries};
use crate::aws::{FailureKind, classify};
use crate::desired::{DesiredLocation, Side};
use crate::error::Result;

/// A location as DataSync reports it.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ObservedLocation {
    /// `s3://bucket/prefix/`.
    pub uri: String,
    /// `S3Config.BucketAccessRoleArn`.
    pub role_arn: Option<String>,
    /// `S3StorageClass`.
    pub storage_class: Option<String>,
}

/// Whether an existing location serves the desired one (pure). Apart from its role, a mismatch
/// means a new location (and a new task).
pub fn matches(observed: &ObservedLocation, desired: &DesiredLocation) -> bool {
    let storage_ok = match &desired.storage_class {
        None => true,
        Some(want) => observed.storage_class.as_deref().unwrap_or("STANDARD") == want,
    };
    same_uri(&observed.uri, &desired.uri)
        && observed.role_arn.as_deref() == Some(desired.role_arn.as_str())
        && storage_ok
}

/// Whether a location differs from the desired one only in its role (pure): DataSync changes
/// that in place (`UpdateLocationS3` with `S3Config`), so the location and its task stay.
pub fn role_only_differs(observed: &ObservedLocation, desired: &DesiredLocation) -> bool {
    let with_role = ObservedLocation {
        role_arn: Some(desired.role_arn.clone()),
        ..observed.clone()
    };
    !matches(observed, desired) && matches(&with_role, desired)
}

/// Points a location at the desired role in place
/// (<https://docs.aws.amazon.com/datasync/latest/userguide/API_UpdateLocationS3.html>): the
/// task keeps its ARN, history and schedule, and no task is created at DataSync's quota.
async fn update_role(
    t: &mut Transfer<'_>,
    client: &aws_sdk_datasync::Client,
    arn: &str,
    want: &DesiredLocation,
) -> Result<()> {
    let account = t.account_a_id().to_string();
    let config = S3Config::builder().bucket_access_role_arn(&want.role_arn).build()?;
    client
        .update_location_s3()
        .location_arn(arn)
        .s3_config(config)
        .send()
        .await
        .map_err(|e| t.sdk_error(&e, &account, "datasync:UpdateLocationS3", arn))?;
    t.changed(
        "LocationRoleUpdated",
        format!(
            "the {} location {arn} now reaches its bucket through the IAM role {}",
            want.side.label(),
            want.role_arn
        ),
    )
    .await;
    Ok(())
}

/// Ensures the location of one side (for the other account's bucket, the seam of
/// [`foreign`](super::foreign) decides what an access refusal means).
pub async fn ensure(t: &mut Transfer<'_>, side: Side) -> Result<()> {
    let want = t.desired.location(side).clone();
    ensure_one(t, &want).await
}

/// Reports both locations in place.
pub fn report(t: &mut Transfer<'_>) {
    let message = format!(
        "source {} and destination {}",
        t.status.source_location_arn.as_deref().unwrap_or_default(),
        t.status.destination_location_arn.as_deref().unwrap_or_default()
    );
    t.condition(condition::LOCATIONS_READY, true, "LocationsInPlace", message);
}

fn slot<'s>(t: &'s mut Transfer<'_>, side: Side) -> &'s mut Option<String> {
    match side {
        Side::Source => &mut t.status.source_location_arn,
        Side::Destination => &mut t.status.destination_location_arn,
    }
}

async fn describe(
    client: &aws_sdk_datasync::Client,
    arn: &str,
) -> std::result::Result<Option<ObservedLocation>, crate::aws::Failure> {
    match client.describe_location_s3().location_arn(arn).send().await {
        Ok(out) => Ok(Some(ObservedLocation {
            uri: out.location_uri().unwrap_or_default().to_string(),
            role_arn: out.s3_config().map(|c| c.bucket_access_role_arn().to_string()),
            storage_class: out.s3_storage_class().map(|s| s.as_str().to_string()),
        })),
        Err(e) => {
            let failure = classify(&e);
            if failure.kind == FailureKind::NotFound {
                Ok(None)
            } else {
                Err(failure)
            }
        }
    }
}

async fn ensure_one(t: &mut Transfer<'_>, want: &DesiredLocation) -> Result<()> {
    let side = want.side;
    let client = t.account_a.datasync(&want.region);
    let account = t.account_a_id().to_string();

    // 1. The location recorded in the status.
    if let Some(arn) = slot(t, side).clone() {
        let found = describe(&client, &arn)
            .await
            .map_err(|f| t.aws_error(&f, &account, "datasync:DescribeLocationS3", &arn))?;
        match found {
            Some(obs) if matches(&obs, want) => return Ok(()),
            Some(obs) if role_only_differs(&obs, want) && !t.running() => {
                return update_role(t, &client, &arn, want).await;
            }
            Some(_) => {
                // The spec moved on: a new location, and this one goes once the task lets go.
                t.retire(&arn);
                *slot(t, side) = None;
                t.persist().await?;
            }
            None => {
                *slot(t, side) = None;
            }
        }
    }

    // 2. A location of ours left by a crash between create and status write (only searched
    //    when a create was started and not recorded).
    let intent = format!("location:{}", side.label());
    let candidates = if t.maybe_created(&intent) {
        list_locations(&client, Some(&want.uri))
            .await
            .map_err(|f| t.aws_error(&f, &account, "datasync:ListLocations", &want.uri))?
    } else {
        Vec::new()
    };
    for (arn, _) in candidates {
        if !t.adoptable(&client, &arn).await? {
            continue;
        }
        let found = describe(&client, &arn)
            .await
            .map_err(|f| t.aws_error(&f, &account, "datasync:DescribeLocationS3", &arn))?;
        if found.is_some_and(|obs| matches(&obs, want)) {
            *slot(t, side) = Some(arn.clone());
            t.created(&intent);
            t.persist().await?;
            t.changed(
                "LocationAdopted",
                format!(
                    "found the {} location {arn} created earlier by Ferry and adopted it",
                    side.label()
                ),
            )
            .await;
            return Ok(());
        }
    }

    // 3. Create it.
    create_one(t, &client, want, &intent).await
}

/// Creates the location (sent once, after its intent is recorded).
async fn create_one(
    t: &mut Transfer<'_>,
    client: &aws_sdk_datasync::Client,
    want: &DesiredLocation,
    intent: &str,
) -> Result<()> {
    let (side, account) = (want.side, t.account_a_id().to_string());
    t.creating(intent).await?;
    let config = S3Config::builder().bucket_access_role_arn(&want.role_arn).build()?;
    let mut request = client
        .create_location_s3()
        .s3_bucket_arn(&want.bucket_arn)
        .subdirectory(&want.subdirectory)
        .s3_config(config)
        .set_tags(Some(tag_entries(t.id(), &[])));
    if let Some(class) = &want.storage_class {
        request = request.s3_storage_class(S3StorageClass::from(class.as_str()));
    }
    let out = create(|| request.clone().customize().config_override(sent_once()).send())
        .await
        .map_err(|e| t.sdk_error(&e, &account, "datasync:CreateLocationS3", &want.uri))?;
    let arn = out.location_arn().unwrap_or_default().to_string();
    *slot(t, side) = Some(arn.clone());
    t.created(intent);
    t.persist().await?;
    t.changed(
        "LocationCreated",
        format!("created the {} DataSync location {arn} for {}", side.label(), want.uri),
    )
    .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn want() -> DesiredLocation {
        DesiredLocation {
            side: Side::Destination,
            region: "us-west-1".into(),
            bucket_arn: "arn:aws:s3:::dst".into(),
            subdirectory: "/archive/".into(),
            uri: "s3://dst/archive/".into(),
            role_arn: "arn:aws:iam::1:role/r".into(),
            storage_class: Some("STANDARD".into()),
        }
    }

    #[test]
    fn a_matching_location_is_kept() {
        let obs = ObservedLocation {
            uri: "s3://dst/archive/".into(),
            role_arn: Some("arn:aws:iam::1:role/r".into()),
            storage_class: None,
        };
        assert!(matches(&obs, &want()), "no storage class reported means STANDARD");
    }

    #[test]
    fn role_prefix_or_storage_class_changes_need_a_new_location() {
        let base = ObservedLocation {
            uri: "s3://dst/archive/".into(),
            role_arn: Some("arn:aws:iam::1:role/r".into()),
            storage_class: Some("STANDARD".into()),
        };
        let mut other_role = base.clone();
        other_role.role_arn = Some("arn:aws:iam::1:role/other".into());
        let mut other_prefix = base.clone();
        other_prefix.uri = "s3://dst/other/".into();
        let mut other_class = base.clone();
        other_class.storage_class = Some("GLACIER".into());
        assert!(role_only_differs(&other_role, &want()), "the role changes in place");
        for obs in [other_role, other_prefix.clone(), other_class.clone()] {
            assert!(!matches(&obs, &want()), "{obs:?}");
        }
        for obs in [base, other_prefix, other_class] {
            assert!(!role_only_differs(&obs, &want()), "{obs:?}");
        }
    }
}
