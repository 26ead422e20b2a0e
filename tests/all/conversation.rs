//! Conversations between processes: a pair that never stops talking does not starve the other
//! processes or hide from the host, and a chain of processes that go idle between turns passes
//! every message along, in either of the SDK's encodings.

use hotswap::HostEvent;
use hotswap_artifacts as guests;
use serde_json::json;

use crate::support::*;

#[test]
fn an_endless_conversation_on_one_thread_leaves_room_for_others() {
    // Expectation: on a one-thread runtime, with time limits off (so no guest call ever yields on
    // an epoch tick), a ping-pong pair that would play for hours keeps the ball moving; a third
    // process still gets its message handled, the host can still inspect and stop both players,
    // and the pair's counts only grow. If the conversation never
    // let the runtime's other tasks run, the scenario would hang: it runs on a thread of its own
    // so that the test fails instead.
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(endless_conversation());
        done.send(()).unwrap();
    });
    finished
        .recv_timeout(PATIENCE)
        .expect("the other processes and the host got their turn");
}

async fn endless_conversation() {
    let host = hotswap::Host::new(hotswap::HostConfig {
        engine: hotswap::engine::EngineConfig {
            time_limits: false,
            ..Default::default()
        },
        ..Default::default()
    })
    .unwrap();
    deploy(&host, "pingpong", guests::PINGPONG).await;
    deploy(&host, "sink", guests::SINK).await;
    let bystander = host.spawn("sink", b"").await.unwrap();
    let b = host.spawn("pingpong", b"").await.unwrap();
    let args = json!({"peer": b.0, "rounds": u64::MAX / 2}).to_string();
    let a = host.spawn("pingpong", args.as_bytes()).await.unwrap();
    wait_until(|| async { state(&host, b).await["received"].as_u64().unwrap() > 1000 }).await;
    send(&host, bystander, json!("m"));
    wait_steps(&host, bystander, 1).await;
    assert_eq!(state(&host, bystander).await, json!(1));
    let first = state(&host, a).await["received"].as_u64().unwrap();
    wait_until(|| async { state(&host, a).await["received"].as_u64().unwrap() > first }).await;
    host.stop(a).unwrap();
    host.stop(b).unwrap();
    wait_until(|| async { host.process(a).await.is_none() && host.process(b).await.is_none() })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_of_idle_processes_passes_every_message_along() {
    // Expectation: 200 pairs, started one after another, each play 500 rounds; every process is
    // idle between its turns, so every delivery wakes a waiting process. Each pair ends with
    // exactly rounds + 1 messages between its two processes, and both then wait idle and still
    // answer inspection and a message.
    const PAIRS: usize = 200;
    const ROUNDS: u64 = 500;
    let host = host();
    deploy(&host, "pingpong", guests::PINGPONG).await;
    let mut pairs = Vec::new();
    for _ in 0..PAIRS {
        let b = host.spawn("pingpong", b"").await.unwrap();
        let args = json!({"peer": b.0, "rounds": ROUNDS}).to_string();
        let a = host.spawn("pingpong", args.as_bytes()).await.unwrap();
        pairs.push((a, b));
    }
    for &(a, b) in &pairs {
        wait_until(|| async {
            let ra = state(&host, a).await["received"].as_u64().unwrap();
            let rb = state(&host, b).await["received"].as_u64().unwrap();
            ra + rb == ROUNDS + 1
        })
        .await;
    }
    let (a, b) = pairs[0];
    // A ball of 0 is received and not returned.
    send(&host, a, json!({"ball": 0}));
    wait_until(|| async { state(&host, a).await["received"].as_u64().unwrap() == ROUNDS / 2 + 1 })
        .await;
    assert_eq!(
        state(&host, b).await["received"].as_u64().unwrap(),
        ROUNDS / 2 + 1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pair_in_the_binary_encoding_plays_to_the_end_and_refuses_json_by_name() {
    // Expectation: the ping-pong game with state and messages in the SDK's postcard encoding
    // plays its 101 messages and both players count them (their state, binary, is the host's
    // to keep but not to read as JSON); a JSON message sent to such a player is refused, naming
    // the sender and the bytes, and the player's state survives it.
    let host = host();
    let mut events = host.subscribe();
    deploy(&host, "pong", guests::PINGPONG_POSTCARD).await;
    let b = host.spawn("pong", b"").await.unwrap();
    send(&host, b, json!({"ball": 1}));
    let dropped = dropped_by(&mut events, b).await;
    assert!(dropped.contains("message from <0>"), "{dropped}");
    // Postcard of `{received: 0, stop: false}`: a varint and a bool.
    assert_eq!(host.process(b).await.unwrap().state, [0, 0]);
    let args = json!({"peer": b.0, "rounds": 100, "stop": true}).to_string();
    let a = host.spawn("pong", args.as_bytes()).await.unwrap();
    let mut handled = std::collections::HashMap::new();
    while handled.len() < 2 {
        let (pid, messages_in) = wait_event(&mut events, |e| match e {
            HostEvent::Exited {
                pid, messages_in, ..
            } if *pid == a || *pid == b => Some((*pid, *messages_in)),
            _ => None,
        })
        .await;
        handled.insert(pid, messages_in);
    }
    assert_eq!(handled[&a] + handled[&b], 101, "{handled:?}");
}
