//! A graceful shutdown saves every process to the data directory, and the next start resumes
//! them: same pids, versions, states, queued messages, names and monitors. Upgrading the host
//! binary then costs its processes nothing, as swapping their code does.
//!
//! Saving happens in two rounds, so no message can fall between them: first every process is
//! asked to freeze (each finishes the step in flight, then steps no more; processes those steps
//! spawn are asked too), and only once all are frozen, so that no step anywhere can queue another
//! message, does each hand over its state and mailbox. A host killed without a shutdown saves
//! nothing: at its next start it has its modules, not its processes.

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use anyhow::Context as _;
use tokio::sync::oneshot;

use super::Host;
use crate::engine::{Down, Message};
use crate::process::mailbox::Mailbox;
use crate::process::{Control, Pid, Saved, Spawning};
use crate::store::ProcessesFile;

impl Host {
    /// Freezes every process, then saves them all in the data directory's `processes.json`
    /// and lets them end (monitors are not told: the processes are not gone). With no process
    /// to save, writes nothing.
    pub(super) async fn save_processes(&self) {
        let shared = &self.shared;
        let Some(data) = &shared.data else {
            return;
        };
        let mut asked = HashSet::new();
        let mut frozen = Vec::new();
        loop {
            let pids: Vec<Pid> = shared
                .processes
                .iter()
                .map(|e| *e.key())
                .filter(|pid| !asked.contains(pid))
                .collect();
            if pids.is_empty() {
                break;
            }
            let mut waiting = Vec::with_capacity(pids.len());
            for pid in pids {
                asked.insert(pid);
                let (frozen_tx, frozen_rx) = oneshot::channel();
                let (save_tx, save_rx) = oneshot::channel();
                let (saved_tx, saved_rx) = oneshot::channel();
                let control = Control::Freeze {
                    frozen: frozen_tx,
                    save: save_rx,
                    saved: saved_tx,
                };
                if shared
                    .mailbox(pid)
                    .is_some_and(|m| m.control(control).is_ok())
                {
                    waiting.push((frozen_rx, save_tx, saved_rx));
                }
            }
            for (frozen_rx, save_tx, saved_rx) in waiting {
                // An error: the process ended before its next step boundary.
                if frozen_rx.await.is_ok() {
                    frozen.push((save_tx, saved_rx));
                }
            }
        }
        // Every process is frozen: names and monitors cannot change any more.
        let names = shared
            .names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(name, pid)| (name.clone(), *pid))
            .collect();
        let monitors = shared
            .monitors
            .iter()
            .map(|e| (*e.key(), e.value().clone()))
            .collect();
        let handing: Vec<_> = frozen
            .into_iter()
            .map(|(save, saved)| {
                let _ = save.send(());
                saved
            })
            .collect();
        let mut processes = Vec::with_capacity(handing.len());
        for saved in handing {
            if let Ok(saved) = saved.await {
                processes.push(saved);
            }
        }
        if processes.is_empty() {
            // Nothing to save, and a file an earlier shutdown wrote must not be overwritten.
            return;
        }
        processes.sort_by_key(|p| p.pid);
        let file = ProcessesFile {
            next_pid: shared.next_pid.load(Ordering::Relaxed),
            names,
            monitors,
            processes,
        };
        let data = data.lock().unwrap_or_else(|p| p.into_inner());
        match data.save_processes(&file) {
            Ok(()) => tracing::info!(
                processes = file.processes.len(),
                "saved the processes; the next start resumes them"
            ),
            Err(e) => tracing::error!(
                processes = file.processes.len(),
                "the processes could not be saved and are lost: {e:#}"
            ),
        }
    }

    /// Resumes the processes the last shutdown saved, then removes their file.
    ///
    /// # Errors
    /// When the file cannot be read, names a module version this host does not have, or
    /// cannot be removed; then no process was resumed.
    pub(super) fn resume_processes(&self) -> anyhow::Result<usize> {
        let shared = &self.shared;
        let Some(data) = &shared.data else {
            return Ok(0);
        };
        let data = data.lock().unwrap_or_else(|p| p.into_inner());
        let Some(file) = data.load_processes()? else {
            return Ok(0);
        };
        // Every version first: a file this host cannot fully resume stays untouched.
        let versions = {
            let modules = shared.registry.lock();
            let version = |saved: &Saved, number: u32| {
                modules
                    .get(&saved.module)
                    .and_then(|e| e.version(number))
                    .cloned()
                    .with_context(|| {
                        format!(
                            "process {} saved at shutdown needs version {number} of `{}`, which \
                             this host does not have (was registry.json replaced?); restore the \
                             data dir or move processes.json aside",
                            saved.pid, saved.module
                        )
                    })
            };
            file.processes
                .iter()
                .map(|saved| {
                    let probation = saved.probation.as_ref().map(|p| version(saved, p.version));
                    Ok((version(saved, saved.version)?, probation.transpose()?))
                })
                .collect::<anyhow::Result<Vec<_>>>()?
        };
        data.remove_processes()?;
        shared.next_pid.fetch_max(file.next_pid, Ordering::Relaxed);
        shared
            .names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(file.names);
        for (target, watchers) in file.monitors {
            shared.monitors.insert(target, watchers);
        }
        let count = file.processes.len();
        // Every process is in the tables before any runs: a first step may send to any of them.
        let mut resumed = Vec::with_capacity(count);
        {
            let mut modules = shared.registry.lock();
            for (mut saved, (version, probation)) in file.processes.into_iter().zip(versions) {
                let mailbox = Mailbox::new(version.policy.mailbox);
                mailbox.restore(saved.messages.drain(..).map(|m| Message {
                    sender: m.sender,
                    payload: m.payload,
                }));
                for down in saved.downs.drain(..) {
                    let _ = mailbox.control(Control::Down(Down {
                        pid: down.pid.0,
                        reason: down.reason,
                    }));
                }
                if let Some(entry) = modules.get_mut(&saved.module) {
                    entry.pids.insert(saved.pid);
                }
                shared.processes.insert(saved.pid, mailbox.clone());
                let spawning = Spawning {
                    pid: saved.pid,
                    version,
                    mailbox,
                };
                resumed.push((spawning, saved, probation));
            }
        }
        for (spawning, saved, probation) in resumed {
            let mailbox = spawning.mailbox.clone();
            let mut process = spawning.into_process(shared.clone());
            process.resume(saved, probation);
            if let Err(process) = mailbox.hold(Box::new(process)) {
                process.start();
            }
        }
        Ok(count)
    }
}
