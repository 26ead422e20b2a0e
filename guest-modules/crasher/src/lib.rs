//! Test guest: counts messages; `"crash"` panics (a trap) and `"err"` returns an error, to test
//! restarts from the state before a failed step. Init args `{"crash_in_init": true}` make `init`
//! panic.

use hotswap_guest::{Event, Next, Process};
use serde::{Deserialize, Serialize};
use serde_json::Value;

struct Crasher;

#[derive(Serialize, Deserialize)]
struct State {
    count: u64,
}

#[derive(Deserialize, Default)]
struct Args {
    #[serde(default)]
    crash_in_init: bool,
}

impl Process for Crasher {
    type Args = Args;
    type State = State;
    type Msg = Value;

    fn init(args: Args) -> Result<Next<State>, String> {
        assert!(!args.crash_in_init, "crasher was asked to crash in init");
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
