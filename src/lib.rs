//! Ferry: a Kubernetes operator that turns one `CrossAccountTransfer` into a finished,
//! monitored copy of an S3 bucket into a bucket of another AWS account with AWS DataSync.
//!
//! - [`api`]: the resource (spec, status, CRD);
//! - [`steps`]: the reconcile pipeline, one module per step of the AWS tutorial;
//! - [`controller`]: the watch, finalizer, status and requeue logic around the steps;
//! - [`aws`], [`policy`], [`naming`]: AWS access and the pure policy/naming logic;
//! - [`leader`], [`server`], [`metrics`], [`telemetry`]: running well in a cluster;
//! - [`cli`]: the `ferry` command line (also `kubectl ferry`).

pub mod api;
pub mod aws;
pub mod cli;
pub mod controller;
pub mod error;
pub mod leader;
pub mod metrics;
pub mod naming;
pub mod policy;
pub mod server;
pub mod status;
pub mod steps;
pub mod telemetry;

pub use error::{Error, Result};
