//! `cargo bench`: hotswap's runtime measured on the workloads of issue 5 — spawn, memory per idle
//! process, ping-pong, fan-in, swap with migration, step cost by state size. Prints medians and
//! spreads; it asserts nothing about time. `BENCHMARKS.md` holds the latest figures.
//!
//! Run all: `cargo bench --bench runtime`; one: `cargo bench --bench runtime -- swap`.
//! Sizes scale with `HOTSWAP_BENCH_SCALE` (default 1; 10 gives the 1M-process spawn).

use std::time::{Duration, Instant};

use hotswap::{Host, HostConfig, HostEvent, Pid};
use hotswap_artifacts as guests;
use serde_json::json;

/// The allocator of the `hotswap` binary, so that the figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let scale: usize = std::env::var("HOTSWAP_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let mut rt = if std::env::var("HOTSWAP_BENCH_RT").as_deref() == Ok("current") {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let rt = rt.enable_all().build().expect("tokio runtime");
    let run = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    println!("hotswap runtime benchmarks (scale {scale}); medians over repeated runs\n");
    // First: its memory figure is the growth of this process's RSS, which memory freed by earlier
    // scenarios (kept by the allocator for reuse) would understate.
    if run("spawn") {
        rt.block_on(on_worker(spawn(scale)));
    }
    if run("step") {
        rt.block_on(on_worker(step_cost()));
    }
    if run("limits") {
        rt.block_on(on_worker(limits_cost()));
    }
    if run("pingpong") {
        rt.block_on(on_worker(pingpong()));
    }
    if run("fanin") {
        rt.block_on(on_worker(fan_in()));
    }
    if run("swap") {
        rt.block_on(on_worker(swap()));
    }
    if run("pairs") {
        rt.block_on(on_worker(pairs()));
    }
    if run("coldstart") {
        rt.block_on(on_worker(cold_start()));
    }
}

/// Runs a scenario as a task on the runtime's workers, as a host's own callers (API handlers,
/// guests) are, rather than on the benchmark's main thread: a result a process sends back then
/// does not have to wake a thread outside the runtime.
async fn on_worker(scenario: impl Future<Output = ()> + Send + 'static) {
    tokio::spawn(scenario).await.expect("scenario panicked");
    let hosts = std::mem::take(&mut *HOSTS.lock().expect("hosts"));
    for host in hosts {
        host.shutdown().await;
    }
}

/// Prints a machine-readable figure (`bench/run.sh` compares these keys with Erlang's).
fn result(key: &str, value: f64) {
    println!("RESULT {key} {value:.3}");
}

fn host() -> Host {
    track(Host::new(HostConfig::default()).expect("host"))
}

/// Hosts of the scenario running now, shut down when it ends: every host has its own engine and
/// instance pool, and leaving them all alive would add up to the OS's limit of memory mappings.
static HOSTS: std::sync::Mutex<Vec<Host>> = std::sync::Mutex::new(Vec::new());

fn track(host: Host) -> Host {
    HOSTS.lock().expect("hosts").push(host.clone());
    host
}

async fn deploy(host: &Host, name: &str, path: &str) {
    let bytes = std::fs::read(path).expect("guest built");
    host.deploy(name, &bytes).await.expect("deploy");
}

