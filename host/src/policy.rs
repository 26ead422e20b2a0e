//! A module's sandbox policy: the limits its processes run under and how they are supervised.
//! Set per deploy (flags, a TOML manifest, or the `Hotswap-Policy` header of the control API);
//! modules deployed without one get the host's default ([`Policy::default`]).
//!
//! Manifest (every field optional; these are the defaults):
//! ```toml
//! max_memory_mib = 64       # linear memory per instance; a step that grows past it traps
//! max_step_ms = 5000        # time per init/step/migrate call, enforced by epoch interruption
//! max_state_kib = 16384     # state a call may return; more fails the call
//! mailbox = 100000          # messages queued per process; `send` to a full mailbox fails
//! restart = "permanent"     # permanent | transient | temporary (see `Restart`)
//! max_restarts = 5          # crashes allowed within restart_window_secs ...
//! restart_window_secs = 10  # ... before the process is stopped as failed
//! ```
//!
//! Not covered: WASI grants (files, clocks, random, environment). A component may declare the
//! `wasi:cli` and `wasi:io` imports every `wasm32-wasip2` guest declares (they trap if called);
//! any other import is refused at deploy.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Limits and supervision of one module version's processes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// Largest linear memory, MiB.
    pub max_memory_mib: u64,
    /// Longest a single guest call may run, ms.
    pub max_step_ms: u64,
    /// Largest state a guest call may return, KiB.
    pub max_state_kib: u64,
    /// Messages a mailbox holds.
    pub mailbox: usize,
    /// What a crash does.
    pub restart: Restart,
    /// Crashes allowed within `restart_window_secs` before the process is stopped as failed.
    pub max_restarts: usize,
    /// See `max_restarts`.
    pub restart_window_secs: u64,
}

/// What happens to a process whose step crashes (trap, broken limit, or an error it returned),
/// after OTP's restart types. The crashed step's event is dropped and reported either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Restart {
    /// Continue from the state before the crashed step, within the restart intensity.
    #[default]
    Permanent,
    /// Like permanent (a crash is never a normal exit, so a transient process is restarted too);
    /// kept for OTP familiarity.
    Transient,
    /// Never restart: the first crash ends the process as failed.
    Temporary,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            max_memory_mib: 64,
            max_step_ms: 5000,
            max_state_kib: 16 << 10,
            mailbox: 100_000,
            restart: Restart::Permanent,
            max_restarts: 5,
            restart_window_secs: 10,
        }
    }
}

impl Policy {
    /// Reads a TOML manifest.
    ///
    /// # Errors
    /// When the file is not valid TOML or has fields not listed in this module's docs.
    pub fn from_toml(text: &str) -> anyhow::Result<Self> {
        Ok(toml::from_str(text)?)
    }

    /// The per-call time limit.
    pub fn step_time(&self) -> Duration {
        Duration::from_millis(self.max_step_ms)
    }

    /// The memory cap in bytes.
    pub fn memory_bytes(&self) -> usize {
        (self.max_memory_mib as usize) << 20
    }

    /// The state cap in bytes.
    pub fn state_bytes(&self) -> usize {
        (self.max_state_kib as usize) << 10
    }

    /// The restart window.
    pub fn restart_window(&self) -> Duration {
        Duration::from_secs(self.restart_window_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_overrides_defaults_and_rejects_unknown_fields() {
        let p = Policy::from_toml("max_memory_mib = 8\nrestart = \"temporary\"\n").unwrap();
        assert_eq!(p.max_memory_mib, 8);
        assert_eq!(p.restart, Restart::Temporary);
        assert_eq!(p.mailbox, Policy::default().mailbox);
        let err = Policy::from_toml("max_memroy_mib = 8").unwrap_err();
        assert!(err.to_string().contains("max_memroy_mib"), "{err}");
    }
}
