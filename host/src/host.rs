//! [`Host`]: the public handle to a running hotswap host — deploy module versions, spawn processes,
//! send them messages, watch what they print, and swap their code while they run.
//!
//! The host owns every process's state and mailbox; processes are tokio tasks (see `process/`)
//! that hold a wasm instance only while they step, plus a bounded cache of warm instances.
//! How a new version reaches them (deploy, dry run, rollback) is in `host/deploy.rs`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use anyhow::Context as _;

use dashmap::DashMap;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, oneshot};

use crate::engine::{Engine, EngineConfig, Instance, Message};
use crate::error::{DeployError, SendError, SpawnError};
use crate::policy::Policy;
use crate::process::mailbox::{Mailbox, Refused};
use crate::process::{Control, ExitReason, Pid, ProcessInfo, Spawning, Started};
use crate::registry::{ModuleInfo, Registry, VersionInfo};
use crate::store::{DataDir, ModuleRecord, RegistryFile, VersionRecord};

mod deploy;
mod resume;

pub use deploy::{DeployOptions, Moved, Stayed, SwapReport};

/// Limits and sizes of a host. Defaults in [`HostConfig::default`].
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Engine ceilings (memory per instance, pool size, time limits on or off).
    pub engine: EngineConfig,
    /// The policy of modules deployed without one ([`Policy::default`]).
    pub policy: Policy,
    /// Idle processes that may keep a warm instance (the rest drop theirs and re-instantiate on
    /// their next event). Default 1,024; must stay below `engine.max_live_instances`.
    pub max_cached_instances: usize,
    /// Most queued messages handed to a guest in one `step-batch` call. Default 256 (fan-in with
    /// 16 senders: 3.3 M msgs/s at 64, 4.0 M at 256, no further gain at 1,024; BENCHMARKS.md);
    /// 1 turns batching off (one guest call per message).
    pub max_batch: usize,
    /// Where modules, their versions and compiled forms are kept across restarts. `None` (the
    /// default) keeps everything in memory.
    pub data_dir: Option<PathBuf>,
    /// Where directory grants may point: when set, a grant's host path must be relative and is
    /// taken inside this folder (created if missing), so whoever can deploy cannot open other
    /// host paths. `hotswap serve` sets `<data-dir>/dirs`. `None` (the default, and `hotswap
    /// run`): any existing host directory.
    pub dirs_root: Option<PathBuf>,
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            engine: EngineConfig::default(),
            policy: Policy::default(),
            max_cached_instances: 1024,
            max_batch: 256,
            data_dir: None,
            dirs_root: None,
        }
    }
}

/// Something that happened in the host, for whoever subscribed with [`Host::subscribe`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum HostEvent {
    /// A process printed a line.
    Output {
        /// Who printed it.
        pid: Pid,
        /// The line.
        line: String,
    },
    /// A step failed (trap, broken limit or guest error): its event was dropped, the state from
    /// before it kept, and the process restarted from that state.
    Crashed {
        /// The process.
        pid: Pid,
        /// The version it runs.
        version: u32,
        /// Why the step failed.
        reason: String,
        /// What the dropped event was (`timeout`, or `message from <N>: <payload>`).
        dropped: String,
    },
    /// A process moved to another version of its module (upgrade or rollback), at a step boundary.
    Swapped {
        /// The process.
        pid: Pid,
        /// The version it left.
        from: u32,
        /// The version it runs now.
        to: u32,
        /// How long it was paused: instantiate + migrate.
        pause_us: u64,
    },
    /// The first step on a newly swapped-in version failed: the process went back to the version
    /// and state it had before the swap, and that version handles the event.
    Reverted {
        /// The process.
        pid: Pid,
        /// The version that failed.
        from: u32,
        /// The version it went back to.
        to: u32,
        /// Why.
        reason: String,
    },
    /// A process ended.
    Exited {
        /// The process.
        pid: Pid,
        /// Why.
        reason: ExitReason,
        /// Messages it handled in its life.
        messages_in: u64,
        /// Messages it sent in its life.
        messages_out: u64,
    },
}

