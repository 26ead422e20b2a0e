//! Test guest: a counter (like counter-v2) whose `migrate` panics (a trap).

use hotswap_guest::{Event, Next, Process, print, self_pid};
use serde::{Deserialize, Serialize};
use serde_json::Value;

struct Counter;

#[derive(Serialize, Deserialize)]
struct State {
    count: u64,
}

impl Process for Counter {
    type Args = ();
    type State = State;
    type Msg = Value;

    fn init((): ()) -> Result<Next<State>, String> {
        Ok(Next::wait(State { count: 0 }))
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
        }))
    }

    fn migrate(change: hotswap_guest::Change, _state: Vec<u8>) -> Result<Vec<u8>, String> {
        panic!("migrate-traps panics in migrate ({change:?})")
    }
}

hotswap_guest::export_process!(Counter);
