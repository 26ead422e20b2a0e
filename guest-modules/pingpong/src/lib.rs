//! Test and benchmark guest: ping-pong. Started with `{"peer": pid, "rounds": n}` it serves the
//! ball `{"ball": n}` to its peer; whoever gets `{"ball": k}` with k > 0 returns `{"ball": k - 1}`.
//! A pair exchanges `rounds + 1` messages in all. With `"stop": true` the last receiver stops.
//! State and messages in JSON, the SDK's default (`pingpong-postcard` is the same game in the
//! SDK's binary encoding).

const ENCODING: hotswap_guest::Encoding = hotswap_guest::Encoding::Json;

include!("game.rs");
