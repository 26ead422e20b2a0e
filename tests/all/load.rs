//! Under load: a deploy while a thousand processes exchange messages loses none, and messages
//! that pile up reach the guest in batches intact and in order, as do bursts sent with
//! `send_many`.

use hotswap_artifacts as guests;
use serde_json::json;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_while_a_thousand_processes_exchange_messages_loses_none() {
    // Expectation: 500 pairs play ping-pong (`rounds` + 1 messages per pair); while they play, the
    // module is deployed again twice. Every process ends on version 3 and every pair received
    // exactly `rounds` + 1 messages between its two processes.
    const PAIRS: usize = 500;
    const ROUNDS: u64 = 60;
    let host = host();
    deploy(&host, "pingpong", guests::PINGPONG).await;
    let mut pairs = Vec::with_capacity(PAIRS);
    for _ in 0..PAIRS {
        let b = host.spawn("pingpong", b"").await.unwrap();
        let args = json!({"peer": b.0, "rounds": ROUNDS}).to_string();
        let a = host.spawn("pingpong", args.as_bytes()).await.unwrap();
        pairs.push((a, b));
    }
    let first = deploy(&host, "pingpong", guests::PINGPONG).await;
    let second = deploy(&host, "pingpong", guests::PINGPONG).await;
    assert!(first.stayed.is_empty() && second.stayed.is_empty());
    for (a, b) in pairs {
        wait_until(|| async {
            let ra = state(&host, a).await["received"].as_u64().unwrap();
            let rb = state(&host, b).await["received"].as_u64().unwrap();
            assert!(
                ra + rb <= ROUNDS + 1,
                "a message was duplicated: {ra} + {rb}"
            );
            ra + rb == ROUNDS + 1
        })
        .await;
        assert_eq!(version(&host, a).await, 3);
        assert_eq!(version(&host, b).await, 3);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_that_pile_up_arrive_intact_and_in_order() {
    // Expectation: 300 messages of 0 to 199 characters sent at once queue up while the recorder
    // starts, so most reach it packed in `step-batch` calls (one buffer for all payloads); its
    // log holds each exactly once, byte for byte, in the order sent.
    let host = host();
    deploy(&host, "recorder", guests::RECORDER_V1).await;
    let pid = host.spawn("recorder", b"").await.unwrap();
    let sent: Vec<String> = (0..300)
        .map(|i| "é".repeat((i * 37) % 200 / 2) + &"x".repeat(i % 2))
        .collect();
    for text in &sent {
        send(&host, pid, json!(text));
    }
    wait_until(|| async { host.process(pid).await.unwrap().messages_in == 300 }).await;
    let log = state(&host, pid).await["log"].clone();
    let expected: Vec<_> = sent.iter().map(|t| json!([0, t])).collect();
    assert_eq!(log, json!(expected));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursts_through_send_many_into_a_small_mailbox_arrive_once_each_and_in_order() {
    // Expectation: a sender sends 300 numbers, counting down, in bursts of 64 `send_many` calls
    // to a recorder whose mailbox holds 10. Most bursts are only partly queued; the sender
    // resends the rest after a pause. The recorder's log holds each number exactly once, in the
    // order sent, from the sender's pid: the count `send_many` returns is exactly what it queued.
    let host = host_with(hotswap::Policy {
        mailbox: 10,
        ..hotswap::Policy::default()
    });
    deploy(&host, "recorder", guests::RECORDER_V1).await;
    deploy(&host, "flood", guests::FLOOD).await;
    let recorder = host.spawn("recorder", b"").await.unwrap();
    let args = json!({"to": recorder.0, "count": 300, "many": true}).to_string();
    let flood = host.spawn("flood", args.as_bytes()).await.unwrap();
    wait_until(|| async { host.process(recorder).await.unwrap().messages_in >= 300 }).await;
    let log = state(&host, recorder).await["log"].clone();
    let expected: Vec<_> = (1..=300).rev().map(|n| json!([flood.0, n])).collect();
    assert_eq!(log, json!(expected));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_many_to_a_process_that_is_gone_queues_nothing_and_says_so() {
    // Expectation: `send_many` to a pid no process has answers `no-such-process`, on which the
    // sender stops normally, having sent nothing.
    let host = host();
    let mut events = host.subscribe();
    deploy(&host, "flood", guests::FLOOD).await;
    let args = json!({"to": 999_999, "count": 5, "many": true}).to_string();
    let flood = host.spawn("flood", args.as_bytes()).await.unwrap();
    let (reason, sent) = wait_event(&mut events, |e| match e {
        hotswap::HostEvent::Exited {
            pid,
            reason,
            messages_out,
            ..
        } if *pid == flood => Some((reason.clone(), *messages_out)),
        _ => None,
    })
    .await;
    assert_eq!(reason, hotswap::ExitReason::Normal);
    assert_eq!(sent, 0);
}
