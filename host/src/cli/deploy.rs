//! `hotswap deploy`: upload a new version of a module to a running host.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

use super::policy::PolicyArgs;
use super::remote::{Remote, print_report};
use crate::SwapReport;
use crate::api::server::POLICY_HEADER;

/// Upload FILE.wasm as the next version of module NAME on a running host and swap its processes
/// to it; prints the version and who moved, who stayed and why.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  hotswap deploy counter counter-v2.wasm\n  hotswap deploy counter counter-v3.wasm --dry-run\n  hotswap deploy counter counter-v3.wasm --atomic --format json"
)]
pub struct Deploy {
    /// Module name (letters, digits, `-`, `_`, `.`).
    #[arg(value_name = "NAME")]
    name: String,
    /// The component.
    #[arg(value_name = "FILE.wasm")]
    file: PathBuf,
    /// Compile, check and try every process's migration on a copy of its state; change nothing.
    #[arg(long, conflicts_with = "atomic")]
    dry_run: bool,
    /// Every process moves or none does (and then the current version does not change).
    #[arg(long)]
    atomic: bool,
    #[command(flatten)]
    policy: PolicyArgs,
    #[command(flatten)]
    remote: Remote,
}

impl Deploy {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let bytes = std::fs::read(&self.file)
            .with_context(|| format!("failed to read {}", self.file.display()))?;
        let client = self.remote.client()?;
        let path = format!(
            "/v1/modules/{}?dry_run={}&atomic={}",
            self.name, self.dry_run, self.atomic
        );
        let policy = self
            .policy
            .resolve()?
            .map(|p| serde_json::to_string(&p))
            .transpose()?;
        let headers: Vec<(&str, &str)> =
            policy.iter().map(|p| (POLICY_HEADER, p.as_str())).collect();
        let report: SwapReport = client.post_bytes(&path, &bytes, &headers)?;
        self.remote.print(&report, print_report)?;
        // Exit 0 when every process moved (or would), 2 when some stayed.
        Ok(if report.stayed.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(2)
        })
    }
}
