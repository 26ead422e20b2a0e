//! Deploys, dry runs and rollbacks: how a new version of a module reaches each of its processes
//! (the swap wave), and the report of who moved and who stayed.
//!
//! The order that cannot lose state: the component is compiled, checked against the contract and
//! instantiated once before any process is touched; each process then migrates its state into a
//! new instance at its next step boundary and keeps its old version and state if anything fails
//! (see `process::Process::swap`). The instances a wave replaces are dropped after it.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::{Host, Shared};
use crate::engine::{Instance, Prepared};
use crate::error::DeployError;
use crate::policy::Policy;
use crate::process::effects::StepCtx;
use crate::process::{Control, Pid, SwapOutcome};
use crate::registry::{ModuleVersion, Registry};

/// What a deploy or rollback did to the module's processes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SwapReport {
    /// The module.
    pub module: String,
    /// The version that is now current.
    pub version: u32,
    /// Processes now running `version`.
    pub moved: Vec<Moved>,
    /// Processes that stayed on their version, and why.
    pub stayed: Vec<Stayed>,
    /// From the start of the deploy (after compilation) until every process answered.
    pub elapsed_us: u64,
    /// `true` for a dry run: nothing was changed, `moved` lists who would move.
    pub dry_run: bool,
    /// Whether the new version became current (false for dry runs and aborted atomic deploys).
    pub committed: bool,
}

impl SwapReport {
    /// Turns the report of an atomic deploy that failed somewhere into "nobody moved".
    fn abort(&mut self) {
        self.committed = false;
        let failed = self.stayed.len();
        for m in self.moved.drain(..) {
            self.stayed.push(Stayed {
                pid: m.pid,
                version: m.from,
                reason: format!(
                    "atomic deploy aborted: {failed} other process(es) could not migrate"
                ),
            });
        }
    }
}

/// How [`Host::deploy_with`] deploys.
#[derive(Debug, Clone, Default)]
pub struct DeployOptions {
    /// Try the migration of every process on a copy of its state; change nothing.
    pub dry_run: bool,
    /// Every process moves, or none does and the current version stays.
    pub atomic: bool,
    /// The new version's policy (default: the host's default policy).
    pub policy: Option<Policy>,
}

/// A process that moved to the new version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Moved {
    /// The process.
    pub pid: Pid,
    /// The version it left.
    pub from: u32,
    /// How long the process was paused: instantiate + migrate.
    pub pause_us: u64,
}

/// A process that stayed on its version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stayed {
    /// The process.
    pub pid: Pid,
    /// The version it stays on.
    pub version: u32,
    /// Why it did not move.
    pub reason: String,
}

impl Host {
    /// Loads `bytes` as the next version of module `name` and moves every process of the module to
    /// it, each at its next step boundary (idle ones at once). The component is compiled, checked
    /// and pre-instantiated before any process is touched.
    ///
    /// # Errors
    /// [`DeployError`] when the component is refused; then nothing changed.
    pub async fn deploy(&self, name: &str, bytes: &[u8]) -> Result<SwapReport, DeployError> {
        self.deploy_with(name, bytes, DeployOptions::default())
            .await
    }

    /// [`Host::deploy`] with options: `dry_run` tries every process's migration on a copy of its
    /// state and changes nothing; `atomic` moves every process or none (and then the module's
    /// current version does not change).
    ///
    /// # Errors
    /// [`DeployError`] when the component is refused; then nothing changed.
    pub async fn deploy_with(
        &self,
        name: &str,
        bytes: &[u8],
        options: DeployOptions,
    ) -> Result<SwapReport, DeployError> {
        let policy = options
            .policy
            .unwrap_or_else(|| self.shared.config.policy.clone());
        let policy = self.shared.check_policy(policy)?;
        let prepared = self.prepare(bytes, &policy).await?;
        let started = Instant::now();
        if options.dry_run {
            return Ok(self.dry_run(name, prepared, policy, started).await);
        }
        if let Some(data) = &self.shared.data {
            let saved = data
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .save_component(bytes);
            saved.map_err(|e| DeployError::Store(format!("{e:#}")))?;
        }
        let (version, waiting, decisions) = {
            let mut modules = self.shared.registry.lock();
            let version =
                Registry::add_version(&mut modules, name, prepared, policy, !options.atomic);
            let pids = modules
                .get(name)
                .map(|e| e.pids.clone())
                .unwrap_or_default();
            // Sent under the registry lock so that concurrent deploys reach every process in
            // version order.
            let (waiting, decisions) = self.shared.send_swaps(&pids, &version, options.atomic);
            (version, waiting, decisions)
        };
        let mut report = collect_report(&self.shared, name, version.number, waiting, started).await;
        if options.atomic {
            let commit = report.stayed.is_empty();
            for decision in decisions {
                let _ = decision.send(commit);
            }
            if commit {
                self.shared.make_current(&version);
            } else {
                report.abort();
            }
        }
        self.persist();
        tracing::info!(module = name, version = version.number, hash = %version.prepared.hash_hex(), committed = report.committed, "deployed");
        Ok(report)
    }

