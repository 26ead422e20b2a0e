//! Under load: a deploy while a thousand processes exchange messages loses none, and messages
//! that pile up reach the guest in batches intact and in order.

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
