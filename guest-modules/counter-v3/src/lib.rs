//! Counting server, version 3: a new state shape, `{"count": n, "last_sender": pid|null}`, with a
//! real `migrate`: upgrades add `last_sender`, rollbacks drop it again.

use hotswap_guest::{Change, Event, Next, Pid, Process, print, self_pid};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

struct Counter;

#[derive(Serialize, Deserialize)]
struct State {
    count: u64,
    last_sender: Option<Pid>,
}

impl Process for Counter {
    type Args = ();
    type State = State;
    type Msg = Value;

    fn init((): ()) -> Result<Next<State>, String> {
        // The first counter takes the name; later ones run unnamed (Erlang's register/2 would crash).
        if let Err(e) = hotswap_guest::register("counter") {
            hotswap_guest::log(hotswap_guest::Level::Info, &e);
        }
        Ok(Next::wait(State {
            count: 0,
            last_sender: None,
        }))
    }

    fn handle(state: State, event: Event<Value>) -> Result<Next<State>, String> {
        let Event::Message { from, msg } = event else {
            return Ok(Next::wait(state));
        };
        if msg == "quit" {
            print(&format!("Received quit command from {from}"));
            return Ok(Next::stop(state));
        }
        print(&format!(
            "{}: Server {} received message {msg} from {from}",
            state.count,
            self_pid()
        ));
        Ok(Next::wait(State {
            count: state.count + 1,
            last_sender: Some(from),
        }))
    }

    fn migrate(change: Change, state: Vec<u8>) -> Result<Vec<u8>, String> {
        let old: Value = serde_json::from_slice(&state).map_err(|e| e.to_string())?;
        let count = old["count"].as_u64().ok_or("the state has no count")?;
        let new = match change {
            // From v1/v2's `{"count"}` (or already this shape, kept as is).
            Change::UpgradeFrom(_) => {
                json!({ "count": count, "last_sender": old.get("last_sender").unwrap_or(&Value::Null) })
            }
            // Back to v1/v2's shape, which has no `last_sender`.
            Change::DowngradeTo(_) => json!({ "count": count }),
        };
        serde_json::to_vec(&new).map_err(|e| e.to_string())
    }
}

hotswap_guest::export_process!(Counter);
