//! Test guest: counts messages; `"crash"` panics (a trap) and `"err"` returns an error, to test
//! restarts from the state before a failed step.

use hotswap_guest::{Event, Next, Process};
use serde::{Deserialize, Serialize};
use serde_json::Value;

struct Crasher;

#[derive(Serialize, Deserialize)]
struct State {
    count: u64,
}

impl Process for Crasher {
    type Args = ();
    type State = State;
    type Msg = Value;

    fn init((): ()) -> Result<Next<State>, String> {
        Ok(Next::wait(State { count: 0 }))
    }

    fn handle(state: State, event: Event<Value>) -> Result<Next<State>, String> {
        let Event::Message { msg, .. } = event else {
            return Ok(Next::wait(state));
        };
        if msg == "crash" {
            panic!("crasher was asked to crash at count {}", state.count);
        }
        if msg == "err" {
            return Err("asked to fail".into());
        }
        Ok(Next::wait(State {
            count: state.count + 1,
        }))
    }
}

hotswap_guest::export_process!(Crasher);
