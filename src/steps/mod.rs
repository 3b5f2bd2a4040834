//! The reconcile pipeline: one module per step of the tutorial, each shaped
//! observe → pure difference → apply only that → report.
//!
//! "Home" is the account Ferry runs in, which owns the DataSync role and task: the source's
//! (push, the tutorial) or, with `initiator: Destination`, the destination's (pull). "Foreign"
//! is the other account.
//!
//! | step | module | account |
//! | --- | --- | --- |
//! | 0. bucket encryption, KMS keys | [`encryption`] | home and foreign |
//! | 1. DataSync IAM role | [`role`] | home |
//! | 2. ACLs disabled (Object Ownership; push only) | [`ownership`] | foreign |
//! | 3. bucket policy, then the foreign key's policy | [`bucket_policy`], [`encryption`] | foreign |
//! | 4./5. source and destination locations | [`location`] | home |
//! | 6. task | [`task`] | home (destination region) |
//! | 7. execution | [`execution`] | home (destination region) |
//!
//! [`foreign`] is the one seam for the other account: it reads the foreign bucket's
//! encryption, runs steps 2 and 3 and the key policy (or publishes them, External mode),
//! creates the foreign side's location or waits for the other account, and takes it all back;
//! the access mode and the direction are read only there (and in the pure desired state).
//! [`retired`] deletes what an earlier spec used and the current one replaced (and a one-off
//! transfer's task after its run); [`cleanup`] runs the steps backwards when the resource is
//! deleted.

pub mod bucket_policy;
pub mod cleanup;
pub mod encryption;
pub mod execution;
pub mod foreign;
pub mod location;
pub mod ownership;
pub mod retired;
pub mod role;
pub mod task;
pub mod transfer;

pub use transfer::{Progress, Transfer};

use foreign::Foreign;

use crate::desired::Side;
use crate::error::Result;

/// Runs the steps in order. Returns how far it got, or the first error.
pub async fn provision(t: &mut Transfer<'_>) -> Result<Progress> {
    let foreign = Foreign::connect(t).await;
    foreign.observe_encryption(t).await?;
    role::ensure(t).await?;
    foreign.prepare(t).await?;
    if retired::released_and_idle(t) {
        return Ok(Progress::Provisioned);
    }
    task::wait_in_line(t)?;
    location::ensure(t, Side::home(t.spec)).await?;
    let located = foreign.locate(t).await?;
    if located != Progress::Provisioned {
        return Ok(located);
    }
    task::ensure(t).await?;
    retired::collect(t).await?;
    execution::ensure(t).await?;
    retired::release_after_success(t).await?;
    Ok(Progress::Provisioned)
}
