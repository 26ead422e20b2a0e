//! Test guest for WASI grants: each message names one capability to use through Rust's standard
//! library (init args: a list of them to carry out at start), and the outcome is printed through the runtime interface. The component imports
//! `wasi:clocks`, `wasi:random` and `wasi:filesystem`, so it deploys only with the `clocks` and
//! `random` grants and a directory; stdout/stderr reach the process's output only with `stdio`.

use std::hash::BuildHasher;
use std::time::{SystemTime, UNIX_EPOCH};

use hotswap_guest::{Event, Next, Process, print};

struct Plugin;

fn act(what: &str) -> String {
    match what {
        "stdout" => {
            println!("hello on stdout");
            eprintln!("hello on stderr");
            "wrote to stdout and stderr".into()
        }
        "env" => format!("GREETING={:?}", std::env::var("GREETING").ok()),
        "clock" => match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) if d.as_secs() > 1_600_000_000 => "clock ok".into(),
            other => format!("clock wrong: {other:?}"),
        },
        "random" => {
            let a = std::collections::hash_map::RandomState::new().hash_one(0u8);
            format!("random {a}")
        }
        "read" => match std::fs::read_to_string("/data/in.txt") {
            Ok(text) => format!("read: {}", text.trim()),
            Err(e) => format!("read failed: {e}"),
        },
        "write" => match std::fs::write("/data/out.txt", "written by the plugin") {
            Ok(()) => "write ok".into(),
            Err(e) => format!("write failed: {e}"),
        },
        "escape" => match std::fs::read_to_string("/etc/hostname") {
            Ok(_) => "escape ok".into(),
            Err(e) => format!("escape failed: {e}"),
        },
        other => format!("unknown request {other}"),
    }
}

impl Process for Plugin {
    /// Requests to carry out at start, like messages (`null`: none).
    type Args = Option<Vec<String>>;
    type State = u64;
    type Msg = String;

    fn init(requests: Option<Vec<String>>) -> Result<Next<u64>, String> {
        for r in requests.unwrap_or_default() {
            print(&act(&r));
        }
        Ok(Next::wait(0))
    }

    fn handle(count: u64, event: Event<String>) -> Result<Next<u64>, String> {
        if let Event::Message { msg, .. } = event {
            print(&act(&msg));
        }
        Ok(Next::wait(count + 1))
    }
}

hotswap_guest::export_process!(Plugin);
