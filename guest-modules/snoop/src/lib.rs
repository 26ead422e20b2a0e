//! Test guest for memory isolation: `{"hide": "s"}` leaves `s` (each byte XORed with a mask) in a
//! static buffer and 16 times on the heap, never freed; `{"seek": "s"}` scans the whole linear
//! memory for that masked form. Either way the state is `{"found": n}`, the copies seen.
//!
//! The masked form is only ever written by `hide`, and `seek` compares byte by byte without
//! building it, so a `seek` finds copies only where an earlier `hide` in the same memory left
//! them.

use hotswap_guest::{Event, Next, Process};
use serde::{Deserialize, Serialize};

struct Snoop;

const MASK: u8 = 0x5a;
const MAX_SECRET: usize = 64;

/// Where `hide` leaves one copy outside the heap.
static mut HIDDEN: [u8; MAX_SECRET] = [0; MAX_SECRET];

#[derive(Serialize, Deserialize)]
struct State {
    found: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Msg {
    Hide(String),
    Seek(String),
}

fn hide(secret: &[u8]) {
    let masked: Vec<u8> = secret.iter().map(|b| b ^ MASK).collect();
    // SAFETY: the guest is single-threaded and nothing holds a reference to `HIDDEN`.
    unsafe {
        std::ptr::copy_nonoverlapping(
            masked.as_ptr(),
            (&raw mut HIDDEN).cast::<u8>(),
            masked.len(),
        );
    }
    // Let the static escape, so that the compiler cannot drop a store nothing reads.
    std::hint::black_box(&raw const HIDDEN);
    std::hint::black_box(Vec::leak(masked.repeat(16)));
}

/// Copies of `secret`, masked, anywhere in linear memory.
fn seek(secret: &[u8]) -> u64 {
    let size = core::arch::wasm32::memory_size(0) * 65536;
    let mut found = 0;
    // Address 0 is valid wasm memory but a null pointer to Rust: start past it.
    for addr in 8..size.saturating_sub(secret.len()) {
        let matches = secret.iter().enumerate().all(|(i, &b)| {
            let p = std::ptr::with_exposed_provenance::<u8>(addr + i);
            // SAFETY: every address below `memory_size` is readable linear memory.
            (unsafe { std::ptr::read_volatile(p) } ^ MASK) == b
        });
        found += u64::from(matches);
    }
    found
}

impl Process for Snoop {
    type Args = ();
    type State = State;
    type Msg = Msg;

    fn init((): ()) -> Result<Next<State>, String> {
        Ok(Next::wait(State { found: 0 }))
    }

    fn handle(state: State, event: Event<Msg>) -> Result<Next<State>, String> {
        let Event::Message { msg, .. } = event else {
            return Ok(Next::wait(state));
        };
        let found = match msg {
            Msg::Hide(s) if s.is_empty() || s.len() > MAX_SECRET => {
                return Err(format!("a secret is 1 to {MAX_SECRET} bytes"));
            }
            Msg::Hide(s) => {
                hide(s.as_bytes());
                seek(s.as_bytes())
            }
            Msg::Seek(s) => seek(s.as_bytes()),
        };
        Ok(Next::wait(State { found }))
    }
}

hotswap_guest::export_process!(Snoop);
