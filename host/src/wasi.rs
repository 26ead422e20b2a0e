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
use wasmtime::component::{Component, HasData, Linker, Resource, ResourceTable, ResourceType};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream, WasiCli, WasiCliView as _};
use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView as _};
use wasmtime_wasi::filesystem::{WasiFilesystem, WasiFilesystemView as _};
use wasmtime_wasi::p2::bindings::{cli, clocks, filesystem, io as wasi_io, random};
use wasmtime_wasi::p2::{
    DynInputStream, DynOutputStream, DynPollable, OutputStream, Pollable, StreamError,
};
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

/// Replaces, in a linker that holds [`link`]'s interfaces, every WASI function wasmtime-wasi
/// defines as `async` (the blocking stream calls, `poll`, and dropping a stream) with one that
/// runs without a fiber: it does what is ready at once, and when it would have to wait it fails
/// the call with [`NeedsFiber`](crate::engine::NeedsFiber), which the engine answers by running
/// the call again from its start on a fiber. Only for grants whose streams never wait (no
/// directories): stdio is an in-memory buffer, stdin is empty; a clock's pollable can wait.
pub(crate) fn link_direct(linker: &mut Linker<StepCtx>) -> wasmtime::Result<()> {
    use wasi_io::poll::{Host as _, HostPollable};
    use wasi_io::streams::{HostInputStream as I, HostOutputStream as O};
    type Cx<'a> = wasmtime::StoreContextMut<'a, StepCtx>;
    type In = Resource<DynInputStream>;
    type Out = Resource<DynOutputStream>;

    linker.allow_shadowing(true);
    let mut poll = linker.instance("wasi:io/poll@0.2.12")?;
    poll.func_wrap(
        "poll",
        |mut cx: Cx, (list,): (Vec<Resource<DynPollable>>,)| {
            Ok((now(table(&mut cx).poll(list))??,))
        },
    )?;
    poll.func_wrap(
        "[method]pollable.block",
        |mut cx: Cx, (p,): (Resource<DynPollable>,)| now(HostPollable::block(table(&mut cx), p))?,
    )?;
    poll.func_wrap(
        "[method]pollable.ready",
        |mut cx: Cx, (p,): (Resource<DynPollable>,)| {
            Ok((now(HostPollable::ready(table(&mut cx), p))??,))
        },
    )?;

    let mut streams = linker.instance("wasi:io/streams@0.2.12")?;
    streams.resource(
        "input-stream",
        ResourceType::host::<DynInputStream>(),
        |mut cx: Cx, rep| now(I::drop(table(&mut cx), In::new_own(rep)))?,
    )?;
    streams.resource(
        "output-stream",
        ResourceType::host::<DynOutputStream>(),
        |mut cx: Cx, rep| now(O::drop(table(&mut cx), Out::new_own(rep)))?,
    )?;
    // The blocking stream calls, each as wasmtime-wasi's own, finished at once or not at all.
    macro_rules! blocking {
        ($name:literal, $method:path, ($($arg:ident: $ty:ty),*)) => {
            streams.func_wrap($name, |mut cx: Cx, ($($arg,)*): ($($ty,)*)| {
                let t = table(&mut cx);
                let r = now($method(t, $($arg),*))?;
                stream_result(t, r)
            })?;
        };
    }
    blocking!("[method]input-stream.blocking-read", I::blocking_read, (s: In, len: u64));
    blocking!("[method]input-stream.blocking-skip", I::blocking_skip, (s: In, len: u64));
    blocking!("[method]output-stream.blocking-flush", O::blocking_flush, (s: Out));
    blocking!(
        "[method]output-stream.blocking-write-and-flush",
        O::blocking_write_and_flush,
        (s: Out, bytes: Vec<u8>)
    );
    blocking!(
        "[method]output-stream.blocking-write-zeroes-and-flush",
        O::blocking_write_zeroes_and_flush,
        (s: Out, len: u64)
    );
    blocking!(
        "[method]output-stream.blocking-splice",
        O::blocking_splice,
        (s: Out, src: In, len: u64)
    );
    Ok(())
}

/// The store's WASI resource table.
fn table<'a>(cx: &'a mut wasmtime::StoreContextMut<'_, StepCtx>) -> &'a mut ResourceTable {
    &mut cx.data_mut().wasi().table
}

/// What `future` gives if it is ready now; a future that would wait fails the call with
/// [`NeedsFiber`](crate::engine::NeedsFiber).
fn now<F: Future>(future: F) -> wasmtime::Result<F::Output> {
    let mut future = std::pin::pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(std::task::Waker::noop()))
    {
        Poll::Ready(v) => Ok(v),
        Poll::Pending => Err(wasmtime::Error::new(crate::engine::NeedsFiber)),
    }
}

/// A stream call's result as the guest sees it (a trap stays a trap).
fn stream_result<T>(
    table: &mut ResourceTable,
    r: Result<T, StreamError>,
) -> wasmtime::Result<(Result<T, wasi_io::streams::StreamError>,)> {
    use wasi_io::streams::Host as _;
    match r {
        Ok(v) => Ok((Ok(v),)),
        Err(e) => Ok((Err(table.convert_stream_error(e)?),)),
    }
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
