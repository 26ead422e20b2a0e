//! The wasmtime engine narrowed to what hotswap uses: one [`Engine`] tuned for many small,
//! short-lived instances, compilation with a content-hash cache, the contract check, and typed
//! calls into a guest (`init`, `step`, `migrate`).
//!
//! This is the only file that talks to wasmtime's component API and the only place where
//! `wasmtime::Error` becomes `anyhow::Error`. It knows nothing about processes, mailboxes or swaps:
//! see `process/` for those.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{
    Config, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreLimits, UpdateDeadline,
};

use crate::error::DeployError;
use crate::policy::Grants;
use crate::process::effects::StepCtx;

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "module",
        anyhow: true,
        // `call_*` run a guest call on a fiber, where a long one yields to the tokio runtime at
        // every epoch tick; `func_*().call` runs it directly (see `Instance`).
        exports: { default: async },
        // A send over the policy's message limits fails the call, as any other broken limit.
        imports: {
            "hotswap:process/runtime.send": trappable,
            "hotswap:process/runtime.send-many": trappable,
        },
    });
}

pub(crate) use bindings::hotswap::process::runtime::Host as RuntimeHost;
pub use bindings::hotswap::process::runtime::SendError;
pub(crate) use bindings::hotswap::process::types as bindings_types;
pub use bindings::hotswap::process::types::{
    Batch, BatchResult, Change, Down, Event, Level, Message, Payloads, StepResult,
};

impl Batch {
    /// Messages in the batch.
    pub fn len(&self) -> usize {
        self.senders.len()
    }

    /// Whether the batch holds no message.
    pub fn is_empty(&self) -> bool {
        self.senders.is_empty()
    }

    /// Appends a message (its payload is copied into the batch's one buffer).
    pub fn push(&mut self, sender: u64, payload: &[u8]) {
        self.payloads.extend_from_slice(payload);
        self.senders.push(sender);
        // A batch holds at most 1 MiB of payloads, or a single message within its policy's
        // size limit: far below 4 GiB.
        self.ends
            .push(u32::try_from(self.payloads.len()).unwrap_or(u32::MAX));
    }

    /// Empties the batch, keeping its space for the next one (up to 64 KiB of payloads: a
    /// batch of large messages does not keep its buffer for the instance's life).
    pub fn clear(&mut self) {
        self.senders.clear();
        self.ends.clear();
        self.payloads.clear();
        self.payloads.shrink_to(64 << 10);
    }

    /// The messages, in order, as they would be delivered one by one.
    pub fn messages(&self) -> impl Iterator<Item = Message> + '_ {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        self.senders
            .iter()
            .zip(starts.zip(&self.ends))
            .map(|(&sender, (start, &end))| Message {
                sender,
                payload: self.payloads[start as usize..end as usize].to_vec(),
            })
    }
}

// `bindgen!` derives no `Default` for the record (and its `additional_derives` would apply to
// every generated type).
#[allow(clippy::derivable_impls)]
impl Default for Batch {
    fn default() -> Self {
        Self {
            senders: Vec::new(),
            ends: Vec::new(),
            payloads: Vec::new(),
        }
    }
}

/// Tuning of the engine: the ceilings every module policy must fit under.
///
/// Defaults: 256 MiB linear memory per instance at most, 2,048 instances alive at once (the pool
/// is sized for that; processes only hold an instance while they step, plus a bounded cache of
/// warm ones), 1 MiB of wasm stack, time limits on.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Largest linear memory any module's policy may allow, in bytes (the pool reserves this much
    /// address space per memory slot).
    pub max_memory_bytes: usize,
    /// Enforce each policy's time per call with epoch interruption. Turning it off saves the
    /// epoch checks in compiled code (see BENCHMARKS.md) but lets a looping guest hold a thread.
    pub time_limits: bool,
    /// How many instances may be alive at once (size of the pooling allocator). Each live
    /// instance takes about six memory mappings (its memory's copy-on-write image among them),
    /// and Linux allows a process 65,530 (`vm.max_map_count`): keep all hosts of one OS process
    /// under about 10,000 live instances in all.
    pub max_live_instances: u32,
    /// Where compiled components are kept across restarts (`None`: only in memory).
    pub cache_dir: Option<PathBuf>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            max_memory_bytes: 256 << 20,
            time_limits: true,
            max_live_instances: 2048,
            cache_dir: None,
        }
    }
}

