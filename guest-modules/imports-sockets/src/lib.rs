//! Test guest: opens a TCP connection with `std::net`, so the component imports `wasi:sockets`,
//! which hotswap never grants: the host must refuse it at deploy, listing that import.

use hotswap_guest::{Event, Next, Process};
use serde_json::Value;

struct Connects;

impl Process for Connects {
    type Args = ();
    type State = u64;
    type Msg = Value;

    fn init((): ()) -> Result<Next<u64>, String> {
        let stream = std::net::TcpStream::connect("127.0.0.1:7420").map_err(|e| e.to_string())?;
        drop(stream);
        Ok(Next::wait(0))
    }

    fn handle(state: u64, _event: Event<Value>) -> Result<Next<u64>, String> {
        Ok(Next::wait(state))
    }
}

hotswap_guest::export_process!(Connects);
