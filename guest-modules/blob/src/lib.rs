//! Benchmark guest: started with `{"size": n}`, keeps an n-byte state and returns it unchanged from
//! every step (the least a step can do: the state crosses into the guest and back). Uses the raw
//! byte encoding, not JSON, so the figures measure the host.

hotswap_guest::bindings::export!(Blob with_types_in hotswap_guest::bindings);

use hotswap_guest::bindings::exports::hotswap::process::process::Guest;
use hotswap_guest::bindings::hotswap::process::types::{
    Batch, BatchResult, Change, Event, StepResult,
};

struct Blob;

impl Guest for Blob {
    fn init(args: Vec<u8>) -> Result<StepResult, String> {
        let text = String::from_utf8_lossy(&args);
        let size: usize = text
            .trim()
            .trim_start_matches("{\"size\":")
            .trim_end_matches('}')
            .trim()
            .parse()
            .map_err(|e| format!("expected {{\"size\": n}}: {e}"))?;
        Ok(StepResult {
            state: vec![7; size],
            timeout_ms: None,
            stop: false,
        })
    }

    fn step(state: Vec<u8>, _event: Event) -> Result<StepResult, String> {
        Ok(StepResult {
            state,
            timeout_ms: None,
            stop: false,
        })
    }

    fn step_batch(state: Vec<u8>, messages: Batch) -> Result<BatchResult, String> {
        let handled = messages.senders.len() as u32;
        Ok(BatchResult {
            next: StepResult {
                state,
                timeout_ms: None,
                stop: false,
            },
            handled,
        })
    }

    fn migrate(_change: Change, state: Vec<u8>) -> Result<Vec<u8>, String> {
        Ok(state)
    }
}
