//! Components that do not fit: refused with a precise error before any process is touched.

use hotswap::DeployError;
use hotswap_artifacts as guests;
use serde_json::json;

use crate::support::*;

async fn running_counter() -> (hotswap::Host, hotswap::Pid) {
    let host = host();
    deploy(&host, "counter", guests::COUNTER_V2).await;
    let pid = host.spawn("counter", b"").await.unwrap();
    send(&host, pid, json!("a"));
    wait_steps(&host, pid, 1).await;
    (host, pid)
}

async fn assert_untouched(host: &hotswap::Host, pid: hotswap::Pid) {
    let modules = host.modules().await;
    assert_eq!(modules.len(), 1);
    assert_eq!(modules[0].versions.len(), 1, "no version was added");
    assert_eq!(version(host, pid).await, 1);
    assert_eq!(state(host, pid).await, json!({"count": 1}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn component_with_wrong_exports_is_refused() {
    let (host, pid) = running_counter().await;
    let err = host
        .deploy("counter", &wasm(guests::WRONG_EXPORTS))
        .await
        .unwrap_err();
    assert!(matches!(err, DeployError::Incompatible(_)), "{err}");
    assert!(
        err.to_string()
            .contains("does not match the hotswap contract"),
        "{err}"
    );
    assert_untouched(&host, pid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn component_built_against_an_older_contract_is_refused_naming_both_versions() {
    let (host, pid) = running_counter().await;
    let old = wat::parse_str(
        r#"(component
            (import "hotswap:process/runtime@0.1.0" (instance
                (export "self-pid" (func (result u64))))))"#,
    )
    .unwrap();
    let err = host.deploy("counter", &old).await.unwrap_err();
    assert!(matches!(err, DeployError::Incompatible(_)), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("version 0.1.0 of the contract") && text.contains("version 0.3.0"),
        "{err}"
    );
    assert!(text.contains("hotswap-guest SDK"), "{err}");
    assert_untouched(&host, pid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_bytes_are_refused() {
    let (host, pid) = running_counter().await;
    let err = host
        .deploy("counter", b"this is not wasm")
        .await
        .unwrap_err();
    assert!(matches!(err, DeployError::NotWasm), "{err}");
    assert_untouched(&host, pid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_module_is_refused() {
    let (host, pid) = running_counter().await;
    let core = wat::parse_str("(module (func (export \"step\")))").unwrap();
    let err = host.deploy("counter", &core).await.unwrap_err();
    assert!(matches!(err, DeployError::CoreModule), "{err}");
    assert!(err.to_string().contains("wasm32-wasip2"), "{err}");
    assert_untouched(&host, pid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawning_an_unknown_module_names_the_fix() {
    let host = host();
    let err = host.spawn("nope", b"").await.unwrap_err();
    assert!(err.to_string().contains("deploy it first"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sending_to_a_dead_pid_is_an_error() {
    let host = host();
    let err = host.send(hotswap::Pid(999), b"1").unwrap_err();
    assert_eq!(err, hotswap::SendError::NoSuchProcess(hotswap::Pid(999)));
}
