//! The reconcile pipeline: one module per step of the tutorial, each shaped
//! observe → pure difference → apply only that → report.
//!
//! | step | module | account |
//! | --- | --- | --- |
//! | 0. bucket encryption, KMS keys | [`encryption`] | A and B |
//! | 1. DataSync IAM role | [`role`] | A |
//! | 2. ACLs disabled (Object Ownership) | [`ownership`] | B |
//! | 3. bucket policy, then the destination key's policy | [`bucket_policy`], [`encryption`] | B |
//! | 4./5. source and destination locations | [`location`] | A |
//! | 6. task | [`task`] | A (destination region) |
//! | 7. execution | [`execution`] | A (destination region) |
//!
//! [`retired`] deletes what an earlier spec used and the current one replaced; [`cleanup`] runs
//! the steps backwards when the resource is deleted.

pub mod bucket_policy;
pub mod cleanup;
pub mod encryption;
pub mod execution;
pub mod location;
pub mod ownership;
pub mod retired;
pub mod role;
pub mod task;
pub mod transfer;

pub use transfer::{Progress, Transfer};

use crate::error::Result;

/// Runs the steps in order. Returns how far it got, or the first error.
pub async fn provision(t: &mut Transfer<'_>) -> Result<Progress> {
    encryption::observe(t).await?;
    role::ensure(t).await?;
    // A destination bucket the spec moved away from gets its policy and ownership back first.
    cleanup::release_previous_destination(t).await;
    ownership::ensure(t).await?;
    bucket_policy::ensure(t).await?;
    encryption::ensure_key_policy(t).await?;
    if retired::released_and_idle(t) {
        return Ok(Progress::Provisioned);
    }
    if location::ensure(t).await? == Progress::AwaitingDestination {
        return Ok(Progress::AwaitingDestination);
    }
    task::ensure(t).await?;
    retired::collect(t).await?;
    execution::ensure(t).await?;
    retired::release_after_success(t).await?;
    Ok(Progress::Provisioned)
}
