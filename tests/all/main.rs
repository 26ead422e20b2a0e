//! hotswap's integration tests, in one binary (one link step instead of many).
//!
//! Every test runs real guest components, built from `guest-modules/` during `cargo test` by the
//! `hotswap-artifacts` crate, through the real runtime. CLI tests run the real `hotswap` binary.

#![allow(clippy::unwrap_used)]

mod cli;
mod contract;
mod conversation;
mod failures;
mod load;
mod restart;
mod sandbox;
mod serve;
mod spawn;
mod support;
mod swap;
