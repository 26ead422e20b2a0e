//! Spawning: a pure `init` is run once per version and arguments, and processes that start from
//! its remembered result wait for their first event without an instance or a task.

use hotswap_artifacts as guests;
use serde_json::json;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pure_init_runs_once_per_arguments() {
    let host = host();
    deploy(&host, "sink", guests::SINK).await;
    let before = host.instances_created();
    let mut pids = Vec::new();
    for _ in 0..3 {
        pids.push(host.spawn("sink", b"").await.unwrap());
    }
    assert_eq!(host.instances_created(), before + 1, "init ran once");
    host.spawn("sink", br#"{"other": 1}"#).await.unwrap();
    assert_eq!(
        host.instances_created(),
        before + 2,
        "new arguments run init again"
    );
    // The processes that never ran init themselves work like the first.
    for (i, pid) in pids.iter().enumerate() {
        for _ in 0..=i {
            send(&host, *pid, json!("m"));
        }
    }
    for (i, pid) in pids.iter().enumerate() {
        wait_steps(&host, *pid, i as u64 + 1).await;
        assert_eq!(state(&host, *pid).await, json!(i + 1));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_init_that_calls_the_runtime_runs_for_every_spawn() {
    let host = host();
    // counter v1's init registers the name `counter` (the first one wins).
    deploy(&host, "counter", guests::COUNTER_V1).await;
    let before = host.instances_created();
    let first = host.spawn("counter", b"").await.unwrap();
    let second = host.spawn("counter", b"").await.unwrap();
    assert_eq!(host.instances_created(), before + 2);
    assert_eq!(host.whereis("counter"), Some(first));
    assert_ne!(first, second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_waiting_without_a_task_answers_swaps_inspection_and_stop() {
    let host = host();
    deploy(&host, "recorder", guests::RECORDER_V1).await;
    let first = host.spawn("recorder", b"").await.unwrap();
    let before = host.instances_created();
    let pid = host.spawn("recorder", b"").await.unwrap();
    assert_eq!(
        host.instances_created(),
        before,
        "started from the remembered init"
    );
    assert_eq!(state(&host, pid).await, json!({"version": 1, "log": []}));
    let report = deploy(&host, "recorder", guests::RECORDER_V2).await;
    assert_eq!(report.moved.len(), 2, "{report:?}");
    assert_eq!(state(&host, pid).await, json!({"version": 2, "log": []}));
    send(&host, pid, json!("a"));
    wait_steps(&host, pid, 1).await;
    assert_eq!(
        state(&host, pid).await,
        json!({"version": 2, "log": [[0, "a"]]})
    );
    // A remembered init belongs to its version: v2's first spawn runs v2's init.
    let before = host.instances_created();
    let third = host.spawn("recorder", b"").await.unwrap();
    assert_eq!(host.instances_created(), before + 1);
    assert_eq!(state(&host, third).await, json!({"version": 2, "log": []}));
    let untouched = host.spawn("recorder", b"").await.unwrap();
    host.stop(untouched).unwrap();
    host.shutdown().await;
    for pid in [first, pid, third, untouched] {
        assert!(host.process(pid).await.is_none());
    }
}
