//! Test guest for calls that have to wait: a message `{"spin_ms": a, "sleep_ms": b, "notify": pid}`
//! spins for `a` ms on the CPU (reading the runtime's clock), then sleeps `b` ms on a WASI clock
//! (`std::thread::sleep`: a pollable that is not ready at once), then writes `waited, on stdout`
//! to WASI's stdout, prints `waited` (the runtime's `print`) and sends `"done"` to `notify`. The
//! state counts the messages handled. Deploys with the `clocks` grant.

use hotswap_guest::{Event, Next, Pid, Process, monotonic_now, print, send};
use serde::Deserialize;

struct Waiter;

#[derive(Deserialize)]
struct Wait {
    #[serde(default)]
    spin_ms: u64,
    #[serde(default)]
    sleep_ms: u64,
    notify: Option<Pid>,
}

impl Process for Waiter {
    type Args = ();
    type State = u64;
    type Msg = Wait;

    fn init((): ()) -> Result<Next<u64>, String> {
        Ok(Next::wait(0))
    }

    fn handle(count: u64, event: Event<Wait>) -> Result<Next<u64>, String> {
        let Event::Message { msg, .. } = event else {
            return Ok(Next::wait(count));
        };
        let until = monotonic_now() + msg.spin_ms * 1_000_000;
        while monotonic_now() < until {
            std::hint::spin_loop();
        }
        std::thread::sleep(std::time::Duration::from_millis(msg.sleep_ms));
        println!("waited, on stdout");
        print("waited");
        if let Some(to) = msg.notify {
            send(to, "done").map_err(|e| format!("notify: {e:?}"))?;
        }
        Ok(Next::wait(count + 1))
    }
}

hotswap_guest::export_process!(Waiter);
