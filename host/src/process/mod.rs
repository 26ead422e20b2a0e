//! A process: a pid, the module version it runs, the state the host keeps for it, a mailbox and a
//! receive timeout — and the tokio task that steps it while it has something to do.
//!
//! The task takes the next event (a control request, a message, or its timeout), then calls the
//! guest's `step` with the state and the event and keeps the state it returns. A process with
//! nothing to do waits in its mailbox without a task (one with a receive timeout waits on its
//! task), and the task goes on with a process its last step sent to, if that one was waiting so
//! (see `Process::run`). Control requests (swap, inspect, stop) are only ever handled between
//! steps, which is what makes every swap happen at a step boundary: a busy process finishes the
//! step in flight, an idle one is woken at once.
//! Messages that have piled up go to the guest together through `step-batch` (up to
//! `HostConfig::max_batch`); a batch that fails is replayed one `step` per message, so the rules
//! below apply per message either way.
//!
//! Failure rules (nothing the guest does can lose the state from before a step):
//! - a step that traps, breaks a limit or returns `err` has its effects dropped and its event
//!   dropped and reported; the process continues from the state before that step on a fresh
//!   instance, up to its policy's `max_restarts` in `restart_window_secs`, then it ends as
//!   failed (a `temporary` process ends at its first crash);
//! - a swap whose instantiate or `migrate` fails leaves the process on its version and state;
//! - after a swap the process is on probation: if its first step on the new version fails, it goes
//!   back to the old version and the state from before the swap, and the old version handles the
//!   event.

pub(crate) mod effects;
pub(crate) mod mailbox;

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::engine::{Batch, Change, Down, Event, Instance, StepResult};
use crate::host::{HostEvent, Shared};
use crate::policy::Restart;
use crate::registry::{Initialized, ModuleVersion};
use effects::StepCtx;
use mailbox::{Item, Mailbox};

/// A process identifier. Displayed Erlang-style as `<N>`; pid 0 is the host itself.
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Pid(pub u64);

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{}>", self.0)
    }
}

impl std::str::FromStr for Pid {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let digits = s.trim().trim_start_matches('<').trim_end_matches('>');
        digits
            .parse()
            .map(Pid)
            .map_err(|_| format!("`{s}` is not a pid: write it as 3 or <3>"))
    }
}

/// Why a process ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ExitReason {
    /// Its step returned `stop`.
    Normal,
    /// Stopped by the host (`stop`); `undelivered` messages were still queued.
    Stopped {
        /// Messages left in the mailbox.
        undelivered: usize,
    },
    /// `init` failed, or it crashed more often than its restart limit allows.
    Failed {
        /// The last failure.
        reason: String,
        /// Messages left in the mailbox.
        undelivered: usize,
    },
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitReason::Normal => write!(f, "normal"),
            ExitReason::Stopped { undelivered } => write!(
                f,
                "stopped by the host ({undelivered} messages undelivered)"
            ),
            ExitReason::Failed {
                reason,
                undelivered,
            } => {
                write!(f, "failed: {reason} ({undelivered} messages undelivered)")
            }
        }
    }
}

/// A snapshot of a process, taken between steps.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcessInfo {
    /// Its pid.
    pub pid: Pid,
    /// The module it runs.
    pub module: String,
    /// The version it runs.
    pub version: u32,
    /// The state the host keeps for it, as the guest last returned it.
    #[serde(skip)]
    pub state: Vec<u8>,
    /// Size of that state in bytes.
    pub state_bytes: usize,
    /// Steps completed.
    pub steps: u64,
    /// Messages it has handled.
    pub messages_in: u64,
    /// Messages it has sent.
    pub messages_out: u64,
    /// Messages waiting in its mailbox.
    pub mailbox: usize,
    /// Crashed steps it restarted from (within the current window).
    pub restarts: usize,
    /// The last failure, if any.
    pub last_error: Option<String>,
    /// `true` right after a swap, until its first step on the new version succeeds.
    pub on_probation: bool,
    /// Whether it holds a warm instance while it waits (see `HostConfig::max_cached_instances`).
    #[serde(default)]
    pub warm: bool,
}

