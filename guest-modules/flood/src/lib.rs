//! Benchmark guest: started with `{"to": pid, "count": n}`, sends n small messages to `to`, in
//! bursts of up to 64 per step (waking itself with a zero timeout), backing off when the mailbox is
//! full, then stops. Each message is one `send`; with `"many": true`, each burst is one
//! `send_many`.

use hotswap_guest::{Event, Next, Pid, Process, SendError, send, send_many};
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

struct Flood;

#[derive(Serialize, Deserialize, Default)]
#[serde(default)]
struct Job {
    to: Option<Pid>,
    count: u64,
    many: bool,
}

/// Messages per step.
const BURST: u64 = 64;

impl Process for Flood {
    type Args = Job;
    type State = Job;
    type Msg = IgnoredAny;

    fn init(job: Job) -> Result<Next<Job>, String> {
        Ok(Next::after(job, 0))
    }

    fn handle(mut job: Job, _event: Event<IgnoredAny>) -> Result<Next<Job>, String> {
        let Some(to) = job.to else {
            return Ok(Next::stop(job));
        };
        if job.many {
            let burst = job.count.min(BURST);
            let queued = match send_many(to, (0..burst).map(|i| job.count - i)) {
                Ok(queued) => queued as u64,
                Err(_) => return Ok(Next::stop(job)),
            };
            job.count -= queued;
            return Ok(match job.count {
                0 => Next::stop(job),
                _ if queued < burst => Next::after(job, 1),
                _ => Next::after(job, 0),
            });
        }
        for _ in 0..BURST {
            if job.count == 0 {
                return Ok(Next::stop(job));
            }
            match send(to, &job.count) {
                Ok(()) => job.count -= 1,
                Err(SendError::MailboxFull) => return Ok(Next::after(job, 1)),
                Err(SendError::NoSuchProcess) => return Ok(Next::stop(job)),
                Err(e @ SendError::Unencodable) => return Err(e.to_string()),
            }
        }
        Ok(Next::after(job, 0))
    }
}

hotswap_guest::export_process!(Flood);
