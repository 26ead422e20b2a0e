//! Test guest for resource limits: `{"alloc_mib": n}` allocates and touches n MiB; `{"recurse": n}`
//! recurses n frames deep; `{"state_bytes": n}` returns a state of about n bytes;
//! `{"send_kib": [count, n]}` sends itself `count` messages of n KiB each (`"tick"` padded with
//! spaces). Anything else counts. State `{"count": n, "filler": "..."}`.

use hotswap_guest::{Event, Next, Process};
use serde::{Deserialize, Serialize};

struct Hog;

#[derive(Serialize, Deserialize)]
struct State {
    count: u64,
    filler: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Msg {
    AllocMib(usize),
    Recurse(u64),
    StateBytes(usize),
    SendKib(usize, usize),
    Tick,
}

#[inline(never)]
fn recurse(n: u64, pad: [u64; 16]) -> u64 {
    if n == 0 {
        return pad[0];
    }
    let mut next = pad;
    next[(n % 16) as usize] = n;
    std::hint::black_box(recurse(n - 1, std::hint::black_box(next))) + 1
}

impl Process for Hog {
    type Args = ();
    type State = State;
    type Msg = Msg;

    fn init((): ()) -> Result<Next<State>, String> {
        Ok(Next::wait(State {
            count: 0,
            filler: String::new(),
        }))
    }

    fn handle(state: State, event: Event<Msg>) -> Result<Next<State>, String> {
        let Event::Message { msg, .. } = event else {
            return Ok(Next::wait(state));
        };
        let count = state.count + 1;
        let filler = match msg {
            Msg::AllocMib(n) => {
                let v = vec![1u8; n << 20];
                std::hint::black_box(&v);
                state.filler
            }
            Msg::Recurse(n) => {
                std::hint::black_box(recurse(n, [0; 16]));
                state.filler
            }
            Msg::StateBytes(n) => "x".repeat(n),
            Msg::SendKib(count, n) => {
                let mut payload = b"\"tick\"".to_vec();
                payload.resize(n << 10, b' ');
                for _ in 0..count {
                    hotswap_guest::send_raw(hotswap_guest::self_pid(), &payload)
                        .map_err(|e| format!("{e:?}"))?;
                }
                state.filler
            }
            Msg::Tick => state.filler,
        };
        Ok(Next::wait(State { count, filler }))
    }
}

hotswap_guest::export_process!(Hog);
