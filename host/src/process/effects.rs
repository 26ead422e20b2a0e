//! The host side of the runtime interface (`hotswap:process/runtime` in `wit/`), and the effects a
//! guest call makes.
//!
//! A step is a transaction: `send`, `spawn`, `register` and `print` are checked when the guest calls
//! them but only recorded here; [`Effects::commit`] carries them out after the step returned `ok`.
//! A step that fails or traps has its effects dropped, so retrying or reverting it cannot duplicate
//! a message. A `send` reserves a slot in the receiver's mailbox at call time, so a committed send
//! can never find the mailbox full.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use wasmtime::StoreLimits;

use crate::engine::{Batch, Level, Message, Payloads, RuntimeHost, SendError};
use crate::host::Shared;
use crate::policy::{Grants, Policy};
use crate::process::mailbox::{Mailbox, Refused, Reserved};
use crate::process::{Pid, Process, Spawning};
use crate::wasi::WasiState;

/// Per-store data: who is calling, what the call has done so far, the store's limits, and its
/// WASI state (built on the first WASI call: most guests never make one).
pub struct StepCtx {
    pub(crate) pid: Pid,
    pub(crate) effects: Effects,
    pub(crate) shared: Arc<Shared>,
    pub(crate) limits: StoreLimits,
    max_message_bytes: usize,
    /// Epoch ticks the current call has run, and how many it may run.
    pub(crate) ticks: u64,
    pub(crate) max_ticks: u64,
    /// Whether the store's calls run directly rather than on a fiber (see `engine::Instance`);
    /// before instantiation, whether they may.
    pub(crate) direct: bool,
    grants: Grants,
    wasi: Option<Box<WasiState>>,
    /// Whether the guest has called any import (runtime or WASI) in this store. A fresh
    /// instance's `init` that did not is a pure function of its arguments (see `InitMemo`).
    pub(crate) touched: bool,
    /// The process this store last sent to, and its mailbox.
    last_receiver: Option<(Pid, Arc<Mailbox>)>,
    /// The buffers `step-batch` packs messages into, kept with the instance between steps.
    pub(crate) batch: Batch,
}

impl StepCtx {
    pub(crate) fn new(pid: Pid, shared: Arc<Shared>, policy: &Policy) -> Self {
        let limits = crate::engine::store_limits(policy.memory_bytes());
        Self {
            pid,
            effects: Effects::default(),
            shared,
            limits,
            max_message_bytes: policy.message_bytes(),
            ticks: 0,
            max_ticks: 0,
            direct: true,
            grants: policy.grants.clone(),
            wasi: None,
            touched: false,
            last_receiver: None,
            batch: Batch::default(),
        }
    }

    /// The context for a new store that takes over from this one in the middle of a call (see
    /// `engine::Instance`): the same process, limits and ticks already run, none of the effects
    /// or WASI state of the abandoned call, and calls on a fiber.
    pub(crate) fn renewed(&self) -> Self {
        Self {
            pid: self.pid,
            effects: Effects::default(),
            shared: self.shared.clone(),
            limits: self.limits.clone(),
            max_message_bytes: self.max_message_bytes,
            ticks: self.ticks,
            max_ticks: self.max_ticks,
            direct: false,
            grants: self.grants.clone(),
            wasi: None,
            touched: false,
            last_receiver: self.last_receiver.clone(),
            batch: Batch::default(),
        }
    }

    /// This store's WASI state, built on first use.
    pub(crate) fn wasi(&mut self) -> &mut WasiState {
        self.touched = true;
        let grants = &self.grants;
        self.wasi
            .get_or_insert_with(|| Box::new(WasiState::new(grants)))
    }

    /// Records a message to `to`, reserving its slot in the receiver's mailbox now.
    fn queue(&mut self, to: Pid, payload: Vec<u8>) -> Result<(), SendError> {
        let mailbox = mailbox_of(&mut self.last_receiver, &self.effects, &self.shared, to)?;
        mailbox.reserve().map_err(|e| match e {
            Refused::Full => SendError::MailboxFull,
            Refused::Closed => SendError::NoSuchProcess,
        })?;
        let receiver = self.effects.reserved_in(to, mailbox, 1);
        let sender = self.pid.0;
        self.effects
            .items
            .push(Effect::Send(receiver, Message { sender, payload }));
        Ok(())
    }

