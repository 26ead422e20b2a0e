//! Test guest: started with `{"target": pid}`, monitors that process and records the `down`
//! event it gets when the target ends: state `{"down": null | [pid, reason]}`.

use hotswap_guest::{Event, Next, Pid, Process, monitor, print};
use serde::{Deserialize, Serialize};
use serde_json::Value;

struct Watcher;

#[derive(Deserialize, Default)]
struct Args {
    target: Option<Pid>,
}

#[derive(Serialize, Deserialize)]
struct State {
    down: Option<(Pid, String)>,
}

impl Process for Watcher {
    type Args = Args;
    type State = State;
    type Msg = Value;

    fn init(args: Args) -> Result<Next<State>, String> {
        let target = args.target.ok_or("watcher needs {\"target\": pid}")?;
        monitor(target);
        Ok(Next::wait(State { down: None }))
    }

    fn handle(state: State, event: Event<Value>) -> Result<Next<State>, String> {
        match event {
            Event::Down { pid, reason } => {
                print(&format!("{pid} is down: {reason}"));
                Ok(Next::wait(State {
                    down: Some((pid, reason)),
                }))
            }
            _ => Ok(Next::wait(state)),
        }
    }
}

hotswap_guest::export_process!(Watcher);