impl HostEvent {
    /// The process the event is about.
    pub fn pid(&self) -> Pid {
        match self {
            HostEvent::Output { pid, .. }
            | HostEvent::Swapped { pid, .. }
            | HostEvent::Crashed { pid, .. }
            | HostEvent::Reverted { pid, .. }
            | HostEvent::Exited { pid, .. } => *pid,
        }
    }
}

/// State shared by the host handle, every process task and every store.
pub(crate) struct Shared {
    pub engine: Arc<Engine>,
    pub config: HostConfig,
    pub registry: Registry,
    pub processes: DashMap<Pid, Arc<Mailbox>>,
    names: Mutex<HashMap<String, Pid>>,
    next_pid: AtomicU64,
    pub events: broadcast::Sender<HostEvent>,
    pub started: Instant,
    /// Idle processes currently holding a warm instance.
    pub cached_instances: AtomicUsize,
    /// Who monitors whom: target pid -> watchers.
    monitors: DashMap<Pid, Vec<Pid>>,
    /// Where modules persist, if anywhere; the lock orders writes of `registry.json`.
    data: Option<Mutex<DataDir>>,
    /// The runtime process tasks run on.
    pub runtime: tokio::runtime::Handle,
    /// Instances that swaps replaced, dropped once the swap reached every process
    /// ([`Shared::retire`]).
    retired: Mutex<Vec<Instance>>,
}

/// A handle to a running host. Cheap to clone; the host lives while any handle or process does.
#[derive(Clone)]
pub struct Host {
    shared: Arc<Shared>,
}

/// A handle that does not keep the host alive: [`WeakHost::upgrade`] gives the host back while
/// some [`Host`] handle or process still holds it.
#[derive(Clone)]
pub struct WeakHost(Weak<Shared>);

impl WeakHost {
    /// The host, unless it has ended (every handle dropped, and its runtime shut down or every
    /// process ended).
    pub fn upgrade(&self) -> Option<Host> {
        self.0.upgrade().map(|shared| Host { shared })
    }
}

impl Host {
    /// A handle to this host that does not keep it alive.
    pub fn downgrade(&self) -> WeakHost {
        WeakHost(Arc::downgrade(&self.shared))
    }

    /// Starts a host with `config`. Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// When the engine cannot be configured.
    pub fn new(mut config: HostConfig) -> anyhow::Result<Self> {
        let data = config.data_dir.as_deref().map(DataDir::open).transpose()?;
        if let Some(data) = &data {
            config.engine.cache_dir = Some(data.compiled_dir());
        }
        let runtime = tokio::runtime::Handle::try_current()
            .context("a host must be created inside a tokio runtime")?;
        let engine = Engine::new(config.engine.clone())?;
        let (events, _) = broadcast::channel(65_536);
        let shared = Arc::new(Shared {
            engine,
            config,
            registry: Registry::default(),
            processes: DashMap::new(),
            names: Mutex::default(),
            next_pid: AtomicU64::new(1),
            events,
            started: Instant::now(),
            cached_instances: AtomicUsize::new(0),
            monitors: DashMap::new(),
            data: data.map(Mutex::new),
            runtime: runtime.clone(),
            retired: Mutex::default(),
        });
        runtime.spawn(release_dormant_on_shutdown(Arc::downgrade(&shared)));
        let host = Self { shared };
        host.restore()?;
        let resumed = host.resume_processes()?;
        if resumed > 0 {
            tracing::info!(
                processes = resumed,
                "resumed the processes the last shutdown saved"
            );
        }
        Ok(host)
    }

