//! `hotswap run`: a host in the foreground. One process per component file; what processes print
//! goes to stdout prefixed by their pid; `--watch` deploys a file again whenever it changes, so a
//! rebuilt guest is swapped into the running process.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use notify::{RecursiveMode, Watcher as _};
use tokio::sync::{broadcast, mpsc};

use super::policy::PolicyArgs;
use crate::{Host, HostConfig, HostEvent};

/// Run components as processes in the foreground, printing what they print, prefixed by pid.
///
/// Each FILE becomes a module named after the file (`counter-v1.wasm` -> `counter-v1`) and one
/// process of it. Stops when every process has ended, or on Ctrl-C.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  hotswap examples --out ex\n  hotswap run ex/counter-v1.wasm ex/ticker.wasm --arg '' --arg '{\"interval_ms\": 500}' --watch\n  # then, in another terminal: cp ex/counter-v2.wasm ex/counter-v1.wasm"
)]
pub struct Run {
    /// Component files (`.wasm`, built for wasm32-wasip2).
    #[arg(required = true, value_name = "FILE.wasm")]
    files: Vec<PathBuf>,
    /// Init arguments, one per file in order (bytes given to `init`; the Rust SDK reads JSON,
    /// and an empty argument means the module's defaults).
    #[arg(long = "arg", value_name = "A")]
    args: Vec<String>,
    /// Deploy a file again whenever it changes on disk, swapping its process to the new code.
    #[arg(long)]
    watch: bool,
    /// The policy of every module (default: the host's default policy).
    #[command(flatten)]
    policy: PolicyArgs,
}

impl Run {
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        if self.args.len() > self.files.len() {
            bail!(
                "{} --arg values for {} files: give at most one per file, in order",
                self.args.len(),
                self.files.len()
            );
        }
        let policy = self.policy.resolve()?;
        let host = Host::new(HostConfig {
            policy: policy.unwrap_or_default(),
            ..HostConfig::default()
        })?;
        let mut events = host.subscribe();
        let mut modules = HashMap::new();
        for (i, file) in self.files.iter().enumerate() {
            let name = module_name(file)?;
            if modules.values().any(|n| *n == name) {
                bail!("two files would both be module `{name}`: rename one");
            }
            let bytes = std::fs::read(file)
                .with_context(|| format!("failed to read {}", file.display()))?;
            host.deploy(&name, &bytes)
                .await
                .with_context(|| format!("failed to load {}", file.display()))?;
            let args = self.args.get(i).map(String::as_str).unwrap_or("");
            let pid = host.spawn(&name, args.as_bytes()).await?;
            eprintln!("{pid} started: module `{name}` from {}", file.display());
            modules.insert(canonical(file), name);
        }

        let (changed_tx, mut changed) = mpsc::unbounded_channel();
        let _watcher = if self.watch {
            Some(watch(&modules, changed_tx)?)
        } else {
            None
        };
        let mut alive = host.processes().await.len();
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Ok(event) => {
                        if let HostEvent::Exited { .. } = event {
                            alive -= 1;
                        }
                        report(&event);
                        if alive == 0 {
                            eprintln!("every process has ended");
                            return Ok(ExitCode::SUCCESS);
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => eprintln!("({n} lines skipped: output too fast)"),
                    Err(broadcast::error::RecvError::Closed) => return Ok(ExitCode::SUCCESS),
                },
                Some(path) = changed.recv() => {
                    // Editors and compilers write in bursts: let the file settle.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    while changed.try_recv().is_ok() {}
                    redeploy(&host, &modules, &path).await;
                }
                _ = tokio::signal::ctrl_c() => {
                    eprintln!("interrupted");
                    return Ok(ExitCode::from(130));
                }
            }
        }
    }
}

fn module_name(file: &Path) -> anyhow::Result<String> {
    file.file_stem()
        .and_then(|s| s.to_str())
        .map(str::to_owned)
        .with_context(|| format!("cannot name a module after {}", file.display()))
}

fn canonical(file: &Path) -> PathBuf {
    file.canonicalize().unwrap_or_else(|_| file.to_path_buf())
}

/// Watches the directories of the files (so that files replaced by rename are seen too).
fn watch(
    modules: &HashMap<PathBuf, String>,
    changed: mpsc::UnboundedSender<PathBuf>,
) -> anyhow::Result<notify::RecommendedWatcher> {
    let files: Vec<PathBuf> = modules.keys().cloned().collect();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if event.kind.is_access() {
            return;
        }
        for path in event.paths {
            if files.contains(&canonical(&path)) {
                let _ = changed.send(canonical(&path));
            }
        }
    })
    .context("failed to start watching files")?;
    for file in modules.keys() {
        let dir = file.parent().unwrap_or(Path::new("."));
        watcher
            .watch(dir, RecursiveMode::NonRecursive)
            .with_context(|| format!("failed to watch {}", dir.display()))?;
    }
    Ok(watcher)
}

async fn redeploy(host: &Host, modules: &HashMap<PathBuf, String>, path: &Path) {
    let Some(name) = modules.get(path) else {
        return;
    };
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => return eprintln!("{} changed but cannot be read: {e}", path.display()),
    };
    match host.deploy(name, &bytes).await {
        Ok(report) => {
            eprintln!(
                "{} changed: module `{name}` is now version {}",
                path.display(),
                report.version
            );
            for m in &report.stayed {
                eprintln!("  {} stayed on version {}: {}", m.pid, m.version, m.reason);
            }
        }
        Err(e) => eprintln!(
            "{} changed but was not loaded (processes keep running the old code): {e}",
            path.display()
        ),
    }
}

fn report(event: &HostEvent) {
    match event {
        HostEvent::Output { pid, line } => println!("{pid} {line}"),
        HostEvent::Swapped {
            pid,
            from,
            to,
            pause_us,
        } => {
            eprintln!("{pid} swapped from version {from} to {to} (paused {pause_us} µs)");
        }
        HostEvent::Crashed {
            pid,
            reason,
            dropped,
            ..
        } => {
            eprintln!(
                "{pid} step failed, restarted from the state before it (dropped {dropped}): {reason}"
            );
        }
        HostEvent::Reverted {
            pid,
            from,
            to,
            reason,
        } => {
            eprintln!("{pid} version {from} failed its first step, back on version {to}: {reason}");
        }
        HostEvent::Exited { pid, reason, .. } => eprintln!("{pid} exited: {reason}"),
    }
}
