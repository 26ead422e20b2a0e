//! Test guest: `init` and `migrate` work, but every step panics (a trap): a new version that
//! fails its first step.

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
        panic!("step-traps panics in every step (count {})", state.count)
    }
}

hotswap_guest::export_process!(Counter);
