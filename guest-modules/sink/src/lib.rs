//! Benchmark guest: counts the messages it receives, nothing else.

use hotswap_guest::{Event, Next, Process};
use serde::de::IgnoredAny;

struct Sink;

impl Process for Sink {
    type Args = ();
    type State = u64;
    type Msg = IgnoredAny;

    fn init((): ()) -> Result<Next<u64>, String> {
        Ok(Next::wait(0))
    }

    fn handle(count: u64, event: Event<IgnoredAny>) -> Result<Next<u64>, String> {
        Ok(Next::wait(
            count + u64::from(matches!(event, Event::Message { .. })),
        ))
    }
}

hotswap_guest::export_process!(Sink);