    /// Records the messages `payloads` holds to `to`, as many as its mailbox has room for from
    /// the first; returns how many.
    fn queue_many(&mut self, to: Pid, payloads: &[&[u8]]) -> Result<u32, SendError> {
        let mailbox = mailbox_of(&mut self.last_receiver, &self.effects, &self.shared, to)?;
        let granted = mailbox
            .reserve_many(payloads.len())
            .map_err(|_| SendError::NoSuchProcess)?;
        if granted == 0 {
            return Ok(0);
        }
        let receiver = self.effects.reserved_in(to, mailbox, granted);
        let sender = self.pid.0;
        self.effects
            .items
            .extend(payloads[..granted].iter().map(|payload| {
                let payload = payload.to_vec();
                Effect::Send(receiver, Message { sender, payload })
            }));
        Ok(u32::try_from(granted).unwrap_or(u32::MAX))
    }

    /// Checks a message's size against the policy and the call's total.
    fn check_size(&self, bytes: usize) -> anyhow::Result<()> {
        if bytes > self.max_message_bytes {
            anyhow::bail!(
                "sent a message of {bytes} bytes, over its policy's max_message_kib ({} bytes)",
                self.max_message_bytes
            );
        }
        Ok(())
    }

    /// Counts `bytes` more sent by this call.
    fn count_sent(&mut self, bytes: usize) -> anyhow::Result<()> {
        self.effects.sent_bytes += bytes;
        if self.effects.sent_bytes > MAX_SENT_BYTES_PER_CALL {
            anyhow::bail!("sent more than {MAX_SENT_BYTES_PER_CALL} bytes of messages in one call");
        }
        Ok(())
    }

    /// Turns what the guest wrote to stdout/stderr so far into output lines. Called before each
    /// `print` and at the end of each call, so both kinds of output keep their order.
    pub(crate) fn collect_output(&mut self) {
        let Some(wasi) = &self.wasi else {
            return;
        };
        let bytes = wasi.take_output();
        if bytes.is_empty() {
            return;
        }
        for line in String::from_utf8_lossy(&bytes).lines() {
            self.effects.print(line.to_owned());
        }
    }
}

/// Output one guest call may print; the rest is dropped with a note.
const MAX_PRINT_BYTES_PER_CALL: usize = 1 << 20;
/// Processes one guest call may spawn; further `spawn` calls fail.
const MAX_SPAWNS_PER_CALL: usize = 1000;
/// Payload bytes one guest call may send in all; more fails the call.
const MAX_SENT_BYTES_PER_CALL: usize = 64 << 20;

/// Effects recorded during one guest call, in call order.
#[derive(Default)]
pub struct Effects {
    items: Vec<Effect>,
    /// The mailboxes this call's sends reserved slots in (a send names its receiver by index).
    receivers: Vec<Reserved>,
    printed: usize,
    sent_bytes: usize,
    spawns: usize,
}

enum Effect {
    Send(usize, Message),
    Spawn(Box<Spawning>, Vec<u8>),
    Register(String),
    Monitor(Pid),
    Print(String),
}

impl Effects {
    /// Drops the effects recorded (releasing their reserved mailbox slots); keeps the space.
    pub(crate) fn clear(&mut self) {
        self.items.clear();
        self.receivers.clear();
        self.printed = 0;
        self.sent_bytes = 0;
        self.spawns = 0;
    }