/// Requests the host makes of a process; handled between steps, in order.
pub(crate) enum Control {
    /// Move to this version (upgrade or rollback). With `decision`, report first and move only if
    /// the decision is `true` (atomic deploys).
    Swap {
        to: Arc<ModuleVersion>,
        reply: oneshot::Sender<SwapOutcome>,
        decision: Option<oneshot::Receiver<bool>>,
    },
    /// Try the migration to this version on a copy of the state and report; change nothing.
    Trial {
        to: Arc<ModuleVersion>,
        reply: oneshot::Sender<SwapOutcome>,
    },
    /// Report a snapshot.
    Inspect(oneshot::Sender<ProcessInfo>),
    /// A monitored process ended: delivered as `event::down`, ahead of queued messages.
    Down(Down),
    /// End the process.
    Stop,
    /// The host is shutting down to resume its processes at its next start: report on `frozen`
    /// and step no more; once `save` says every process is frozen (so no step anywhere can queue
    /// a message any more), hand over the process on `saved` and end without telling monitors.
    /// If `save` is dropped instead, carry on.
    Freeze {
        frozen: oneshot::Sender<()>,
        save: oneshot::Receiver<()>,
        saved: oneshot::Sender<Saved>,
    },
}

/// A process as the host saves it at shutdown, to resume it at its next start: same pid, version,
/// state, queued messages, pending `down` events, what was left of its receive timeout, and the
/// version and state to go back to if it is on probation after a swap.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Saved {
    pub pid: Pid,
    pub module: String,
    pub version: u32,
    #[serde(with = "hex::serde")]
    pub state: Vec<u8>,
    /// Queued messages, oldest first.
    pub messages: Vec<SavedMessage>,
    /// Monitored processes that ended before the shutdown, whose `down` was not handled yet.
    pub downs: Vec<SavedDown>,
    /// Milliseconds left of the receive timeout, if one was set.
    pub timeout_ms: Option<u64>,
    pub steps: u64,
    pub messages_in: u64,
    pub messages_out: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probation: Option<SavedProbation>,
}

/// The version a [`Saved`] process goes back to, with its state, if its first step on the
/// version it was swapped to fails.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct SavedProbation {
    pub version: u32,
    #[serde(with = "hex::serde")]
    pub state: Vec<u8>,
}

/// A queued message in a [`Saved`] process.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct SavedMessage {
    pub sender: u64,
    #[serde(with = "hex::serde")]
    pub payload: Vec<u8>,
}

/// A pending `down` event in a [`Saved`] process.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct SavedDown {
    pub pid: Pid,
    pub reason: String,
}

/// One process's answer to [`Control::Swap`].
pub(crate) enum SwapOutcome {
    Moved { from: u32, pause: Duration },
    AlreadyThere,
    Stayed { version: u32, reason: String },
}

/// A process whose pid and mailbox exist but whose task has not started.
pub(crate) struct Spawning {
    pub pid: Pid,
    pub version: Arc<ModuleVersion>,
    pub mailbox: Arc<Mailbox>,
}

impl Spawning {
    /// The mailbox holds as many messages as the version's policy says (for the process's life:
    /// a later version's different cap does not resize it).
    pub fn new(pid: Pid, version: Arc<ModuleVersion>) -> Self {
        let mailbox = Mailbox::new(version.policy.mailbox);
        Self {
            pid,
            version,
            mailbox,
        }
    }

    pub fn into_process(self, shared: Arc<Shared>) -> Process {
        Process {
            pid: self.pid,
            shared,
            version: self.version,
            state: Vec::new(),
            deadline: None,
            live: None,
            cached: false,
            cold_after_swap: false,
            waits: false,
            probation: None,
            pending: VecDeque::new(),
            mailbox: self.mailbox,
            restarts: VecDeque::new(),
            steps: 0,
            messages_in: 0,
            messages_out: 0,
            last_error: None,
            saved: false,
            successor: None,
        }
    }
}

/// Told whether `init` succeeded.
pub(crate) type Started = oneshot::Sender<Result<(), String>>;

/// Payload bytes one `step-batch` call carries at most (one message over it goes alone): the
/// batch is copied into guest memory at once.
const MAX_BATCH_BYTES: usize = 1 << 20;

/// Where a swapped process goes back to if its first step on the new version fails.
struct Probation {
    version: Arc<ModuleVersion>,
    state: Vec<u8>,
}

enum Flow {
    Continue,
    Exit(ExitReason),
}

/// How [`Process::event_loop`] left off.
enum Out {
    Exit(ExitReason),
    /// Nothing to do, and no receive timeout to wait for.
    Idle,
}

