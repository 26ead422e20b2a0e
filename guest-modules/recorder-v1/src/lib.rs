//! Test guest: recorder version 1. Appends `[sender, message]` to its state's log for every
//! message, so tests can check that each message arrived exactly once and in order.
//! `migrate` stamps the state with the version it moves to. The code is in `recorder.rs`, shared
//! with `recorder-v2`.

const VERSION: u32 = 1;

include!("recorder.rs");
