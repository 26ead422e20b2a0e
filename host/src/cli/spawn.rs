//! `hotswap spawn`: start a process on a running host.

use std::process::ExitCode;

use super::remote::Remote;
use crate::api::{SpawnRequest, SpawnResponse};

/// Start a process of module NAME on a running host; prints its pid.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  hotswap spawn ticker --arg '{\"interval_ms\": 500}'")]
pub struct Spawn {
    /// Module name.
    #[arg(value_name = "NAME")]
    name: String,
    /// Init arguments (the Rust SDK reads JSON; empty means the module's defaults).
    #[arg(long = "arg", value_name = "A", default_value = "")]
    args: String,
    #[command(flatten)]
    remote: Remote,
}

impl Spawn {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let request = SpawnRequest {
            module: self.name,
            args: self.args,
        };
        let response: SpawnResponse = self.remote.client()?.post_json("/v1/processes", &request)?;
        self.remote.print(&response, |r| println!("{}", r.pid))?;
        Ok(ExitCode::SUCCESS)
    }
}
