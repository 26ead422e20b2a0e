//! Hot swap at step boundaries: idle and busy processes, one and many, with `migrate` succeeding,
//! refusing, trapping, and a new version whose first step traps; swaps under message load; rollback.

use hotswap::Pid;
use hotswap_artifacts as guests;
use serde_json::json;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_process_moves_at_once_and_keeps_its_state() {
    // Expectation: a process waiting for a message moves to v2 without any message; its state
    // (count 2) carries over and v2 increments from there.
    let host = host();
    deploy(&host, "counter", guests::COUNTER_V2).await;
    let pid = host.spawn("counter", b"").await.unwrap();
    send(&host, pid, json!(1));
    send(&host, pid, json!(2));
    wait_steps(&host, pid, 2).await;

    let report = deploy(&host, "counter", guests::COUNTER_V3).await;
    assert_eq!(report.version, 2);
    assert_eq!(report.moved.len(), 1, "{report:?}");
    assert_eq!(report.moved[0].pid, pid);
    assert!(report.stayed.is_empty());
    assert_eq!(version(&host, pid).await, 2);
    // counter-v3's migrate added `last_sender`.
    assert_eq!(
        state(&host, pid).await,
        json!({"count": 2, "last_sender": null})
    );

    send(&host, pid, json!(3));
    wait_steps(&host, pid, 3).await;
    assert_eq!(state(&host, pid).await["count"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_process_finishes_its_step_then_moves() {
    // Expectation: a deploy while the process is inside a long step waits for that step; the step's
    // result is kept (count 1), then the process moves to v2. The message queued behind it is
    // handled by v2 (count 2).
    let host = host();
    deploy(&host, "slow", guests::SLOW).await;
    let pid = host.spawn("slow", b"").await.unwrap();
    send(&host, pid, json!({"spin_ms": 300}));
    wait_until(|| async { host.is_busy(pid) }).await;
    send(&host, pid, json!({"spin_ms": 0}));

    let report = deploy(&host, "slow", guests::SLOW_V2).await;
    assert_eq!(report.moved.len(), 1, "{report:?}");
    let info = host.process(pid).await.unwrap();
    assert_eq!(info.version, 2);
    assert!(
        info.steps >= 1,
        "the step in flight completed before the swap"
    );
    wait_steps(&host, pid, 2).await;
    let s = state(&host, pid).await;
    assert_eq!(s["count"], 2, "{s}");
    assert_eq!(s["version"], 2, "{s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_idle_processes_all_move() {
    // Expectation: 200 processes with distinct states all move; each keeps its own count.
    let host = host();
    let pids = counters_with_distinct_counts(&host, 200).await;
    let report = deploy(&host, "counter", guests::COUNTER_V3).await;
    assert_eq!(report.moved.len(), 200);
    assert!(report.stayed.is_empty());
    for (pid, n) in pids {
        assert_eq!(version(&host, pid).await, 2);
        assert_eq!(state(&host, pid).await["count"], n);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swap_under_load_loses_no_message() {
    // Expectation: while the host keeps sending numbered messages to 8 recorders, the module is
    // upgraded (v1 -> v2) and upgraded again (v2 -> v3 = recorder-v1 deployed anew); every recorder
    // logs each message exactly once, in send order, and ends on the newest version.
    let host = host();
    deploy(&host, "recorder", guests::RECORDER_V1).await;
    let mut pids = Vec::new();
    for _ in 0..8 {
        pids.push(host.spawn("recorder", b"").await.unwrap());
    }
    const N: u64 = 400;
    let sender = {
        let host = host.clone();
        let pids = pids.clone();
        tokio::spawn(async move {
            for seq in 0..N {
                for pid in &pids {
                    send(&host, *pid, json!(seq));
                }
                if seq % 16 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        })
    };
    wait_steps(&host, pids[0], 50).await;
    let up = deploy(&host, "recorder", guests::RECORDER_V2).await;
    assert_eq!(up.moved.len() + up.stayed.len(), 8, "{up:?}");
    assert!(up.stayed.is_empty(), "{up:?}");
    let again = deploy(&host, "recorder", guests::RECORDER_V2).await;
    assert!(again.stayed.is_empty(), "{again:?}");
    sender.await.unwrap();

    for pid in pids {
        wait_steps(&host, pid, N).await;
        let info = host.process(pid).await.unwrap();
        assert_eq!(info.version, 3);
        assert_eq!(info.messages_in, N);
        let s: serde_json::Value = serde_json::from_slice(&info.state).unwrap();
        let seqs: Vec<u64> = s["log"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e[1].as_u64().unwrap())
            .collect();
        assert_eq!(
            seqs,
            (0..N).collect::<Vec<_>>(),
            "process {pid}: every message once, in order"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_error_keeps_old_version_and_state() {
    // Expectation: the new version's migrate returns an error; the process stays on v1 with its
    // count, the report says why, and v1 keeps handling messages.
    let host = host();
    deploy(&host, "counter", guests::COUNTER_V2).await;
    let pid = host.spawn("counter", b"").await.unwrap();
    send(&host, pid, json!("a"));
    wait_steps(&host, pid, 1).await;

    let report = deploy(&host, "counter", guests::MIGRATE_FAILS).await;
    assert!(report.moved.is_empty());
    assert_eq!(report.stayed.len(), 1);
    assert_eq!(report.stayed[0].version, 1);
    assert!(
        report.stayed[0].reason.contains("refuses"),
        "{}",
        report.stayed[0].reason
    );
    assert_eq!(version(&host, pid).await, 1);
    assert_eq!(state(&host, pid).await, json!({"count": 1}));
    send(&host, pid, json!("b"));
    wait_steps(&host, pid, 2).await;
    assert_eq!(state(&host, pid).await, json!({"count": 2}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_trap_keeps_old_version_and_state() {
    // Expectation: a panic (trap) in migrate is contained like an error: old version, old state.
    let host = host();
    deploy(&host, "counter", guests::COUNTER_V2).await;
    let pid = host.spawn("counter", b"").await.unwrap();
    send(&host, pid, json!("a"));
    wait_steps(&host, pid, 1).await;

    let report = deploy(&host, "counter", guests::MIGRATE_TRAPS).await;
    assert_eq!(report.stayed.len(), 1, "{report:?}");
    assert!(
        report.stayed[0].reason.contains("migrate"),
        "{}",
        report.stayed[0].reason
    );
    assert_eq!(version(&host, pid).await, 1);
    send(&host, pid, json!("b"));
    wait_steps(&host, pid, 2).await;
    assert_eq!(state(&host, pid).await, json!({"count": 2}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_step_trap_reverts_to_old_version_which_handles_the_message() {
    // Expectation: the new version migrates fine but traps on its first step; the process goes back
    // to v1 with the state from before the swap, v1 handles that same message (count 2), and a
    // `Reverted` event says why.
    let host = host();
    let mut events = host.subscribe();
    deploy(&host, "counter", guests::COUNTER_V2).await;
    let pid = host.spawn("counter", b"").await.unwrap();
    send(&host, pid, json!("a"));
    wait_steps(&host, pid, 1).await;

    let report = deploy(&host, "counter", guests::STEP_TRAPS).await;
    assert_eq!(report.moved.len(), 1, "migrate itself succeeds: {report:?}");
    let info = host.process(pid).await.unwrap();
    assert!(info.on_probation);
    assert_eq!(info.version, 2);

    send(&host, pid, json!("b"));
    assert_eq!(reverted(&mut events, pid).await, (2, 1));
    wait_steps(&host, pid, 2).await;
    let info = host.process(pid).await.unwrap();
    assert_eq!(info.version, 1);
    assert!(!info.on_probation);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&info.state).unwrap(),
        json!({"count": 2})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_converts_state_down_through_the_version_it_leaves() {
    // Expectation: v1 -> v2 (new state shape) -> rollback to v1: v2's migrate(downgrade-to(1))
    // drops the field v1 does not know; the process runs v1 again with its count.
    let host = host();
    deploy(&host, "counter", guests::COUNTER_V2).await;
    let pid = host.spawn("counter", b"").await.unwrap();
    deploy(&host, "counter", guests::COUNTER_V3).await;
    send(&host, pid, json!("a"));
    wait_steps(&host, pid, 1).await;
    assert_eq!(
        state(&host, pid).await,
        json!({"count": 1, "last_sender": 0})
    );

    let report = host.rollback("counter", None).await.unwrap();
    assert_eq!(report.version, 1);
    assert_eq!(report.moved.len(), 1, "{report:?}");
    assert_eq!(version(&host, pid).await, 1);
    assert_eq!(state(&host, pid).await, json!({"count": 1}));
    let modules = host.modules().await;
    assert_eq!(modules[0].current, 1);
    // New processes start on the rolled-back version too.
    let fresh = host.spawn("counter", b"").await.unwrap();
    assert_eq!(version(&host, fresh).await, 1);

    // Nothing lies before the first version, nor after the last: refused, nothing changes.
    for (to, says) in [
        (None, "is on its first version: there is no earlier one"),
        (Some(3), "has no version 3: its versions are 1 to 2"),
    ] {
        let err = host.rollback("counter", to).await.unwrap_err().to_string();
        assert!(err.contains(says), "{err}");
    }
    assert_eq!(host.modules().await[0].current, 1);
    assert_eq!(state(&host, pid).await, json!({"count": 1}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_deploys_get_ordered_versions_and_every_process_ends_on_the_newest() {
    // Expectation: two deploys racing get versions 2 and 3; all processes end on 3.
    let host = host();
    deploy(&host, "counter", guests::COUNTER_V2).await;
    let mut pids: Vec<Pid> = Vec::new();
    for _ in 0..20 {
        pids.push(host.spawn("counter", b"").await.unwrap());
    }
    let v3 = wasm(guests::COUNTER_V3);
    let (a, b) = tokio::join!(host.deploy("counter", &v3), host.deploy("counter", &v3));
    let mut versions = [a.unwrap().version, b.unwrap().version];
    versions.sort();
    assert_eq!(versions, [2, 3]);
    for pid in pids {
        assert_eq!(version(&host, pid).await, 3);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swaps_of_warm_processes_fit_a_small_instance_pool() {
    // Expectation: on an engine whose pool holds only 16 instances, 40 counters (8 of them keep a
    // warm instance while idle) upgrade twice and roll back once. The instances each swap replaces
    // wait to be dropped until the swap reached every process, and that must never exhaust the
    // pool: every process moves every time, keeps its count, and then counts on.
    let host = hotswap::Host::new(hotswap::HostConfig {
        engine: hotswap::engine::EngineConfig {
            max_live_instances: 16,
            ..Default::default()
        },
        max_cached_instances: 8,
        ..Default::default()
    })
    .unwrap();
    let pids = counters_with_distinct_counts(&host, 40).await;
    for (path, to) in [(guests::COUNTER_V3, 2), (guests::COUNTER_V2, 3)] {
        let report = deploy(&host, "counter", path).await;
        assert_eq!((report.version, report.moved.len()), (to, 40));
        assert!(report.stayed.is_empty(), "{:?}", report.stayed);
    }
    let report = host.rollback("counter", Some(2)).await.unwrap();
    assert_eq!(report.moved.len(), 40);
    assert!(report.stayed.is_empty(), "{:?}", report.stayed);
    for (pid, n) in &pids {
        assert_eq!(version(&host, *pid).await, 2);
        assert_eq!(state(&host, *pid).await["count"], *n);
        send(&host, *pid, json!("tick"));
    }
    for (pid, n) in pids {
        wait_steps(&host, pid, n + 1).await;
        assert_eq!(state(&host, pid).await["count"], n + 1);
    }
}

/// Deploys counter v2 and spawns `n` counters, the i-th ticked `i % 3` times; returns each pid
/// with its count once every count is reached.
async fn counters_with_distinct_counts(host: &hotswap::Host, n: u64) -> Vec<(hotswap::Pid, u64)> {
    deploy(host, "counter", guests::COUNTER_V2).await;
    let mut pids = Vec::new();
    for i in 0..n {
        let pid = host.spawn("counter", b"").await.unwrap();
        for _ in 0..(i % 3) {
            send(host, pid, json!("tick"));
        }
        pids.push((pid, i % 3));
    }
    for (pid, count) in &pids {
        wait_steps(host, *pid, *count).await;
    }
    pids
}