/// The task-side of a process. Owned by the task running it, or by its mailbox while it waits
/// without one; nothing else touches it.
pub(crate) struct Process {
    pid: Pid,
    shared: Arc<Shared>,
    version: Arc<ModuleVersion>,
    state: Vec<u8>,
    /// When the receive timeout fires, if the last step asked for one.
    deadline: Option<Instant>,
    /// A warm instance of `version`, if the process has one.
    live: Option<Instance>,
    /// Whether `live` counts against the host's cache of idle instances.
    cached: bool,
    /// Set by a swap: when the process next waits, it drops the new version's instance rather
    /// than caching it. In a wave of swaps the next process then instantiates into that same,
    /// warm pool slot instead of a cold one (BENCHMARKS.md); its own first step after the swap
    /// instantiates again (~10 µs).
    cold_after_swap: bool,
    /// Whether a call of this process on its version has had to wait and moved to a fiber
    /// (see `engine::Instance`): its new instances then start on a fiber, rather than running
    /// every long call twice.
    waits: bool,
    probation: Option<Probation>,
    /// Events to handle before taking new ones: the event of a reverted swap, or the messages
    /// of a failed batch, replayed one step at a time.
    pending: VecDeque<Event>,
    mailbox: Arc<Mailbox>,
    restarts: VecDeque<Instant>,
    steps: u64,
    messages_in: u64,
    messages_out: u64,
    last_error: Option<String>,
    /// Handed to the host at shutdown ([`Control::Freeze`]): it ends without telling monitors.
    saved: bool,
    /// A receiver of this process's last step that was waiting without a task: this task runs
    /// it next if this process then has nothing to do, else starts it (see [`Process::run`]).
    successor: Option<Box<Process>>,
}

impl Process {
    pub fn pid(&self) -> Pid {
        self.pid
    }

    pub fn version(&self) -> &Arc<ModuleVersion> {
        &self.version
    }

    /// Starts from a remembered result of `init` (see `InitMemo`) instead of calling it.
    pub fn initialized(&mut self, init: &Initialized) {
        self.state = init.state.clone();
        self.deadline = init
            .timeout_ms
            .map(|ms| Instant::now() + Duration::from_millis(ms));
    }

    /// Starts from where a saved process was (see [`Saved`]); its queued messages are already
    /// back in its mailbox.
    /// `probation` is the module version `saved.probation` names.
    pub fn resume(&mut self, saved: Saved, probation: Option<Arc<ModuleVersion>>) {
        self.state = saved.state;
        self.probation = probation
            .zip(saved.probation)
            .map(|(version, p)| Probation {
                version,
                state: p.state,
            });
        self.deadline = saved
            .timeout_ms
            .map(|ms| Instant::now() + Duration::from_millis(ms));
        self.steps = saved.steps;
        self.messages_in = saved.messages_in;
        self.messages_out = saved.messages_out;
    }

    /// Hands the process over for saving: its state, and its mailbox, which closes.
    fn save(&mut self) -> Saved {
        let (queued, queued_downs) = self.mailbox.close_and_take();
        let mut messages = Vec::new();
        let mut downs = Vec::new();
        let mut timed_out = false;
        for event in self.pending.drain(..) {
            match event {
                Event::Message(m) => messages.push(m),
                Event::Down(d) => downs.push(d),
                Event::Timeout => timed_out = true,
            }
        }
        messages.extend(queued);
        downs.extend(queued_downs);
        let timeout_ms = if timed_out {
            Some(0)
        } else {
            self.deadline
                .map(|d| d.saturating_duration_since(Instant::now()).as_millis() as u64)
        };
        Saved {
            pid: self.pid,
            module: self.version.module.to_string(),
            version: self.version.number,
            state: std::mem::take(&mut self.state),
            messages: messages
                .into_iter()
                .map(|m| SavedMessage {
                    sender: m.sender,
                    payload: m.payload,
                })
                .collect(),
            downs: downs
                .into_iter()
                .map(|d| SavedDown {
                    pid: Pid(d.pid),
                    reason: d.reason,
                })
                .collect(),
            timeout_ms,
            steps: self.steps,
            messages_in: self.messages_in,
            messages_out: self.messages_out,
            probation: self.probation.take().map(|p| SavedProbation {
                version: p.version.number,
                state: p.state,
            }),
        }
    }

    /// Starts a task for a process that waited without one (see [`Mailbox::hold`]).
    pub fn start(self: Box<Self>) {
        self.spawn(false);
    }

    /// Starts a task that runs this process; `handed_over` as in [`Process::run`].
    fn spawn(self: Box<Self>, handed_over: bool) {
        let runtime = self.shared.runtime.clone();
        runtime.spawn(self.run(None, None, handed_over));
    }

