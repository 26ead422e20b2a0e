//! Test guest: any message makes `step` loop forever, to test the per-call time limit.

use hotswap_guest::{Event, Next, Process};
use serde_json::Value;

struct LoopForever;

impl Process for LoopForever {
    type Args = ();
    type State = u64;
    type Msg = Value;

    fn init((): ()) -> Result<Next<u64>, String> {
        Ok(Next::wait(0))
    }

    fn handle(state: u64, event: Event<Value>) -> Result<Next<u64>, String> {
        if let Event::Message { .. } = event {
            let mut n = state;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        Ok(Next::wait(state))
    }
}

hotswap_guest::export_process!(LoopForever);
