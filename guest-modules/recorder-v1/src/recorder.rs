// The recorder guest, for both of its versions: each crate defines `VERSION` and includes this
// file.

use hotswap_guest::{Change, Event, Next, Process};
use serde::{Deserialize, Serialize};
use serde_json::Value;

struct Recorder;

#[derive(Serialize, Deserialize)]
struct State {
    version: u32,
    log: Vec<(u64, Value)>,
}

impl Process for Recorder {
    type Args = ();
    type State = State;
    type Msg = Value;

    fn init((): ()) -> Result<Next<State>, String> {
        Ok(Next::wait(State {
            version: VERSION,
            log: Vec::new(),
        }))
    }

    fn handle(mut state: State, event: Event<Value>) -> Result<Next<State>, String> {
        let Event::Message { from, msg } = event else {
            return Ok(Next::wait(state));
        };
        if msg == "quit" {
            return Ok(Next::stop(state));
        }
        state.version = VERSION;
        state.log.push((from.0, msg));
        Ok(Next::wait(state))
    }

    fn migrate(change: Change, state: Vec<u8>) -> Result<Vec<u8>, String> {
        let mut s: State = serde_json::from_slice(&state).map_err(|e| e.to_string())?;
        s.version = match change {
            Change::UpgradeFrom(_) => VERSION,
            Change::DowngradeTo(to) => to,
        };
        serde_json::to_vec(&s).map_err(|e| e.to_string())
    }
}

hotswap_guest::export_process!(Recorder);
