//! A host shut down gracefully and started again on the same data directory resumes its
//! processes: pids, versions, states, queued messages, names and monitors, also in the middle of
//! a conversation.

use hotswap::{Host, HostConfig, Pid};
use hotswap_artifacts as guests;
use serde_json::json;

use crate::support::{deploy, reverted, send, state, version, wait_steps, wait_until};

fn host_on(dir: &std::path::Path) -> Host {
    Host::new(HostConfig {
        data_dir: Some(dir.to_path_buf()),
        ..HostConfig::default()
    })
    .expect("host starts")
}

async fn messages_in(host: &Host, pid: Pid) -> u64 {
    host.process(pid).await.map_or(0, |p| p.messages_in)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_restarted_on_its_data_dir_resumes_every_process_where_it_was() {
    // Expectation: a counter on version 2 (three messages handled, registered as `counter`), a
    // slow process shut down in the middle of a step with two more messages queued, and a
    // watcher monitoring the counter all come back under the same pids, on the same versions,
    // with the same states and counts; the slow process then handles its two queued messages,
    // the name still finds the counter, stopping the counter tells the watcher, and new pids
    // follow the old ones.
    let dir = tempfile::tempdir().unwrap();
    let host = host_on(dir.path());
    deploy(&host, "counter", guests::COUNTER_V2).await;
    deploy(&host, "slow", guests::SLOW).await;
    deploy(&host, "watcher", guests::WATCHER).await;
    let counter = host.spawn("counter", b"").await.unwrap();
    for _ in 0..3 {
        send(&host, counter, json!("tick"));
    }
    wait_steps(&host, counter, 3).await;
    deploy(&host, "counter", guests::COUNTER_V3).await;
    let watcher = host
        .spawn(
            "watcher",
            json!({"target": counter.0}).to_string().as_bytes(),
        )
        .await
        .unwrap();
    let slow = host.spawn("slow", b"").await.unwrap();
    send(&host, slow, json!({"spin_ms": 300}));
    wait_until(|| async { host.is_busy(slow) }).await;
    // Queued behind the step in flight.
    for _ in 0..2 {
        send(&host, slow, json!({"spin_ms": 300}));
    }
    let counter_before = host.process(counter).await.unwrap();
    let watcher_state = state(&host, watcher).await;
    host.shutdown().await;
    host.shutdown().await; // a second shutdown has nothing to save and overwrites nothing
    drop(host);
    assert!(dir.path().join("processes.json").exists());

    let host = host_on(dir.path());
    assert!(
        !dir.path().join("processes.json").exists(),
        "a resumed file is removed, so no later start resumes it twice"
    );
    assert_eq!(host.process_count(), 3);
    let counter_after = host.process(counter).await.unwrap();
    assert_eq!(counter_after.version, 2);
    assert_eq!(counter_after.state, counter_before.state);
    assert_eq!(
        (counter_after.steps, counter_after.messages_in),
        (counter_before.steps, counter_before.messages_in)
    );
    assert_eq!(host.whereis("counter"), Some(counter));
    assert_eq!(state(&host, watcher).await, watcher_state);
    // The step in flight at shutdown finished before saving; the two queued messages follow.
    wait_until(|| async { messages_in(&host, slow).await == 3 }).await;
    assert_eq!(state(&host, slow).await["count"], 3);

    send(&host, counter, json!("tick"));
    wait_until(|| async { messages_in(&host, counter).await == 4 }).await;
    assert_eq!(state(&host, counter).await["count"], 4);
    assert_eq!(version(&host, counter).await, 2);
    host.stop(counter).unwrap();
    wait_until(|| async { !state(&host, watcher).await["down"].is_null() }).await;
    assert_eq!(
        state(&host, watcher).await["down"],
        json!([counter.0, "stopped"])
    );
    let fresh = host.spawn("slow", b"").await.unwrap();
    assert!(
        fresh.0 > slow.0,
        "pids are not reused: {fresh} after {slow}"
    );
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_on_probation_when_the_host_stops_can_still_revert_after_the_restart() {
    // Expectation: a process swapped to a version whose steps trap, shut down before its first
    // step there, comes back on probation: that first step fails and it goes back to the
    // version and state it had, and the old version handles the message.
    let dir = tempfile::tempdir().unwrap();
    let host = host_on(dir.path());
    deploy(&host, "counter", guests::COUNTER_V2).await;
    let pid = host.spawn("counter", b"").await.unwrap();
    send(&host, pid, json!("a"));
    wait_steps(&host, pid, 1).await;
    deploy(&host, "counter", guests::STEP_TRAPS).await;
    assert!(host.process(pid).await.unwrap().on_probation);
    host.shutdown().await;
    drop(host);

    let host = host_on(dir.path());
    let info = host.process(pid).await.unwrap();
    assert!(info.on_probation, "still on probation");
    assert_eq!(info.version, 2);
    let mut events = host.subscribe();
    send(&host, pid, json!("b"));
    assert_eq!(reverted(&mut events, pid).await, (2, 1));
    wait_steps(&host, pid, 2).await;
    assert_eq!(version(&host, pid).await, 1);
    assert_eq!(state(&host, pid).await, json!({"count": 2}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_processes_file_that_cannot_be_resumed_stops_the_start_and_is_kept() {
    // Expectation: a host does not start over processes it cannot resume (starting would
    // overwrite them at its next shutdown): whether the file does not parse or names a version
    // the host lacks, the error names the file and the way out, and the file is left as it was.
    let dir = tempfile::tempdir().unwrap();
    let host = host_on(dir.path());
    deploy(&host, "counter", guests::COUNTER_V2).await;
    host.spawn("counter", b"").await.unwrap();
    host.shutdown().await;
    drop(host);
    let file = dir.path().join("processes.json");
    let saved = std::fs::read(&file).unwrap();
    let refused = || {
        let host = Host::new(HostConfig {
            data_dir: Some(dir.path().to_path_buf()),
            ..HostConfig::default()
        });
        format!("{:#}", host.err().expect("refused"))
    };

    std::fs::write(&file, b"{ not json").unwrap();
    let err = refused();
    assert!(
        err.contains("processes.json") && err.contains("move it aside"),
        "{err}"
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"{ not json");

    // A process on a version the host does not have (its registry was replaced, say).
    let mut other: serde_json::Value = serde_json::from_slice(&saved).unwrap();
    other["processes"][0]["version"] = json!(9);
    let other = serde_json::to_vec(&other).unwrap();
    std::fs::write(&file, &other).unwrap();
    let err = refused();
    assert!(
        err.contains("version 9 of `counter`") && err.contains("move processes.json aside"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&file).unwrap(),
        other,
        "the file is kept as it was"
    );

    // Put back, the file resumes its process.
    std::fs::write(&file, &saved).unwrap();
    let host = host_on(dir.path());
    assert_eq!(host.process_count(), 1);
    assert!(!file.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_shut_down_mid_conversation_saves_every_player_and_the_ball_moves_on() {
    // Expectation: 20 ping-pong pairs play without end (each ball handed from one player's task
    // to the other's); a shutdown in the middle of the game still freezes and saves all 40
    // players, none waiting behind another's freeze, and after the restart every pair plays on
    // from the counts it had.
    const PAIRS: usize = 20;
    let dir = tempfile::tempdir().unwrap();
    let host = host_on(dir.path());
    deploy(&host, "pingpong", guests::PINGPONG).await;
    let mut players = Vec::new();
    for _ in 0..PAIRS {
        let b = host.spawn("pingpong", b"").await.unwrap();
        let args = json!({"peer": b.0, "rounds": u64::MAX / 2}).to_string();
        let a = host.spawn("pingpong", args.as_bytes()).await.unwrap();
        players.extend([a, b]);
    }
    let received = |host: &Host, pid: Pid| {
        let host = host.clone();
        async move { state(&host, pid).await["received"].as_u64().unwrap() }
    };
    for &pid in &players {
        wait_until(|| async { received(&host, pid).await > 100 }).await;
    }
    tokio::time::timeout(crate::support::PATIENCE, host.shutdown())
        .await
        .expect("the shutdown saved every player");
    drop(host);

    let host = host_on(dir.path());
    assert_eq!(host.process_count(), 2 * PAIRS);
    for &pid in &players {
        let before = received(&host, pid).await;
        wait_until(|| async { received(&host, pid).await > before + 100 }).await;
    }
    host.shutdown().await;
}

#[test]
fn a_host_whose_runtime_ends_while_its_processes_run_is_freed_with_it() {
    // Expectation: a host is gone (its engine, pool and processes freed) once its handles are
    // dropped and its runtime has shut down, even when the runtime shuts down while a process's
    // task is still running (here, just after the crash it reports, before the process waits
    // again). A host left behind keeps its pool's thousands of memory mappings until the OS
    // process ends. The race is narrow, so the scenario runs many times.
    for round in 0..30 {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let weak = runtime.block_on(async {
            let host = crate::support::host();
            let mut events = host.subscribe();
            deploy(&host, "crasher", guests::CRASHER).await;
            let pid = host.spawn("crasher", b"").await.unwrap();
            let idle = host.spawn("crasher", b"").await.unwrap();
            send(&host, idle, json!("a"));
            wait_steps(&host, idle, 1).await;
            send(&host, pid, json!("crash"));
            crate::support::dropped_by(&mut events, pid).await;
            host.downgrade()
        });
        drop(runtime);
        assert!(
            weak.upgrade().is_none(),
            "round {round}: the host outlived its runtime"
        );
    }
}