/// Bytes of each pooled memory and table reset in place rather than returned to the kernel.
const KEEP_RESIDENT: usize = 2 << 20;

/// How often the epoch ticker advances: the granularity of the per-call time limit.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The compiled-code side of the host: one wasmtime engine, a linker with the runtime interface,
/// and a cache of compiled components keyed by the sha256 of their bytes.
pub struct Engine {
    engine: wasmtime::Engine,
    linker: Linker<StepCtx>,
    cache: Mutex<HashMap<[u8; 32], Component>>,
    config: EngineConfig,
    stats: CompileStats,
}

/// How components were obtained, for `status` and tests: a restarted host with a warm cache
/// compiles nothing.
#[derive(Debug, Default)]
pub struct CompileStats {
    /// Components compiled by Cranelift.
    pub compiled: AtomicU64,
    /// Components loaded from the compiled cache on disk.
    pub loaded_from_disk: AtomicU64,
    /// Instances created (each costs about 10 µs; see `Host::instances_created`).
    pub instantiated: AtomicU64,
}

impl Engine {
    /// Builds the engine and starts the epoch ticker that enforces the call time limit.
    ///
    /// # Errors
    /// When wasmtime rejects the configuration (for example, the pool cannot be reserved).
    pub fn new(config: EngineConfig) -> anyhow::Result<Arc<Self>> {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(config.max_live_instances)
            .total_core_instances(config.max_live_instances * 4)
            .total_memories(config.max_live_instances * 2)
            .total_tables(config.max_live_instances * 2)
            // Calls that had to wait run on fibers; such a store keeps its stack between calls.
            .total_stacks(config.max_live_instances)
            .max_memory_size(config.max_memory_bytes)
            // Reset freed memory and tables by rewriting only the pages an instance touched
            // (found with Linux's PAGEMAP_SCAN, 6.7+) instead of madvise: no page faults for the
            // next instance in the slot and, above all, no TLB-shootdown interrupts to the other
            // cores on every instance dropped. Elsewhere wasmtime falls back to madvise.
            .pagemap_scan(wasmtime::Enabled::Auto)
            .linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(KEEP_RESIDENT);
        let mut wasm = Config::new();
        wasm.wasm_component_model(true)
            // Halves the cost of every call; hotswap does not use component-model async.
            .concurrency_support(false)
            .epoch_interruption(config.time_limits)
            .memory_reservation(config.max_memory_bytes as u64)
            .max_wasm_stack(1 << 20)
            // Initialise linear memory from a copy-on-write image of the data segments: a
            // slot that last held the same module needs nothing mapped or copied, and its
            // reset rewrites only the pages the instance wrote. (Copying the segments instead
            // won while every instance of a swap wave took a slot another version had used, each
            // remap a TLB shootdown; since a wave reuses a few warm slots, mapping wins: p99
            // swap pause at 1,000 processes 84 -> 42-55 µs in two interleaved runs, even in a
            // third (BENCHMARKS.md). The price: about six memory mappings per live instance
            // instead of three.)
            .memory_init_cow(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = wasmtime::Engine::new(&wasm)
            .map_err(wt)
            .context("failed to configure wasmtime")?;

        let mut linker = Linker::new(&engine);
        bindings::hotswap::process::runtime::add_to_linker::<StepCtx, HasSelf<StepCtx>>(
            &mut linker,
            |ctx| ctx,
        )
        .map_err(wt)
        .context("failed to link the runtime interface")?;

        // The ticker only holds a weak engine handle, so it ends when the engine is dropped.
        let weak = engine.weak();
        std::thread::Builder::new()
            .name("hotswap-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })
            .context("failed to start the epoch ticker thread")?;

        Ok(Arc::new(Self {
            engine,
            linker,
            cache: Mutex::default(),
            config,
            stats: CompileStats::default(),
        }))
    }

    /// The limits this engine was built with.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// How many components were compiled or loaded from disk, and instances created.
    pub fn stats(&self) -> &CompileStats {
        &self.stats
    }

    /// The compiled form of `bytes`: from memory, from the disk cache, or compiled now (and then
    /// written to the disk cache).
    fn component(&self, bytes: &[u8], hash: &[u8; 32]) -> Result<Component, DeployError> {
        if let Some(c) = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(hash)
        {
            return Ok(c.clone());
        }
        let on_disk = self
            .config
            .cache_dir
            .as_ref()
            .map(|dir| dir.join(format!("{}.cwasm", hex::encode(hash))));
        let loaded = on_disk.as_deref().and_then(|path| self.load_compiled(path));
        let component = match loaded {
            Some(c) => {
                self.stats.loaded_from_disk.fetch_add(1, Ordering::Relaxed);
                c
            }
            None => {
                let c = Component::new(&self.engine, bytes)
                    .map_err(|e| DeployError::Compile(format!("{:#}", wt(e))))?;
                self.stats.compiled.fetch_add(1, Ordering::Relaxed);
                if let Some(path) = &on_disk
                    && let Err(e) = save_compiled(&c, path)
                {
                    tracing::warn!(path = %path.display(), "could not cache the compiled component: {e:#}");
                }
                c
            }
        };
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(*hash, component.clone());
        Ok(component)
    }

    /// Loads a compiled component this host wrote, after checking it against the sha256 recorded
    /// beside it when it was written. Anything else (missing, tampered, from another wasmtime
    /// build) is ignored and the component is compiled again.
    fn load_compiled(&self, path: &Path) -> Option<Component> {
        let bytes = std::fs::read(path).ok()?;
        let recorded = std::fs::read_to_string(path.with_extension("cwasm.sha256")).ok()?;
        if hex::encode(Sha256::digest(&bytes)) != recorded.trim() {
            tracing::warn!(path = %path.display(), "compiled component does not match its recorded hash; recompiling");
            return None;
        }
        // SAFETY: `Component::deserialize` requires bytes produced by `Component::serialize` of a
        // compatible engine. These bytes were written by this host (`save_compiled`) and checked
        // against the hash recorded with them; wasmtime itself rejects artifacts from an
        // incompatible engine or configuration.
        #[allow(unsafe_code)]
        let component = unsafe { Component::deserialize(&self.engine, &bytes) };
        match component {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::info!(path = %path.display(), "compiled component not usable, recompiling: {:#}", wt(e));
                None
            }
        }
    }

    /// Compiles `bytes` (or takes them from the cache), checks them against the contract in `wit/`
    /// and its imports against `grants`, and pre-instantiates them with the runtime interface and
    /// the WASI interfaces `grants` allow, so that instantiating later cannot fail on types.
    ///
    /// # Errors
    /// [`DeployError`] saying whether the bytes are not wasm, a core module rather than a component,
    /// fail to compile, import what `grants` do not allow, or do not match the contract.
    pub fn prepare(&self, bytes: &[u8], grants: &Grants) -> Result<Prepared, DeployError> {
        check_header(bytes)?;
        let hash: [u8; 32] = Sha256::digest(bytes).into();
        let component = self.component(bytes, &hash)?;
        check_contract_version(&self.engine, &component)?;
        crate::wasi::check_imports(&self.engine, &component, grants)?;
        let mut linker = self.linker.clone();
        crate::wasi::link(&mut linker, grants)
            .map_err(|e| DeployError::Incompatible(format!("{:#}", wt(e))))?;
        let prepare = |linker: &Linker<StepCtx>| {
            let pre = linker.instantiate_pre(&component).map_err(wt)?;
            bindings::ModulePre::new(pre).map_err(wt)
        };
        let incompatible = |e: anyhow::Error| DeployError::Incompatible(format!("{e:#}"));
        let pre = prepare(&linker).map_err(incompatible)?;
        // Calls run directly on the caller's thread unless the module may touch a directory
        // (a file's stream can wait, and a call run again must not write twice).
        let direct = if grants.dirs.is_empty() {
            crate::wasi::link_direct(&mut linker)
                .map_err(wt)
                .and_then(|()| prepare(&linker))
                .map(Some)
                .map_err(incompatible)?
        } else {
            None
        };
        Ok(Prepared { pre, direct, hash })
    }

    /// Instantiates a prepared component in a fresh store for process `ctx.pid`, with a time
    /// limit of `step_time` per call.
    ///
    /// Time is counted in epoch ticks: at every tick but the first a running call yields to the
    /// tokio runtime (so a long call shares its worker thread with other processes instead of
    /// blocking it), and once it has run `step_time` it is interrupted.
    ///
    /// The instance runs its calls directly on the caller's thread when it can (see
    /// [`Instance`]), and on a fiber otherwise.
    ///
    /// # Errors
    /// When the pool is exhausted or the component's start-up code traps.
    pub async fn instantiate(
        &self,
        prepared: &Prepared,
        mut ctx: StepCtx,
        step_time: Duration,
    ) -> anyhow::Result<Instance> {
        self.stats.instantiated.fetch_add(1, Ordering::Relaxed);
        ctx.max_ticks = (step_time.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64;
        let time_limits = self.config.time_limits;
        let direct = prepared
            .direct
            .as_ref()
            .filter(|_| ctx.direct && stack_allows_direct());
        ctx.direct = direct.is_some();
        if let Some(direct) = direct {
            let mut store = new_store(&self.engine, ctx, time_limits);
            match direct.instantiate(&mut store) {
                Ok(guest) => {
                    return Ok(Instance(Box::new(Live {
                        store,
                        guest,
                        time_limits,
                        on_fiber: Some(prepared.pre.clone()),
                        moved: false,
                    })));
                }
                Err(e) if e.is::<NeedsFiber>() => ctx = store.into_data().renewed(),
                Err(e) => return Err(wt(e).context("failed to instantiate component")),
            }
        }
        let mut store = new_store(&self.engine, ctx, time_limits);
        let guest = Box::pin(prepared.pre.instantiate_async(&mut store))
            .await
            .map_err(wt)
            .context("failed to instantiate component")?;
        Ok(Instance(Box::new(Live {
            store,
            guest,
            time_limits,
            on_fiber: None,
            moved: false,
        })))
    }
}

/// A store for one instance: its memory limits and, with time limits on, the epoch callback.
fn new_store(engine: &wasmtime::Engine, ctx: StepCtx, time_limits: bool) -> Store<StepCtx> {
    let mut store = Store::new(engine, ctx);
    store.limiter(|ctx| &mut ctx.limits);
    if time_limits {
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|mut store| {
            let ctx = store.data_mut();
            ctx.ticks += 1;
            Ok(if ctx.ticks >= ctx.max_ticks {
                UpdateDeadline::Interrupt
            } else if ctx.ticks == 1 {
                // The first tick comes anywhere from 0 to one tick after the call began: a
                // short call that happens to straddle it must not go to the back of the
                // runtime's queue (behind a whole deploy wave, milliseconds), so a call
                // yields only once it has run at least one full tick.
                UpdateDeadline::Continue(1)
            } else if ctx.direct {
                // A direct call cannot yield: it starts again on a fiber (see `Instance`).
                return Err(wasmtime::Error::new(NeedsFiber));
            } else {
                UpdateDeadline::Yield(1)
            })
        });
    }
    store
}

/// Native stack a direct call needs on the caller's thread: the guest's own stack limit
/// (`max_wasm_stack`) plus room for the host functions it calls.
const DIRECT_STACK: usize = (1 << 20) + (512 << 10);

/// Whether the calling thread has the stack for a direct call. A guest that recursed past the
/// thread's end would crash the host where a fiber's stack (sized by wasmtime) traps; a thread
/// with less room (a runtime built with small stacks) runs its guests on fibers.
fn stack_allows_direct() -> bool {
    stacker::remaining_stack().is_some_and(|left| left >= DIRECT_STACK)
}

/// Raised inside a direct call (see [`Instance`]) that would have to wait: a WASI call whose
/// answer is not ready, or a call that ran a full epoch tick and would now yield. The call is
/// abandoned (a call's effects only happen when it returns) and run again on a fiber.
#[derive(Debug)]
pub(crate) struct NeedsFiber;

impl std::fmt::Display for NeedsFiber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the call has to wait, so it runs again on a fiber")
    }
}

