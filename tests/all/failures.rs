//! Guests that fail: a trap or an error in `step` restarts the process from the state before that
//! step; a process that keeps crashing is stopped at its restart limit; a step over the time limit
//! is interrupted; processes keep separate state; one process's crash leaves the others alone.

use hotswap::{ExitReason, HostEvent, Policy};
use hotswap_artifacts as guests;
use serde_json::json;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_of_one_module_keep_separate_state() {
    // Expectation: messages to one process never change the other's count.
    let host = host();
    deploy(&host, "counter", guests::COUNTER_V2).await;
    let a = host.spawn("counter", b"").await.unwrap();
    let b = host.spawn("counter", b"").await.unwrap();
    for _ in 0..3 {
        send(&host, a, json!("x"));
    }
    send(&host, b, json!("y"));
    wait_steps(&host, a, 3).await;
    wait_steps(&host, b, 1).await;
    assert_eq!(state(&host, a).await["count"], 3);
    assert_eq!(state(&host, b).await["count"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trap_in_step_restarts_from_the_state_before_it() {
    // Expectation: count 2, then a message that panics: a `Crashed` event names the dropped
    // message, the count is still 2, and the next message makes it 3. A neighbour is unaffected.
    let host = host();
    let mut events = host.subscribe();
    deploy(&host, "crasher", guests::CRASHER).await;
    let pid = host.spawn("crasher", b"").await.unwrap();
    let neighbour = host.spawn("crasher", b"").await.unwrap();
    send(&host, pid, json!("a"));
    send(&host, pid, json!("b"));
    send(&host, pid, json!("crash"));
    let dropped = dropped_by(&mut events, pid).await;
    assert!(dropped.contains("crash"), "{dropped}");
    assert_eq!(state(&host, pid).await, json!({"count": 2}));
    send(&host, pid, json!("c"));
    wait_steps(&host, pid, 3).await;
    assert_eq!(state(&host, pid).await, json!({"count": 3}));

    send(&host, neighbour, json!("n"));
    wait_steps(&host, neighbour, 1).await;
    assert_eq!(state(&host, neighbour).await, json!({"count": 1}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_returned_from_step_keeps_the_state() {
    // Expectation: a step that returns `err` is treated like a crash: state kept, event reported.
    let host = host();
    deploy(&host, "crasher", guests::CRASHER).await;
    let pid = host.spawn("crasher", b"").await.unwrap();
    send(&host, pid, json!("a"));
    send(&host, pid, json!("err"));
    send(&host, pid, json!("b"));
    wait_steps(&host, pid, 2).await;
    let info = host.process(pid).await.unwrap();
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&info.state).unwrap(),
        json!({"count": 2})
    );
    assert!(info.last_error.unwrap().contains("asked to fail"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_limit_obeyed() {
    // Expectation: as many crashes as the limit allows leave the process alive with its state.
    let host = host_with(Policy {
        max_restarts: 3,
        ..Policy::default()
    });
    deploy(&host, "crasher", guests::CRASHER).await;
    let pid = host.spawn("crasher", b"").await.unwrap();
    send(&host, pid, json!("a"));
    for _ in 0..3 {
        send(&host, pid, json!("crash"));
    }
    send(&host, pid, json!("b"));
    wait_steps(&host, pid, 2).await;
    assert_eq!(state(&host, pid).await, json!({"count": 2}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_limit_violated() {
    // Expectation: one crash more than the limit ends the process as failed, with the reason.
    let host = host_with(Policy {
        max_restarts: 3,
        ..Policy::default()
    });
    let mut events = host.subscribe();
    deploy(&host, "crasher", guests::CRASHER).await;
    let pid = host.spawn("crasher", b"").await.unwrap();
    for _ in 0..4 {
        send(&host, pid, json!("crash"));
    }
    let reason = wait_event(&mut events, |e| match e {
        HostEvent::Exited { pid: p, reason, .. } if *p == pid => Some(reason.clone()),
        _ => None,
    })
    .await;
    match reason {
        ExitReason::Failed { reason, .. } => {
            assert!(reason.contains("more than the limit of 3"), "{reason}")
        }
        other => panic!("expected failure, got {other:?}"),
    }
    assert!(host.process(pid).await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_obeyed() {
    // Expectation: a step shorter than the time limit completes.
    let host = host_with(Policy {
        max_step_ms: 2000,
        ..Policy::default()
    });
    deploy(&host, "slow", guests::SLOW).await;
    let pid = host.spawn("slow", b"").await.unwrap();
    send(&host, pid, json!({"spin_ms": 20}));
    wait_steps(&host, pid, 1).await;
    assert_eq!(state(&host, pid).await["count"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_violated() {
    // Expectation: a step that loops forever is interrupted at the time limit; the process keeps
    // its state and other processes keep stepping.
    let host = host_with(Policy {
        max_step_ms: 200,
        ..Policy::default()
    });
    let mut events = host.subscribe();
    deploy(&host, "loop", guests::LOOP_FOREVER).await;
    deploy(&host, "counter", guests::COUNTER_V2).await;
    let looping = host.spawn("loop", b"").await.unwrap();
    let other = host.spawn("counter", b"").await.unwrap();
    let before = host.process(looping).await.unwrap().state;
    send(&host, looping, json!("go"));
    let reason = wait_event(&mut events, |e| match e {
        HostEvent::Crashed { pid, reason, .. } if *pid == looping => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert!(reason.contains("interrupt"), "{reason}");
    assert_eq!(host.process(looping).await.unwrap().state, before);
    send(&host, other, json!("x"));
    wait_steps(&host, other, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_message_in_a_batch_costs_only_itself() {
    // Expectation: 7 messages queue up behind a long step and reach the guest as one batch; one
    // of them does not decode, which fails the batch; the host replays them one by one, so the
    // other 6 are handled once each and only the bad one is dropped and reported.
    let host = host();
    let mut events = host.subscribe();
    deploy(&host, "slow", guests::SLOW).await;
    let pid = host.spawn("slow", b"").await.unwrap();
    send(&host, pid, json!({"spin_ms": 200}));
    wait_until(|| async { host.is_busy(pid) }).await;
    for i in 0..7 {
        if i == 3 {
            send(&host, pid, json!("garbage"));
        } else {
            send(&host, pid, json!({"spin_ms": 0}));
        }
    }
    let dropped = dropped_by(&mut events, pid).await;
    assert!(dropped.contains("garbage"), "{dropped}");
    wait_steps(&host, pid, 7).await;
    let info = host.process(pid).await.unwrap();
    assert_eq!(info.messages_in, 7);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&info.state).unwrap()["count"],
        7
    );
}
