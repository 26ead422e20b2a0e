//! Counting server, version 2: the fix. Same messages, same state shape as version 1 (so the
//! default `migrate` passes the state through), but each message increments the count.

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
        // The first counter takes the name; later ones run unnamed (Erlang's register/2 would crash).
        if let Err(e) = hotswap_guest::register("counter") {
            hotswap_guest::log(hotswap_guest::Level::Info, &e);
        }
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
}

hotswap_guest::export_process!(Counter);
