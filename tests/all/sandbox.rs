//! Untrusted guests: every broken limit ends that step (or that `init`/`migrate`) only. Each test
//! shows the reason recorded, the guest's state intact, and a bystander process still stepping.
//! Limits come in obeyed/violated pairs.

use hotswap::{
    DeployError, DeployOptions, DirGrant, Grants, Host, HostConfig, HostEvent, Pid, Policy,
    Restart, SendError, SpawnError,
};
use hotswap_artifacts as guests;
use serde_json::json;

use crate::support::*;

/// A counter that must keep stepping whatever its neighbours do.
async fn bystander(host: &Host) -> Pid {
    deploy(host, "bystander", guests::COUNTER_V2).await;
    host.spawn("bystander", b"").await.unwrap()
}

async fn assert_bystander_steps(host: &Host, pid: Pid) {
    let before = host.process(pid).await.expect("bystander alive").steps;
    send(host, pid, json!("still here?"));
    wait_steps(host, pid, before + 1).await;
}

async fn crash_reason(
    events: &mut tokio::sync::broadcast::Receiver<HostEvent>,
    pid: Pid,
) -> String {
    wait_event(events, |e| match e {
        HostEvent::Crashed { pid: p, reason, .. } if *p == pid => Some(reason.clone()),
        _ => None,
    })
    .await
}

