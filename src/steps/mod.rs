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
//! [`destination`] is the one seam for Account B: it reads the destination's encryption, runs
//! steps 2 and 3 and the key policy (or publishes them, External mode), creates the destination
//! location or waits for Account B, and takes it all back; the access mode is read only there.
//! [`retired`] deletes what an earlier spec used and the current one replaced (and a one-off
//! transfer's task after its run); [`cleanup`] runs the steps backwards when the resource is
//! deleted.

pub mod bucket_policy;
pub mod cleanup;
pub mod destination;
pub mod encryption;
pub mod execution;
pub mod location;
pub mod ownership;
pub mod retired;
pub mod role;
pub mod task;
pub mod transfer;

pub use transfer::{Progress, Transfer};

use destination::Destination;

use crate::error::Result;

/// Runs the steps in order. Returns how far it got, or the first error.
pub async fn provision(t: &mut Transfer<'_>) -> Result<Progress> {
    let destination = Destination::connect(t).await;
    destination.observe_encryption(t).await?;
    role::ensure(t).await?;
    destination.prepare(t).await?;
    if retired::released_and_idle(t) {
        return Ok(Progress::Provisioned);
    }
    task::wait_in_line(t)?;
    location::ensure_source(t).await?;
    if destination.locate(t).await? == Progress::AwaitingDestination {
        return Ok(Progress::AwaitingDestination);
    }
    task::ensure(t).await?;
    retired::collect(t).await?;
    execution::ensure(t).await?;
    retired::release_after_success(t).await?;
    Ok(Progress::Provisioned)
}
