//! WASI for guests, capability by capability: which interfaces a module's [`Grants`] link, the
//! check that refuses a component importing more than its grants before it runs, and the
//! per-store WASI context (built only when a guest first calls a WASI function).
//!
//! | import                         | linked when                  | otherwise            |
//! |--------------------------------|------------------------------|----------------------|
//! | `hotswap:process/*`            | always                       |                      |
//! | `wasi:io/*`                    | always (streams, poll)       |                      |
//! | `wasi:cli/std{in,out,err}`, `terminal-*` | always: output captured with `stdio`, else discarded; stdin empty | |
//! | `wasi:cli/environment`         | always: the granted `env`, else empty | |
//! | `wasi:cli/exit`                | always: calling it fails the call like a trap | |
//! | `wasi:clocks/*`                | `clocks`                     | refused at deploy    |
//! | `wasi:random/*`                | `random`                     | refused at deploy    |
//! | `wasi:filesystem/*`            | a `dirs` entry               | refused at deploy    |
//! | anything else (sockets, http)  | never                        | refused at deploy    |
//!
//! Every `wasm32-wasip2` guest declares `wasi:cli` and `wasi:io` imports through its standard
//! library, so those are always accepted; none of them reaches beyond the process.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime::component::{Component, HasData, Linker, ResourceTable};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream, WasiCli, WasiCliView as _};
use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView as _};
use wasmtime_wasi::filesystem::{WasiFilesystem, WasiFilesystemView as _};
use wasmtime_wasi::p2::bindings::{cli, clocks, filesystem, io as wasi_io, random};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};
use wasmtime_wasi::random::WasiRandom;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::error::DeployError;
use crate::policy::Grants;
use crate::process::effects::StepCtx;

/// Links the WASI interfaces `grants` allow into `linker` (which holds the runtime interface).
pub(crate) fn link(linker: &mut Linker<StepCtx>, grants: &Grants) -> wasmtime::Result<()> {
    let l = linker;
    wasi_io::error::add_to_linker::<StepCtx, Table>(l, |t| &mut t.wasi().table)?;
    wasi_io::poll::add_to_linker::<StepCtx, Table>(l, |t| &mut t.wasi().table)?;
    wasi_io::streams::add_to_linker::<StepCtx, Table>(l, |t| &mut t.wasi().table)?;
    // A guest calling `exit` ends its call with an error: the call fails like a trap.
    cli::exit::add_to_linker::<StepCtx, WasiCli>(l, |t| t.cli())?;
    cli::environment::add_to_linker::<StepCtx, WasiCli>(l, |t| t.cli())?;
    cli::stdin::add_to_linker::<StepCtx, WasiCli>(l, |t| t.cli())?;
    cli::stdout::add_to_linker::<StepCtx, WasiCli>(l, |t| t.cli())?;
    cli::stderr::add_to_linker::<StepCtx, WasiCli>(l, |t| t.cli())?;
    cli::terminal_input::add_to_linker::<StepCtx, WasiCli>(l, |t| t.cli())?;
    cli::terminal_output::add_to_linker::<StepCtx, WasiCli>(l, |t| t.cli())?;
    cli::terminal_stdin::add_to_linker::<StepCtx, WasiCli>(l, |t| t.cli())?;
    cli::terminal_stdout::add_to_linker::<StepCtx, WasiCli>(l, |t| t.cli())?;
    cli::terminal_stderr::add_to_linker::<StepCtx, WasiCli>(l, |t| t.cli())?;
    if grants.clocks {
        clocks::wall_clock::add_to_linker::<StepCtx, WasiClocks>(l, |t| t.clocks())?;
        clocks::monotonic_clock::add_to_linker::<StepCtx, WasiClocks>(l, |t| t.clocks())?;
    }
    if grants.random {
        random::random::add_to_linker::<StepCtx, WasiRandom>(l, |t| t.wasi().ctx.random())?;
        random::insecure::add_to_linker::<StepCtx, WasiRandom>(l, |t| t.wasi().ctx.random())?;
        random::insecure_seed::add_to_linker::<StepCtx, WasiRandom>(l, |t| t.wasi().ctx.random())?;
    }
    if !grants.dirs.is_empty() {
        filesystem::types::add_to_linker::<StepCtx, WasiFilesystem>(l, |t| t.filesystem())?;
        filesystem::preopens::add_to_linker::<StepCtx, WasiFilesystem>(l, |t| t.filesystem())?;
    }
    Ok(())
}