impl std::error::Error for NeedsFiber {}

/// Writes a compiled component and its sha256 beside it (each through a temporary file and a
/// rename, so a crash never leaves a half-written artifact under the final name).
fn save_compiled(component: &Component, path: &Path) -> anyhow::Result<()> {
    let bytes = component.serialize().map_err(wt)?;
    let hash = hex::encode(Sha256::digest(&bytes));
    crate::store::write_atomic(path, &bytes)?;
    crate::store::write_atomic(&path.with_extension("cwasm.sha256"), hash.as_bytes())
}

/// The contract's version, read from the `package` line of `wit/hotswap.wit` (the same file
/// `bindgen!` reads).
fn contract_version() -> &'static str {
    include_str!("../../wit/hotswap.wit")
        .lines()
        .find_map(|line| line.trim().strip_prefix("package hotswap:process@"))
        .map_or("", |v| v.trim_end_matches(';'))
}

/// Refuses a component built against another version of the contract, saying so (the linker's
/// own error would only name a missing instance).
fn check_contract_version(
    engine: &wasmtime::Engine,
    component: &Component,
) -> Result<(), DeployError> {
    let ty = component.component_type();
    let names = ty.imports(engine).map(|(name, _)| name);
    let mut names = names.chain(ty.exports(engine).map(|(name, _)| name));
    let current = contract_version();
    match names.find_map(|name| {
        let version = name.strip_prefix("hotswap:process/")?.split_once('@')?.1;
        (version != current).then(|| (name.to_owned(), version.to_owned()))
    }) {
        None => Ok(()),
        Some((name, version)) => Err(DeployError::Incompatible(format!(
            "it was built against version {version} of the contract (it names `{name}`), and \
             this host implements version {current}"
        ))),
    }
}

