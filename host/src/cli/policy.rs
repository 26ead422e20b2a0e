//! The policy flags shared by `deploy` and `run`: a TOML manifest and/or single fields.

use std::path::PathBuf;

use anyhow::Context as _;

use crate::{DirGrant, Policy, Restart};

/// A module's sandbox policy: a manifest, then flags that override single fields.
#[derive(Debug, Default, clap::Args)]
pub struct PolicyArgs {
    /// TOML manifest with the module's policy (fields: max_memory_mib, max_step_ms,
    /// max_state_kib, mailbox, max_message_kib, restart, max_restarts, restart_window_secs, [grants]).
    #[arg(long, value_name = "FILE.toml")]
    policy: Option<PathBuf>,
    /// Linear memory cap per instance, MiB [default: 64].
    #[arg(long, value_name = "MIB")]
    max_memory_mib: Option<u64>,
    /// Time cap per init/step/migrate call, ms [default: 5000].
    #[arg(long, value_name = "MS")]
    max_step_ms: Option<u64>,
    /// State size cap, KiB [default: 16384].
    #[arg(long, value_name = "KIB")]
    max_state_kib: Option<u64>,
    /// Mailbox cap, messages; `send` to a full mailbox fails [default: 100000].
    #[arg(long, value_name = "N")]
    mailbox: Option<usize>,
    /// Largest payload one `send` may carry, KiB [default: 1024].
    #[arg(long, value_name = "KIB")]
    max_message_kib: Option<u64>,
    /// What a crashed step does [default: permanent].
    #[arg(long, value_enum)]
    restart: Option<Restart>,
    /// Crashes allowed within the restart window before the process is stopped [default: 5].
    #[arg(long, value_name = "N")]
    max_restarts: Option<usize>,
    /// WASI capabilities to grant: stdio (stdout/stderr become output), clocks, random.
    #[arg(long, value_enum, value_delimiter = ',', value_name = "GRANT")]
    grant: Vec<Grant>,
    /// An environment variable the guest sees (repeatable).
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_env)]
    env: Vec<(String, String)>,
    /// A host directory the guest sees at GUEST, read-only unless `:rw` (repeatable). Under
    /// `serve`, HOST is relative to the data dir's `dirs/` folder.
    #[arg(long, value_name = "HOST:GUEST[:rw]")]
    dir: Vec<DirGrant>,
}

/// A capability named on the command line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Grant {
    Stdio,
    Clocks,
    Random,
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("`{s}` is not KEY=VALUE")),
    }
}

impl PolicyArgs {
    /// The policy these flags describe, or `None` when none was given (the host's default).
    ///
    /// # Errors
    /// When the manifest cannot be read or parsed.
    pub fn resolve(&self) -> anyhow::Result<Option<Policy>> {
        let mut policy = match &self.policy {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("failed to read {}", path.display()))?;
                Some(
                    Policy::from_toml(&text)
                        .with_context(|| format!("{} is not a valid policy", path.display()))?,
                )
            }
            None => None,
        };
        let mut set = |f: &dyn Fn(&mut Policy)| f(policy.get_or_insert_with(Policy::default));
        if let Some(v) = self.max_memory_mib {
            set(&|p| p.max_memory_mib = v);
        }
        if let Some(v) = self.max_step_ms {
            set(&|p| p.max_step_ms = v);
        }
        if let Some(v) = self.max_state_kib {
            set(&|p| p.max_state_kib = v);
        }
        if let Some(v) = self.mailbox {
            set(&|p| p.mailbox = v);
        }
        if let Some(v) = self.max_message_kib {
            set(&|p| p.max_message_kib = v);
        }
        if let Some(v) = self.restart {
            set(&|p| p.restart = v);
        }
        if let Some(v) = self.max_restarts {
            set(&|p| p.max_restarts = v);
        }
        for g in &self.grant {
            set(&|p| match g {
                Grant::Stdio => p.grants.stdio = true,
                Grant::Clocks => p.grants.clocks = true,
                Grant::Random => p.grants.random = true,
            });
        }
        for (k, v) in &self.env {
            set(&|p| {
                p.grants.env.insert(k.clone(), v.clone());
            });
        }
        for d in &self.dir {
            set(&|p| p.grants.dirs.push(d.clone()));
        }
        Ok(policy)
    }
}
