//! Benchmark guest: started with `{"to": pid, "count": n}`, sends n small messages to `to`, in
//! bursts of up to 64 per step (waking itself with a zero timeout), backing off when the mailbox is
//! full, then stops.

use hotswap_guest::{Event, Next, Pid, Process, SendError, send};
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

struct Flood;

#[derive(Serialize, Deserialize, Default)]
#[serde(default)]
struct Job {
    to: Option<Pid>,
    count: u64,
}

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
        for _ in 0..64 {
            if job.count == 0 {
                return Ok(Next::stop(job));
            }
            match send(to, &job.count) {
                Ok(()) => job.count -= 1,
                Err(SendError::MailboxFull) => return Ok(Next::after(job, 1)),
                Err(SendError::NoSuchProcess) => return Ok(Next::stop(job)),
            }
        }
        Ok(Next::after(job, 0))
    }
}

hotswap_guest::export_process!(Flood);