/// Tells apart the three kinds of bytes people upload by mistake before the compiler sees them.
fn check_header(bytes: &[u8]) -> Result<(), DeployError> {
    const MAGIC: &[u8] = b"\0asm";
    if bytes.len() < 8 || &bytes[..4] != MAGIC {
        return Err(DeployError::NotWasm);
    }
    // Bytes 4..8 are the version (2 bytes) and layer (2 bytes): layer 0 is a core module,
    // layer 1 a component.
    match (bytes[6], bytes[7]) {
        (0, 0) => Err(DeployError::CoreModule),
        (1, 0) => Ok(()),
        _ => Err(DeployError::Compile("unknown wasm binary layer".into())),
    }
}

/// A component compiled, checked against the contract and ready to instantiate cheaply.
#[derive(Clone)]
pub struct Prepared {
    /// Instantiates for calls on a fiber (they may wait for WASI and yield at epoch ticks).
    pre: bindings::ModulePre<StepCtx>,
    /// Instantiates for direct calls (WASI that never waits), when the grants allow them.
    direct: Option<bindings::ModulePre<StepCtx>>,
    hash: [u8; 32],
}

impl Prepared {
    /// The sha256 of the component's bytes, in hex.
    pub fn hash_hex(&self) -> String {
        hex::encode(self.hash)
    }
}

