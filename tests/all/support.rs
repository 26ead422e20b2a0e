//! Helpers shared by the integration tests: hosts, loading guests, waiting for events and reading
//! a process's JSON state. Waits have generous deadlines and only guard against hangs; no test
//! asserts on wall-clock time.

use std::time::Duration;

use hotswap::{Host, HostConfig, HostEvent, Pid};
use serde_json::Value;
use tokio::sync::broadcast;

/// How long a test waits for something that should happen promptly before it fails.
pub const PATIENCE: Duration = Duration::from_secs(20);

pub fn host() -> Host {
    Host::new(HostConfig::default()).expect("host starts")
}

/// A host whose modules get `policy` unless a deploy says otherwise.
pub fn host_with(policy: hotswap::Policy) -> Host {
    Host::new(HostConfig {
        policy,
        ..HostConfig::default()
    })
    .expect("host starts")
}

pub fn wasm(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("guest {path} was not built: {e}"))
}

/// Deploys the guest at `path` as the next version of `name`.
pub async fn deploy(host: &Host, name: &str, path: &str) -> hotswap::SwapReport {
    host.deploy(name, &wasm(path))
        .await
        .unwrap_or_else(|e| panic!("deploy of {path} as {name}: {e}"))
}

/// The process's state, decoded as JSON.
pub async fn state(host: &Host, pid: Pid) -> Value {
    let info = host
        .process(pid)
        .await
        .unwrap_or_else(|| panic!("process {pid} is gone"));
    serde_json::from_slice(&info.state).expect("state is JSON")
}

pub async fn version(host: &Host, pid: Pid) -> u32 {
    host.process(pid)
        .await
        .unwrap_or_else(|| panic!("process {pid} is gone"))
        .version
}

/// Sends a JSON value from the host (by value, so tests can write `send(h, p, json!(..))`).
#[allow(clippy::needless_pass_by_value)]
pub fn send(host: &Host, pid: Pid, msg: Value) {
    host.send(pid, msg.to_string().as_bytes()).expect("send");
}

/// Waits until `pid` has completed `steps` steps.
pub async fn wait_steps(host: &Host, pid: Pid, steps: u64) {
    wait_until(|| async { host.process(pid).await.is_some_and(|p| p.steps >= steps) }).await;
}

/// Polls `cond` until it holds; panics after [`PATIENCE`].
pub async fn wait_until<F, Fut>(mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !cond().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not reached within {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Waits for the first event that `pick` maps to `Some`.
pub async fn wait_event<T>(
    events: &mut broadcast::Receiver<HostEvent>,
    mut pick: impl FnMut(&HostEvent) -> Option<T>,
) -> T {
    tokio::time::timeout(PATIENCE, async {
        loop {
            let event = events.recv().await.expect("event stream open");
            if let Some(t) = pick(&event) {
                return t;
            }
        }
    })
    .await
    .expect("event arrived in time")
}

/// Waits for `pid`'s next crash and returns what it dropped (the event, with its payload).
pub async fn dropped_by(events: &mut broadcast::Receiver<HostEvent>, pid: Pid) -> String {
    wait_event(events, |e| match e {
        HostEvent::Crashed {
            pid: p, dropped, ..
        } if *p == pid => Some(dropped.clone()),
        _ => None,
    })
    .await
}

/// Waits for `pid`'s next revert after a failed first step on a new version; returns the
/// versions it went from and to.
pub async fn reverted(events: &mut broadcast::Receiver<HostEvent>, pid: Pid) -> (u32, u32) {
    wait_event(events, |e| match e {
        HostEvent::Reverted {
            pid: p, from, to, ..
        } if *p == pid => Some((*from, *to)),
        _ => None,
    })
    .await
}

/// Waits until `pid` is idle and holds no warm instance: its next step instantiates.
pub async fn wait_cold(host: &Host, pid: Pid) {
    wait_until(|| async { host.process(pid).await.is_some_and(|p| !p.warm) }).await;
}