    /// Starts the successor this process's step left, if any, on a task of its own.
    fn start_successor(&mut self) {
        if let Some(next) = self.successor.take() {
            next.start();
        }
    }

    /// Whether a receive timeout is set (a process with one cannot wait without a task).
    pub fn has_deadline(&self) -> bool {
        self.deadline.is_some()
    }

    /// The process's whole life: `init(args)` (none if [`Process::initialized`]), then one step
    /// per event until it stops — and, after it, the lives of the processes it hands its task to.
    ///
    /// A process with nothing to do and no receive timeout does not keep its task: it waits in
    /// its mailbox ([`Mailbox::hold`]) and the task ends, or goes on with the *successor* its last
    /// step left: a receiver of that step that was itself waiting so. A message and its answer then
    /// pass between two processes on one task and one thread, as in Erlang's scheduler, rather
    /// than through a wake-up and the runtime's queues (BENCHMARKS.md). Each hand-over spends a
    /// unit of tokio's cooperative budget, so a chain of them yields to other tasks in turn.
    ///
    /// What a task carries is this future: the rare paths (init, control requests,
    /// instantiating, batches, and in `engine` the calls on a fiber) are boxed where they start,
    /// so that it is about the size of a wait for the next event, and the common step (a warm
    /// instance, one message, a direct call) allocates nothing. (Not an `async fn`: its future
    /// would hold its arguments twice, as arguments and as the locals they move into.)
    #[allow(
        clippy::manual_async_fn,
        reason = "an async fn's future holds its arguments twice"
    )]
    pub fn run(
        self: Box<Self>,
        args: Option<Vec<u8>>,
        started: Option<Started>,
        handed_over: bool,
    ) -> impl Future<Output = ()> + Send {
        async move {
            let mut process = self;
            let mut out = match args {
                Some(args) => process.start_with(&args, started).await,
                None => None,
            };
            loop {
                let out = match out.take() {
                    Some(out) => out,
                    None => process.event_loop().await,
                };
                let next = process.successor.take();
                match out {
                    Out::Exit(reason) => (*process).exit(reason),
                    Out::Idle => {
                        process.park();
                        let mailbox = process.mailbox.clone();
                        if let Err(back) = mailbox.hold(process) {
                            // Something arrived meanwhile: go on with it.
                            process = back;
                            if let Some(next) = next {
                                next.start();
                            }
                            continue;
                        }
                    }
                }
                let Some(next) = next else {
                    return;
                };
                if !handed_over {
                    // The first hand-over starts a task, which puts whatever this task woke
                    // (say, a spawner awaiting `init`) where another worker can take it; only
                    // that task goes on inline. (Tokio runs a task woken by a worker next on that
                    // worker, where no other worker can take it: a chain of hand-overs on this task
                    // would keep it waiting and the other workers idle.)
                    return next.spawn(true);
                }
                process = next;
                tokio::task::coop::consume_budget().await;
            }
        }
    }

    /// Runs `init(args)` and tells `started` how it went; `Some` if the process ends there.
    async fn start_with(&mut self, args: &[u8], started: Option<Started>) -> Option<Out> {
        let flow = match Box::pin(self.init(args)).await {
            Ok(flow) => {
                if let Some(tx) = started {
                    let _ = tx.send(Ok(()));
                }
                flow
            }
            Err(reason) => {
                tracing::warn!(pid = %self.pid, module = %self.version.module, "init failed: {reason}");
                if let Some(tx) = started {
                    let _ = tx.send(Err(reason.clone()));
                }
                Flow::Exit(ExitReason::Failed {
                    reason,
                    undelivered: 0,
                })
            }
        };
        match flow {
            Flow::Exit(reason) => Some(Out::Exit(reason)),
            Flow::Continue => None,
        }
    }

    /// Steps the process until it ends, or has nothing to do and no receive timeout.
    async fn event_loop(&mut self) -> Out {
        loop {
            let wake = match self.pending.pop_front() {
                Some(event) => Wake::Event(event),
                None => match self.next_event().await {
                    Some(wake) => wake,
                    None => return Out::Idle,
                },
            };
            // Not idle, so no hand-over: the successor must not wait behind this event (a
            // control request may wait long, as a freeze for the host's save does).
            self.start_successor();
            let event = match wake {
                Wake::Event(event) => event,
                Wake::Control(control) => match Box::pin(self.control(control)).await {
                    Flow::Continue => continue,
                    Flow::Exit(reason) => return Out::Exit(reason),
                },
            };
            if let Flow::Exit(reason) = self.step(event).await {
                return Out::Exit(reason);
            }
        }
    }

    /// The next event, waited for if the process has a receive timeout; `None` if nothing is
    /// queued and it has none (it can then wait without a task).
    async fn next_event(&mut self) -> Option<Wake> {
        if self.deadline.is_none() {
            match self.mailbox.try_next() {
                Some(item) => {
                    self.unpark();
                    return Some(item.into());
                }
                None if !self.mailbox.is_closed() => return None,
                // Ending: nothing more arrives, and the process cannot be held.
                None => {}
            }
        }
        // About to wait: the successor cannot wait behind it.
        self.start_successor();
        if self.mailbox.is_empty() {
            self.park();
        }
        let wake = match self.deadline {
            // `after 0`, or a deadline already past: take what is queued, else time out now,
            // without a trip through the timer.
            Some(deadline) if deadline <= Instant::now() => match self.mailbox.try_next() {
                Some(item) => item.into(),
                None => {
                    self.deadline = None;
                    Wake::Event(Event::Timeout)
                }
            },
            Some(deadline) => tokio::select! {
                biased;
                item = self.mailbox.next() => item.into(),
                () = tokio::time::sleep_until(deadline.into()) => {
                    self.deadline = None;
                    Wake::Event(Event::Timeout)
                }
            },
            None => self.mailbox.next().await.into(),
        };
        self.unpark();
        Some(wake)
    }

    /// Keeps the warm instance while idle if the host's cache has room, else drops it, so an idle
    /// process costs only its state and mailbox.
    fn park(&mut self) {
        if self.live.is_none() || self.cached {
            return;
        }
        if std::mem::take(&mut self.cold_after_swap) {
            self.live = None;
            return;
        }
        let max = self.shared.config.max_cached_instances;
        let counter = &self.shared.cached_instances;
        if counter
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok()
        {
            self.cached = true;
        } else {
            self.live = None;
        }
    }

    fn unpark(&mut self) {
        if self.cached {
            self.cached = false;
            self.shared.cached_instances.fetch_sub(1, Ordering::AcqRel);
        }
    }

    async fn instance(&mut self) -> anyhow::Result<Instance> {
        match self.live.take() {
            Some(instance) => Ok(instance),
            None => Box::pin(self.instantiate(&self.version.clone())).await,
        }
    }

    /// A new instance of `version` for this process. (Takes no `&self` across the await: a
    /// process is `Send` but not `Sync`.)
    fn instantiate(
        &self,
        version: &ModuleVersion,
    ) -> impl Future<Output = anyhow::Result<Instance>> + Send + use<> {
        let mut ctx = StepCtx::new(self.pid, self.shared.clone(), &version.policy);
        // A swap's new version starts afresh: its calls may not wait as the old ones did.
        ctx.direct = !(self.waits && std::ptr::eq(version, &*self.version));
        let step_time = version.policy.step_time();
        let prepared = version.prepared.clone();
        let shared = self.shared.clone();
        async move { shared.engine.instantiate(&prepared, ctx, step_time).await }
    }

    async fn init(&mut self, args: &[u8]) -> Result<Flow, String> {
        let mut instance = self.instance().await.map_err(|e| format!("{e:#}"))?;
        let result = instance.init(args).await;
        let result = self.accept(&mut instance, result).map_err(|e| e.reason())?;
        if !instance.ctx().touched {
            self.version.init_memo.remember(args, &result);
        }
        let flow = self.commit(&mut instance, result);
        self.live = Some(instance);
        Ok(flow)
    }

    async fn step(&mut self, event: Event) -> Flow {
        let mut instance = match self.instance().await {
            Ok(instance) => instance,
            Err(e) => return self.step_failed(event, format!("{e:#}")),
        };
        // Messages piling up cross into the guest together (not on probation: the first step on
        // a new version stands alone, so that a failure reverts exactly one message).
        let max_batch = self.shared.config.max_batch;
        if let Event::Message(first) = &event
            && max_batch > 1
            && self.probation.is_none()
            && self.pending.is_empty()
            && self.mailbox.may_hold_messages()
        {
            let mut batch = std::mem::take(&mut instance.ctx().batch);
            batch.clear();
            batch.push(first.sender, &first.payload);
            if self
                .mailbox
                .take_into(max_batch - 1, MAX_BATCH_BYTES, &mut batch)
                > 0
            {
                return Box::pin(self.step_batch(instance, batch)).await;
            }
            instance.ctx().batch = batch;
        }
        self.mailbox.busy.store(true, Ordering::Relaxed);
        let result = instance.step(&self.state, &event).await;
        self.mailbox.busy.store(false, Ordering::Relaxed);
        match self.accept(&mut instance, result) {
            Ok(result) => {
                self.probation = None;
                self.steps += 1;
                self.messages_in += u64::from(matches!(event, Event::Message(_)));
                let flow = self.commit(&mut instance, result);
                self.live = Some(instance);
                flow
            }
            Err(failure) => {
                if let Failure::Refused(_) = failure {
                    self.live = Some(instance);
                }
                self.step_failed(event, failure.reason())
            }
        }
    }

    /// Handles several messages in one `step-batch` call. If it fails, nothing of it happened:
    /// the messages are replayed one `step` each, so the usual failure rules apply to the one
    /// at fault and the others are handled normally.
    async fn step_batch(&mut self, mut instance: Instance, batch: Batch) -> Flow {
        self.mailbox.busy.store(true, Ordering::Relaxed);
        let result = instance.step_batch(&self.state, &batch).await;
        self.mailbox.busy.store(false, Ordering::Relaxed);
        let handled = match &result {
            Ok(Ok(b)) => u64::from(b.handled).min(batch.len() as u64),
            _ => 0,
        };
        let result = result.map(|r| r.map(|b| b.next));
        match self.accept(&mut instance, result) {
            Ok(result) => {
                self.steps += handled;
                self.messages_in += handled;
                let flow = self.commit(&mut instance, result);
                instance.ctx().batch = batch;
                self.live = Some(instance);
                flow
            }
            Err(failure) => {
                self.pending.extend(batch.messages().map(Event::Message));
                if let Failure::Refused(_) = failure {
                    instance.ctx().batch = batch;
                    self.live = Some(instance);
                }
                Flow::Continue
            }
        }
    }

    /// Checks a guest call's result. A refused one has its effects dropped at once (releasing
    /// the mailbox slots its sends reserved); a good one keeps them for [`Process::commit`].
    fn accept(
        &mut self,
        instance: &mut Instance,
        result: crate::engine::CallResult<StepResult>,
    ) -> Result<StepResult, Failure> {
        self.waits |= instance.moved_to_fiber();
        let checked = self.check(result);
        if let Err(Failure::Refused(_)) = checked {
            instance.ctx().effects.clear();
        }
        checked
    }

    fn check(&self, result: crate::engine::CallResult<StepResult>) -> Result<StepResult, Failure> {
        match result {
            Err(trap) => Err(Failure::Trapped(format!("{trap:#}"))),
            Ok(Err(refusal)) => Err(Failure::Refused(format!(
                "the guest returned an error: {refusal}"
            ))),
            Ok(Ok(r)) if r.state.len() > self.version.policy.state_bytes() => {
                Err(Failure::Refused(format!(
                    "the guest returned a state of {} bytes, over its policy's limit of {} bytes",
                    r.state.len(),
                    self.version.policy.state_bytes()
                )))
            }
            Ok(Ok(r)) => Ok(r),
        }
    }

    /// Takes the state a good call returned and carries out the call's effects.
    fn commit(&mut self, instance: &mut Instance, result: StepResult) -> Flow {
        self.state = result.state;
        self.deadline = result
            .timeout_ms
            .map(|ms| Instant::now() + Duration::from_millis(ms));
        self.messages_out +=
            instance
                .ctx()
                .effects
                .commit(&self.shared, self.pid, &mut self.successor);
        if result.stop {
            Flow::Exit(ExitReason::Normal)
        } else {
            Flow::Continue
        }
    }

    fn step_failed(&mut self, event: Event, reason: String) -> Flow {
        if let Some(probation) = self.probation.take() {
            let from = self.version.number;
            self.version = probation.version;
            self.state = probation.state;
            self.live = None;
            tracing::warn!(pid = %self.pid, module = %self.version.module, from, to = self.version.number, "first step on the new version failed, reverted: {reason}");
            self.shared.emit(HostEvent::Reverted {
                pid: self.pid,
                from,
                to: self.version.number,
                reason: reason.clone(),
            });
            self.last_error = Some(reason);
            self.pending.push_front(event);
            return Flow::Continue;
        }
        let dropped = describe(&event);
        tracing::warn!(pid = %self.pid, module = %self.version.module, version = self.version.number, dropped, "step failed, restarting from the state before it: {reason}");
        self.shared.emit(HostEvent::Crashed {
            pid: self.pid,
            version: self.version.number,
            reason: reason.clone(),
            dropped,
        });
        let policy = &self.version.policy;
        let now = Instant::now();
        let window = policy.restart_window();
        self.restarts.retain(|t| now.duration_since(*t) < window);
        self.restarts.push_back(now);
        self.last_error = Some(reason.clone());
        if policy.restart == Restart::Temporary {
            let reason = format!("crashed (restart = temporary, so not restarted): {reason}");
            return Flow::Exit(ExitReason::Failed {
                reason,
                undelivered: self.mailbox.len(),
            });
        }
        if self.restarts.len() > policy.max_restarts {
            let reason = format!(
                "crashed {} times within {:?}, more than the limit of {}; last: {reason}",
                self.restarts.len(),
                window,
                policy.max_restarts
            );
            return Flow::Exit(ExitReason::Failed {
                reason,
                undelivered: self.mailbox.len(),
            });
        }
        Flow::Continue
    }

    async fn control(&mut self, control: Control) -> Flow {
        match control {
            Control::Swap {
                to,
                reply,
                decision,
            } => self.swap(to, reply, decision).await,
            Control::Trial { to, reply } => {
                let from = self.version.number;
                let started = Instant::now();
                let outcome = if to.number == from {
                    SwapOutcome::AlreadyThere
                } else {
                    match self.migrate_to(&to, !reply.is_closed()).await {
                        Ok(_) => SwapOutcome::Moved {
                            from,
                            pause: started.elapsed(),
                        },
                        Err(reason) => SwapOutcome::Stayed {
                            version: from,
                            reason,
                        },
                    }
                };
                let _ = reply.send(outcome);
            }
            Control::Inspect(reply) => {
                let _ = reply.send(self.info());
            }
            Control::Down(down) => self.pending.push_back(Event::Down(down)),
            Control::Stop => {
                return Flow::Exit(ExitReason::Stopped {
                    undelivered: self.mailbox.len(),
                });
            }
            Control::Freeze {
                frozen,
                save,
                saved,
            } => {
                let _ = frozen.send(());
                if save.await.is_err() {
                    return Flow::Continue;
                }
                let _ = saved.send(self.save());
                self.saved = true;
                return Flow::Exit(ExitReason::Stopped { undelivered: 0 });
            }
        }
        Flow::Continue
    }

    /// Moves the process to `to`. Nothing about the process changes until both the migrated state
    /// and the new instance exist. With a `decision` (atomic deploys), the process reports whether
    /// it could move, then stays paused until the deploy tells it to commit or abort.
    async fn swap(
        &mut self,
        to: Arc<ModuleVersion>,
        reply: oneshot::Sender<SwapOutcome>,
        decision: Option<oneshot::Receiver<bool>>,
    ) {
        let from = self.version.number;
        if to.number == from {
            let _ = reply.send(SwapOutcome::AlreadyThere);
            return;
        }
        let started = Instant::now();
        let (state, instance) = match self.migrate_to(&to, !reply.is_closed()).await {
            Ok(migrated) => migrated,
            Err(reason) => {
                self.last_error = Some(reason.clone());
                let _ = reply.send(SwapOutcome::Stayed {
                    version: from,
                    reason,
                });
                return;
            }
        };
        let pause = started.elapsed();
        if let Some(decision) = decision {
            let _ = reply.send(SwapOutcome::Moved { from, pause });
            if decision.await != Ok(true) {
                return;
            }
        } else {
            let _ = reply.send(SwapOutcome::Moved { from, pause });
        }
        let old_version = std::mem::replace(&mut self.version, to);
        let old_state = std::mem::replace(&mut self.state, state);
        self.probation = Some(Probation {
            version: old_version,
            state: old_state,
        });
        self.waits = instance.moved_to_fiber();
        self.live = Some(instance);
        self.cold_after_swap = true;
        let (pid, to, pause_us) = (self.pid, self.version.number, pause.as_micros() as u64);
        tracing::info!(%pid, module = %self.version.module, from, to, pause_us, "process swapped");
        self.shared.emit(HostEvent::Swapped {
            pid,
            from,
            to,
            pause_us,
        });
    }

    /// Converts the state for `to` and instantiates it. Upgrades call `migrate(upgrade-from)` on the
    /// new version; rollbacks call `migrate(downgrade-to)` on the version being left. Leaves the
    /// process's version and state as they were. The old version's instance is retired
    /// ([`Shared::retire`](crate::host::Shared::retire)): with `in_wave` (a deploy or rollback
    /// waits for this process's answer), it is dropped once the swap reached every process.
    async fn migrate_to(
        &mut self,
        to: &ModuleVersion,
        in_wave: bool,
    ) -> Result<(Vec<u8>, Instance), String> {
        let from = self.version.number;
        if to.number > from {
            // The old instance is not needed to upgrade. If the upgrade fails, the process makes
            // a new old-version instance at its next step.
            if let Some(old) = self.live.take() {
                self.shared.retire(old, in_wave);
            }
            let mut instance = self.instantiate(to).await.map_err(|e| format!("{e:#}"))?;
            let migrated = instance
                .migrate(Change::UpgradeFrom(from), &self.state)
                .await;
            let state = check_migrated(migrated, to)?;
            Ok((state, instance))
        } else {
            let mut leaving = self.instance().await.map_err(|e| format!("{e:#}"))?;
            let migrated = leaving
                .migrate(Change::DowngradeTo(to.number), &self.state)
                .await;
            let state = check_migrated(migrated, to)?;
            self.shared.retire(leaving, in_wave);
            let instance = self.instantiate(to).await.map_err(|e| format!("{e:#}"))?;
            Ok((state, instance))
        }
    }

    fn info(&self) -> ProcessInfo {
        ProcessInfo {
            pid: self.pid,
            module: self.version.module.to_string(),
            version: self.version.number,
            state: self.state.clone(),
            state_bytes: self.state.len(),
            steps: self.steps,
            messages_in: self.messages_in,
            messages_out: self.messages_out,
            mailbox: self.mailbox.len(),
            restarts: self.restarts.len(),
            last_error: self.last_error.clone(),
            on_probation: self.probation.is_some(),
            warm: self.live.is_some(),
        }
    }

    fn exit(mut self, reason: ExitReason) {
        self.unpark();
        self.mailbox.close();
        self.shared.forget(self.pid, &self.version.module);
        if self.saved {
            // Not an end: the process resumes when the host next starts.
            tracing::debug!(pid = %self.pid, "process saved");
            return;
        }
        self.shared.notify_monitors(self.pid, &reason);
        tracing::debug!(pid = %self.pid, ?reason, "process exited");
        self.shared.emit(HostEvent::Exited {
            pid: self.pid,
            reason,
            messages_in: self.messages_in,
            messages_out: self.messages_out,
        });
    }
}

