//! Test guest: slow version 1. A message `{"spin_ms": N}` busy-loops for N ms (a long step, to
//! test swaps of busy processes and the per-call time limit), then counts. The code is in
//! `slow.rs`, shared with `slow-v2`.

const VERSION: u32 = 1;

include!("slow.rs");
