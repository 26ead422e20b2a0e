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
//! max_message_kib = 1024    # payload of one message; a bigger `send` fails the call
//! restart = "permanent"     # permanent | transient | temporary (see `Restart`)
//! max_restarts = 5          # crashes allowed within restart_window_secs ...
//! restart_window_secs = 10  # ... before the process is stopped as failed
//!
//! [grants]                  # WASI beyond the runtime interface; nothing is granted by default
//! stdio = false             # stdout/stderr become the process's output (else discarded)
//! clocks = false            # wasi:clocks (wall clock, monotonic clock)
//! random = false            # wasi:random
//! env = {}                  # environment variables the guest sees, e.g. { LANG = "C" }
//! dirs = []                 # preopened directories (wasi:filesystem), e.g.
//!                           # [{ host = "/srv/data", guest = "/data", write = false }]
//! ```
//!
//! What each grant links is in `wasi.rs`. Sockets and other interfaces are never granted.

use std::collections::BTreeMap;
use std::path::PathBuf;
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
    /// Largest payload one `send` may carry, KiB. A bigger one fails the guest's call (as does
    /// sending more than 64 MiB in all from one call).
    pub max_message_kib: u64,
    /// What a crash does.
    pub restart: Restart,
    /// Crashes allowed within `restart_window_secs` before the process is stopped as failed.
    pub max_restarts: usize,
    /// See `max_restarts`.
    pub restart_window_secs: u64,
    /// WASI interfaces granted beyond the runtime interface.
    pub grants: Grants,
}

/// WASI capabilities a module may use. A component importing an interface its grants do not
/// cover is refused at deploy, with the grant that would allow it named in the error.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Grants {
    /// What the guest writes to stdout/stderr becomes the process's output, line by line, like
    /// `print`. Without it the streams exist but what is written to them is discarded.
    pub stdio: bool,
    /// `wasi:clocks`: the wall clock and the monotonic clock.
    pub clocks: bool,
    /// `wasi:random`: secure and insecure random bytes.
    pub random: bool,
    /// Environment variables the guest sees (`wasi:cli/environment`; empty when not granted).
    pub env: BTreeMap<String, String>,
    /// Host directories preopened for the guest (`wasi:filesystem`).
    pub dirs: Vec<DirGrant>,
}

/// One preopened directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirGrant {
    /// The directory on the host. Under `hotswap serve`, a path relative to the data dir's
    /// `dirs/` folder (a deploy over the network cannot open arbitrary host paths).
    pub host: PathBuf,
    /// Where the guest sees it, e.g. `/data`.
    pub guest: String,
    /// Whether the guest may create, write and delete files in it (read-only otherwise).
    #[serde(default)]
    pub write: bool,
}

impl std::str::FromStr for DirGrant {
    type Err = String;

    /// Parses `HOST:GUEST` or `HOST:GUEST:rw` (`:ro`, the default, is accepted too).
    fn from_str(s: &str) -> Result<Self, String> {
        let parts = s.split(':').collect::<Vec<_>>();
        let (host, guest, write) = match parts.as_slice() {
            [host, guest, "rw"] => (host, guest, true),
            [host, guest, "ro"] => (host, guest, false),
            [host, guest] => (host, guest, false),
            _ => {
                return Err(format!(
                    "`{s}` is not a directory grant: write HOST:GUEST or HOST:GUEST:rw, \
                     e.g. ./data:/data:rw"
                ));
            }
        };
        if host.is_empty() || !guest.starts_with('/') {
            return Err(format!(
                "`{s}` is not a directory grant: HOST must be non-empty and GUEST an absolute \
                 path, e.g. ./data:/data"
            ));
        }
        Ok(Self {
            host: PathBuf::from(host),
            guest: (*guest).to_owned(),
            write,
        })
    }
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
            max_message_kib: 1024,
            restart: Restart::Permanent,
            max_restarts: 5,
            restart_window_secs: 10,
            grants: Grants::default(),
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

    /// The message size cap in bytes.
    pub fn message_bytes(&self) -> usize {
        (self.max_message_kib as usize) << 10
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
