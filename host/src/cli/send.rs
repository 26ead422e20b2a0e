//! `hotswap send`: put a message in a process's mailbox.

use std::process::ExitCode;

use super::remote::Remote;
use crate::Pid;

/// Send PAYLOAD to process PID, from the host (pid 0).
///
/// PAYLOAD is sent as JSON: valid JSON goes as is (`42`, `'{"k": 1}'`, `'"quit"'`); anything else
/// is sent as a JSON string, so `hotswap send 1 quit` sends `"quit"`. `--raw` sends the bytes as given.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  hotswap send 1 quit")]
pub struct Send {
    /// The receiver, as `3` or `<3>`.
    #[arg(value_name = "PID")]
    pid: Pid,
    /// The message.
    #[arg(value_name = "PAYLOAD")]
    payload: String,
    /// Send PAYLOAD's bytes exactly as given.
    #[arg(long)]
    raw: bool,
    #[command(flatten)]
    remote: Remote,
}

impl Send {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let bytes = if self.raw || serde_json::from_str::<serde_json::Value>(&self.payload).is_ok()
        {
            self.payload.into_bytes()
        } else {
            serde_json::to_vec(&self.payload)?
        };
        let _: serde_json::Value = self.remote.client()?.post_bytes(
            &format!("/v1/processes/{}/messages", self.pid.0),
            &bytes,
            &[],
        )?;
        Ok(ExitCode::SUCCESS)
    }
}
