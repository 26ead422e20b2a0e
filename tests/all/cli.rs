//! The real `hotswap` binary: `demo`, `examples`, `run`, `run --watch` and `run --grant`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use hotswap_artifacts as guests;

const BIN: &str = env!("CARGO_BIN_EXE_hotswap");

fn hotswap() -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env("RUST_LOG", "hotswap=warn");
    cmd
}

#[test]
fn demo_swaps_the_server_and_loses_nothing() {
    let out = hotswap()
        .args(["demo", "--interval-ms", "20", "--messages", "4"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "demo failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );

    let lines: Vec<&str> = stdout.lines().collect();
    let swap = lines
        .iter()
        .position(|l| l.starts_with("== counter v2 loaded"))
        .expect("swap line");
    let server_lines = |range: &[&str]| -> Vec<u64> {
        range
            .iter()
            .filter(|l| l.contains(": Server <1> received message "))
            .map(|l| l.split(':').next().unwrap().parse().unwrap())
            .collect()
    };
    let before = server_lines(&lines[..swap]);
    let after = server_lines(&lines[swap..]);
    assert!(
        before.len() >= 4 && before.iter().all(|c| *c == 0),
        "v1 never increments: {before:?}"
    );
    assert!(after.len() >= 4, "{stdout}");
    let expected: Vec<u64> = (0..after.len() as u64).collect();
    assert_eq!(after, expected, "v2 counts up from the state v1 left");
    assert!(
        stdout.contains("Received quit command from <0>"),
        "{stdout}"
    );
    assert_eq!(
        stdout.matches("Received quit command").count(),
        2,
        "both processes quit"
    );
    let summary = lines.last().unwrap();
    assert!(
        summary.starts_with("sent ") && summary.ends_with(", lost 0"),
        "{summary}"
    );
    let sent: u64 = summary
        .split(' ')
        .nth(1)
        .unwrap()
        .trim_end_matches(',')
        .parse()
        .unwrap();
    assert_eq!(sent as usize, before.len() + after.len());
}

#[test]
fn examples_writes_the_bundled_components() {
    let dir = tempfile::tempdir().unwrap();
    let out = hotswap()
        .args(["examples", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for file in ["counter-v1.wasm", "counter-v2.wasm", "ticker.wasm"] {
        let bytes = std::fs::read(dir.path().join(file)).unwrap();
        assert_eq!(&bytes[..4], b"\0asm", "{file}");
    }
}

/// A running `hotswap` child whose stdout lines arrive on a channel.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Running {
    fn start(cmd: &mut Command) -> Self {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines }
    }

    /// The next line that satisfies `pred`, within 20 s.
    fn wait_line(&self, pred: impl Fn(&str) -> bool) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(20))
                .expect("expected output line in time");
            if pred(&line) {
                return line;
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn examples_in(dir: &std::path::Path) {
    let status = hotswap()
        .args(["examples", "--out"])
        .arg(dir)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn run_prints_process_output_prefixed_by_pid() {
    let dir = tempfile::tempdir().unwrap();
    examples_in(dir.path());
    let run = Running::start(
        hotswap()
            .arg("run")
            .arg(dir.path().join("counter-v1.wasm"))
            .arg(dir.path().join("ticker.wasm"))
            .args(["--arg", "", "--arg", r#"{"interval_ms": 20}"#]),
    );
    for _ in 0..3 {
        let line = run.wait_line(|l| l.contains("received message"));
        assert!(
            line.starts_with("<1> 0: Server <1> received message "),
            "{line}"
        );
        assert!(line.ends_with(" from <2>"), "{line}");
    }
}

#[test]
fn run_watch_swaps_a_changed_file_into_the_running_process() {
    let dir = tempfile::tempdir().unwrap();
    examples_in(dir.path());
    let server = dir.path().join("server.wasm");
    std::fs::copy(dir.path().join("counter-v1.wasm"), &server).unwrap();
    let run = Running::start(
        hotswap()
            .arg("run")
            .arg(&server)
            .arg(dir.path().join("ticker.wasm"))
            .args(["--arg", "", "--arg", r#"{"interval_ms": 20}"#, "--watch"]),
    );
    run.wait_line(|l| l.starts_with("<1> 0: Server <1>"));
    // The "rebuilt guest": the fixed server lands on the watched path.
    std::fs::copy(dir.path().join("counter-v2.wasm"), &server).unwrap();
    // Same pid, and the count now climbs.
    run.wait_line(|l| l.starts_with("<1> 2: Server <1> received message "));
}

#[test]
fn run_refuses_a_file_that_is_not_a_component() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"hello").unwrap();
    let out = hotswap().arg("run").arg(&junk).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Error: failed to load") && stderr.contains("not a WebAssembly binary"),
        "{stderr}"
    );
}

#[test]
fn run_grants_wasi_capabilities_from_flags_and_refuses_without_them() {
    let dir = tempfile::tempdir().unwrap();
    let out = hotswap()
        .arg("run")
        .arg(guests::WASI_PLUGIN)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("wasi:clocks/") && stderr.contains("grant `clocks`"),
        "{stderr}"
    );

    std::fs::write(dir.path().join("in.txt"), "from the host").unwrap();
    let data = format!("{}:/data", dir.path().display());
    let run = Running::start(
        hotswap()
            .arg("run")
            .arg(guests::WASI_PLUGIN)
            .args(["--grant", "stdio,clocks,random", "--env", "GREETING=hi"])
            .args(["--dir", &data])
            .args(["--arg", r#"["stdout", "env", "read", "write"]"#]),
    );
    run.wait_line(|l| l == "<1> hello on stdout");
    run.wait_line(|l| l == r#"<1> GREETING=Some("hi")"#);
    run.wait_line(|l| l == "<1> read: from the host");
    run.wait_line(|l| l.starts_with("<1> write failed"));
}
