//! A process's mailbox: messages in arrival order up to the policy's cap, and the host's control
//! requests (swap, inspect, stop, down) ahead of them, uncapped.
//!
//! One small struct per process and no allocation while empty: an idle process costs its state
//! and this, which holds it. A sender inside a guest step reserves a slot first
//! ([`Mailbox::reserve`]) and delivers only if the step commits, so a committed send never finds
//! the mailbox full and a failed step releases its slots. Reserving is one atomic update (no lock), and a step's
//! consecutive messages to one process are delivered under one lock with one wake-up
//! ([`Delivery`]): a sender and a busy receiver contend for the lock once per step, not three
//! times per message.
//!
//! A process with nothing to do and no receive timeout waits here without a task
//! ([`Mailbox::hold`]): the first message or control request to arrive starts a task for it, or,
//! when another process's step sent that message, hands it to that process's task
//! ([`Delivery::finish`]). Spawning many idle processes then costs no task, no scheduling and no
//! thread wake-up until each has something to do.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use super::{Control, Process};
use crate::engine::{Batch, Down, Message};

/// Why a message was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// At the cap.
    Full,
    /// The process has ended.
    Closed,
}

/// What the process takes out next.
pub(crate) enum Item {
    Control(Control),
    Message(Message),
}

pub(crate) struct Mailbox {
    inner: Mutex<Inner>,
    wake: Notify,
    capacity: usize,
    /// Messages queued plus slots reserved, with [`CLOSED`] set once the process has ended.
    occupied: AtomicUsize,
    /// Set while the process is inside a guest call (for `Host::is_busy`).
    pub busy: AtomicBool,
}

#[derive(Default)]
struct Inner {
    messages: VecDeque<Message>,
    control: VecDeque<Control>,
    /// The process itself, while it waits for its next event without a task.
    dormant: Option<Box<Process>>,
    /// Set by [`Mailbox::release`] when the runtime shuts down: nothing may be held after it.
    released: bool,
}

impl Mailbox {
    pub fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            inner: Mutex::default(),
            wake: Notify::new(),
            capacity: capacity.max(1),
            occupied: AtomicUsize::new(0),
            busy: AtomicBool::new(false),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a message now.
    pub fn send(&self, message: Message) -> Result<(), Refused> {
        self.reserve()?;
        self.deliver().push(message);
        Ok(())
    }

    /// Whether the process has ended, or is saving itself to end.
    pub fn is_closed(&self) -> bool {
        self.occupied.load(Ordering::Acquire) & CLOSED != 0
    }

    /// Wakes the process after an item was queued: starts a task for it if it waits without one.
    fn wake(&self, dormant: Option<Box<Process>>) {
        match dormant {
            Some(process) => process.start(),
            None => self.wake.notify_one(),
        }
    }

    /// Keeps `process` here without a task until its next event arrives. Gives it back if it
    /// must go on now: something is already queued, it has a receive timeout (which only a task
    /// can wait for), or the mailbox is closed.
    ///
    /// After [`Mailbox::release`] (the runtime is shutting down) the process is dropped instead,
    /// as the runtime drops the processes that have a task: held here, it would keep its host
    /// alive, and the host this mailbox, for the life of the OS process.
    pub fn hold(&self, process: Box<Process>) -> Result<(), Box<Process>> {
        if process.has_deadline() {
            return Err(process);
        }
        let mut inner = self.lock();
        if inner.released {
            drop(inner);
            drop(process);
            return Ok(());
        }
        if inner.messages.is_empty() && inner.control.is_empty() && !self.is_closed() {
            inner.dormant = Some(process);
            Ok(())
        } else {
            Err(process)
        }
    }

    /// Takes back a process held without a task, and holds none from now on: its runtime is
    /// shutting down. (A task still running when the runtime's shutdown began may try to hold
    /// its process after this; see [`Mailbox::hold`].)
    pub fn release(&self) -> Option<Box<Process>> {
        let mut inner = self.lock();
        inner.released = true;
        inner.dormant.take()
    }