enum Wake {
    Event(Event),
    Control(Control),
}

impl From<Item> for Wake {
    fn from(item: Item) -> Self {
        match item {
            Item::Control(Control::Down(down)) => Wake::Event(Event::Down(down)),
            Item::Control(control) => Wake::Control(control),
            Item::Message(message) => Wake::Event(Event::Message(message)),
        }
    }
}

/// How a guest call failed: a trap poisons the instance, a refusal (`err`, or a result over a
/// limit) leaves it usable.
enum Failure {
    Trapped(String),
    Refused(String),
}

impl Failure {
    fn reason(self) -> String {
        match self {
            Failure::Trapped(r) | Failure::Refused(r) => r,
        }
    }
}

/// Checks the state `migrate` returned against the policy of the version it is for.
fn check_migrated(
    result: crate::engine::CallResult<Vec<u8>>,
    to: &ModuleVersion,
) -> Result<Vec<u8>, String> {
    let limit = to.policy.state_bytes();
    match result {
        Err(trap) => Err(format!("{trap:#}")),
        Ok(Err(refusal)) => Err(format!("migrate refused: {refusal}")),
        Ok(Ok(state)) if state.len() > limit => Err(format!(
            "migrate returned a state of {} bytes, over the policy's limit of {limit} bytes",
            state.len()
        )),
        Ok(Ok(state)) => Ok(state),
    }
}

/// A short description of an event for reports.
fn describe(event: &Event) -> String {
    match event {
        Event::Timeout => "timeout".to_owned(),
        Event::Message(m) => {
            let text = String::from_utf8_lossy(&m.payload);
            let text: String = text.chars().take(200).collect();
            format!("message from {}: {text}", Pid(m.sender))
        }
        Event::Down(d) => format!("down of {}: {}", Pid(d.pid), d.reason),
    }
}
