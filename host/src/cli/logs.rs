//! `hotswap logs`: what processes printed, and what happened to them.

use std::io::Write as _;
use std::process::ExitCode;

use super::remote::{Format, Remote};
use crate::api::LogEntry;
use crate::{HostEvent, Pid};

/// Show what processes printed and their lifecycle (swaps, crashes, exits); `-f` keeps streaming.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  hotswap logs -f 1")]
pub struct Logs {
    /// Only this process.
    #[arg(value_name = "PID")]
    pid: Option<Pid>,
    /// Keep streaming new entries until interrupted.
    #[arg(short, long)]
    follow: bool,
    #[command(flatten)]
    remote: Remote,
}

impl Logs {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let mut path = format!("/v1/logs?follow={}", self.follow);
        if let Some(pid) = self.pid {
            path.push_str(&format!("&pid={}", pid.0));
        }
        let json = self.remote.format == Format::Json;
        let mut stdout = std::io::stdout().lock();
        self.remote.client()?.stream_lines(&path, |line| {
            if json {
                writeln!(stdout, "{line}")?;
            } else {
                let entry: LogEntry = serde_json::from_str(line)?;
                writeln!(stdout, "{}", plain(&entry.event))?;
            }
            stdout.flush()?;
            Ok(())
        })?;
        Ok(ExitCode::SUCCESS)
    }
}

fn plain(event: &HostEvent) -> String {
    match event {
        HostEvent::Output { pid, line } => format!("{pid} {line}"),
        HostEvent::Swapped {
            pid,
            from,
            to,
            pause_us,
        } => format!("{pid} [swapped v{from} -> v{to}, paused {pause_us} µs]"),
        HostEvent::Crashed {
            pid,
            reason,
            dropped,
            ..
        } => format!("{pid} [step failed, dropped {dropped}: {reason}]"),
        HostEvent::Reverted {
            pid,
            from,
            to,
            reason,
        } => format!("{pid} [v{from} failed its first step, back on v{to}: {reason}]"),
        HostEvent::Exited { pid, reason, .. } => format!("{pid} [exited: {reason}]"),
    }
}
