//! Counting server, version 3: a new state shape, `{"count": n, "last_sender": pid|null}`, with a
//! real `migrate`: upgrades add `last_sender`, rollbacks drop it again.

use hotswap_guest::{Change, Event, Next, Pid, Process, print, self_pid};
use serde::{Deserialize, Serialize};
use serde_json::Value;

struct Counter;

#[derive(Serialize, Deserialize)]
struct State {
    count: u64,
    last_sender: Option<Pid>,
}

/// The shape of versions 1 and 2.
#[derive(Serialize, Deserialize)]
struct OldState {
    count: u64,
}

impl Process for Counter {
    type Args = ();
    type State = State;
    type Msg = Value;

    fn init((): ()) -> Result<Next<State>, String> {
        hotswap_guest::register("counter")?;
        Ok(Next::wait(State { count: 0, last_sender: None }))
    }

    fn handle(state: State, event: Event<Value>) -> Result<Next<State>, String> {
        let Event::Message { from, msg } = event else { return Ok(Next::wait(state)) };
        if msg == "quit" {
            print(&format!("Received quit command from {from}"));
            return Ok(Next::stop(state));
        }
        print(&format!("{}: Server {} received message {msg} from {from}", state.count, self_pid()));
        Ok(Next::wait(State { count: state.count + 1, last_sender: Some(from) }))
    }

    fn migrate(change: Change, state: Vec<u8>) -> Result<Vec<u8>, String> {
        let encode = |v: &dyn erased::Ser| v.json();
        match change {
            Change::UpgradeFrom(_) => {
                let value: Value = serde_json::from_slice(&state).map_err(|e| e.to_string())?;
                if value.get("last_sender").is_some() {
                    return Ok(state); // already in this shape
                }
                let old: OldState = serde_json::from_value(value).map_err(|e| e.to_string())?;
                encode(&State { count: old.count, last_sender: None })
            }
            Change::DowngradeTo(_) => {
                let new: State = serde_json::from_slice(&state).map_err(|e| e.to_string())?;
                encode(&OldState { count: new.count })
            }
        }
    }
}

mod erased {
    /// Serialize-to-JSON for the two state shapes.
    pub trait Ser {
        fn json(&self) -> Result<Vec<u8>, String>;
    }
    impl<T: serde::Serialize> Ser for T {
        fn json(&self) -> Result<Vec<u8>, String> {
            serde_json::to_vec(self).map_err(|e| e.to_string())
        }
    }
}

hotswap_guest::export_process!(Counter);
