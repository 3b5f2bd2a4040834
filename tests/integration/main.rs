//! The integration tests, one module per area, in one test binary: one environment (etcd,
//! kube-apiserver, the AWS emulator) serves them all, every test in its own namespace with its
//! own accounts and buckets. One binary links and starts faster than one per area (measured
//! on 2 cores: 32 s instead of 59 s to rebuild after a change of the crate, 49 s instead of
//! 67 s to run).

#[path = "../common/mod.rs"]
#[macro_use]
mod common;

mod admission;
mod crash;
mod encryption;
mod environment;
mod fleet;
mod generative;
mod operator;
mod pull;
mod quotas;
mod reruns;
mod roles;
mod ship;
mod tenancy;
