//! Benchmark guest: the ping-pong game of `pingpong` (see there), with its state and messages in
//! the SDK's postcard encoding instead of JSON (its init arguments stay JSON), to measure what the
//! encoding costs a message.

const ENCODING: hotswap_guest::Encoding = hotswap_guest::Encoding::Postcard;

include!("../../pingpong/src/game.rs");