    /// Reserves a slot for a message that a step in flight will send if it commits. The caller
    /// owes the mailbox either a [`Delivery::push`] into it or a [`Mailbox::free_slots`]
    /// ([`Reserved`] keeps that account for a step's sends).
    pub fn reserve(&self) -> Result<(), Refused> {
        self.occupied
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.capacity).then_some(n + 1)
            })
            .map(drop)
            .map_err(|n| {
                if n & CLOSED != 0 {
                    Refused::Closed
                } else {
                    Refused::Full
                }
            })
    }

    /// Reserves up to `wanted` slots at once, as many as are free; returns how many.
    pub fn reserve_many(&self, wanted: usize) -> Result<usize, Refused> {
        let free = |n: usize| self.capacity.saturating_sub(n).min(wanted);
        let before = self
            .occupied
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n & CLOSED == 0).then(|| n + free(n))
            })
            .map_err(|_| Refused::Closed)?;
        Ok(free(before))
    }

    /// Frees `slots` reserved slots that will not be delivered into.
    pub fn free_slots(&self, slots: usize) {
        if slots > 0 {
            self.occupied.fetch_sub(slots, Ordering::AcqRel);
        }
    }

    /// Delivers messages into reserved slots until the returned [`Delivery`] is dropped, under
    /// one lock and with one wake-up.
    pub fn deliver(&self) -> Delivery<'_> {
        Delivery {
            inner: Some(self.lock()),
            mailbox: self,
            closed: self.is_closed(),
        }
    }

    /// Queues a control request (never refused while the process lives).
    pub fn control(&self, control: Control) -> Result<(), Refused> {
        let dormant = {
            let mut inner = self.lock();
            if self.is_closed() {
                return Err(Refused::Closed);
            }
            inner.control.push_back(control);
            inner.dormant.take()
        };
        self.wake(dormant);
        Ok(())
    }

    /// Messages waiting.
    pub fn len(&self) -> usize {
        self.lock().messages.len()
    }

    /// Whether no message or control request waits.
    pub fn is_empty(&self) -> bool {
        let inner = self.lock();
        inner.messages.is_empty() && inner.control.is_empty()
    }

    /// The next control request, else the next message, without waiting.
    pub fn try_next(&self) -> Option<Item> {
        let mut inner = self.lock();
        if let Some(control) = inner.control.pop_front() {
            return Some(Item::Control(control));
        }
        let message = inner.messages.pop_front()?;
        self.occupied.fetch_sub(1, Ordering::AcqRel);
        Some(Item::Message(message))
    }

    /// Waits for the next control request or message (for the process's own task only).
    pub async fn next(&self) -> Item {
        loop {
            if let Some(item) = self.try_next() {
                return item;
            }
            // `notify_one` leaves a permit when nobody waits, so a push between `try_next` and
            // here is not missed.
            self.wake.notified().await;
        }
    }

    /// Whether messages may be queued, without taking the lock: `false` means none is (nor is a
    /// send reserved for one).
    pub fn may_hold_messages(&self) -> bool {
        self.occupied.load(Ordering::Acquire) & !CLOSED != 0
    }

    /// Moves up to `max` queued messages, oldest first, into `batch` while its payloads stay
    /// within `max_bytes`; returns how many. Takes none while a control request waits (it goes
    /// first, so a batch never delays a swap).
    pub fn take_into(&self, max: usize, max_bytes: usize, batch: &mut Batch) -> usize {
        let mut inner = self.lock();
        if !inner.control.is_empty() {
            return 0;
        }
        let mut taken = 0;
        while taken < max
            && let Some(message) = inner
                .messages
                .pop_front_if(|m| batch.payloads.len() + m.payload.len() <= max_bytes)
        {
            batch.push(message.sender, &message.payload);
            taken += 1;
        }
        self.occupied.fetch_sub(taken, Ordering::AcqRel);
        taken
    }

    /// Refuses everything from now on, and gives back the messages and `down` events still
    /// queued (other control requests are dropped, which answers their senders).
    pub fn close_and_take(&self) -> (Vec<Message>, Vec<Down>) {
        self.occupied.fetch_or(CLOSED, Ordering::AcqRel);
        let mut inner = self.lock();
        let downs = inner
            .control
            .drain(..)
            .filter_map(|c| match c {
                Control::Down(down) => Some(down),
                _ => None,
            })
            .collect();
        (std::mem::take(&mut inner.messages).into(), downs)
    }

    /// Queues the messages of a resumed process, over the cap if they were (they were queued
    /// before a shutdown; none may be lost).
    pub fn restore(&self, messages: impl IntoIterator<Item = Message>) {
        let mut inner = self.lock();
        let before = inner.messages.len();
        inner.messages.extend(messages);
        self.occupied
            .fetch_add(inner.messages.len() - before, Ordering::AcqRel);
    }

    /// Refuses everything from now on; returns how many messages were left undelivered.
    pub fn close(&self) -> usize {
        self.occupied.fetch_or(CLOSED, Ordering::AcqRel);
        let mut inner = self.lock();
        inner.control.clear();
        std::mem::take(&mut inner.messages).len()
    }
}

/// The bit of [`Mailbox::occupied`] that says the process has ended: with it set, the count is
/// above any capacity, so a reservation fails without a lock.
const CLOSED: usize = 1 << (usize::BITS - 1);

/// Slots one step reserved in one mailbox and has not delivered into yet; released when dropped.
pub(crate) struct Reserved {
    pub pid: u64,
    pub mailbox: Arc<Mailbox>,
    pub slots: usize,
}

impl Drop for Reserved {
    fn drop(&mut self) {
        self.mailbox.free_slots(self.slots);
    }
}

/// Messages being delivered into one mailbox's reserved slots: holds its lock, and wakes the
/// process once when dropped.
pub(crate) struct Delivery<'a> {
    inner: Option<MutexGuard<'a, Inner>>,
    mailbox: &'a Mailbox,
    closed: bool,
}

