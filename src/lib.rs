//! Ferry: a Kubernetes operator that turns one `CrossAccountTransfer` into a finished,
//! monitored copy of an S3 bucket into a bucket of another AWS account with AWS DataSync.
//!
//! - [`api`]: the resource (spec, status, CRD);
//! - [`steps`]: the reconcile pipeline, one module per step of the AWS tutorial;
//! - [`controller`]: the watch, finalizer, status and requeue logic around the steps;
//! - [`aws`], [`policy`], [`naming`]: AWS access and the pure policy/naming logic;
//! - [`leader`], [`server`], [`metrics`], [`telemetry`]: running well in a cluster;
//! - [`tenancy`]: which transfers the platform's `TransferPolicy`s permit;
//! - [`cli`]: the `ferry` command line (also `kubectl ferry`).

pub mod api;
pub mod aws;
pub mod cli;
pub mod context;
pub mod controller;
pub mod desired;
pub mod error;
#[cfg(test)]
pub(crate) mod fixtures;
pub mod leader;
pub mod metrics;
pub mod naming;
pub mod policy;
pub mod server;
pub mod steps;
pub mod summary;
pub mod telemetry;
pub mod tenancy;

pub use error::{Error, Result};

/// The layers of the crate, bottom first: a module may use only modules of lower layers (the
/// test below enforces it). Types and pure logic at the bottom, then AWS access, the shared
/// context, status, the steps, the controller and the command line on top.
pub const LAYERS: &[&[&str]] = &[
    &["api", "metrics", "telemetry", "leader"],
    &["naming"],
    &["policy", "fixtures"],
    &["desired", "error", "tenancy"],
    &["aws"],
    &["context"],
    &["summary"],
    &["steps"],
    &["controller", "server"],
    &["cli"],
];

/// The order of the modules inside `steps`, bottom first, with the same rule.
pub const STEP_LAYERS: &[&[&str]] = &[
    &["transfer"],
    &[
        "encryption",
        "role",
        "ownership",
        "bucket_policy",
        "location",
        "task",
        "execution",
        "retired",
    ],
    &["foreign"],
    &["cleanup"],
];

#[cfg(test)]
mod tests {
    use super::{LAYERS, STEP_LAYERS};
    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};

    fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// The modules named after `prefix` (`crate::` or `super::`) in the code of a file, comments
    /// left out.
    fn uses(text: &str, prefix: &str) -> BTreeSet<String> {
        let mut found = BTreeSet::new();
        for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for (at, _) in line.match_indices(prefix) {
                let name: String = line[at + prefix.len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    found.insert(name);
                }
            }
        }
        found
    }

    fn layer(layers: &[&[&str]], module: &str) -> usize {
        layers
            .iter()
            .position(|l| l.contains(&module))
            .unwrap_or_else(|| panic!("module {module} is in no layer of lib.rs"))
    }

    #[test]
    fn module_dependencies_point_down() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        sources(&src, &mut files);
        let mut wrong = Vec::new();
        for file in files {
            let relative = file.strip_prefix(&src).unwrap();
            let top = relative.components().next().unwrap().as_os_str().to_string_lossy();
            let module = top.trim_end_matches(".rs").to_string();
            if module == "lib" || module == "main" {
                continue;
            }
            let text = std::fs::read_to_string(&file).unwrap();
            let own = layer(LAYERS, &module);
            for used in uses(&text, "crate::") {
                if used != module && layer(LAYERS, &used) >= own {
                    wrong.push(format!("{} uses crate::{used}", relative.display()));
                }
            }
            if module == "steps" && relative.components().count() == 2 {
                let step = relative.file_stem().unwrap().to_string_lossy().to_string();
                if step == "mod" {
                    continue;
                }
                let own = layer(STEP_LAYERS, &step);
                for used in uses(&text, "super::") {
                    if layer(STEP_LAYERS, &used) >= own {
                        wrong.push(format!("{} uses steps::{used}", relative.display()));
                    }
                }
            }
        }
        assert!(
            wrong.is_empty(),
            "dependencies against the layers of lib.rs: {wrong:#?}"
        );
    }
}