    /// Compiles and checks `bytes`, then instantiates them once under `policy` and throws the
    /// instance away: a component whose start-up traps is refused before any process is
    /// touched, and the lazily built parts of the instance (its memory image) are ready before
    /// the first process pauses to swap.
    async fn prepare(&self, bytes: &[u8], policy: &Policy) -> Result<Prepared, DeployError> {
        let shared = self.shared.clone();
        let owned = bytes.to_vec();
        let policy = policy.clone();
        let engine = shared.engine.clone();
        let grants = policy.grants.clone();
        let prepared = tokio::task::spawn_blocking(move || engine.prepare(&owned, &grants))
            .await
            .map_err(|e| DeployError::Compile(format!("compiler task failed: {e}")))??;
        let probe = StepCtx::new(Pid(0), shared.clone(), &policy);
        shared
            .engine
            .instantiate(&prepared, probe, policy.step_time())
            .await
            .map_err(|e| DeployError::Incompatible(format!("{e:#}")))?;
        Ok(prepared)
    }

    async fn dry_run(
        &self,
        name: &str,
        prepared: Prepared,
        policy: Policy,
        started: Instant,
    ) -> SwapReport {
        let (version, waiting) = {
            let modules = self.shared.registry.lock();
            let entry = modules.get(name);
            let version = Arc::new(ModuleVersion {
                module: Arc::from(name),
                number: entry.map_or(1, |e| e.versions.len() as u32 + 1),
                prepared,
                deployed_at: std::time::SystemTime::now(),
                policy,
                init_memo: Default::default(),
            });
            let waiting = entry
                .map(|e| {
                    e.pids
                        .iter()
                        .filter_map(|pid| {
                            let (tx, rx) = oneshot::channel();
                            let handle = self.shared.processes.get(pid)?;
                            handle
                                .control(Control::Trial {
                                    to: version.clone(),
                                    reply: tx,
                                })
                                .ok()?;
                            Some((*pid, rx))
                        })
                        .collect()
                })
                .unwrap_or_default();
            (version, waiting)
        };
        let mut report = collect_report(&self.shared, name, version.number, waiting, started).await;
        report.dry_run = true;
        report.committed = false;
        report
    }

    /// Makes version `to` (default: the one before the current) current again and moves every
    /// process of the module back to it, each through `migrate(downgrade-to(to))` on the version it
    /// leaves.
    ///
    /// # Errors
    /// [`DeployError::UnknownModule`] or [`DeployError::UnknownVersion`].
    pub async fn rollback(&self, name: &str, to: Option<u32>) -> Result<SwapReport, DeployError> {
        let started = Instant::now();
        let (version, waiting) = {
            let mut modules = self.shared.registry.lock();
            let entry = modules
                .get_mut(name)
                .ok_or_else(|| DeployError::UnknownModule(name.to_owned()))?;
            let number = to.unwrap_or(entry.current.saturating_sub(1));
            let version = entry
                .version(number)
                .cloned()
                .ok_or(DeployError::UnknownVersion {
                    name: name.to_owned(),
                    version: number,
                    latest: entry.versions.len() as u32,
                })?;
            entry.current = number;
            let pids = entry.pids.clone();
            (
                version.clone(),
                self.shared.send_swaps(&pids, &version, false).0,
            )
        };
        self.persist();
        tracing::info!(module = name, version = version.number, "rolled back");
        Ok(collect_report(&self.shared, name, version.number, waiting, started).await)
    }
}

