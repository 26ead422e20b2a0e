//! `hotswap ps`: list a running host's processes.

use std::process::ExitCode;

use super::remote::Remote;
use crate::ProcessInfo;

/// List processes: pid, module, version, steps, messages in/out, mailbox, state size, last error.
#[derive(Debug, clap::Args)]
pub struct Ps {
    #[command(flatten)]
    remote: Remote,
}

impl Ps {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let processes: Vec<ProcessInfo> = self.remote.client()?.get("/v1/processes")?;
        self.remote.print(&processes, |ps| {
            println!(
                "{:<7} {:<16} {:>7} {:>8} {:>8} {:>8} {:>7} {:>11}  LAST ERROR",
                "PID", "MODULE", "VERSION", "STEPS", "IN", "OUT", "MAILBOX", "STATE"
            );
            for p in ps {
                println!(
                    "{:<7} {:<16} {:>7} {:>8} {:>8} {:>8} {:>7} {:>9} B  {}",
                    p.pid.to_string(),
                    p.module,
                    p.version,
                    p.steps,
                    p.messages_in,
                    p.messages_out,
                    p.mailbox,
                    p.state_bytes,
                    p.last_error.as_deref().unwrap_or("-")
                );
            }
        })?;
        Ok(ExitCode::SUCCESS)
    }
}