/// One live instance of a module version, with its own store: the unit of isolation.
///
/// After a trap the store is poisoned; callers drop the instance and make a new one.
///
/// Calls run directly on the caller's thread (half the cost of a call on a fiber, and no fiber
/// stack) until one has to wait: a WASI call that is not ready, or a call that has run a full
/// epoch tick and should yield. That call is abandoned, with its effects (nothing a call does
/// is carried out before it returns, see `process::effects`, and modules that may touch files
/// never run directly), and run again from its start in a new instance on a fiber, which the
/// instance keeps from then on. The time it had run still counts against its limit.
///
/// Boxed, so that a process that holds no instance (most idle ones) spends one word on it.
pub struct Instance(Box<Live>);

impl std::ops::Deref for Instance {
    type Target = Live;
    fn deref(&self) -> &Live {
        &self.0
    }
}

impl std::ops::DerefMut for Instance {
    fn deref_mut(&mut self) -> &mut Live {
        &mut self.0
    }
}

/// What an [`Instance`] holds; its methods are the guest calls.
pub struct Live {
    store: Store<StepCtx>,
    guest: bindings::Module,
    time_limits: bool,
    /// While calls run directly: what to instantiate when one has to move to a fiber.
    on_fiber: Option<bindings::ModulePre<StepCtx>>,
    /// Whether a call moved this instance to a fiber.
    moved: bool,
}

