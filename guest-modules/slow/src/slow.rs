// The slow guest, for both of its versions: each crate defines `VERSION` and includes this file.
// `migrate` and every step stamp the state with `VERSION`.

use hotswap_guest::{Change, Event, Next, Process, monotonic_now};
use serde::{Deserialize, Serialize};

struct Slow;

#[derive(Serialize, Deserialize)]
struct State {
    count: u64,
    version: u32,
}

#[derive(Deserialize)]
struct Spin {
    spin_ms: u64,
}

impl Process for Slow {
    type Args = ();
    type State = State;
    type Msg = Spin;

    fn init((): ()) -> Result<Next<State>, String> {
        Ok(Next::wait(State {
            count: 0,
            version: VERSION,
        }))
    }

    fn handle(state: State, event: Event<Spin>) -> Result<Next<State>, String> {
        let Event::Message { msg, .. } = event else {
            return Ok(Next::wait(state));
        };
        let until = monotonic_now() + msg.spin_ms * 1_000_000;
        while monotonic_now() < until {
            std::hint::spin_loop();
        }
        Ok(Next::wait(State {
            count: state.count + 1,
            version: VERSION,
        }))
    }

    fn migrate(_change: Change, state: Vec<u8>) -> Result<Vec<u8>, String> {
        let s: State = serde_json::from_slice(&state).map_err(|e| e.to_string())?;
        serde_json::to_vec(&State {
            count: s.count,
            version: VERSION,
        })
        .map_err(|e| e.to_string())
    }
}

hotswap_guest::export_process!(Slow);
