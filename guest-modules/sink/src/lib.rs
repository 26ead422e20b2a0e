//! Benchmark guest: counts the messages it receives, nothing else.

use hotswap_guest::{Event, Next, Process};
use serde::de::IgnoredAny;

struct Sink;

impl Process for Sink {
    /// Any arguments (the spawn benchmark gives each process its own, to measure spawns whose
    /// `init` result cannot be reused).
    type Args = IgnoredAny;
    type State = u64;
    type Msg = IgnoredAny;

    fn init(_: IgnoredAny) -> Result<Next<u64>, String> {
        Ok(Next::wait(0))
    }

    fn handle(count: u64, event: Event<IgnoredAny>) -> Result<Next<u64>, String> {
        Ok(Next::wait(
            count + u64::from(matches!(event, Event::Message { .. })),
        ))
    }
}

hotswap_guest::export_process!(Sink);
