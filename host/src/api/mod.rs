//! The control API of a long-running host (`hotswap serve`): HTTP/JSON on the host's tokio
//! runtime, every request authenticated with a bearer token. `server` serves it, `client` is what
//! the CLI's client commands (`deploy`, `spawn`, `ps`, ...) use to call it.
//!
//! | method and path | body | answer |
//! | --- | --- | --- |
//! | `GET /v1/status` | | counts, compile stats |
//! | `GET /v1/modules` | | `[ModuleInfo]` |
//! | `POST /v1/modules/{name}?dry_run=&atomic=` | the component bytes; optional header `Hotswap-Policy: {json}` | `SwapReport` |
//! | `POST /v1/modules/{name}/rollback` | `{"to": V}` (optional) | `SwapReport` |
//! | `GET /v1/processes` | | `[ProcessInfo]` |
//! | `POST /v1/processes` | `{"module": M, "args": "..."}` | `{"pid": N}` |
//! | `POST /v1/processes/{pid}/messages` | the payload bytes | 202 |
//! | `DELETE /v1/processes/{pid}` | | 202 |
//! | `GET /v1/logs?pid=&follow=` | | NDJSON `LogEntry` lines, streamed with `follow=true` |
//!
//! Errors are `{"error": "..."}` with 400 (malformed), 401 (token), 404 (unknown module or pid),
//! 413 (upload over the cap), 422 (component refused, init failed), 429 (mailbox full).

pub mod client;
pub mod server;

use serde::{Deserialize, Serialize};

use crate::HostEvent;

/// One line of `GET /v1/logs`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogEntry {
    /// Increasing number of the entry.
    pub seq: u64,
    /// Wall-clock time, milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// What happened.
    #[serde(flatten)]
    pub event: HostEvent,
}

/// Body of `POST /v1/processes`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpawnRequest {
    /// The module to run.
    pub module: String,
    /// Init arguments (the Rust SDK reads JSON; empty means defaults).
    #[serde(default)]
    pub args: String,
}

/// Answer of `POST /v1/processes`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpawnResponse {
    /// The new process.
    pub pid: crate::Pid,
}

/// Body of `POST /v1/modules/{name}/rollback`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RollbackRequest {
    /// The version to go back to; default the one before the current.
    pub to: Option<u32>,
}

/// Answer of `GET /v1/status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    /// hotswap's version.
    pub version: String,
    /// Live processes.
    pub processes: usize,
    /// Loaded modules.
    pub modules: usize,
    /// Components compiled since start.
    pub compiled: u64,
    /// Components loaded from the compiled cache since start.
    pub loaded_from_disk: u64,
}

/// Query of `POST /v1/modules/{name}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DeployQuery {
    /// Try every migration on a copy; change nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// All processes move or none does.
    #[serde(default)]
    pub atomic: bool,
}

/// Query of `GET /v1/logs`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LogsQuery {
    /// Only this process.
    pub pid: Option<u64>,
    /// Keep streaming new entries.
    #[serde(default)]
    pub follow: bool,
}
