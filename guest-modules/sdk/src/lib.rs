//! The Rust SDK for hotswap process modules.
//!
//! A module implements [`Process`] with typed arguments, state and messages, and exports it with
//! [`export_process!`]. The SDK does the encoding and the glue to the contract in `wit/hotswap.wit`;
//! the host owns the state between steps, so the module keeps nothing in its own memory.
//!
//! ```ignore
//! use hotswap_guest::{Event, Next, Process, print, self_pid};
//!
//! struct Counter;
//!
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct State { count: u64 }
//!
//! impl Process for Counter {
//!     type Args = ();
//!     type State = State;
//!     type Msg = serde_json::Value;
//!     fn init(_: ()) -> Result<Next<State>, String> { Ok(Next::wait(State { count: 0 })) }
//!     fn handle(s: State, event: Event<serde_json::Value>) -> Result<Next<State>, String> {
//!         if let Event::Message { from, msg } = event {
//!             print(&format!("{}: {} got {msg} from {from}", s.count, self_pid()));
//!         }
//!         Ok(Next::wait(State { count: s.count + 1 }))
//!     }
//! }
//! hotswap_guest::export_process!(Counter);
//! ```
//!
//! # Encodings (language-neutral)
//! The host sees states, messages and init arguments as bytes. By default this SDK encodes all
//! three as JSON (UTF-8, RFC 8259) with serde, so a module written in any language with a JSON
//! library can exchange messages with a Rust one and take over its state:
//! - **args**: the JSON of `Process::Args`; empty bytes mean `Args::default()`.
//! - **state**: the JSON of `Process::State`, exactly as `serde_json` writes it.
//! - **messages**: the JSON of whatever the sender passed to [`send`]; a pid is a JSON number.
//!   A payload that does not decode as `Process::Msg` fails the step with an error naming the
//!   payload (the host then drops that message and keeps the state).
//!
//! A module on a hot message path can choose [`Encoding::Postcard`] instead
//! (`const ENCODING: Encoding = Encoding::Postcard;` in its [`Process`] impl): its state and the
//! messages it receives are then in postcard's compact binary format
//! (<https://postcard.jamesmunns.com/wire-format>), and its peers send to it with [`send_as`].
//! A ping-pong round trip costs about a third less (BENCHMARKS.md). Args stay JSON, and messages
//! from the CLI or the API (JSON) do not decode in such a module.
//!
//! What this SDK does not cover: the host side (see `host/`), and non-Rust guests (use the WIT).

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

extern crate self as hotswap_guest;

#[doc(hidden)]
pub use wit_bindgen as __wit_bindgen;

/// The bindings generated from `wit/`; used by [`export_process!`].
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "module",
        pub_export_macro: true,
        default_bindings_module: "hotswap_guest::bindings",
        runtime_path: "hotswap_guest::__wit_bindgen::rt",
    });
}

use bindings::hotswap::process::runtime as rt;
use bindings::hotswap::process::types as wit;

/// A process identifier. Displays Erlang-style as `<N>`; pid 0 is the host.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct Pid(pub u64);

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{}>", self.0)
    }
}

/// What woke the process.
#[derive(Debug)]
pub enum Event<M> {
    /// A message from `from`, decoded.
    Message {
        /// The sender (pid 0 is the host).
        from: Pid,
        /// The decoded payload.
        msg: M,
    },
    /// The receive timeout of the previous step expired with no message.
    Timeout,
    /// A process this one monitors ended.
    Down {
        /// The process that ended.
        pid: Pid,
        /// Why: `normal`, `stopped`, `noproc` or `failed: ...`.
        reason: String,
    },
}

/// What a step (or `init`) returns: the next state and how to wait for the next event.
#[derive(Debug)]
pub struct Next<S> {
    /// The state the host keeps.
    pub state: S,
    /// Wake with [`Event::Timeout`] after this many milliseconds without a message.
    pub timeout_ms: Option<u64>,
    /// End the process after this step.
    pub stop: bool,
}

impl<S> Next<S> {
    /// Wait for the next message, forever.
    pub fn wait(state: S) -> Self {
        Self {
            state,
            timeout_ms: None,
            stop: false,
        }
    }

    /// Wait for the next message, or time out after `ms` milliseconds (`receive ... after Ms`).
    pub fn after(state: S, ms: u64) -> Self {
        Self {
            state,
            timeout_ms: Some(ms),
            stop: false,
        }
    }

    /// End the process (normally) after this step.
    pub fn stop(state: S) -> Self {
        Self {
            state,
            timeout_ms: None,
            stop: true,
        }
    }
}

