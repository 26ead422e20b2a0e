//! Swaps under load: a deploy while a thousand processes exchange messages loses none.

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
