//! The example components built into the `hotswap` binary: the two versions of the counting
//! server from Erlang's classic code-reload demonstration, and the client that ticks at it.
//! Their sources are in `guest-modules/counter-v1`, `counter-v2` and `ticker`.

/// One bundled component.
pub struct Example {
    /// File name `hotswap examples` writes it under.
    pub file: &'static str,
    /// What it is.
    pub about: &'static str,
    /// The component.
    pub bytes: &'static [u8],
}

/// The counting server with the bug: it never increments its count.
pub const COUNTER_V1: &[u8] = include_bytes!(env!("HOTSWAP_EXAMPLE_COUNTER_V1"));
/// The fixed counting server: count + 1 per message; same state shape as v1.
pub const COUNTER_V2: &[u8] = include_bytes!(env!("HOTSWAP_EXAMPLE_COUNTER_V2"));
/// The client: sends the server (found by the name `counter`) a timestamp every interval.
pub const TICKER: &[u8] = include_bytes!(env!("HOTSWAP_EXAMPLE_TICKER"));

/// Every bundled component.
pub const ALL: [Example; 3] = [
    Example {
        file: "counter-v1.wasm",
        about: "counting server, version 1: registers as `counter`, prints each message, never increments (the bug)",
        bytes: COUNTER_V1,
    },
    Example {
        file: "counter-v2.wasm",
        about: "counting server, version 2: the fix (count + 1 per message), same state shape",
        bytes: COUNTER_V2,
    },
    Example {
        file: "ticker.wasm",
        about: "client: sends a timestamp to the process named `counter` every interval_ms (args: {\"interval_ms\": 1000})",
        bytes: TICKER,
    },
];
