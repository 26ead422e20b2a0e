//! Paths of the guest components built from `guest-modules/` for `wasm32-wasip2` (by `build.rs`),
//! one constant per guest: `COUNTER_V1`, `TICKER`, `MIGRATE_FAILS`, ... and `ALL`.
//!
//! The integration tests load guests through these paths; the host's build script embeds the
//! example components (`COUNTER_V1`, `COUNTER_V2`, `TICKER`) into the `hotswap` binary.

include!(concat!(env!("OUT_DIR"), "/gen.rs"));
