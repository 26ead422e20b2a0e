//! Modules and their numbered versions, which version is current, and which processes run each
//! module.
//!
//! One lock guards all of it so that a deploy and a spawn cannot interleave: a process spawned on
//! the old version is always in the set the deploy then swaps. Every version stays loaded while the
//! host runs (hotswap kills nobody still running old code, and rollback needs the old versions).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use serde::Serialize;

use crate::engine::{Prepared, StepResult};
use crate::error::DeployError;
use crate::policy::Policy;
use crate::process::Pid;

/// One version of a module: a checked, pre-instantiated component.
pub struct ModuleVersion {
    /// The module's name.
    pub module: Arc<str>,
    /// 1, 2, 3, ... in deploy order.
    pub number: u32,
    /// The compiled component, ready to instantiate.
    pub prepared: Prepared,
    /// When it was deployed.
    pub deployed_at: SystemTime,
    /// The limits and supervision its processes run under.
    pub policy: Policy,
    /// Results of its pure `init` calls, by arguments.
    pub(crate) init_memo: InitMemo,
}

/// Results of `init` remembered by their arguments, for the calls that were pure functions of them.
///
/// Every fresh instance of a version starts in the same state and wasm is deterministic, so an
/// `init` that called no import at all (no runtime function, no WASI) returns the same result
/// every time it gets the same arguments. A spawn with arguments seen before starts from that
/// result without instantiating the component: the process exists with its state and mailbox,
/// and gets an instance at its first event, as any idle process does. An `init` that asked for
/// its pid, sent, printed, read a clock or used WASI is called for every spawn.
#[derive(Default)]
pub(crate) struct InitMemo(Mutex<HashMap<Box<[u8]>, Arc<Initialized>>>);

/// A remembered `init` result (its effects were none, and it did not stop).
pub(crate) struct Initialized {
    pub state: Vec<u8>,
    pub timeout_ms: Option<u64>,
}

impl InitMemo {
    /// Distinct argument lists remembered per version; past that, new ones are not remembered.
    const MAX_ENTRIES: usize = 64;
    /// Largest arguments and state remembered.
    const MAX_ARGS_BYTES: usize = 4 << 10;
    const MAX_STATE_BYTES: usize = 64 << 10;

    pub fn get(&self, args: &[u8]) -> Option<Arc<Initialized>> {
        if args.len() > Self::MAX_ARGS_BYTES {
            return None;
        }
        let memo = self.0.lock().unwrap_or_else(|p| p.into_inner());
        memo.get(args).cloned()
    }

    /// Remembers the result of an `init(args)` that called no import.
    pub fn remember(&self, args: &[u8], result: &StepResult) {
        if result.stop
            || args.len() > Self::MAX_ARGS_BYTES
            || result.state.len() > Self::MAX_STATE_BYTES
        {
            return;
        }
        let mut memo = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if memo.len() < Self::MAX_ENTRIES {
            memo.entry(args.into()).or_insert_with(|| {
                Arc::new(Initialized {
                    state: result.state.clone(),
                    timeout_ms: result.timeout_ms,
                })
            });
        }
    }
}

/// A module's versions and its processes.
pub(crate) struct ModuleEntry {
    pub versions: Vec<Arc<ModuleVersion>>,
    /// Index + 1 of the version new processes start on.
    pub current: u32,
    pub pids: BTreeSet<Pid>,
}

impl ModuleEntry {
    pub fn current(&self) -> &Arc<ModuleVersion> {
        &self.versions[self.current as usize - 1]
    }

    pub fn version(&self, number: u32) -> Option<&Arc<ModuleVersion>> {
        number
            .checked_sub(1)
            .and_then(|i| self.versions.get(i as usize))
    }
}

/// All loaded modules by name.
#[derive(Default)]
pub(crate) struct Registry {
    modules: Mutex<BTreeMap<String, ModuleEntry>>,
}

impl Registry {
    pub fn lock(&self) -> MutexGuard<'_, BTreeMap<String, ModuleEntry>> {
        self.modules.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds `prepared` as the next version of `name`, current if `make_current` (or if it is the
    /// module's first version).
    pub fn add_version(
        modules: &mut BTreeMap<String, ModuleEntry>,
        name: &str,
        prepared: Prepared,
        policy: Policy,
        make_current: bool,
    ) -> Arc<ModuleVersion> {
        let entry = modules
            .entry(name.to_owned())
            .or_insert_with(|| ModuleEntry {
                versions: Vec::new(),
                current: 0,
                pids: BTreeSet::new(),
            });
        let number = entry.versions.len() as u32 + 1;
        let version = Arc::new(ModuleVersion {
            module: Arc::from(name),
            number,
            prepared,
            deployed_at: SystemTime::now(),
            policy,
            init_memo: InitMemo::default(),
        });
        entry.versions.push(version.clone());
        if make_current || entry.current == 0 {
            entry.current = number;
        }
        version
    }

    /// Looks up a module's current version.
    ///
    /// # Errors
    /// [`DeployError::UnknownModule`] when no module has that name.
    pub fn current(
        modules: &BTreeMap<String, ModuleEntry>,
        name: &str,
    ) -> Result<Arc<ModuleVersion>, DeployError> {
        modules
            .get(name)
            .map(|e| e.current().clone())
            .ok_or_else(|| DeployError::UnknownModule(name.to_owned()))
    }
}

/// What `modules` reports about one module.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct ModuleInfo {
    /// The module's name.
    pub name: String,
    /// The version new processes start on.
    pub current: u32,
    /// Every loaded version, oldest first.
    pub versions: Vec<VersionInfo>,
}

/// What `modules` reports about one version.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct VersionInfo {
    /// The version number.
    pub version: u32,
    /// sha256 of the component, hex.
    pub sha256: String,
    /// How many live processes run it.
    pub processes: usize,
    /// Its policy.
    pub policy: Policy,
}
