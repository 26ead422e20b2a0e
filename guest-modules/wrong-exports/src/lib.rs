//! Test guest: a component that does not match the hotswap contract (see `wit/wrong.wit`); the host
//! must refuse it before any process is touched.

wit_bindgen::generate!({ path: "wit", world: "wrong" });

struct Wrong;

impl exports::hotswap::process::process::Guest for Wrong {
    fn init(args: Vec<u8>) -> u32 {
        args.len() as u32
    }
}

export!(Wrong);
