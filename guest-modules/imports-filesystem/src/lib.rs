//! Test guest: reads a file with `std::fs`, so the component imports `wasi:filesystem`, which no
//! policy grants: the host must refuse it at deploy, listing that import.

use hotswap_guest::{Event, Next, Process};
use serde_json::Value;

struct ReadsFiles;

impl Process for ReadsFiles {
    type Args = ();
    type State = u64;
    type Msg = Value;

    fn init((): ()) -> Result<Next<u64>, String> {
        let secret = std::fs::read("/etc/passwd").map_err(|e| e.to_string())?;
        Ok(Next::wait(secret.len() as u64))
    }

    fn handle(state: u64, _event: Event<Value>) -> Result<Next<u64>, String> {
        Ok(Next::wait(state))
    }
}

hotswap_guest::export_process!(ReadsFiles);
