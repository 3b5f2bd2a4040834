//! The `ferry` command line, also usable as the kubectl plugin `kubectl ferry`.

mod plan;
mod run;
mod status;

use std::time::Duration;

use clap::{Parser, Subcommand};

pub use plan::{
    ManifestArgs, PlanArgs, PolicyArgs, merged_policy, read_policies, read_transfers, render_plan, render_verdict,
};
pub use run::RunArgs;
pub use status::{StatusArgs, bar, human_bytes, render};

/// Ferry: copy an S3 bucket into another AWS account with AWS DataSync, from Kubernetes.
///
/// Installed on the PATH as `kubectl-ferry`, it also runs as `kubectl ferry ...`.
#[derive(Parser, Debug)]
#[command(name = "ferry", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the controller (what the Helm chart's Deployment runs).
    Run(Box<RunArgs>),
    /// Print a CRD as YAML: CrossAccountTransfer's, or TransferPolicy's.
    Crd {
        /// Which one.
        #[arg(value_enum, default_value = "crossaccounttransfers")]
        kind: CrdKind,
    },
    /// Show, without changing anything, the role, policies, locations and task a manifest leads to.
    Plan(PlanArgs),
    /// Print the bucket policy Account B's administrator applies in External mode.
    Policy(PolicyArgs),
    /// List transfers with their phase and progress (`-w` to follow them).
    Status(StatusArgs),
}

/// Ferry's CRDs, by plural.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrdKind {
    /// `CrossAccountTransfer` (namespaced).
    Crossaccounttransfers,
    /// `TransferPolicy` (cluster-scoped).
    Transferpolicies,
}

/// Parses durations such as `500ms`, `15s`, `2m`, `1h` or `1h30m` (humantime's grammar); a bare
/// number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if !text.is_empty() && text.chars().all(|c| c.is_ascii_digit()) {
        return text
            .parse()
            .map(Duration::from_secs)
            .map_err(|e| format!("`{text}`: {e}"));
    }
    humantime::parse_duration(text)
        .map_err(|e| format!("`{text}` is not a duration ({e}): write e.g. 500ms, 15s, 2m or 1h"))
}

/// A CRD as YAML, exactly as committed in `crds/`.
pub fn crd_yaml(kind: CrdKind) -> Result<String, String> {
    use kube::CustomResourceExt;
    let crd = match kind {
        CrdKind::Crossaccounttransfers => crate::api::CrossAccountTransfer::crd(),
        CrdKind::Transferpolicies => crate::api::TransferPolicy::crd(),
    };
    serde_saphyr::to_string(&crd).map_err(|e| e.to_string())
}

/// Runs the command line; returns the process exit code.
pub async fn main() -> i32 {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => run::run(*args).await,
        Command::Plan(args) => plan::plan(&args).await,
        Command::Policy(args) => plan::policy(&args).await,
        Command::Status(args) => status::status(&args).await,
        Command::Crd { kind } => match crd_yaml(kind) {
            Ok(yaml) => {
                print!("{yaml}");
                0
            }
            Err(e) => {
                eprintln!("ferry crd: {e}");
                1
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("20"), Ok(Duration::from_secs(20)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn committed_crds_are_the_generated_ones() {
        let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        for (kind, file) in [
            (CrdKind::Crossaccounttransfers, "ferry.dev_crossaccounttransfers.yaml"),
            (CrdKind::Transferpolicies, "ferry.dev_transferpolicies.yaml"),
        ] {
            let generated = crd_yaml(kind).unwrap();
            for dir in ["crds", "charts/ferry/crds"] {
                let path = format!("{dir}/{file}");
                let committed = std::fs::read_to_string(repo.join(&path)).unwrap_or_default();
                assert!(
                    committed == generated,
                    "{path} is stale: run `make crds` and commit the result"
                );
            }
        }
    }
}