/// Why `migrate` is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Hot upgrade: the state was produced by this older version.
    UpgradeFrom(u32),
    /// Rollback: the process moves to this older version; convert the state down.
    DowngradeTo(u32),
}

/// How the SDK encodes a module's state and the messages it receives ([`Process::ENCODING`]),
/// and a message sent with [`send_as`]. Init arguments are always JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// JSON (UTF-8, RFC 8259), as `serde_json` writes it: readable, and what the CLI and the
    /// API send.
    Json,
    /// Postcard, a compact binary format for serde
    /// (<https://postcard.jamesmunns.com/wire-format>): much cheaper to encode and decode.
    Postcard,
}

impl Encoding {
    /// Encodes `value`.
    ///
    /// # Errors
    /// When the value cannot be represented (for example, a map with non-string keys in JSON).
    pub fn encode<T: Serialize + ?Sized>(self, value: &T) -> Result<Vec<u8>, String> {
        match self {
            Encoding::Json => serde_json::to_vec(value).map_err(|e| e.to_string()),
            Encoding::Postcard => postcard::to_allocvec(value).map_err(|e| e.to_string()),
        }
    }

    /// Appends the encoding of `value` to `out`.
    ///
    /// # Errors
    /// As [`Encoding::encode`]; `out` may then hold part of the value.
    pub fn encode_into<T: Serialize + ?Sized>(
        self,
        value: &T,
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        match self {
            Encoding::Json => serde_json::to_writer(&mut *out, value).map_err(|e| e.to_string()),
            Encoding::Postcard => postcard::to_extend(value, std::mem::take(out))
                .map(|bytes| *out = bytes)
                .map_err(|e| e.to_string()),
        }
    }

    /// Decodes `bytes` as a `T`.
    ///
    /// # Errors
    /// When the bytes are not a `T` in this encoding.
    pub fn decode<T: DeserializeOwned>(self, bytes: &[u8]) -> Result<T, String> {
        match self {
            Encoding::Json => serde_json::from_slice(bytes).map_err(|e| e.to_string()),
            Encoding::Postcard => postcard::from_bytes(bytes).map_err(|e| e.to_string()),
        }
    }

    /// The bytes for an error message: as text for JSON, as numbers (the first 64) otherwise.
    fn show(self, bytes: &[u8]) -> String {
        match self {
            Encoding::Json => String::from_utf8_lossy(bytes).into_owned(),
            Encoding::Postcard => format!("{:?}", &bytes[..bytes.len().min(64)]),
        }
    }
}

/// A process module: typed state and messages, encoded by the SDK ([`Process::ENCODING`]).
pub trait Process {
    /// Init arguments. Empty args bytes decode as `Default::default()`.
    type Args: DeserializeOwned + Default;
    /// The state the host keeps between steps.
    type State: Serialize + DeserializeOwned;
    /// Messages this process understands.
    type Msg: DeserializeOwned;

    /// How its state and the messages it receives are encoded: JSON unless the module says
    /// otherwise.
    const ENCODING: Encoding = Encoding::Json;

    /// Starts a process.
    ///
    /// # Errors
    /// An error refuses to start; the process does not exist.
    fn init(args: Self::Args) -> Result<Next<Self::State>, String>;

    /// Handles one event.
    ///
    /// # Errors
    /// An error fails the step: the host keeps the state from before it and drops its effects.
    fn handle(state: Self::State, event: Event<Self::Msg>) -> Result<Next<Self::State>, String>;

    /// Converts the state (in the module's [`Process::ENCODING`]) across a version change. The
    /// default passes it through unchanged, which is right whenever the state's shape did not
    /// change.
    ///
    /// # Errors
    /// An error refuses the change: the process stays on its version with its state.
    fn migrate(change: Change, state: Vec<u8>) -> Result<Vec<u8>, String> {
        let _ = change;
        Ok(state)
    }
}

/// Why [`send`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// No live process has that pid.
    NoSuchProcess,
    /// The receiver's mailbox is full; nothing was queued.
    MailboxFull,
    /// The message could not be encoded (its `Serialize` failed, or the encoding cannot express
    /// it, as JSON cannot a map with non-string keys); nothing was queued.
    Unencodable,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendError::NoSuchProcess => "no such process",
            SendError::MailboxFull => "mailbox full",
            SendError::Unencodable => "the message cannot be encoded",
        })
    }
}

/// Log levels for [`log`].
pub use wit::Level;

/// This process's pid (Erlang's `self()`).
pub fn self_pid() -> Pid {
    Pid(rt::self_pid())
}

