//! `hotswap examples`: write the bundled example components to a directory.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

/// Write the bundled example components (counter-v1.wasm, counter-v2.wasm, ticker.wasm) to DIR,
/// to try `hotswap run` without building any guest.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  hotswap examples --out ex && hotswap run ex/counter-v1.wasm ex/ticker.wasm --watch"
)]
pub struct Examples {
    /// Directory to write them to (created if missing).
    #[arg(long, value_name = "DIR", default_value = ".")]
    out: PathBuf,
}

impl Examples {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        std::fs::create_dir_all(&self.out)
            .with_context(|| format!("failed to create {}", self.out.display()))?;
        for example in crate::examples::ALL {
            let path = self.out.join(example.file);
            std::fs::write(&path, example.bytes)
                .with_context(|| format!("failed to write {}", path.display()))?;
            println!("{}  {}", path.display(), example.about);
        }
        Ok(ExitCode::SUCCESS)
    }
}
