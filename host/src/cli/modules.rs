//! `hotswap modules`: list a running host's modules and versions.

use std::process::ExitCode;

use super::remote::Remote;
use crate::registry::ModuleInfo;

/// List modules: every version, which is current, and how many processes run each.
#[derive(Debug, clap::Args)]
pub struct Modules {
    #[command(flatten)]
    remote: Remote,
}

impl Modules {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let modules: Vec<ModuleInfo> = self.remote.client()?.get("/v1/modules")?;
        self.remote.print(&modules, |modules| {
            for m in modules {
                println!("{}", m.name);
                for v in &m.versions {
                    let current = if v.version == m.current {
                        " (current)"
                    } else {
                        ""
                    };
                    println!(
                        "  v{}{current}: {} process(es), sha256 {}",
                        v.version,
                        v.processes,
                        &v.sha256[..16]
                    );
                }
            }
        })?;
        Ok(ExitCode::SUCCESS)
    }
}