    /// Carries out the effects of a committed step made by `pid`; returns how many messages it
    /// sent. Consecutive messages to one process are delivered together. The first receiver found
    /// waiting without a task goes to `next` for the caller's task to run (see
    /// `Process::run`); any other is started on a task of its own.
    pub(crate) fn commit(
        &mut self,
        shared: &Arc<Shared>,
        pid: Pid,
        next: &mut Option<Box<Process>>,
    ) -> u64 {
        let mut sent = 0;
        let mut items = self.items.drain(..).peekable();
        while let Some(effect) = items.next() {
            match effect {
                Effect::Send(to, message) => {
                    let receiver = &mut self.receivers[to];
                    let mut delivery = receiver.mailbox.deliver();
                    delivery.push(message);
                    let mut delivered = 1;
                    while let Some(Effect::Send(next, _)) = items.peek()
                        && *next == to
                    {
                        let Some(Effect::Send(_, message)) = items.next() else {
                            unreachable!("peeked a send");
                        };
                        delivery.push(message);
                        delivered += 1;
                    }
                    if let Some(dormant) = delivery.finish() {
                        match next {
                            None => *next = Some(dormant),
                            Some(_) => dormant.start(),
                        }
                    }
                    receiver.slots -= delivered;
                    sent += delivered as u64;
                }
                Effect::Spawn(spawning, args) => shared.start(*spawning, args, None),
                Effect::Register(name) => {
                    if let Err(e) = shared.register(&name, pid) {
                        tracing::warn!(%pid, name, "registration lost a race: {e}");
                    }
                }
                Effect::Monitor(target) => shared.monitor(pid, target),
                Effect::Print(line) => shared.output(pid, line),
            }
        }
        drop(items);
        self.receivers.clear();
        sent
    }

    /// Counts `slots` more reserved in `mailbox` (of process `to`); returns its index in
    /// `receivers`. Looks only at the last few receivers: a step that sends to many processes
    /// may list one twice, which costs an entry, not correctness.
    fn reserved_in(&mut self, to: Pid, mailbox: &Arc<Mailbox>, slots: usize) -> usize {
        let recent = self.receivers.len().saturating_sub(4);
        if let Some(i) = self.receivers[recent..].iter().rposition(|r| r.pid == to.0) {
            self.receivers[recent + i].slots += slots;
            return recent + i;
        }
        self.receivers.push(Reserved {
            pid: to.0,
            mailbox: mailbox.clone(),
            slots,
        });
        self.receivers.len() - 1
    }

    /// Records a line of output. Output is bounded per call so that a guest cannot grow the
    /// host's memory through it.
    fn print(&mut self, line: String) {
        if self.printed > MAX_PRINT_BYTES_PER_CALL {
            return;
        }
        self.printed += line.len();
        let line = if self.printed > MAX_PRINT_BYTES_PER_CALL {
            format!("[output of this step truncated at {MAX_PRINT_BYTES_PER_CALL} bytes]")
        } else {
            line
        };
        self.items.push(Effect::Print(line));
    }

    /// The mailbox of a process this same step spawned (it is not in the process table yet).
    fn pending_mailbox(&self, pid: Pid) -> Option<&Arc<Mailbox>> {
        if self.spawns == 0 {
            return None;
        }
        self.items.iter().find_map(|e| match e {
            Effect::Spawn(s, _) if s.pid == pid => Some(&s.mailbox),
            _ => None,
        })
    }
}

impl crate::engine::bindings_types::Host for StepCtx {}

/// Every import sets `touched` first: an `init` is remembered only if it called none (WASI calls
/// set it in [`StepCtx::wasi`]).
impl RuntimeHost for StepCtx {
    fn self_pid(&mut self) -> u64 {
        self.touched = true;
        self.pid.0
    }

    fn send(&mut self, to: u64, payload: Vec<u8>) -> anyhow::Result<Result<(), SendError>> {
        self.touched = true;
        self.check_size(payload.len())?;
        self.count_sent(payload.len())?;
        Ok(self.queue(Pid(to), payload))
    }

    fn send_many(&mut self, to: u64, messages: Payloads) -> anyhow::Result<Result<u32, SendError>> {
        self.touched = true;
        let payloads = unpack(&messages).map_err(|e| anyhow::anyhow!("send-many: {e}"))?;
        for payload in &payloads {
            self.check_size(payload.len())?;
        }
        self.count_sent(messages.bytes.len())?;
        Ok(self.queue_many(Pid(to), &payloads))
    }

    fn spawn(&mut self, module: String, args: Vec<u8>) -> Result<u64, String> {
        self.touched = true;
        if self.effects.spawns >= MAX_SPAWNS_PER_CALL {
            return Err(format!("at most {MAX_SPAWNS_PER_CALL} spawns per step"));
        }
        self.effects.spawns += 1;
        let spawning = self
            .shared
            .prepare_spawn(&module)
            .map_err(|e| e.to_string())?;
        let pid = spawning.pid;
        self.effects
            .items
            .push(Effect::Spawn(Box::new(spawning), args));
        Ok(pid.0)
    }

