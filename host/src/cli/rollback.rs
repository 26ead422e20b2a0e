//! `hotswap rollback`: put a module back to an earlier version.

use std::process::ExitCode;

use super::remote::{Remote, print_report};
use crate::SwapReport;
use crate::api::RollbackRequest;

/// Make an earlier version of module NAME current again and move its processes back, each through
/// `migrate(downgrade-to)` on the version it leaves.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  hotswap rollback counter --to 1")]
pub struct Rollback {
    /// Module name.
    #[arg(value_name = "NAME")]
    name: String,
    /// The version to go back to (default: the one before the current).
    #[arg(long, value_name = "V")]
    to: Option<u32>,
    #[command(flatten)]
    remote: Remote,
}

impl Rollback {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let report: SwapReport = self.remote.client()?.post_json(
            &format!("/v1/modules/{}/rollback", self.name),
            &RollbackRequest { to: self.to },
        )?;
        self.remote.print(&report, print_report)?;
        Ok(if report.stayed.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(2)
        })
    }
}
