//! `hotswap demo`: Erlang's classic code-reload demonstration, live, with the example components
//! built into the binary.
//!
//! A counting server (v1, with the bug: it never increments) and a client that sends it a timestamp
//! every interval run as two processes. After a few messages, v2 (the fix) is deployed; the same
//! two pids keep running, the count climbs from the state v1 left, and the demo checks that every
//! message the client sent was handled once, in order. Then both are told to quit.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::sync::broadcast;

use crate::examples::{COUNTER_V1, COUNTER_V2, TICKER};
use crate::{ExitReason, Host, HostConfig, HostEvent, Pid};

/// Run the classic Erlang code-reload demonstration: a counting server with a bug, a client
/// ticking at it, and the fixed server swapped in while both run.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  hotswap demo --interval-ms 200 --messages 10")]
pub struct Demo {
    /// Milliseconds between the client's messages.
    #[arg(long, value_name = "MS", default_value_t = 400, value_parser = clap::value_parser!(u64).range(1..))]
    interval_ms: u64,
    /// Messages the server handles on each version (before the swap, and after it).
    #[arg(long, value_name = "N", default_value_t = 6, value_parser = clap::value_parser!(u64).range(1..))]
    messages: u64,
}

impl Demo {
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        let host = Host::new(HostConfig::default())?;
        let mut events = host.subscribe();
        host.deploy("counter", COUNTER_V1)
            .await
            .context("failed to load counter v1")?;
        host.deploy("ticker", TICKER)
            .await
            .context("failed to load the ticker")?;
        let server = host.spawn("counter", b"").await?;
        let args = serde_json::json!({ "interval_ms": self.interval_ms }).to_string();
        let client = host.spawn("ticker", args.as_bytes()).await?;
        println!(
            "hotswap demo: server {server} runs counter v1 (the bug: it never increments); \
             client {client} sends it a timestamp every {} ms",
            self.interval_ms
        );

        let stall = Duration::from_millis(self.interval_ms * 10) + Duration::from_secs(5);
        let mut tally = Tally {
            server,
            client,
            ..Tally::default()
        };
        let mut watch = Watch {
            events: &mut events,
            stall,
            tally: &mut tally,
        };

        watch.until(|t| t.v1_lines >= self.messages).await?;
        let report = host
            .deploy("counter", COUNTER_V2)
            .await
            .context("failed to load counter v2")?;
        if let Some(stayed) = report.stayed.first() {
            bail!("the server did not move to v2: {}", stayed.reason);
        }
        watch.until(|t| t.v2_lines >= self.messages).await?;

        host.send(client, br#""quit""#)?;
        watch.until(|t| t.client_sent.is_some()).await?;
        host.send(server, br#""quit""#)?;
        watch.until(|t| t.server_done).await?;

        let sent = tally.client_sent.unwrap_or(0);
        let handled = tally.v1_lines + tally.v2_lines;
        let lost = sent.saturating_sub(handled);
        println!("sent {sent}, handled {handled}, lost {lost}");
        let mut problems = tally.problems;
        if handled != sent {
            problems.push(format!(
                "the client sent {sent} messages but the server handled {handled}"
            ));
        }
        if problems.is_empty() {
            Ok(ExitCode::SUCCESS)
        } else {
            for p in &problems {
                eprintln!("Error: {p}");
            }
            Ok(ExitCode::from(1))
        }
    }
}

/// What the demo has seen so far, and what was wrong with it.
#[derive(Default)]
struct Tally {
    server: Pid,
    client: Pid,
    swapped: bool,
    v1_lines: u64,
    v2_lines: u64,
    /// The count the next v2 line must show.
    next_count: Option<u64>,
    last_stamp: u64,
    client_sent: Option<u64>,
    server_done: bool,
    problems: Vec<String>,
}

impl Tally {
    fn see(&mut self, event: HostEvent) {
        match event {
            HostEvent::Output { pid, line } => {
                println!("{line}");
                if pid == self.server {
                    self.server_line(&line);
                }
            }
            HostEvent::Swapped {
                pid,
                from,
                to,
                pause_us,
            } if pid == self.server => {
                self.swapped = true;
                println!(
                    "== counter v{to} loaded: server {pid} moved from v{from} to v{to} at its step boundary, \
                     paused {pause_us} µs; same pid, state kept, client {} untouched ==",
                    self.client
                );
            }
            HostEvent::Crashed { pid, reason, .. } | HostEvent::Reverted { pid, reason, .. } => {
                self.problems
                    .push(format!("process {pid} failed: {reason}"));
            }
            HostEvent::Exited {
                pid,
                reason,
                messages_out,
                ..
            } => {
                if reason != ExitReason::Normal {
                    self.problems
                        .push(format!("process {pid} ended abnormally: {reason}"));
                }
                if pid == self.client {
                    self.client_sent = Some(messages_out);
                } else if pid == self.server {
                    self.server_done = true;
                }
            }
            HostEvent::Swapped { .. } => {}
        }
    }

    /// Checks one `<count>: Server <pid> received message <stamp> from <pid>` line.
    fn server_line(&mut self, line: &str) {
        let Some((count, rest)) = line.split_once(": ") else {
            return;
        };
        let Some(stamp) = rest.strip_prefix(&format!("Server {} received message ", self.server))
        else {
            return;
        };
        let (Ok(count), Some(Ok(stamp))) = (
            count.parse::<u64>(),
            stamp.split(' ').next().map(str::parse::<u64>),
        ) else {
            return self
                .problems
                .push(format!("unexpected server line: {line}"));
        };
        if stamp < self.last_stamp {
            self.problems.push(format!(
                "message out of order: {stamp} after {}",
                self.last_stamp
            ));
        }
        self.last_stamp = stamp;
        if !self.swapped {
            self.v1_lines += 1;
            if count != 0 {
                self.problems
                    .push(format!("v1 printed count {count}; it never increments"));
            }
            return;
        }
        self.v2_lines += 1;
        let expected = *self.next_count.get_or_insert(count);
        if count != expected {
            self.problems
                .push(format!("v2 printed count {count}, expected {expected}"));
        }
        self.next_count = Some(count + 1);
    }
}

/// Feeds host events to the tally until a condition holds.
struct Watch<'a> {
    events: &'a mut broadcast::Receiver<HostEvent>,
    stall: Duration,
    tally: &'a mut Tally,
}

impl Watch<'_> {
    async fn until(&mut self, done: impl Fn(&Tally) -> bool) -> anyhow::Result<()> {
        while !done(self.tally) {
            let event = match tokio::time::timeout(self.stall, self.events.recv()).await {
                Ok(Ok(event)) => event,
                Ok(Err(broadcast::error::RecvError::Lagged(n))) => {
                    bail!("the demo missed {n} host events")
                }
                Ok(Err(broadcast::error::RecvError::Closed)) => bail!("the host stopped"),
                Err(_) => bail!("the demo stalled: nothing happened for {:?}", self.stall),
            };
            self.tally.see(event);
        }
        Ok(())
    }
}
