//! A host shut down gracefully and started again on the same data directory resumes its
//! processes: pids, versions, states, queued messages, names and monitors.

use hotswap::{Host, HostConfig, Pid};
use hotswap_artifacts as guests;
use serde_json::json;

use crate::support::{deploy, send, state, version, wait_steps, wait_until};

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
async fn a_saved_processes_file_that_cannot_be_read_stops_the_start_and_is_kept() {
    // Expectation: a host does not start over processes it cannot resume (starting would
    // overwrite them at its next shutdown): the error names the file and the way out, and the
    // file is left as it was.
    let dir = tempfile::tempdir().unwrap();
    let host = host_on(dir.path());
    deploy(&host, "counter", guests::COUNTER_V2).await;
    host.spawn("counter", b"").await.unwrap();
    host.shutdown().await;
    drop(host);
    let file = dir.path().join("processes.json");
    std::fs::write(&file, b"{ not json").unwrap();
    let err = format!(
        "{:#}",
        Host::new(HostConfig {
            data_dir: Some(dir.path().to_path_buf()),
            ..HostConfig::default()
        })
        .err()
        .expect("refused")
    );
    assert!(
        err.contains("processes.json") && err.contains("move it aside"),
        "{err}"
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"{ not json");
}
