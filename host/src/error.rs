//! Errors callers branch on. Everything else is `anyhow` with context.

use crate::Pid;

/// Why a component was refused before any process was touched.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The bytes do not start with the wasm magic number.
    #[error(
        "not a WebAssembly binary (no `\\0asm` header): upload the `.wasm` file a guest build produced"
    )]
    NotWasm,
    /// A core wasm module, not a component.
    #[error(
        "this is a core wasm module, not a component: build the guest for `wasm32-wasip2` \
         (`cargo build --target wasm32-wasip2`), whose output is a component"
    )]
    CoreModule,
    /// The component failed to compile or validate.
    #[error("the component is not valid wasm: {0}")]
    Compile(String),
    /// The component does not implement the hotswap contract.
    #[error(
        "the component does not match the hotswap contract (world `hotswap:process/module` in \
         wit/hotswap.wit): {0}; build it with the hotswap-guest SDK or against wit/"
    )]
    Incompatible(String),
    /// The component could not be stored in the data directory; nothing was deployed.
    #[error("the component could not be stored, nothing was deployed: {0}")]
    Store(String),
    /// The component imports interfaces its policy does not grant. Each entry names the import
    /// and, in parentheses, the grant that would allow it (or `never granted`).
    #[error(
        "the component imports interfaces its policy does not grant: {}; grant them in the \
         policy (`--grant clocks,random`, `--dir HOST:GUEST[:rw]`, or `[grants]` in the \
         manifest) or remove the code that uses them",
        .0.join(", ")
    )]
    ForbiddenImports(Vec<String>),
    /// The policy asks for more than the host allows.
    #[error("invalid policy: {0}")]
    Policy(String),
    /// No module by that name is loaded.
    #[error("no module named `{0}` is loaded: deploy it first")]
    UnknownModule(String),
    /// No such version of the module (a rollback from its first version asks for version 0).
    #[error("{}", unknown_version(name, *version, *latest))]
    UnknownVersion {
        /// The module.
        name: String,
        /// The version asked for.
        version: u32,
        /// Its newest version: versions 1 to `latest` exist.
        latest: u32,
    },
}

fn unknown_version(name: &str, version: u32, latest: u32) -> String {
    if version == 0 {
        format!("module `{name}` is on its first version: there is no earlier one to roll back to")
    } else {
        format!("module `{name}` has no version {version}: its versions are 1 to {latest}")
    }
}

/// Why a message could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// No live process has that pid.
    #[error("no process {0} (it may have stopped)")]
    NoSuchProcess(Pid),
    /// The receiver's mailbox is at its cap; nothing was queued.
    #[error("the mailbox of process {0} is full; nothing was queued, try again later")]
    MailboxFull(Pid),
}

/// Why a process could not be started.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SpawnError {
    /// No module by that name is loaded.
    #[error("no module named `{0}` is loaded: deploy it first")]
    UnknownModule(String),
    /// Its `init` returned an error or trapped; the process does not exist.
    #[error("`{module}` failed to start: its init failed: {reason}")]
    InitFailed {
        /// The module.
        module: String,
        /// Why.
        reason: String,
    },
}
