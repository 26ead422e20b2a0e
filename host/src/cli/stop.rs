//! `hotswap stop`: end a process.

use std::process::ExitCode;

use super::remote::Remote;
use crate::Pid;

/// Stop process PID after the step in flight.
#[derive(Debug, clap::Args)]
pub struct Stop {
    /// The process, as `3` or `<3>`.
    #[arg(value_name = "PID")]
    pid: Pid,
    #[command(flatten)]
    remote: Remote,
}

impl Stop {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        self.remote
            .client()?
            .delete(&format!("/v1/processes/{}", self.pid.0))?;
        Ok(ExitCode::SUCCESS)
    }
}