    /// Loads the modules recorded in the data directory (compiled forms come from its cache).
    fn restore(&self) -> anyhow::Result<()> {
        let Some(data) = &self.shared.data else {
            return Ok(());
        };
        let data = data.lock().unwrap_or_else(|p| p.into_inner());
        let file = data.load_registry()?;
        let mut modules = self.shared.registry.lock();
        for (name, record) in file.modules {
            for (i, record) in record.versions.iter().enumerate() {
                let bytes = data.load_component(&record.sha256)?;
                let prepared = self
                    .shared
                    .engine
                    .prepare(&bytes, &record.policy.grants)
                    .with_context(|| format!("failed to load version {} of `{name}`", i + 1))?;
                Registry::add_version(&mut modules, &name, prepared, record.policy.clone(), false);
            }
            if let Some(entry) = modules.get_mut(&name)
                && entry.version(record.current).is_some()
            {
                entry.current = record.current;
            }
        }
        tracing::info!(
            modules = modules.len(),
            compiled = self.shared.engine.stats().compiled.load(Ordering::Relaxed),
            "restored modules from {}",
            data.path().display()
        );
        Ok(())
    }

    /// Writes every module's version history to the data directory, if the host has one.
    fn persist(&self) {
        let Some(data) = &self.shared.data else {
            return;
        };
        let data = data.lock().unwrap_or_else(|p| p.into_inner());
        let file = RegistryFile {
            modules: self
                .shared
                .registry
                .lock()
                .iter()
                .map(|(name, entry)| {
                    let versions = entry
                        .versions
                        .iter()
                        .map(|v| VersionRecord {
                            sha256: v.prepared.hash_hex(),
                            policy: v.policy.clone(),
                        })
                        .collect();
                    (
                        name.clone(),
                        ModuleRecord {
                            current: entry.current,
                            versions,
                        },
                    )
                })
                .collect(),
        };
        if let Err(e) = data.save_registry(&file) {
            tracing::error!(
                "the module registry was not saved; it will not survive a restart: {e:#}"
            );
        }
    }

    /// Compilation counters (a restarted host with a warm cache compiles nothing).
    pub fn compile_stats(&self) -> (u64, u64) {
        let stats = self.shared.engine.stats();
        (
            stats.compiled.load(Ordering::Relaxed),
            stats.loaded_from_disk.load(Ordering::Relaxed),
        )
    }

    /// Instances created so far: one per deploy (its check), per `init` not remembered, per
    /// swap, per restart after a crash, per idle process that gets an event without a warm
    /// instance, and per call that had to wait and moved to a fiber (see `engine::Instance`). A
    /// spawn whose `init` is remembered (see [`Host::spawn`]) creates none.
    pub fn instances_created(&self) -> u64 {
        self.shared
            .engine
            .stats()
            .instantiated
            .load(Ordering::Relaxed)
    }

    /// Live processes, without asking any of them (unlike [`Host::processes`]).
    pub fn process_count(&self) -> usize {
        self.shared.processes.len()
    }

    /// Loaded modules, without asking any process (unlike [`Host::modules`]).
    pub fn module_count(&self) -> usize {
        self.shared.registry.lock().len()
    }

    /// Events from now on: output, crashes, reverts, exits. A subscriber that falls more than
    /// 65,536 events behind misses the oldest ones (and is told so by the channel).
    pub fn subscribe(&self) -> broadcast::Receiver<HostEvent> {
        self.shared.events.subscribe()
    }

    /// Starts a process on the current version of `module` and waits for its `init`.
    ///
    /// An `init` that calls no import (no runtime function, no WASI) is a pure function of its
    /// arguments, so each version remembers its result per arguments: later spawns with the same
    /// arguments take it without creating an instance, and the process waits for its first event
    /// without a task. Such a spawn costs under a microsecond; one that runs `init` costs an
    /// instantiation (about 10 µs).
    ///
    /// # Errors
    /// When the module is unknown, or `init` fails or traps (the process then does not exist).
    pub async fn spawn(&self, module: &str, args: &[u8]) -> Result<Pid, SpawnError> {
        let spawning = self
            .shared
            .prepare_spawn(module)
            .map_err(|_| SpawnError::UnknownModule(module.to_owned()))?;
        let pid = spawning.pid;
        let (tx, rx) = oneshot::channel();
        self.shared.start(spawning, args.to_vec(), Some(tx));
        match rx.await {
            Ok(Ok(())) => Ok(pid),
            Ok(Err(reason)) => Err(SpawnError::InitFailed {
                module: module.to_owned(),
                reason,
            }),
            Err(_) => Err(SpawnError::InitFailed {
                module: module.to_owned(),
                reason: "the host stopped".into(),
            }),
        }
    }

