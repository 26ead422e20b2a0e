//! `hotswap serve` driven by separate CLI invocations, as an operator or a deploy pipeline would:
//! the seed scenario end to end, authentication, refused uploads, dry runs, atomic deploys,
//! rollback, and a restart that restores modules (without recompiling) and resumes processes.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use hotswap::api::Status;
use hotswap::api::client::Client;
use hotswap::registry::ModuleInfo;
use hotswap::{ProcessInfo, SwapReport};
use hotswap_artifacts as guests;

const BIN: &str = env!("CARGO_BIN_EXE_hotswap");

/// A `hotswap serve` child on a free loopback port with its own data dir.
struct Server {
    child: Child,
    data: PathBuf,
}

impl Server {
    fn start(data: &Path) -> Self {
        Self::start_with(data, &[])
    }

    fn start_with(data: &Path, extra: &[&str]) -> Self {
        let _ = std::fs::remove_file(data.join("address"));
        let child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .args(extra)
            .env("RUST_LOG", "hotswap=error")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while !data.join("address").exists() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "serve did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            child,
            data: data.to_path_buf(),
        }
    }

    /// Runs a client command against this server.
    fn cli(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .arg("--data-dir")
            .arg(&self.data)
            .env("RUST_LOG", "hotswap=error")
            .output()
            .unwrap()
    }

    /// Runs a client command that must succeed; returns its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn json<T: serde::de::DeserializeOwned>(&self, args: &[&str]) -> T {
        let mut args = args.to_vec();
        args.extend(["--format", "json"]);
        serde_json::from_str(&self.ok(&args)).unwrap()
    }

    /// Waits until `hotswap logs` shows a line containing `needle`.
    fn wait_log(&self, needle: &str) {
        let started = Instant::now();
        loop {
            if self.ok(&["logs"]).contains(needle) {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "no log line with {needle:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop(mut self) {
        // SIGTERM: graceful shutdown.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let status = self.child.wait().unwrap();
        assert!(
            status.success(),
            "serve exits cleanly on SIGTERM: {status:?}"
        );
        std::mem::forget(self);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn seed_scenario_through_the_control_api() {
    // Expectation: deploy v1 + ticker, spawn both, see `0:` lines, deploy v2, see the count climb
    // from the same pids, quit both.
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let report: SwapReport = server.json(&["deploy", "counter", guests::COUNTER_V1]);
    assert_eq!(report.version, 1);
    server.ok(&["deploy", "ticker", guests::TICKER]);
    assert_eq!(server.ok(&["spawn", "counter"]).trim(), "<1>");
    assert_eq!(
        server
            .ok(&["spawn", "ticker", "--arg", r#"{"interval_ms": 20}"#])
            .trim(),
        "<2>"
    );
    server.wait_log("<1> 0: Server <1> received message ");

    let report: SwapReport = server.json(&["deploy", "counter", guests::COUNTER_V2]);
    assert_eq!(report.version, 2);
    assert_eq!(report.moved.len(), 1);
    assert_eq!(report.moved[0].pid, hotswap::Pid(1));
    server.wait_log("<1> 3: Server <1> received message ");

    let ps: Vec<ProcessInfo> = server.json(&["ps"]);
    let pids: Vec<(u64, u32)> = ps.iter().map(|p| (p.pid.0, p.version)).collect();
    assert_eq!(pids, [(1, 2), (2, 1)]);
    let modules: Vec<ModuleInfo> = server.json(&["modules"]);
    let counter = modules.iter().find(|m| m.name == "counter").unwrap();
    assert_eq!(counter.current, 2);
    assert_eq!(counter.versions[1].processes, 1);

    server.ok(&["send", "2", "quit"]);
    server.ok(&["send", "<1>", "quit"]);
    server.wait_log("<2> Received quit command from <0>");
    server.wait_log("<1> Received quit command from <0>");
    let ps: Vec<ProcessInfo> = server.json(&["ps"]);
    assert!(ps.is_empty(), "{ps:?}");
    server.stop();
}

#[test]
fn missing_or_wrong_token_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let address = std::fs::read_to_string(dir.path().join("address")).unwrap();
    let wrong = Client::connect(Some(&address), Some("not-the-token"), dir.path()).unwrap();
    let err = wrong
        .post_bytes::<SwapReport>(
            "/v1/modules/counter",
            &std::fs::read(guests::COUNTER_V1).unwrap(),
            &[],
        )
        .unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");

    // No token at all, as a raw HTTP request.
    let addr = address.trim().trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .write_all(b"GET /v1/modules HTTP/1.1\r\nHost: hotswap\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(
        answer.contains("token"),
        "the 401 says what is missing: {answer}"
    );
    let modules: Vec<ModuleInfo> = server.json(&["modules"]);
    assert!(modules.is_empty(), "nothing was deployed: {modules:?}");
}

#[test]
fn bad_uploads_are_refused_with_precise_messages() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    server.ok(&["deploy", "counter", guests::COUNTER_V1]);
    server.ok(&["spawn", "counter"]);

    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"definitely not wasm").unwrap();
    let core = dir.path().join("core.wasm");
    std::fs::write(&core, wat::parse_str("(module)").unwrap()).unwrap();
    for (file, needle) in [
        (junk.to_str().unwrap(), "not a WebAssembly binary"),
        (core.to_str().unwrap(), "core wasm module, not a component"),
        (guests::WRONG_EXPORTS, "does not match the hotswap contract"),
    ] {
        let out = server.cli(&["deploy", "counter", file]);
        assert_eq!(out.status.code(), Some(1), "{file}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("422") && stderr.contains(needle),
            "{file}: {stderr}"
        );
    }
    let modules: Vec<ModuleInfo> = server.json(&["modules"]);
    assert_eq!(modules[0].versions.len(), 1, "no version added");
    let ps: Vec<ProcessInfo> = server.json(&["ps"]);
    assert_eq!(ps.len(), 1);
    assert_eq!(ps[0].version, 1);
}

#[test]
fn restarted_host_restores_modules_without_recompiling_and_resumes_processes() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    server.ok(&["deploy", "counter", guests::COUNTER_V1]);
    server.ok(&["deploy", "counter", guests::COUNTER_V2]);
    server.ok(&["deploy", "ticker", guests::TICKER]);
    server.ok(&["rollback", "counter"]);
    server.ok(&["spawn", "counter"]);
    server.ok(&["send", "1", "a"]);
    server.ok(&["send", "1", "b"]);
    server.wait_log("received message \"b\"");
    let before: Vec<ModuleInfo> = server.json(&["modules"]);
    let ps_before: Vec<ProcessInfo> = server.json(&["ps"]);
    server.stop();

    let server = Server::start(dir.path());
    // The process was saved at shutdown and resumed: same pid, version and counts.
    let ps_after: Vec<ProcessInfo> = server.json(&["ps"]);
    let summary_ps = |ps: &[ProcessInfo]| -> Vec<(u64, String, u32, u64, u64)> {
        ps.iter()
            .map(|p| (p.pid.0, p.module.clone(), p.version, p.steps, p.messages_in))
            .collect()
    };
    assert_eq!(summary_ps(&ps_after), summary_ps(&ps_before));
    assert_eq!(summary_ps(&ps_after)[0].4, 2);
    let after: Vec<ModuleInfo> = server.json(&["modules"]);
    let summary = |m: &[ModuleInfo]| -> Vec<(String, u32, Vec<String>)> {
        m.iter()
            .map(|m| {
                (
                    m.name.clone(),
                    m.current,
                    m.versions.iter().map(|v| v.sha256.clone()).collect(),
                )
            })
            .collect()
    };
    assert_eq!(summary(&after), summary(&before));
    assert_eq!(
        after.iter().find(|m| m.name == "counter").unwrap().current,
        1
    );
    let address = std::fs::read_to_string(dir.path().join("address")).unwrap();
    let client = Client::connect(Some(&address), None, dir.path()).unwrap();
    let status: Status = client.get("/v1/status").unwrap();
    assert_eq!(
        status.compiled, 0,
        "everything came from the compiled cache: {status:?}"
    );
    assert_eq!(status.loaded_from_disk, 3);
}

#[test]
fn dry_run_changes_nothing_and_atomic_moves_nobody_when_one_fails() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    server.ok(&["deploy", "counter", guests::COUNTER_V2]);
    for _ in 0..3 {
        server.ok(&["spawn", "counter"]);
    }
    // Make process 2's count odd: migrate-picky refuses odd counts.
    server.ok(&["send", "2", "tick"]);
    let wait_steps = || {
        let started = Instant::now();
        loop {
            let ps: Vec<ProcessInfo> = server.json(&["ps"]);
            if ps.iter().any(|p| p.pid.0 == 2 && p.steps == 1) {
                return;
            }
            assert!(started.elapsed() < Duration::from_secs(20));
        }
    };
    wait_steps();

    let out = server.cli(&[
        "deploy",
        "counter",
        guests::MIGRATE_PICKY,
        "--dry-run",
        "--format",
        "json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "exit 2: some processes would stay"
    );
    let dry: SwapReport = serde_json::from_slice(&out.stdout).unwrap();
    assert!(dry.dry_run && !dry.committed);
    assert_eq!(dry.moved.len(), 2, "{dry:?}");
    assert_eq!(dry.stayed.len(), 1);
    assert_eq!(dry.stayed[0].pid.0, 2);
    let modules: Vec<ModuleInfo> = server.json(&["modules"]);
    assert_eq!(modules[0].versions.len(), 1, "a dry run adds no version");

    let out = server.cli(&[
        "deploy",
        "counter",
        guests::MIGRATE_PICKY,
        "--atomic",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(2), "some processes stayed");
    let atomic: SwapReport = serde_json::from_slice(&out.stdout).unwrap();
    assert!(!atomic.committed);
    assert!(atomic.moved.is_empty());
    assert_eq!(atomic.stayed.len(), 3);
    let ps: Vec<ProcessInfo> = server.json(&["ps"]);
    assert!(ps.iter().all(|p| p.version == 1), "nobody moved: {ps:?}");
    let modules: Vec<ModuleInfo> = server.json(&["modules"]);
    assert_eq!(modules[0].current, 1, "the current version did not change");

    // Without --atomic, the two that can move do.
    let out = server.cli(&[
        "deploy",
        "counter",
        guests::MIGRATE_PICKY,
        "--format",
        "json",
    ]);
    let partial: SwapReport = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(partial.moved.len(), 2);
    assert_eq!(partial.stayed.len(), 1);
}

#[test]
fn logs_follow_streams_new_lines() {
    // Expectation: `logs -f 1` prints the server's lines as they happen, prefixed by its pid.
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    server.ok(&["deploy", "counter", guests::COUNTER_V2]);
    server.ok(&["spawn", "counter"]);
    let mut follow = Command::new(BIN)
        .args(["logs", "-f", "1", "--data-dir"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = follow.stdout.take().unwrap();
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    for n in 0..3 {
        server.ok(&["send", "1", &format!("hello-{n}")]);
        let line = lines
            .recv_timeout(Duration::from_secs(20))
            .expect("a streamed line");
        assert_eq!(
            line,
            format!("<1> {n}: Server <1> received message \"hello-{n}\" from <0>")
        );
    }
    let _ = follow.kill();
    let _ = follow.wait();
}

#[test]
fn upload_over_the_cap_is_refused_with_413() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), &["--max-upload-mib", "1"]);
    let big = dir.path().join("big.wasm");
    let mut bytes = b"\0asm\x0d\0\x01\0".to_vec();
    bytes.resize(2 << 20, 0);
    std::fs::write(&big, bytes).unwrap();
    let out = server.cli(&["deploy", "counter", big.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("413"), "{stderr}");
    let modules: Vec<ModuleInfo> = server.json(&["modules"]);
    assert!(modules.is_empty());
}

#[test]
fn deploy_grants_travel_with_the_policy_and_dirs_stay_in_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    // Without grants: refused, naming the grant each import needs.
    let out = server.cli(&["deploy", "plugin", guests::WASI_PLUGIN]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("grant `clocks`"), "{stderr}");
    // A directory outside the data dir: refused.
    let grants = ["--grant", "stdio,clocks,random"];
    let out = server.cli(
        &[
            &["deploy", "plugin", guests::WASI_PLUGIN][..],
            &grants,
            &["--dir", "/etc:/data"],
        ]
        .concat(),
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("relative path"), "{stderr}");
    // Inside it: granted, created under <data-dir>/dirs, and the guest writes there.
    server.ok(&[
        &["deploy", "plugin", guests::WASI_PLUGIN][..],
        &grants,
        &["--dir", "files:/data:rw"],
    ]
    .concat());
    server.ok(&["spawn", "plugin", "--arg", r#"["write", "stdout"]"#]);
    server.wait_log("hello on stdout");
    server.wait_log("write ok");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("dirs/files/out.txt")).unwrap(),
        "written by the plugin"
    );
}