async fn deploy_with(host: &Host, name: &str, path: &str, policy: Policy) -> hotswap::SwapReport {
    let options = DeployOptions {
        policy: Some(policy),
        ..DeployOptions::default()
    };
    host.deploy_with(name, &wasm(path), options).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn infinite_loop_in_init_is_interrupted() {
    let host = host();
    let other = bystander(&host).await;
    deploy_with(
        &host,
        "loop",
        guests::LOOP_FOREVER,
        Policy {
            max_step_ms: 200,
            ..Policy::default()
        },
    )
    .await;
    let err = host.spawn("loop", br#""init""#).await.unwrap_err();
    assert!(matches!(err, SpawnError::InitFailed { .. }), "{err}");
    assert!(err.to_string().contains("interrupt"), "{err}");
    assert_eq!(host.processes().await.len(), 1, "only the bystander exists");
    assert_bystander_steps(&host, other).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn infinite_loop_in_migrate_leaves_the_process_on_its_version() {
    let host = host();
    let other = bystander(&host).await;
    deploy(&host, "counter", guests::COUNTER_V2).await;
    let pid = host.spawn("counter", b"").await.unwrap();
    send(&host, pid, json!("a"));
    wait_steps(&host, pid, 1).await;
    let report = deploy_with(
        &host,
        "counter",
        guests::LOOP_FOREVER,
        Policy {
            max_step_ms: 200,
            ..Policy::default()
        },
    )
    .await;
    assert_eq!(report.stayed.len(), 1, "{report:?}");
    assert!(
        report.stayed[0].reason.contains("interrupt"),
        "{}",
        report.stayed[0].reason
    );
    assert_eq!(version(&host, pid).await, 1);
    assert_eq!(state(&host, pid).await, json!({"count": 1}));
    send(&host, pid, json!("b"));
    wait_steps(&host, pid, 2).await;
    assert_bystander_steps(&host, other).await;
}

async fn hog(policy: Policy) -> (Host, Pid, Pid, tokio::sync::broadcast::Receiver<HostEvent>) {
    let host = host();
    let events = host.subscribe();
    let other = bystander(&host).await;
    deploy_with(&host, "hog", guests::HOG, policy).await;
    let pid = host.spawn("hog", b"").await.unwrap();
    send(&host, pid, json!("tick"));
    wait_steps(&host, pid, 1).await;
    (host, pid, other, events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_cap_obeyed() {
    let (host, pid, _, _) = hog(Policy {
        max_memory_mib: 16,
        ..Policy::default()
    })
    .await;
    send(&host, pid, json!({"alloc_mib": 4}));
    wait_steps(&host, pid, 2).await;
    assert_eq!(state(&host, pid).await["count"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_cap_violated() {
    let (host, pid, other, mut events) = hog(Policy {
        max_memory_mib: 16,
        ..Policy::default()
    })
    .await;
    send(&host, pid, json!({"alloc_mib": 64}));
    let reason = crash_reason(&mut events, pid).await;
    assert!(!reason.is_empty());
    assert_eq!(
        state(&host, pid).await["count"],
        1,
        "the state from before the step"
    );
    send(&host, pid, json!("tick"));
    wait_steps(&host, pid, 2).await;
    assert_bystander_steps(&host, other).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stack_depth_obeyed() {
    let (host, pid, _, _) = hog(Policy::default()).await;
    send(&host, pid, json!({"recurse": 100}));
    wait_steps(&host, pid, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stack_overflow_is_contained() {
    let (host, pid, other, mut events) = hog(Policy::default()).await;
    send(&host, pid, json!({"recurse": 100_000_000u64}));
    let reason = crash_reason(&mut events, pid).await;
    // Rust's shadow stack lives in linear memory: overflowing it is an out-of-bounds access;
    // deeper wasm frames exhaust the engine's call stack. Either is a trap, contained.
    assert!(
        reason.contains("out of bounds") || reason.contains("call stack exhausted"),
        "{reason}"
    );
    assert_eq!(state(&host, pid).await["count"], 1);
    assert_bystander_steps(&host, other).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_size_obeyed() {
    let (host, pid, _, _) = hog(Policy {
        max_state_kib: 64,
        ..Policy::default()
    })
    .await;
    send(&host, pid, json!({"state_bytes": 1000}));
    wait_steps(&host, pid, 2).await;
    assert_eq!(
        state(&host, pid).await["filler"].as_str().unwrap().len(),
        1000
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_size_violated() {
    let (host, pid, other, mut events) = hog(Policy {
        max_state_kib: 64,
        ..Policy::default()
    })
    .await;
    send(&host, pid, json!({"state_bytes": 1_000_000}));
    let reason = crash_reason(&mut events, pid).await;
    assert!(reason.contains("over its policy's limit"), "{reason}");
    assert_eq!(state(&host, pid).await, json!({"count": 1, "filler": ""}));
    assert_bystander_steps(&host, other).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_size_obeyed() {
    let (host, pid, _, _) = hog(Policy {
        max_message_kib: 64,
        ..Policy::default()
    })
    .await;
    send(&host, pid, json!({"send_kib": [3, 64]}));
    // The step that sent, then its three padded ticks.
    wait_steps(&host, pid, 5).await;
    assert_eq!(state(&host, pid).await["count"], 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_messages_fail_the_step_and_nothing_is_sent() {
    let (host, pid, other, mut events) = hog(Policy {
        max_message_kib: 64,
        ..Policy::default()
    })
    .await;
    // One message over the cap, then many under it that add up past the per-call total.
    for (msg, needle) in [
        (json!({"send_kib": [1, 65]}), "max_message_kib"),
        (
            json!({"send_kib": [1100, 64]}),
            "bytes of messages in one call",
        ),
    ] {
        send(&host, pid, msg);
        let reason = crash_reason(&mut events, pid).await;
        assert!(reason.contains(needle), "{reason}");
    }
    let info = host.process(pid).await.unwrap();
    assert_eq!(info.mailbox, 0, "the failed steps' sends were dropped");
    assert_eq!(state(&host, pid).await, json!({"count": 1, "filler": ""}));
    assert_bystander_steps(&host, other).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_mailbox_refuses_the_sender_and_loses_nothing_it_accepted() {
    // Expectation: while the process is busy, a mailbox capped at 8 takes 8 messages and refuses
    // the rest with MailboxFull; every accepted message is then handled.
    let host = host();
    let other = bystander(&host).await;
    deploy_with(
        &host,
        "slow",
        guests::SLOW,
        Policy {
            mailbox: 8,
            ..Policy::default()
        },
    )
    .await;
    let pid = host.spawn("slow", b"").await.unwrap();
    send(&host, pid, json!({"spin_ms": 300}));
    wait_until(|| async { host.is_busy(pid) }).await;
    let mut accepted = 0;
    let mut refused = 0;
    for _ in 0..20 {
        match host.send(pid, br#"{"spin_ms": 0}"#) {
            Ok(()) => accepted += 1,
            Err(SendError::MailboxFull(p)) => {
                assert_eq!(p, pid);
                refused += 1;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!((accepted, refused), (8, 12));
    wait_steps(&host, pid, 9).await;
    assert_eq!(state(&host, pid).await["count"], 9);
    assert_bystander_steps(&host, other).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trap_in_init_means_no_process() {
    let host = host();
    let other = bystander(&host).await;
    deploy(&host, "crasher", guests::CRASHER).await;
    let err = host
        .spawn("crasher", br#"{"crash_in_init": true}"#)
        .await
        .unwrap_err();
    assert!(matches!(err, SpawnError::InitFailed { .. }), "{err}");
    assert!(err.to_string().contains("init"), "{err}");
    assert_eq!(host.processes().await.len(), 1);
    assert_bystander_steps(&host, other).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporary_process_ends_at_its_first_crash() {
    let host = host();
    let mut events = host.subscribe();
    deploy_with(
        &host,
        "crasher",
        guests::CRASHER,
        Policy {
            restart: Restart::Temporary,
            ..Policy::default()
        },
    )
    .await;
    let pid = host.spawn("crasher", b"").await.unwrap();
    send(&host, pid, json!("crash"));
    let reason = wait_event(&mut events, |e| match e {
        HostEvent::Exited { pid: p, reason, .. } if *p == pid => Some(reason.to_string()),
        _ => None,
    })
    .await;
    assert!(reason.contains("temporary"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn components_importing_files_or_sockets_are_refused_with_the_imports_listed() {
    let host = host();
    let other = bystander(&host).await;
    for (path, needle) in [
        (guests::IMPORTS_FILESYSTEM, "wasi:filesystem/"),
        (guests::IMPORTS_SOCKETS, "wasi:sockets/"),
    ] {
        let err = host.deploy("plugin", &wasm(path)).await.unwrap_err();
        match &err {
            DeployError::ForbiddenImports(imports) => {
                assert!(imports.iter().any(|i| i.starts_with(needle)), "{imports:?}");
            }
            other => panic!("expected ForbiddenImports, got {other}"),
        }
        assert!(err.to_string().contains(needle), "{err}");
    }
    assert_eq!(host.modules().await.len(), 1, "nothing was loaded");
    assert_bystander_steps(&host, other).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_over_the_host_ceiling_is_refused() {
    let host = host();
    let options = DeployOptions {
        policy: Some(Policy {
            max_memory_mib: 1 << 20,
            ..Policy::default()
        }),
        ..DeployOptions::default()
    };
    let err = host
        .deploy_with("counter", &wasm(guests::COUNTER_V2), options)
        .await
        .unwrap_err();
    assert!(matches!(err, DeployError::Policy(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_gets_down_with_the_reason() {
    // Expectation: watchers of a process that quits, one that crashes past its limit, and a pid
    // that never lived get `down` with `normal`, `failed: ...` and `noproc`.
    let host = host();
    deploy(&host, "counter", guests::COUNTER_V2).await;
    deploy(&host, "watcher", guests::WATCHER).await;
    deploy_with(
        &host,
        "crasher",
        guests::CRASHER,
        Policy {
            restart: Restart::Temporary,
            ..Policy::default()
        },
    )
    .await;
    let quitter = host.spawn("counter", b"").await.unwrap();
    let crasher = host.spawn("crasher", b"").await.unwrap();
    let watch = |target: Pid| {
        let host = host.clone();
        async move {
            host.spawn(
                "watcher",
                json!({"target": target.0}).to_string().as_bytes(),
            )
            .await
            .unwrap()
        }
    };
    let w_quit = watch(quitter).await;
    let w_crash = watch(crasher).await;
    let w_none = watch(Pid(999_999)).await;

    send(&host, quitter, json!("quit"));
    send(&host, crasher, json!("crash"));
    for (watcher, target, reason) in [
        (w_quit, quitter, "normal"),
        (w_crash, crasher, "failed: "),
        (w_none, Pid(999_999), "noproc"),
    ] {
        wait_until(|| async { !state(&host, watcher).await["down"].is_null() }).await;
        let down = state(&host, watcher).await["down"].clone();
        assert_eq!(down[0], target.0);
        assert!(down[1].as_str().unwrap().starts_with(reason), "{down}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_steps_on_every_worker_thread_do_not_stop_other_processes() {
    let host = host();
    let other = bystander(&host).await;
    let policy = Policy {
        max_step_ms: 120_000,
        ..Policy::default()
    };
    deploy_with(&host, "loop", guests::LOOP_FOREVER, policy).await;
    // More looping steps than the runtime has worker threads.
    let mut loopers = Vec::new();
    for _ in 0..3 {
        let pid = host.spawn("loop", b"null").await.unwrap();
        send(&host, pid, json!("spin"));
        loopers.push(pid);
    }
    wait_until(|| async { loopers.iter().all(|&p| host.is_busy(p)) }).await;
    for _ in 0..3 {
        assert_bystander_steps(&host, other).await;
    }
    assert!(
        loopers.iter().all(|&p| host.is_busy(p)),
        "the bystander stepped while every looper was still inside its step"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_that_has_to_wait_runs_again_on_a_fiber_and_its_effects_happen_once() {
    // Expectation: guest calls run directly on the worker thread until one has to wait: a step
    // that spins past an epoch tick (it should yield to other processes) or sleeps on a WASI
    // clock. That call is abandoned and run again from its start in a new instance on a fiber,
    // which the process keeps; what it prints (through the runtime and WASI's stdout) and sends
    // happens once.
    let host = host();
    let mut events = host.subscribe();
    let policy = Policy {
        grants: Grants {
            clocks: true,
            stdio: true,
            ..Grants::default()
        },
        ..Policy::default()
    };
    deploy_with(&host, "waiter", guests::WAITER, policy).await;
    deploy(&host, "sink", guests::SINK).await;
    let sink = host.spawn("sink", b"").await.unwrap();
    let mut sent = 0;
    for wait in [json!({"spin_ms": 50}), json!({"sleep_ms": 50})] {
        // A first message that does not wait leaves the process with a warm, direct instance.
        let pid = host.spawn("waiter", b"").await.unwrap();
        send(&host, pid, json!({"notify": sink.0}));
        wait_steps(&host, pid, 1).await;
        let before = host.instances_created();
        let mut msg = wait.clone();
        msg["notify"] = json!(sink.0);
        send(&host, pid, msg);
        send(&host, pid, json!({"notify": sink.0}));
        wait_steps(&host, pid, 3).await;
        assert_eq!(state(&host, pid).await, json!(3));
        assert_eq!(
            host.instances_created() - before,
            1,
            "{wait}: the call moved to a new instance once, and the process kept it"
        );
        sent += 3;
        wait_steps(&host, sink, sent).await;
        assert_eq!(
            state(&host, sink).await,
            json!(sent),
            "{wait}: each sent once"
        );
        let mut lines = Vec::new();
        for _ in 0..6 {
            lines.push(
                wait_event(&mut events, |e| match e {
                    HostEvent::Output { pid: p, line } if *p == pid => Some(line.clone()),
                    _ => None,
                })
                .await,
            );
        }
        lines.sort();
        assert_eq!(
            lines,
            [
                "waited",
                "waited",
                "waited",
                "waited, on stdout",
                "waited, on stdout",
                "waited, on stdout"
            ]
        );
    }
    while let Ok(e) = events.try_recv() {
        assert!(
            !matches!(e, HostEvent::Output { .. }),
            "a line printed twice: {e:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_whose_calls_wait_starts_its_next_instances_on_a_fiber() {
    // Expectation: with no warm instances kept, every step instantiates. Once a step of a
    // process has had to move to a fiber, its later steps start on one: one instance per step,
    // rather than a direct one, a long call abandoned, and a second instance.
    let host = Host::new(HostConfig {
        max_cached_instances: 0,
        ..HostConfig::default()
    })
    .expect("host starts");
    let policy = Policy {
        grants: Grants {
            clocks: true,
            ..Grants::default()
        },
        ..Policy::default()
    };
    deploy_with(&host, "waiter", guests::WAITER, policy).await;
    let pid = host.spawn("waiter", b"").await.unwrap();
    // `spawn` returns once `init` has answered, before the process has dropped init's instance:
    // a message sent at once could find it still warm.
    wait_cold(&host, pid).await;
    let mut created = host.instances_created();
    for (step, (msg, instances)) in [
        (json!({}), 1),
        (json!({"spin_ms": 50}), 2),
        (json!({"spin_ms": 50}), 1),
        (json!({"sleep_ms": 20}), 1),
    ]
    .into_iter()
    .enumerate()
    {
        send(&host, pid, msg.clone());
        wait_steps(&host, pid, step as u64 + 1).await;
        // Idle with no warm instance (none is kept): the next step instantiates.
        wait_cold(&host, pid).await;
        let now = host.instances_created();
        assert_eq!(now - created, instances, "step {msg}");
        created = now;
    }
    assert_eq!(state(&host, pid).await, json!(4));
}

/// The lines the plugin prints while handling `requests`, sent in order and followed by `end`,
/// whose answer (`unknown request end`) is the last line.
async fn plugin_output(host: &Host, policy: Policy, requests: &[&str]) -> Vec<String> {
    let mut events = host.subscribe();
    deploy_with(host, "plugin", guests::WASI_PLUGIN, policy).await;
    let pid = host.spawn("plugin", b"null").await.unwrap();
    for r in requests.iter().chain(&["end"]) {
        send(host, pid, json!(r));
    }
    let mut lines = Vec::new();
    loop {
        let line = wait_event(&mut events, |e| match e {
            HostEvent::Output { pid: p, line } if *p == pid => Some(line.clone()),
            HostEvent::Crashed { pid: p, reason, .. } if *p == pid => panic!("crashed: {reason}"),
            _ => None,
        })
        .await;
        if line == "unknown request end" {
            return lines;
        }
        lines.push(line);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wasi_imports_without_their_grants_are_refused_naming_the_grant() {
    let host = host();
    let err = host
        .deploy("plugin", &wasm(guests::WASI_PLUGIN))
        .await
        .unwrap_err();
    let DeployError::ForbiddenImports(imports) = &err else {
        panic!("expected ForbiddenImports, got {err}");
    };
    for (interface, grant) in [
        ("wasi:clocks/", "grant `clocks`"),
        ("wasi:random/", "grant `random`"),
        ("wasi:filesystem/", "grant a directory"),
    ] {
        assert!(
            imports
                .iter()
                .any(|i| i.starts_with(interface) && i.contains(grant)),
            "{imports:?}"
        );
    }
    assert!(
        !imports.iter().any(|i| i.starts_with("wasi:cli/")),
        "{imports:?}"
    );
    assert!(host.modules().await.is_empty(), "nothing was loaded");
}

fn plugin_policy(dir: &std::path::Path, stdio: bool, write: bool) -> Policy {
    Policy {
        grants: Grants {
            stdio,
            clocks: true,
            random: true,
            env: [("GREETING".to_owned(), "hi".to_owned())].into(),
            dirs: vec![DirGrant {
                host: dir.to_path_buf(),
                guest: "/data".into(),
                write,
            }],
        },
        ..Policy::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn granted_wasi_works_and_stays_inside_its_grants() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.txt"), "hello from the host\n").unwrap();
    let host = host();
    let requests = [
        "stdout", "env", "clock", "random", "read", "write", "escape",
    ];
    let lines = plugin_output(&host, plugin_policy(dir.path(), true, false), &requests).await;
    for expected in [
        "hello on stdout",
        "hello on stderr",
        "GREETING=Some(\"hi\")",
        "clock ok",
        "read: hello from the host",
    ] {
        assert!(lines.iter().any(|l| l == expected), "{expected}: {lines:?}");
    }
    assert!(lines.iter().any(|l| l.starts_with("random ")), "{lines:?}");
    assert!(
        lines.iter().any(|l| l.starts_with("write failed")),
        "read-only grant: {lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("escape failed")),
        "paths outside the grant: {lines:?}"
    );
    assert!(!dir.path().join("out.txt").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writable_dir_grant_writes_and_stdio_without_grant_is_discarded() {
    let dir = tempfile::tempdir().unwrap();
    let host = host();
    let lines = plugin_output(
        &host,
        plugin_policy(dir.path(), false, true),
        &["stdout", "write"],
    )
    .await;
    assert!(
        lines.iter().any(|l| l == "wrote to stdout and stderr"),
        "{lines:?}"
    );
    assert!(
        !lines.iter().any(|l| l.starts_with("hello on")),
        "{lines:?}"
    );
    assert!(lines.iter().any(|l| l == "write ok"), "{lines:?}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out.txt")).unwrap(),
        "written by the plugin"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_grants_stay_inside_the_hosts_dirs_root() {
    let root = tempfile::tempdir().unwrap();
    let host = Host::new(hotswap::HostConfig {
        dirs_root: Some(root.path().to_path_buf()),
        ..hotswap::HostConfig::default()
    })
    .unwrap();
    for escape in ["/etc", "../outside", "a/../../outside"] {
        let err = host
            .deploy_with(
                "plugin",
                &wasm(guests::WASI_PLUGIN),
                DeployOptions {
                    policy: Some(plugin_policy(escape.as_ref(), false, true)),
                    ..DeployOptions::default()
                },
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, DeployError::Policy(_)) && err.to_string().contains("relative path"),
            "{escape}: {err}"
        );
    }
    assert!(host.modules().await.is_empty());
    let lines = plugin_output(
        &host,
        plugin_policy("files".as_ref(), false, true),
        &["write"],
    )
    .await;
    assert_eq!(lines, ["write ok"]);
    assert!(root.path().join("files/out.txt").exists());
}

/// Expectation: an instance's memory is wiped before its pool slot serves anyone else. With no
/// warm instances kept, every step instantiates into the slot the last one left; what one process
/// hid in its linear memory (a static and the heap) is not there for the next process, nor for
/// its own next step. The hiding step finding its own copies shows that the scan works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_slot_keeps_nothing_of_the_instance_that_used_it_before() {
    const SECRET: &str = "hotswap-isolation-7f3a9c";
    let host = Host::new(HostConfig {
        max_cached_instances: 0,
        ..HostConfig::default()
    })
    .expect("host starts");
    deploy(&host, "snoop", guests::SNOOP).await;
    let a = host.spawn("snoop", b"").await.unwrap();
    send(&host, a, json!({ "hide": SECRET }));
    wait_steps(&host, a, 1).await;
    let own = state(&host, a).await["found"].as_u64().unwrap();
    assert!(own >= 17, "the hiding step sees its 17 copies, found {own}");

    let created = host.instances_created();
    let b = host.spawn("snoop", b"").await.unwrap();
    send(&host, b, json!({ "seek": SECRET }));
    wait_steps(&host, b, 1).await;
    assert_eq!(state(&host, b).await["found"], 0, "another process's step");
    wait_cold(&host, a).await;
    send(&host, a, json!({ "seek": SECRET }));
    wait_steps(&host, a, 2).await;
    assert_eq!(
        state(&host, a).await["found"],
        0,
        "the same process's next step"
    );
    assert!(
        host.instances_created() >= created + 2,
        "both seeking steps ran in new instances"
    );
}