impl Delivery<'_> {
    /// Queues `message` in a slot reserved before (dropped, and the slot freed, if the receiver
    /// ended meanwhile, as a message to a dead process is).
    pub fn push(&mut self, message: Message) {
        match &mut self.inner {
            Some(inner) if !self.closed => inner.messages.push_back(message),
            _ => self.mailbox.free_slots(1),
        }
    }

    /// Ends the delivery like dropping it, except that a receiver waiting without a task is
    /// handed to the caller instead of started: the sender's task may run it next.
    pub fn finish(mut self) -> Option<Box<Process>> {
        self.release()
    }

    /// Unlocks (once) and wakes a process waiting on its task; returns one waiting without.
    fn release(&mut self) -> Option<Box<Process>> {
        // Unlocks before waking: the woken process takes this lock at once.
        let dormant = self.inner.take()?.dormant.take();
        if dormant.is_none() {
            self.mailbox.wake.notify_one();
        }
        dormant
    }
}

impl Drop for Delivery<'_> {
    fn drop(&mut self) {
        if let Some(dormant) = self.release() {
            dormant.start();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(n: u8) -> Message {
        Message {
            sender: 0,
            payload: vec![n],
        }
    }

    #[test]
    fn reserved_slots_count_against_the_cap_until_sent_or_dropped() {
        let mailbox = Mailbox::new(2);
        mailbox.reserve().unwrap();
        mailbox.send(msg(1)).unwrap();
        assert_eq!(mailbox.send(msg(2)), Err(Refused::Full));
        mailbox.free_slots(1);
        mailbox.send(msg(2)).unwrap();
        assert_eq!(mailbox.reserve().err(), Some(Refused::Full));
        assert_eq!(mailbox.len(), 2);
    }

    #[test]
    fn a_reservation_of_many_takes_what_is_free() {
        let mailbox = Mailbox::new(5);
        mailbox.send(msg(1)).unwrap();
        assert_eq!(mailbox.reserve_many(3), Ok(3));
        assert_eq!(mailbox.reserve_many(3), Ok(1), "one slot was left");
        assert_eq!(mailbox.reserve_many(3), Ok(0));
        mailbox.free_slots(4);
        assert_eq!(mailbox.reserve(), Ok(()));
        mailbox.close();
        assert_eq!(mailbox.reserve_many(1), Err(Refused::Closed));
    }

    #[test]
    fn control_goes_first_and_close_refuses_everything() {
        let mailbox = Mailbox::new(8);
        mailbox.send(msg(1)).unwrap();
        mailbox.control(Control::Stop).unwrap();
        assert!(matches!(
            mailbox.try_next(),
            Some(Item::Control(Control::Stop))
        ));
        assert!(matches!(mailbox.try_next(), Some(Item::Message(m)) if m.payload == [1]));
        mailbox.send(msg(2)).unwrap();
        assert_eq!(mailbox.close(), 1);
        assert_eq!(mailbox.send(msg(3)), Err(Refused::Closed));
        assert_eq!(mailbox.control(Control::Stop).err(), Some(Refused::Closed));
    }

    #[test]
    fn a_batch_takes_messages_in_order_up_to_its_count_and_bytes() {
        let mailbox = Mailbox::new(8);
        for n in 1..=5 {
            mailbox.send(msg(n)).unwrap();
        }
        let mut batch = Batch::default();
        assert_eq!(mailbox.take_into(2, 100, &mut batch), 2);
        assert_eq!(mailbox.take_into(8, 3, &mut batch), 1, "3 bytes in all");
        assert_eq!(batch.payloads, [1, 2, 3]);
        assert_eq!(mailbox.len(), 2);
        assert_eq!(mailbox.reserve(), Ok(()), "taken slots are free again");
    }

    #[test]
    fn a_delivered_slot_counts_until_taken_and_a_closed_mailbox_drops_deliveries() {
        let mailbox = Mailbox::new(2);
        mailbox.reserve().unwrap();
        mailbox.reserve().unwrap();
        {
            let mut delivery = mailbox.deliver();
            delivery.push(msg(1));
            delivery.push(msg(2));
        }
        assert_eq!(mailbox.len(), 2);
        assert_eq!(mailbox.reserve().err(), Some(Refused::Full));
        let mut batch = Batch::default();
        assert_eq!(mailbox.take_into(8, 1 << 20, &mut batch), 2);
        assert_eq!(batch.payloads, [1, 2]);
        assert_eq!(batch.ends, [1, 2]);
        mailbox.reserve().unwrap();
        assert_eq!(mailbox.close(), 0);
        mailbox.deliver().push(msg(3));
        assert_eq!(mailbox.len(), 0);
        assert_eq!(
            mailbox.occupied.load(Ordering::Acquire) & !CLOSED,
            0,
            "the slot of a message dropped at a closed mailbox is freed"
        );
        assert_eq!(mailbox.reserve().err(), Some(Refused::Closed));
    }
}