    /// Stops every process (each after the step in flight) and waits until all have ended.
    /// Processes spawned meanwhile are stopped too. A host with a data directory saves its
    /// processes there first, and the next host started on it resumes them (`host/resume.rs`).
    pub async fn shutdown(&self) {
        self.shared.bury_retired();
        self.save_processes().await;
        // Each process is told once (one in a long step would otherwise queue a stop request
        // per round): pids below `told` were, and only processes spawned since are looked for.
        let mut told = 0;
        while !self.shared.processes.is_empty() {
            let next = self.shared.next_pid.load(Ordering::Relaxed);
            if next > told {
                let pids: Vec<Pid> = self
                    .shared
                    .processes
                    .iter()
                    .map(|e| *e.key())
                    .filter(|pid| pid.0 >= told)
                    .collect();
                for pid in pids {
                    let _ = self.stop(pid);
                }
                told = next;
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    }

    /// Queues `payload` in the mailbox of `to`, from the host (pid 0).
    ///
    /// # Errors
    /// [`SendError`] when there is no such process or its mailbox is full; nothing was queued.
    pub fn send(&self, to: Pid, payload: &[u8]) -> Result<(), SendError> {
        let mailbox = self
            .shared
            .mailbox(to)
            .ok_or(SendError::NoSuchProcess(to))?;
        let message = Message {
            sender: 0,
            payload: payload.to_vec(),
        };
        mailbox.send(message).map_err(|e| match e {
            Refused::Full => SendError::MailboxFull(to),
            Refused::Closed => SendError::NoSuchProcess(to),
        })
    }

    /// Stops a process after the step in flight; messages still queued are reported as undelivered.
    ///
    /// # Errors
    /// When there is no such process.
    pub fn stop(&self, pid: Pid) -> Result<(), SendError> {
        let handle = self
            .shared
            .processes
            .get(&pid)
            .ok_or(SendError::NoSuchProcess(pid))?;
        handle
            .control(Control::Stop)
            .map_err(|_| SendError::NoSuchProcess(pid))
    }

    /// A snapshot of one process, taken at its next step boundary (state included).
    pub async fn process(&self, pid: Pid) -> Option<ProcessInfo> {
        let (tx, rx) = oneshot::channel();
        self.shared
            .processes
            .get(&pid)?
            .control(Control::Inspect(tx))
            .ok()?;
        rx.await.ok()
    }

    /// Snapshots of every live process, ordered by pid.
    pub async fn processes(&self) -> Vec<ProcessInfo> {
        let waiting: Vec<_> = self
            .shared
            .processes
            .iter()
            .filter_map(|h| {
                let (tx, rx) = oneshot::channel();
                h.control(Control::Inspect(tx)).ok().map(|()| rx)
            })
            .collect();
        let mut out = Vec::with_capacity(waiting.len());
        for rx in waiting {
            if let Ok(info) = rx.await {
                out.push(info);
            }
        }
        out.sort_by_key(|p| p.pid);
        out
    }

    /// Loaded modules with their versions and how many processes run each.
    pub async fn modules(&self) -> Vec<ModuleInfo> {
        let processes = self.processes().await;
        let modules = self.shared.registry.lock();
        modules
            .iter()
            .map(|(name, entry)| ModuleInfo {
                name: name.clone(),
                current: entry.current,
                versions: entry
                    .versions
                    .iter()
                    .map(|v| VersionInfo {
                        version: v.number,
                        sha256: v.prepared.hash_hex(),
                        processes: processes
                            .iter()
                            .filter(|p| p.module == *name && p.version == v.number)
                            .count(),
                        policy: v.policy.clone(),
                    })
                    .collect(),
            })
            .collect()
    }

    /// The pid registered under `name`.
    pub fn whereis(&self, name: &str) -> Option<Pid> {
        self.shared.whereis(name)
    }

    /// Whether `pid` is alive and in the middle of a guest call right now.
    pub fn is_busy(&self, pid: Pid) -> bool {
        self.shared
            .processes
            .get(&pid)
            .is_some_and(|h| h.busy.load(Ordering::Relaxed))
    }
}

impl Shared {
    /// Allocates a pid and the channels of a process of `module`, on its current version.
    /// Nothing runs until [`Shared::start`].
    pub fn prepare_spawn(&self, module: &str) -> Result<Spawning, DeployError> {
        let version = Registry::current(&self.registry.lock(), module)?;
        let pid = Pid(self.next_pid.fetch_add(1, Ordering::Relaxed));
        Ok(Spawning::new(pid, version))
    }

    /// Refuses a policy the engine cannot honour.
    /// Checks `policy` against the host's ceilings and resolves its directory grants to
    /// absolute paths.
    fn check_policy(&self, mut policy: Policy) -> Result<Policy, DeployError> {
        let max = self.config.engine.max_memory_bytes;
        if policy.memory_bytes() > max {
            return Err(DeployError::Policy(format!(
                "max_memory_mib = {} is over this host's ceiling of {} MiB",
                policy.max_memory_mib,
                max >> 20
            )));
        }
        if policy.mailbox == 0 || policy.max_step_ms == 0 || policy.max_memory_mib == 0 {
            return Err(DeployError::Policy(
                "mailbox, max_step_ms and max_memory_mib must be at least 1".into(),
            ));
        }
        for dir in &mut policy.grants.dirs {
            dir.host = self.resolve_dir(&dir.host)?;
        }
        Ok(policy)
    }

    /// The absolute host path of a directory grant (see [`HostConfig::dirs_root`]).
    fn resolve_dir(&self, host: &Path) -> Result<PathBuf, DeployError> {
        let bad = |why: String| {
            DeployError::Policy(format!("directory grant `{}`: {why}", host.display()))
        };
        let path = match &self.config.dirs_root {
            Some(root) => {
                let inside = host.components().all(|c| {
                    matches!(
                        c,
                        std::path::Component::Normal(_) | std::path::Component::CurDir
                    )
                });
                if !inside {
                    return Err(bad(format!(
                        "this host only grants folders inside {}: give a relative path without `..`",
                        root.display()
                    )));
                }
                let path = root.join(host);
                std::fs::create_dir_all(&path)
                    .map_err(|e| bad(format!("cannot create {}: {e}", path.display())))?;
                path
            }
            None => host.to_path_buf(),
        };
        let path = path
            .canonicalize()
            .map_err(|e| bad(format!("{e}; create the directory first")))?;
        if !path.is_dir() {
            return Err(bad("not a directory".into()));
        }
        Ok(path)
    }

    /// Registers a prepared process and starts its task, which calls `init(args)` first unless
    /// the version remembers the result of a pure `init(args)`.
    pub fn start(self: &Arc<Self>, spawning: Spawning, args: Vec<u8>, started: Option<Started>) {
        let mailbox = spawning.mailbox.clone();
        let mut process = {
            let mut modules = self.registry.lock();
            let mut spawning = spawning;
            // A deploy may have landed between prepare_spawn and now: start on the current version.
            if let Ok(current) = Registry::current(&modules, &spawning.version.module) {
                spawning.version = current;
            }
            if let Some(entry) = modules.get_mut(&*spawning.version.module) {
                entry.pids.insert(spawning.pid);
            }
            let process = spawning.into_process(self.clone());
            self.processes.insert(process.pid(), mailbox.clone());
            process
        };
        let Some(init) = process.version().init_memo.get(&args) else {
            self.runtime
                .spawn(Box::new(process).run(Some(args), started, false));
            return;
        };
        // A pure `init` already seen with these arguments: the process is ready without an
        // instance, and without a task until its first event (unless it must start now).
        process.initialized(&init);
        if let Some(tx) = started {
            let _ = tx.send(Ok(()));
        }
        if let Err(process) = mailbox.hold(Box::new(process)) {
            process.start();
        }
    }

    /// Removes an ended process from every table.
    pub fn forget(&self, pid: Pid, module: &str) {
        self.processes.remove(&pid);
        if let Some(entry) = self.registry.lock().get_mut(module) {
            entry.pids.remove(&pid);
        }
        self.names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, p| *p != pid);
    }

    pub fn mailbox(&self, pid: Pid) -> Option<Arc<Mailbox>> {
        self.processes.get(&pid).map(|m| m.clone())
    }

    pub fn whereis(&self, name: &str) -> Option<Pid> {
        self.names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .copied()
    }

    /// Registers `name` for `pid`.
    ///
    /// # Errors
    /// When another process holds the name.
    pub fn register(&self, name: &str, pid: Pid) -> Result<(), String> {
        let mut names = self.names.lock().unwrap_or_else(|p| p.into_inner());
        match names.get(name) {
            Some(holder) if *holder != pid => Err(format!(
                "the name `{name}` is registered by process {holder}"
            )),
            _ => {
                names.insert(name.to_owned(), pid);
                Ok(())
            }
        }
    }

    pub fn output(&self, pid: Pid, line: String) {
        tracing::debug!(%pid, "{line}");
        let _ = self.events.send(HostEvent::Output { pid, line });
    }

    /// `watcher` monitors `target`: it gets a `down` event when `target` ends, at once (reason
    /// `noproc`) if `target` is not alive.
    pub fn monitor(&self, watcher: Pid, target: Pid) {
        // The check happens under the entry's lock, and an exiting process leaves the process
        // table before it takes its watchers: every watcher is either taken or told `noproc`.
        let mut watchers = self.monitors.entry(target).or_default();
        if self.processes.contains_key(&target) {
            watchers.push(watcher);
            return;
        }
        drop(watchers);
        self.monitors.remove_if(&target, |_, w| w.is_empty());
        self.deliver_down(watcher, target, "noproc".into());
    }

    /// Tells every watcher of `pid` that it ended.
    pub fn notify_monitors(&self, pid: Pid, reason: &ExitReason) {
        let Some((_, watchers)) = self.monitors.remove(&pid) else {
            return;
        };
        let reason = match reason {
            ExitReason::Normal => "normal".to_owned(),
            ExitReason::Stopped { .. } => "stopped".to_owned(),
            ExitReason::Failed { reason, .. } => format!("failed: {reason}"),
        };
        for watcher in watchers {
            self.deliver_down(watcher, pid, reason.clone());
        }
    }

    fn deliver_down(&self, watcher: Pid, pid: Pid, reason: String) {
        if let Some(handle) = self.processes.get(&watcher) {
            let _ = handle.control(Control::Down(crate::engine::Down { pid: pid.0, reason }));
        }
    }

    pub fn emit(&self, event: HostEvent) {
        let _ = self.events.send(event);
    }
}

/// Lives as long as the runtime: when the runtime shuts down, the processes waiting in their
/// mailboxes without a task are dropped, as the runtime drops every task. (Each holds the host,
/// and the host holds its mailbox: left alone, they would keep each other alive.)
async fn release_dormant_on_shutdown(shared: Weak<Shared>) {
    struct Release(Weak<Shared>);
    impl Drop for Release {
        fn drop(&mut self) {
            let Some(shared) = self.0.upgrade() else {
                return;
            };
            let held: Vec<_> = shared
                .processes
                .iter()
                .filter_map(|e| e.value().release())
                .collect();
            let retired = shared.take_retired();
            drop(shared);
            drop(held);
            drop(retired);
        }
    }
    let _release = Release(shared);
    std::future::pending::<()>().await;
}
