//! Test guest for the per-call time limit: any message makes `step` loop forever; init args
//! `"init"` make `init` loop forever; `migrate` always loops forever.

use hotswap_guest::{Change, Event, Next, Process};
use serde_json::Value;

struct LoopForever;

fn spin(mut n: u64) -> ! {
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

impl Process for LoopForever {
    type Args = Value;
    type State = u64;
    type Msg = Value;

    fn init(args: Value) -> Result<Next<u64>, String> {
        if args == "init" {
            spin(0);
        }
        Ok(Next::wait(0))
    }

    fn handle(state: u64, event: Event<Value>) -> Result<Next<u64>, String> {
        if let Event::Message { .. } = event {
            spin(state);
        }
        Ok(Next::wait(state))
    }

    fn migrate(_change: Change, _state: Vec<u8>) -> Result<Vec<u8>, String> {
        spin(1)
    }
}

hotswap_guest::export_process!(LoopForever);