/// One guest call: directly while the instance can, else (or when the direct call has to
/// wait) on a fiber. The futures of the fiber path are large (a few KiB) and boxed where they
/// start, so that a direct call, the common case, allocates and copies none of that.
macro_rules! call {
    ($self:ident, $name:literal, $func:ident, $call_async:ident ($($arg:expr),*)) => {{
        $self.arm();
        if $self.on_fiber.is_some() {
            let exports = $self.guest.hotswap_process_process();
            match exports.$func().call(&mut $self.store, ($($arg,)*)) {
                Err(e) if e.is::<NeedsFiber>() => Box::pin($self.move_to_fiber()).await?,
                r => return $self.finish(r.map(|(r,)| r), $name),
            }
        }
        let exports = $self.guest.hotswap_process_process();
        let r = Box::pin(exports.$call_async(&mut $self.store, $($arg),*)).await;
        $self.finish(r, $name)
    }};
}

/// The outcome of one guest call: `Err` is a trap or a broken limit (the instance must be
/// dropped), `Ok(Err(_))` an error the guest returned (the instance is still good).
pub type CallResult<T> = anyhow::Result<Result<T, String>>;

impl Live {
    /// The per-call context: the calling pid and the effects the call made.
    pub fn ctx(&mut self) -> &mut StepCtx {
        self.store.data_mut()
    }

    fn arm(&mut self) {
        if self.time_limits {
            self.store.set_epoch_deadline(1);
        }
        let ctx = self.store.data_mut();
        ctx.ticks = 0;
        ctx.effects.clear();
    }

    /// Replaces a direct instance whose call has to wait with a new one on a fiber, for the
    /// call to run again there.
    async fn move_to_fiber(&mut self) -> anyhow::Result<()> {
        let pre = self
            .on_fiber
            .take()
            .expect("only a direct instance moves to a fiber");
        let ctx = self.store.data().renewed();
        let stats = ctx.shared.engine.stats();
        stats.instantiated.fetch_add(1, Ordering::Relaxed);
        let mut store = new_store(self.store.engine(), ctx, self.time_limits);
        self.guest = Box::pin(pre.instantiate_async(&mut store))
            .await
            .map_err(wt)
            .context("failed to instantiate component")?;
        self.store = store;
        self.moved = true;
        Ok(())
    }

