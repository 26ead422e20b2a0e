//! Embeds the example components (built by the `hotswap-artifacts` crate from `guest-modules/`)
//! into the `hotswap` binary, for `hotswap demo` and `hotswap examples`.

fn main() {
    for (var, path) in [
        ("HOTSWAP_EXAMPLE_COUNTER_V1", hotswap_artifacts::COUNTER_V1),
        ("HOTSWAP_EXAMPLE_COUNTER_V2", hotswap_artifacts::COUNTER_V2),
        ("HOTSWAP_EXAMPLE_TICKER", hotswap_artifacts::TICKER),
    ] {
        println!("cargo:rustc-env={var}={path}");
        println!("cargo:rerun-if-changed={path}");
    }
}