/// `wasi:io` works on the resource table alone.
struct Table;

impl HasData for Table {
    type Data<'a> = &'a mut ResourceTable;
}

/// Refuses a component that imports anything its grants do not link, naming for each import the
/// grant that would allow it (or that none will).
pub(crate) fn check_imports(
    engine: &wasmtime::Engine,
    component: &Component,
    grants: &Grants,
) -> Result<(), DeployError> {
    let refused: Vec<String> = component
        .component_type()
        .imports(engine)
        .filter_map(|(name, _)| {
            let fix = match name {
                n if n.starts_with("hotswap:process/")
                    || n.starts_with("wasi:io/")
                    || n.starts_with("wasi:cli/") =>
                {
                    return None;
                }
                n if n.starts_with("wasi:clocks/") => (!grants.clocks).then_some("grant `clocks`"),
                n if n.starts_with("wasi:random/") => (!grants.random).then_some("grant `random`"),
                n if n.starts_with("wasi:filesystem/") => grants
                    .dirs
                    .is_empty()
                    .then_some("grant a directory in `dirs`"),
                _ => Some("never granted"),
            }?;
            Some(format!("{name} ({fix})"))
        })
        .collect();
    if refused.is_empty() {
        Ok(())
    } else {
        Err(DeployError::ForbiddenImports(refused))
    }
}

/// A store's WASI state: its context (built from the grants), its resource table, and the buffer
/// its stdout and stderr write to.
pub struct WasiState {
    ctx: WasiCtx,
    table: ResourceTable,
    output: Captured,
}

impl WasiState {
    /// The context for `grants`; standard output and error go to [`WasiState::take_output`] when
    /// `stdio` is granted.
    ///
    /// Preopened directories were checked at deploy; one that has since disappeared is left out
    /// (with a warning) rather than failing the guest's call.
    pub(crate) fn new(grants: &Grants) -> Self {
        let output = Captured::default();
        let mut b = WasiCtxBuilder::new();
        if grants.stdio {
            b.stdout(output.clone()).stderr(output.clone());
        }
        for (k, v) in &grants.env {
            b.env(k, v);
        }
        for dir in &grants.dirs {
            let perms = if dir.write {
                FsPerms::ReadWrite
            } else {
                FsPerms::ReadOnly
            };
            if let Err(e) = b.preopened_dir(&dir.host, &dir.guest, perms) {
                tracing::warn!(host = %dir.host.display(), "granted directory could not be opened: {e:#}");
            }
        }
        Self {
            ctx: b.build(),
            table: ResourceTable::new(),
            output,
        }
    }

    /// Takes what the guest wrote to stdout/stderr so far.
    pub(crate) fn take_output(&self) -> Vec<u8> {
        self.output.take()
    }
}

impl WasiView for StepCtx {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let state = self.wasi();
        WasiCtxView {
            ctx: &mut state.ctx,
            table: &mut state.table,
        }
    }
}

/// Largest output a guest may write to stdout/stderr in one call; the rest is discarded.
const MAX_CAPTURED: usize = 1 << 20;

/// Where a guest's stdout and stderr go: a buffer the process turns into output lines after each
/// call (and empties when the call fails, like the rest of its effects).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn append(&self, bytes: &[u8]) {
        let mut buf = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let room = MAX_CAPTURED.saturating_sub(buf.len());
        buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }
}

impl IsTerminal for Captured {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Captured {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

impl AsyncWrite for Captured {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.append(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl OutputStream for Captured {
    fn write(&mut self, bytes: bytes::Bytes) -> Result<(), StreamError> {
        self.append(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(64 << 10)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Captured {
    async fn ready(&mut self) {}
}