    /// Whether a call of this instance had to wait, and it now runs on a fiber.
    pub fn moved_to_fiber(&self) -> bool {
        self.moved
    }

    /// Ends a call: what it wrote to stdout/stderr joins its effects.
    fn finish<T>(&mut self, r: wasmtime::Result<T>, call: &str) -> anyhow::Result<T> {
        self.store.data_mut().collect_output();
        r.map_err(|e| call_failed(e, call))
    }

    /// Calls the guest's `init`.
    pub async fn init(&mut self, args: &[u8]) -> CallResult<StepResult> {
        call!(self, "init", func_init, call_init(args))
    }

    /// Calls the guest's `step`.
    pub async fn step(&mut self, state: &[u8], event: &Event) -> CallResult<StepResult> {
        call!(self, "step", func_step, call_step(state, event))
    }

    /// Calls the guest's `step-batch`.
    pub async fn step_batch(&mut self, state: &[u8], batch: &Batch) -> CallResult<BatchResult> {
        call!(
            self,
            "step-batch",
            func_step_batch,
            call_step_batch(state, batch)
        )
    }

    /// Calls the guest's `migrate`.
    pub async fn migrate(&mut self, change: Change, state: &[u8]) -> CallResult<Vec<u8>> {
        call!(self, "migrate", func_migrate, call_migrate(change, state))
    }
}

/// Describes a failed guest call in one line: a trap by its kind (`interrupt` for the time
/// limit, `call stack exhausted`, `unreachable` for a panic, ...), anything else with its cause.
fn call_failed(e: wasmtime::Error, call: &str) -> anyhow::Error {
    match e.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) => {
            anyhow::anyhow!("guest trapped in `{call}`: interrupted at its policy's time limit")
        }
        Some(trap) => anyhow::anyhow!("guest trapped in `{call}`: {trap}"),
        // The wasm backtrace wasmtime attaches is noise in a one-line reason: keep the cause.
        None => anyhow::anyhow!("guest failed in `{call}`: {}", wt(e).root_cause()),
    }
}

/// The one place `wasmtime::Error` becomes `anyhow::Error`.
pub(crate) fn wt(e: wasmtime::Error) -> anyhow::Error {
    anyhow::Error::from(e)
}

/// A fresh set of per-store limits for a guest.
pub(crate) fn store_limits(max_memory_bytes: usize) -> StoreLimits {
    wasmtime::StoreLimitsBuilder::new()
        .memory_size(max_memory_bytes)
        .instances(16)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direct_calls_need_a_thread_with_room_for_the_guest_stack() {
        let on_thread = |stack: usize| {
            std::thread::Builder::new()
                .stack_size(stack)
                .spawn(stack_allows_direct)
                .expect("thread starts")
                .join()
                .expect("thread ends")
        };
        assert!(!on_thread(1 << 20), "a 1 MiB thread runs guests on fibers");
        assert!(on_thread(8 << 20), "an 8 MiB thread runs them directly");
    }

    #[test]
    fn a_batch_gives_back_each_message_as_packed_and_keeps_little_space() {
        let mut batch = Batch::default();
        let sent = [
            (1, b"".to_vec()),
            (2, b"ab".to_vec()),
            (3, vec![9; 70 << 10]),
        ];
        for (sender, payload) in &sent {
            batch.push(*sender, payload);
        }
        assert_eq!(batch.len(), 3);
        assert_eq!(batch.ends, [0, 2, 2 + (70 << 10)]);
        let back: Vec<(u64, Vec<u8>)> = batch.messages().map(|m| (m.sender, m.payload)).collect();
        assert_eq!(back, sent);
        batch.clear();
        assert!(batch.is_empty() && batch.payloads.is_empty());
        assert!(
            batch.payloads.capacity() <= 64 << 10,
            "a big batch's buffer is not kept"
        );
    }
}
