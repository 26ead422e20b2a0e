//! The client of the Erlang seed: every `interval_ms` it sends the server (found by its registered
//! name, `counter` by default) a timestamp, the wall clock in milliseconds. `"quit"` stops it.

use hotswap_guest::{Event, Next, Pid, Process, SendError, print, send, wall_now, whereis};
use serde::{Deserialize, Serialize};
use serde_json::Value;

struct Ticker;

#[derive(Deserialize)]
#[serde(default)]
struct Args {
    server: Option<Pid>,
    interval_ms: u64,
    name: String,
}

impl Default for Args {
    fn default() -> Self {
        Self {
            server: None,
            interval_ms: 1000,
            name: "counter".into(),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct State {
    server: Option<Pid>,
    interval_ms: u64,
    name: String,
    sent: u64,
}

impl Process for Ticker {
    type Args = Args;
    type State = State;
    type Msg = Value;

    fn init(args: Args) -> Result<Next<State>, String> {
        let state = State {
            server: args.server,
            interval_ms: args.interval_ms,
            name: args.name,
            sent: 0,
        };
        Ok(Next::after(state, args.interval_ms))
    }

    fn handle(mut state: State, event: Event<Value>) -> Result<Next<State>, String> {
        match event {
            Event::Message { from, msg } if msg == "quit" => {
                print(&format!("Received quit command from {from}"));
                Ok(Next::stop(state))
            }
            Event::Message { .. } | Event::Down { .. } => {
                let interval = state.interval_ms;
                Ok(Next::after(state, interval))
            }
            Event::Timeout => {
                if state.server.is_none() {
                    state.server = whereis(&state.name);
                }
                if let Some(server) = state.server {
                    match send(server, &wall_now()) {
                        Ok(()) => state.sent += 1,
                        Err(SendError::NoSuchProcess) => state.server = None,
                        // A timestamp always encodes.
                        Err(SendError::MailboxFull | SendError::Unencodable) => {}
                    }
                }
                let interval = state.interval_ms;
                Ok(Next::after(state, interval))
            }
        }
    }
}

hotswap_guest::export_process!(Ticker);