fn median(mut xs: Vec<f64>) -> (f64, f64, f64) {
    xs.sort_by(f64::total_cmp);
    let at = |q: f64| xs[((xs.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.0), at(1.0))
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

async fn wait_exit(events: &mut tokio::sync::broadcast::Receiver<HostEvent>, pid: Pid) {
    loop {
        match events.recv().await {
            Ok(HostEvent::Exited { pid: p, .. }) if p == pid => return,
            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(_) => panic!("host stopped"),
        }
    }
}

/// One step's cost for states of 16 B .. 1 MiB, next to the cost of copying the state twice
/// (in and out of the guest, the least a step can do).
async fn step_cost() {
    println!(
        "## step cost by state size (a message in, the same state out), per message under load"
    );
    println!(
        "   one call per message: batching off (`max_batch: 1`), the state crosses each way per message"
    );
    println!(
        "   batched: up to 256 queued messages per guest call (the default), the state crosses once per call"
    );
    println!("   2 copies: copying the state twice in the host (memcpy into a reused buffer)");
    println!(
        "{:>9} {:>14} {:>12} {:>12} {:>8}",
        "state", "1 call/msg", "batched", "2 copies", "ratio"
    );
    let unbatched = track(
        Host::new(HostConfig {
            max_batch: 1,
            ..HostConfig::default()
        })
        .expect("host"),
    );
    let batched = host();
    for size in [16usize, 1024, 64 << 10, 1 << 20] {
        let n = if size >= 1 << 20 { 200 } else { 5000 };
        let one = step_time(&unbatched, size, n).await;
        let many = step_time(&batched, size, n).await;
        let src = vec![7u8; size];
        let mut dst = vec![0u8; size];
        let reps = 500;
        let t = Instant::now();
        for _ in 0..reps {
            dst.copy_from_slice(std::hint::black_box(&src));
            std::hint::black_box(&mut dst).copy_from_slice(&src);
        }
        let copy = t.elapsed().as_secs_f64() / reps as f64;
        println!(
            "{size:>9} {:>12.2}µs {:>10.2}µs {:>10.2}µs {:>8.1}",
            one * 1e6,
            many * 1e6,
            copy * 1e6,
            one / copy
        );
        result(&format!("step_us@{size}"), one * 1e6);
        result(&format!("step_batched_us@{size}"), many * 1e6);
        result(&format!("step_copy_ratio@{size}"), one / copy);
    }
    println!();
}

/// Median time of one step of a process with a `size`-byte state, fed `n` messages at a time
/// through its mailbox.
async fn step_time(host: &Host, size: usize, n: usize) -> f64 {
    deploy(host, "blob", guests::BLOB).await;
    let args = json!({ "size": size }).to_string();
    time_per_message(host, "blob", args.as_bytes(), b"1", n).await
}

/// Median time per message of a process of `module` (deployed) handling `n` copies of
/// `payload` sent by the host.
async fn time_per_message(host: &Host, module: &str, args: &[u8], payload: &[u8], n: usize) -> f64 {
    let pid = host.spawn(module, args).await.expect("spawn");
    let mut samples = Vec::new();
    for _ in 0..5 {
        let before = host.process(pid).await.expect("alive").steps;
        let t = Instant::now();
        for _ in 0..n {
            while host.send(pid, payload).is_err() {
                tokio::task::yield_now().await;
            }
        }
        while host.process(pid).await.expect("alive").steps < before + n as u64 {
            tokio::task::yield_now().await;
        }
        samples.push(t.elapsed().as_secs_f64() / n as f64);
    }
    host.stop(pid).expect("stop");
    median(samples).0
}

/// What the sandbox's time limit (epoch interruption) costs per step.
async fn limits_cost() {
    println!(
        "## cost of the per-call time limit (epoch interruption), 16-byte state, one call per message"
    );
    let with = |time_limits| {
        track(
            Host::new(HostConfig {
                engine: hotswap::engine::EngineConfig {
                    time_limits,
                    ..Default::default()
                },
                max_batch: 1,
                ..HostConfig::default()
            })
            .expect("host"),
        )
    };
    let off = step_time(&with(false), 16, 20_000).await;
    let on = step_time(&with(true), 16, 20_000).await;
    println!(
        "step p50 without limits {:.3} µs, with limits {:.3} µs (x{:.2})\n",
        off * 1e6,
        on * 1e6,
        on / off
    );
    result("step_us_no_limits@16", off * 1e6);
    result("step_us_limits@16", on * 1e6);
}

/// Round trip between two processes.
async fn pingpong() {
    println!("## ping-pong round trip (two processes, one message each way)");
    // The floor under a round trip: two steps of the same guest and nothing else (the host
    // queues the balls, `{"ball": 0}`, which the guest counts and sends on to no one).
    let unbatched = track(
        Host::new(HostConfig {
            max_batch: 1,
            ..HostConfig::default()
        })
        .expect("host"),
    );
    for (module, path, key, last_ball) in [
        (
            "pingpong",
            guests::PINGPONG,
            "pingpong_rtt_us",
            &br#"{"ball":0}"#[..],
        ),
        // The same game with state and messages in the SDK's binary encoding.
        (
            "pingpong-postcard",
            guests::PINGPONG_POSTCARD,
            "pingpong_postcard_rtt_us",
            &[0, 0][..],
        ),
    ] {
        let host = host();
        let mut events = host.subscribe();
        deploy(&host, module, path).await;
        let mut samples = Vec::new();
        for _ in 0..5 {
            let rounds = 20_000u64;
            let b = host.spawn(module, b"").await.expect("spawn");
            let t = Instant::now();
            let args = json!({"peer": b.0, "rounds": rounds, "stop": true}).to_string();
            host.spawn(module, args.as_bytes()).await.expect("spawn");
            wait_exit(&mut events, b).await;
            samples.push(t.elapsed().as_secs_f64() / (rounds as f64 / 2.0));
        }
        let (p50, lo, hi) = median(samples);
        deploy(&unbatched, module, path).await;
        let floor = 2.0 * time_per_message(&unbatched, module, b"", last_ball, 20_000).await;
        println!(
            "{module:>18}: round trip p50 {:.2} µs (min {:.2}, max {:.2}); two steps alone {:.2} µs",
            p50 * 1e6,
            lo * 1e6,
            hi * 1e6,
            floor * 1e6
        );
        result(key, p50 * 1e6);
        result(&key.replace("_us", "_floor_us"), floor * 1e6);
    }
    println!();
}

/// S senders flooding one receiver, each message one `send` (as Erlang's `!`), then each burst
/// of 64 one `send_many`.
async fn fan_in() {
    println!("## fan-in: S senders -> 1 receiver");
    println!(
        "{:>6} {:>16} {:>22}",
        "S", "send, msgs/s", "send_many, msgs/s"
    );
    for senders in [1usize, 16, 256] {
        let mut row = format!("{senders:>6}");
        for (many, key) in [(false, "fanin_msgs_per_s"), (true, "fanin_many_msgs_per_s")] {
            let host = host();
            deploy(&host, "sink", guests::SINK).await;
            deploy(&host, "flood", guests::FLOOD).await;
            let mut samples = Vec::new();
            for _ in 0..3 {
                let sink = host.spawn("sink", b"").await.expect("spawn");
                let per_sender = 400_000 / senders as u64;
                let total = per_sender * senders as u64;
                let args = json!({"to": sink.0, "count": per_sender, "many": many}).to_string();
                let t = Instant::now();
                for _ in 0..senders {
                    host.spawn("flood", args.as_bytes()).await.expect("spawn");
                }
                while host.process(sink).await.expect("alive").messages_in < total {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                samples.push(total as f64 / t.elapsed().as_secs_f64());
                host.stop(sink).expect("stop");
            }
            let (p50, _, _) = median(samples);
            row += &format!(" {:>14.2} M", p50 / 1e6);
            result(&format!("{key}@{senders}"), p50);
        }
        println!("{row}");
    }
    println!();
}

/// Upgrade with `migrate` of N idle processes.
async fn swap() {
    println!("## swap with migrate: N idle processes, v1 -> v2 (median of runs)");
    println!(
        "{:>8} {:>14} {:>12} {:>12} {:>12} {:>6}  processes",
        "N", "all moved", "pause p50", "pause p99", "p99.9", "lost"
    );
    // Up to `max_cached_instances` (1,024) idle processes keep a warm instance, which the swap
    // must drop; with a cache of 0, no idle process holds one (as at 100,000, where most don't).
    let cases: &[(usize, usize, usize, &str)] = &[
        (1, 1024, 3, ""),
        (1000, 1024, 5, ""),
        (1000, 0, 5, "_no_warm"),
        (100_000, 1024, 1, ""),
    ];
    for &(n, cache, runs, suffix) in cases {
        let mut rows = Vec::new();
        for _ in 0..runs {
            rows.push(swap_once(n, cache).await);
        }
        rows.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (all_ms, p50, p99, p999, lost) = rows[rows.len() / 2];
        let what = if cache == 0 {
            "holding no warm instance"
        } else {
            "as spawned"
        };
        println!(
            "{n:>8} {all_ms:>12.2}ms {p50:>10.1}µs {p99:>10.1}µs {p999:>10.1}µs {lost:>6}  {what}"
        );
        result(&format!("swap_all_ms{suffix}@{n}"), all_ms);
        result(&format!("swap_pause_p50_us{suffix}@{n}"), p50);
        result(&format!("swap_pause_p99_us{suffix}@{n}"), p99);
        result(&format!("swap_pause_p999_us{suffix}@{n}"), p999);
        result(&format!("swap_lost{suffix}@{n}"), lost as f64);
        if n == 1000 {
            // Erlang's counterpart of an upgrade *with state migration* is the synchronized
            // sys:suspend / change_code / resume of gen_servers (bench/erlang).
            result(&format!("upgrade_ms{suffix}@1000"), all_ms);
        }
    }
    println!();
}

/// One upgrade of `n` counters: (ms until all moved, pause p50, p99 and p99.9 in µs, lost).
async fn swap_once(n: usize, max_cached_instances: usize) -> (f64, f64, f64, f64, usize) {
    // Not tracked: shut down and dropped here, so that the runs' engines do not pile up.
    let host = Host::new(HostConfig {
        max_cached_instances,
        ..HostConfig::default()
    })
    .expect("host");
    deploy(&host, "counter", guests::COUNTER_V2).await;
    for _ in 0..n {
        host.spawn("counter", b"").await.expect("spawn");
    }
    let bytes = std::fs::read(guests::COUNTER_V3).expect("guest built");
    let report = host.deploy("counter", &bytes).await.expect("deploy");
    // From the component being compiled and checked until every process answered.
    let all = Duration::from_micros(report.elapsed_us);
    let mut pauses: Vec<f64> = report.moved.iter().map(|m| m.pause_us as f64).collect();
    pauses.sort_by(f64::total_cmp);
    let p = |q: f64| {
        pauses
            .get(((pauses.len().max(1) - 1) as f64 * q) as usize)
            .copied()
            .unwrap_or(0.0)
    };
    host.shutdown().await;
    (
        all.as_secs_f64() * 1e3,
        p(0.5),
        p(0.99),
        p(0.999),
        n - report.moved.len(),
    )
}

/// Spawning idle processes: time per spawn and memory per idle process.
async fn spawn(scale: usize) {
    println!("## spawn N idle processes");
    println!("{:>9} {:>14} {:>16}", "N", "per spawn", "RSS per process");
    let sizes: &[usize] = if scale >= 10 {
        &[100_000, 1_000_000]
    } else {
        &[100_000]
    };
    for &n in sizes {
        let host = host();
        deploy(&host, "sink", guests::SINK).await;
        let before = rss_bytes();
        let t = Instant::now();
        let mut pids = Vec::with_capacity(n);
        for _ in 0..n {
            pids.push(host.spawn("sink", b"").await.expect("spawn"));
        }
        let per = t.elapsed().as_secs_f64() / n as f64;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let rss = rss_bytes().saturating_sub(before) as f64 / n as f64;
        println!("{n:>9} {:>12.2}µs {:>13.0} B", per * 1e6, rss);
        result(&format!("spawn_us_per_process@{n}"), per * 1e6);
        result(&format!("memory_bytes_per_process@{n}"), rss);
        // The same processes once each has handled a message and waits for the next: the
        // process Erlang's figure is of (one blocked in `receive`).
        for &pid in &pids {
            host.send(pid, b"1").expect("send");
        }
        for &pid in &pids {
            while host.process(pid).await.expect("alive").messages_in < 1 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let rss = rss_bytes().saturating_sub(before) as f64 / n as f64;
        println!(
            "{n:>9} {:>14} {:>13.0} B once each has handled a message",
            "", rss
        );
        result(&format!("memory_bytes_per_process_after_message@{n}"), rss);
    }
    // Arguments never seen before: `init` runs in a new instance for every spawn (the figure
    // above reuses the result of the first, pure, `init`).
    {
        let n = 100_000;
        let host = self::host();
        deploy(&host, "sink", guests::SINK).await;
        let t = Instant::now();
        for i in 0..n {
            let args = format!("{{\"n\":{i}}}");
            host.spawn("sink", args.as_bytes()).await.expect("spawn");
        }
        let per = t.elapsed().as_secs_f64() / n as f64;
        println!(
            "{n:>9} {:>12.2}µs per process, distinct arguments",
            per * 1e6
        );
        result(
            &format!("spawn_distinct_args_us_per_process@{n}"),
            per * 1e6,
        );
    }
    // Erlang's spawn returns before the new process runs; `Host::spawn` returns after `init`.
    // The closer equivalent of a spawning loop is many spawns in flight, each still waiting for
    // its process's `init`: time per process until all N are initialised and idle.
    let n = 100_000;
    let host = self::host();
    deploy(&host, "sink", guests::SINK).await;
    let t = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        if tasks.len() >= 256 {
            tasks.join_next().await.expect("task").expect("spawned");
        }
        let host = host.clone();
        tasks.spawn(async move { host.spawn("sink", b"").await.expect("spawn") });
    }
    while let Some(r) = tasks.join_next().await {
        r.expect("spawned");
    }
    let per = t.elapsed().as_secs_f64() / n as f64;
    println!(
        "{n:>9} {:>12.2}µs per process, 256 spawns in flight",
        per * 1e6
    );
    result(&format!("spawn_concurrent_us_per_process@{n}"), per * 1e6);
    println!();
}

/// P ping-pong pairs at once.
async fn pairs() {
    println!("## P ping-pong pairs at once");
    println!("{:>7} {:>14}", "P", "msgs/s p50");
    for p in [1usize, 16, 10_000] {
        let rounds = (200_000 / p as u64).max(20);
        let mut samples = Vec::new();
        for _ in 0..3 {
            let host = host();
            let mut events = host.subscribe();
            deploy(&host, "pingpong", guests::PINGPONG).await;
            let mut bs = Vec::with_capacity(p);
            for _ in 0..p {
                bs.push(host.spawn("pingpong", b"").await.expect("spawn"));
            }
            let t = Instant::now();
            for b in &bs {
                let args = json!({"peer": b.0, "rounds": rounds, "stop": true}).to_string();
                host.spawn("pingpong", args.as_bytes())
                    .await
                    .expect("spawn");
            }
            // With `stop`, both processes of a pair stop after the last ball.
            let mut exited = 0;
            while exited < 2 * p {
                if let Ok(HostEvent::Exited { .. }) = events.recv().await {
                    exited += 1;
                }
            }
            let msgs = (rounds + 1) as f64 * p as f64;
            samples.push(msgs / t.elapsed().as_secs_f64());
        }
        let (p50, _, _) = median(samples);
        println!("{p:>7} {:>12.2} M", p50 / 1e6);
        result(&format!("pairs_msgs_per_s@{p}"), p50);
    }
    println!();
}

/// A host restarting on a data dir whose modules are all in the compiled cache.
async fn cold_start() {
    println!("## cold start with cached compiled modules (3 modules)");
    let dir = tempfile::tempdir().expect("temp dir");
    let config = || HostConfig {
        data_dir: Some(dir.path().to_path_buf()),
        ..HostConfig::default()
    };
    {
        let host = Host::new(config()).expect("host");
        for (name, path) in [
            ("counter", guests::COUNTER_V1),
            ("ticker", guests::TICKER),
            ("pingpong", guests::PINGPONG),
        ] {
            deploy(&host, name, path).await;
        }
    }
    let mut samples = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let host = Host::new(config()).expect("host");
        samples.push(t.elapsed().as_secs_f64());
        assert_eq!(host.compile_stats().0, 0, "restored without compiling");
    }
    let (p50, lo, hi) = median(samples);
    println!(
        "Host::new + restore p50 {:.2} ms (min {:.2}, max {:.2})\n",
        p50 * 1e3,
        lo * 1e3,
        hi * 1e3
    );
    result("cold_start_ms", p50 * 1e3);
}
