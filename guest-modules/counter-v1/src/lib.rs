//! Counting server, version 1: the Erlang seed's server with its bug. It registers as `counter`,
//! prints `<count>: Server <pid> received message <payload> from <pid>` per message, and never
//! increments the count. `"quit"` makes it print `Received quit command from <pid>` and stop.

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
        Ok(Next::wait(state)) // the bug: count never changes
    }
}

hotswap_guest::export_process!(Counter);