/// Sends `msg` (as JSON) to `to` when this step commits.
///
/// # Errors
/// When `to` is not alive, its mailbox is full or `msg` cannot be encoded; nothing is queued
/// then.
pub fn send<T: Serialize + ?Sized>(to: Pid, msg: &T) -> Result<(), SendError> {
    send_as(Encoding::Json, to, msg)
}

/// Sends `msg` in `encoding` (the receiver's [`Process::ENCODING`]) to `to` when this step
/// commits.
///
/// # Errors
/// When `to` is not alive, its mailbox is full or `msg` cannot be encoded; nothing is queued
/// then.
pub fn send_as<T: Serialize + ?Sized>(
    encoding: Encoding,
    to: Pid,
    msg: &T,
) -> Result<(), SendError> {
    let payload = encoding.encode(msg).map_err(|_| SendError::Unencodable)?;
    send_raw(to, &payload)
}

/// Sends raw bytes to `to` when this step commits.
///
/// # Errors
/// When `to` is not alive or its mailbox is full; nothing is queued then.
pub fn send_raw(to: Pid, payload: &[u8]) -> Result<(), SendError> {
    rt::send(to.0, payload).map_err(SendError::from)
}

impl From<rt::SendError> for SendError {
    fn from(e: rt::SendError) -> Self {
        match e {
            rt::SendError::NoSuchProcess => SendError::NoSuchProcess,
            rt::SendError::MailboxFull => SendError::MailboxFull,
        }
    }
}

/// Sends each of `msgs` (as JSON) to `to` when this step commits, in order, in one call to the
/// host: what as many [`send`] calls would do, for less (the payloads cross packed). Returns how
/// many were queued, from the first: all, or fewer when the mailbox filled up (the rest were
/// not; [`send`] would have answered [`SendError::MailboxFull`] for the next).
///
/// # Errors
/// [`SendError::NoSuchProcess`] when `to` is not alive, [`SendError::Unencodable`] when one of
/// `msgs` cannot be encoded (nothing is queued either way).
pub fn send_many<T: Serialize>(
    to: Pid,
    msgs: impl IntoIterator<Item = T>,
) -> Result<usize, SendError> {
    send_many_as(Encoding::Json, to, msgs)
}

/// [`send_many`] in `encoding` (the receiver's [`Process::ENCODING`]).
///
/// # Errors
/// [`SendError::NoSuchProcess`] when `to` is not alive, [`SendError::Unencodable`] when one of
/// `msgs` cannot be encoded (nothing is queued either way).
pub fn send_many_as<T: Serialize>(
    encoding: Encoding,
    to: Pid,
    msgs: impl IntoIterator<Item = T>,
) -> Result<usize, SendError> {
    let mut packed = wit::Payloads {
        ends: Vec::new(),
        bytes: Vec::new(),
    };
    for msg in msgs {
        encoding
            .encode_into(&msg, &mut packed.bytes)
            .map_err(|_| SendError::Unencodable)?;
        packed.ends.push(packed.bytes.len() as u32);
    }
    rt::send_many(to.0, &packed)
        .map(|queued| queued as usize)
        .map_err(SendError::from)
}

/// Starts a process of `module` with `args` (as JSON) when this step commits; returns its pid now.
///
/// # Errors
/// When no module of that name is loaded.
pub fn spawn<A: Serialize + ?Sized>(module: &str, args: &A) -> Result<Pid, String> {
    let args = serde_json::to_vec(args).map_err(|e| e.to_string())?;
    rt::spawn(module, &args).map(Pid)
}

/// Registers this process under `name` when this step commits (Erlang's `register/2`).
///
/// # Errors
/// When another process holds the name.
pub fn register(name: &str) -> Result<(), String> {
    rt::register(name)
}

/// Monitors `target` when this step commits: when it ends, this process gets [`Event::Down`].
pub fn monitor(target: Pid) {
    rt::monitor(target.0);
}

/// The pid registered under `name` (Erlang's `whereis/1`).
pub fn whereis(name: &str) -> Option<Pid> {
    rt::whereis(name).map(Pid)
}

/// Prints a line of output (shown prefixed by this process's pid) when this step commits.
pub fn print(line: &str) {
    rt::print(line);
}

/// Logs through the host's log, at once.
pub fn log(level: Level, message: &str) {
    rt::log(level, message);
}

/// Monotonic clock in nanoseconds.
pub fn monotonic_now() -> u64 {
    rt::monotonic_now()
}

/// Wall clock in milliseconds since the Unix epoch.
pub fn wall_now() -> u64 {
    rt::wall_now()
}

fn encode<P: Process>(next: Next<P::State>) -> Result<wit::StepResult, String> {
    let state = P::ENCODING
        .encode(&next.state)
        .map_err(|e| format!("failed to encode the state: {e}"))?;
    Ok(wit::StepResult {
        state,
        timeout_ms: next.timeout_ms,
        stop: next.stop,
    })
}