async fn collect_report(
    shared: &Shared,
    name: &str,
    version: u32,
    waiting: Vec<(Pid, oneshot::Receiver<SwapOutcome>)>,
    started: Instant,
) -> SwapReport {
    let mut report = SwapReport {
        module: name.to_owned(),
        version,
        moved: Vec::new(),
        stayed: Vec::new(),
        elapsed_us: 0,
        dry_run: false,
        committed: true,
    };
    for (pid, rx) in waiting {
        match rx.await {
            Ok(SwapOutcome::Moved { from, pause }) => {
                report.moved.push(Moved {
                    pid,
                    from,
                    pause_us: pause.as_micros() as u64,
                });
            }
            Ok(SwapOutcome::AlreadyThere) => {}
            Ok(SwapOutcome::Stayed { version, reason }) => report.stayed.push(Stayed {
                pid,
                version,
                reason,
            }),
            // The process ended before its next step boundary: nothing to move.
            Err(_) => {}
        }
    }
    report.elapsed_us = started.elapsed().as_micros() as u64;
    shared.bury_retired();
    for s in &report.stayed {
        tracing::warn!(pid = %s.pid, module = name, version = s.version, reason = %s.reason, "process stayed on its version");
    }
    report
}

impl Shared {
    /// Asks each process in `pids` to move to `version` at its next step boundary. With `atomic`,
    /// each process waits for a decision after reporting; the senders of those decisions are
    /// returned.
    #[allow(clippy::type_complexity)]
    fn send_swaps(
        &self,
        pids: &BTreeSet<Pid>,
        version: &Arc<ModuleVersion>,
        atomic: bool,
    ) -> (
        Vec<(Pid, oneshot::Receiver<SwapOutcome>)>,
        Vec<oneshot::Sender<bool>>,
    ) {
        let mut waiting = Vec::with_capacity(pids.len());
        let mut decisions = Vec::new();
        for pid in pids {
            let Some(handle) = self.processes.get(pid) else {
                continue;
            };
            let (tx, rx) = oneshot::channel();
            let decision = atomic.then(|| {
                let (decide, decision) = oneshot::channel();
                decisions.push(decide);
                decision
            });
            if handle
                .control(Control::Swap {
                    to: version.clone(),
                    reply: tx,
                    decision,
                })
                .is_ok()
            {
                waiting.push((*pid, rx));
            }
        }
        (waiting, decisions)
    }

    /// Makes `version` current after an atomic deploy committed, and moves processes spawned on an
    /// older version while the deploy was deciding.
    fn make_current(&self, version: &Arc<ModuleVersion>) {
        let mut modules = self.registry.lock();
        let Some(entry) = modules.get_mut(&*version.module) else {
            return;
        };
        if entry.current < version.number {
            entry.current = version.number;
            let pids = entry.pids.clone();
            drop(modules);
            // Those already on `version` answer AlreadyThere; nobody waits for the answers
            // (their replaced instances are dropped at once, see `Shared::retire`).
            let _ = self.send_swaps(&pids, version, false);
        }
    }

    /// Keeps an instance that a swap replaced until [`Shared::bury_retired`], when the swap has
    /// reached every process. Tearing down an instance that sat idle resets its memory, which is
    /// cache-cold by then (~20 µs); done inside the swap, it would delay every process behind it
    /// (BENCHMARKS.md). At most half the instance pool waits so; beyond that, and outside a
    /// deploy or rollback that will bury them, the instance is dropped at once.
    pub fn retire(&self, instance: Instance, in_wave: bool) {
        let max = self.engine.config().max_live_instances as usize / 2;
        let mut retired = self.retired.lock().unwrap_or_else(|p| p.into_inner());
        if in_wave && retired.len() < max {
            retired.push(instance);
        } else {
            drop(retired);
            drop(instance);
        }
    }

    /// Drops the instances swaps replaced, on a blocking thread (not a runtime worker).
    pub fn bury_retired(&self) {
        let retired = self.take_retired();
        if !retired.is_empty() {
            self.runtime.spawn_blocking(move || drop(retired));
        }
    }

    pub(super) fn take_retired(&self) -> Vec<Instance> {
        std::mem::take(&mut *self.retired.lock().unwrap_or_else(|p| p.into_inner()))
    }
}
