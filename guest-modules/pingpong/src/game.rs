// The ping-pong game, shared by the `pingpong` and `pingpong-postcard` guests: each defines
// `ENCODING` and includes this file.

use hotswap_guest::{Encoding, Event, Next, Pid, Process, send_as};
use serde::{Deserialize, Serialize};

struct PingPong;

#[derive(Deserialize, Default)]
#[serde(default)]
struct Args {
    peer: Option<Pid>,
    rounds: u64,
    stop: bool,
}

#[derive(Serialize, Deserialize)]
struct State {
    received: u64,
    stop: bool,
}

#[derive(Serialize, Deserialize)]
struct Ball {
    ball: u64,
    #[serde(default)]
    stop: bool,
}

impl Process for PingPong {
    type Args = Args;
    type State = State;
    type Msg = Ball;
    const ENCODING: Encoding = ENCODING;

    fn init(args: Args) -> Result<Next<State>, String> {
        if let Some(peer) = args.peer {
            send_as(
                ENCODING,
                peer,
                &Ball {
                    ball: args.rounds,
                    stop: args.stop,
                },
            )
            .map_err(|e| e.to_string())?;
        }
        Ok(Next::wait(State {
            received: 0,
            stop: args.stop,
        }))
    }

    fn handle(state: State, event: Event<Ball>) -> Result<Next<State>, String> {
        let Event::Message { from, msg } = event else {
            return Ok(Next::wait(state));
        };
        let state = State {
            received: state.received + 1,
            stop: state.stop || msg.stop,
        };
        if msg.ball == 0 {
            return Ok(if state.stop {
                Next::stop(state)
            } else {
                Next::wait(state)
            });
        }
        send_as(
            ENCODING,
            from,
            &Ball {
                ball: msg.ball - 1,
                stop: msg.stop,
            },
        )
        .map_err(|e| e.to_string())?;
        Ok(if state.stop && msg.ball == 1 {
            Next::stop(state)
        } else {
            Next::wait(state)
        })
    }
}

hotswap_guest::export_process!(PingPong);
