//! hotswap: run WebAssembly components as long-lived, Erlang-style processes and replace their
//! code while they run, keeping their state and their messages.
//!
//! - [`engine`]: wasmtime narrowed to what hotswap needs (compile, check the contract, call).
//! - [`registry`]: modules and their numbered versions.
//! - [`process`]: a process's task: its state, mailbox, timeout, steps, swaps and restarts.
//! - [`host`]: the [`Host`] handle that ties them together (deploy, spawn, send, inspect).
//! - [`store`]: the data directory of a long-running host (modules, compiled cache, token).
//! - [`api`]: the control API of `hotswap serve` (server and client).
//! - [`cli`]: the `hotswap` command line.
//!
//! The contract between host and guest is `wit/hotswap.wit`.

pub mod api;
pub mod cli;
pub mod engine;
pub mod error;
pub mod examples;
pub mod host;
pub mod policy;
pub mod process;
pub mod registry;
pub mod store;
pub mod wasi;

pub use error::{DeployError, SendError, SpawnError};
pub use host::{DeployOptions, Host, HostConfig, HostEvent, SwapReport, WeakHost};
pub use policy::{DirGrant, Grants, Policy, Restart};
pub use process::{ExitReason, Pid, ProcessInfo};