#[doc(hidden)]
pub fn __init<P: Process>(args: Vec<u8>) -> Result<wit::StepResult, String> {
    let args = if args.is_empty() {
        P::Args::default()
    } else {
        serde_json::from_slice(&args)
            .map_err(|e| format!("bad init args {}: {e}", String::from_utf8_lossy(&args)))?
    };
    encode::<P>(P::init(args)?)
}

fn decode_state<P: Process>(state: &[u8]) -> Result<P::State, String> {
    P::ENCODING.decode(state).map_err(|e| {
        format!(
            "the state does not decode ({e}): {}",
            P::ENCODING.show(state)
        )
    })
}

fn decode_message<P: Process>(sender: u64, payload: &[u8]) -> Result<Event<P::Msg>, String> {
    let msg = P::ENCODING.decode(payload).map_err(|e| {
        format!(
            "message from <{sender}> not understood ({e}): {}",
            P::ENCODING.show(payload)
        )
    })?;
    Ok(Event::Message {
        from: Pid(sender),
        msg,
    })
}

#[doc(hidden)]
pub fn __step<P: Process>(state: Vec<u8>, event: wit::Event) -> Result<wit::StepResult, String> {
    let state = decode_state::<P>(&state)?;
    let event = match event {
        wit::Event::Timeout => Event::Timeout,
        wit::Event::Down(d) => Event::Down {
            pid: Pid(d.pid),
            reason: d.reason,
        },
        wit::Event::Message(m) => decode_message::<P>(m.sender, &m.payload)?,
    };
    encode::<P>(P::handle(state, event)?)
}

/// Folds the messages through `handle`, decoding the state once and encoding it once. Each
/// payload is decoded in place, from the one buffer the batch arrived in.
#[doc(hidden)]
pub fn __step_batch<P: Process>(
    state: Vec<u8>,
    batch: wit::Batch,
) -> Result<wit::BatchResult, String> {
    if batch.senders.len() != batch.ends.len() {
        return Err("malformed batch: as many senders as payload ends expected".to_owned());
    }
    let mut state = decode_state::<P>(&state)?;
    let mut timeout_ms = None;
    let mut handled = 0;
    let mut start = 0;
    for (&sender, &end) in batch.senders.iter().zip(&batch.ends) {
        let end = end as usize;
        let payload = batch
            .payloads
            .get(start..end)
            .ok_or("malformed batch: payload ends out of order")?;
        start = end;
        let next = P::handle(state, decode_message::<P>(sender, payload)?)?;
        handled += 1;
        if next.stop {
            return Ok(wit::BatchResult {
                next: encode::<P>(next)?,
                handled,
            });
        }
        state = next.state;
        timeout_ms = next.timeout_ms;
    }
    Ok(wit::BatchResult {
        next: encode::<P>(Next {
            state,
            timeout_ms,
            stop: false,
        })?,
        handled,
    })
}

#[doc(hidden)]
pub fn __migrate<P: Process>(change: wit::Change, state: Vec<u8>) -> Result<Vec<u8>, String> {
    let change = match change {
        wit::Change::UpgradeFrom(v) => Change::UpgradeFrom(v),
        wit::Change::DowngradeTo(v) => Change::DowngradeTo(v),
    };
    P::migrate(change, state)
}

/// Exports a [`Process`] implementation as the module's `init`, `step` and `migrate`.
#[macro_export]
macro_rules! export_process {
    ($t:ty) => {
        struct __HotswapExport;

        impl $crate::bindings::exports::hotswap::process::process::Guest for __HotswapExport {
            fn init(args: Vec<u8>) -> Result<$crate::bindings::hotswap::process::types::StepResult, String> {
                $crate::__init::<$t>(args)
            }
            fn step(
                state: Vec<u8>,
                event: $crate::bindings::hotswap::process::types::Event,
            ) -> Result<$crate::bindings::hotswap::process::types::StepResult, String> {
                $crate::__step::<$t>(state, event)
            }
            fn step_batch(
                state: Vec<u8>,
                messages: $crate::bindings::hotswap::process::types::Batch,
            ) -> Result<$crate::bindings::hotswap::process::types::BatchResult, String> {
                $crate::__step_batch::<$t>(state, messages)
            }
            fn migrate(
                change: $crate::bindings::hotswap::process::types::Change,
                state: Vec<u8>,
            ) -> Result<Vec<u8>, String> {
                $crate::__migrate::<$t>(change, state)
            }
        }

        $crate::bindings::export!(__HotswapExport with_types_in $crate::bindings);
    };
}