    fn register(&mut self, name: String) -> Result<(), String> {
        self.touched = true;
        match self.shared.whereis(&name) {
            Some(holder) if holder != self.pid => Err(format!(
                "the name `{name}` is registered by process {holder}"
            )),
            _ => {
                self.effects.items.push(Effect::Register(name));
                Ok(())
            }
        }
    }

    fn monitor(&mut self, target: u64) {
        self.touched = true;
        self.effects.items.push(Effect::Monitor(Pid(target)));
    }

    fn whereis(&mut self, name: String) -> Option<u64> {
        self.touched = true;
        self.shared.whereis(&name).map(|p| p.0)
    }

    fn print(&mut self, line: String) {
        self.touched = true;
        self.collect_output();
        self.effects.print(line);
    }

    fn log(&mut self, level: Level, message: String) {
        self.touched = true;
        let pid = self.pid;
        match level {
            Level::Trace => tracing::trace!(%pid, "{message}"),
            Level::Debug => tracing::debug!(%pid, "{message}"),
            Level::Info => tracing::info!(%pid, "{message}"),
            Level::Warn => tracing::warn!(%pid, "{message}"),
            Level::Error => tracing::error!(%pid, "{message}"),
        }
    }

    fn monotonic_now(&mut self) -> u64 {
        self.touched = true;
        self.shared.started.elapsed().as_nanos() as u64
    }

    fn wall_now(&mut self) -> u64 {
        self.touched = true;
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }
}

/// The mailbox of process `to`, kept in `last` (the store's last receiver). Pids are never
/// reused, so that mailbox stays the right one: a process that ended has its mailbox closed,
/// which a reservation reports. Borrowed, not cloned: a send costs no reference count.
fn mailbox_of<'a>(
    last: &'a mut Option<(Pid, Arc<Mailbox>)>,
    effects: &Effects,
    shared: &Shared,
    to: Pid,
) -> Result<&'a Arc<Mailbox>, SendError> {
    if !matches!(last, Some((pid, _)) if *pid == to) {
        let mailbox = match effects.pending_mailbox(to) {
            Some(m) => m.clone(),
            None => shared.mailbox(to).ok_or(SendError::NoSuchProcess)?,
        };
        *last = Some((to, mailbox));
    }
    Ok(&last.as_ref().expect("just set").1)
}

/// The payloads `send-many` was given, each a slice of its buffer; an error names what is wrong
/// with the packing.
fn unpack(packed: &Payloads) -> Result<Vec<&[u8]>, String> {
    let mut start = 0usize;
    let mut payloads = Vec::with_capacity(packed.ends.len());
    for &end in &packed.ends {
        let end = end as usize;
        if end < start || end > packed.bytes.len() {
            return Err(format!(
                "payload ends must ascend within the {} bytes given; found {end} after {start}",
                packed.bytes.len()
            ));
        }
        payloads.push(&packed.bytes[start..end]);
        start = end;
    }
    if start != packed.bytes.len() {
        return Err(format!(
            "the last payload ends at {start} but {} bytes were given",
            packed.bytes.len()
        ));
    }
    Ok(payloads)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packed(ends: &[u32], bytes: &[u8]) -> Payloads {
        Payloads {
            ends: ends.to_vec(),
            bytes: bytes.to_vec(),
        }
    }

    #[test]
    fn packed_payloads_unpack_in_order_and_bad_packing_is_named() {
        let p = packed(&[0, 2, 5], b"abcde");
        assert_eq!(unpack(&p).unwrap(), [&b""[..], b"ab", b"cde"]);
        assert_eq!(unpack(&packed(&[], b"")).unwrap(), Vec::<&[u8]>::new());
        let err = unpack(&packed(&[3, 2], b"abc")).unwrap_err();
        assert!(err.contains("found 2 after 3"), "{err}");
        let err = unpack(&packed(&[4], b"abc")).unwrap_err();
        assert!(err.contains("within the 3 bytes"), "{err}");
        let err = unpack(&packed(&[1], b"abc")).unwrap_err();
        assert!(err.contains("ends at 1 but 3 bytes"), "{err}");
    }
}
