//! What every client command shares: how to find the host (`--host`/`--token` or the data dir) and
//! how to print (`--format plain|json`).

use std::path::PathBuf;

use serde::Serialize;

use crate::api::client::Client;
use crate::store::DataDir;

/// Where the host is and how to print.
#[derive(Debug, clap::Args)]
pub struct Remote {
    /// The host's control API URL (default: the address `serve` wrote in the data dir).
    #[arg(long, value_name = "URL", env = "HOTSWAP_HOST", global = true)]
    host: Option<String>,
    /// The host's bearer token (default: the `token` file in the data dir).
    #[arg(
        long,
        value_name = "T",
        env = "HOTSWAP_TOKEN",
        global = true,
        hide_env_values = true
    )]
    token: Option<String>,
    /// The data dir `serve` uses (default: $XDG_DATA_HOME/hotswap or ~/.local/share/hotswap).
    #[arg(long, value_name = "DIR", env = "HOTSWAP_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Plain, global = true)]
    pub format: Format,
}

/// Output format of client commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Lines for people.
    Plain,
    /// JSON for programs.
    Json,
}

impl Remote {
    pub fn client(&self) -> anyhow::Result<Client> {
        let data_dir = self.data_dir.clone().unwrap_or_else(DataDir::default_path);
        Client::connect(self.host.as_deref(), self.token.as_deref(), &data_dir)
    }

    /// Prints `value` as JSON, or calls `plain` to print it for people.
    pub fn print<T: Serialize>(&self, value: &T, plain: impl FnOnce(&T)) -> anyhow::Result<()> {
        match self.format {
            Format::Json => println!("{}", serde_json::to_string_pretty(value)?),
            Format::Plain => plain(value),
        }
        Ok(())
    }
}

/// Prints a swap report for people.
pub fn print_report(report: &crate::SwapReport) {
    let what = if report.dry_run {
        "dry run (nothing changed)"
    } else if report.committed {
        "deployed"
    } else {
        "not made current (atomic deploy aborted)"
    };
    println!("{} version {}: {what}", report.module, report.version);
    let verb = if report.dry_run {
        "would move"
    } else {
        "moved"
    };
    println!(
        "  {verb}: {} process(es) in {} µs",
        report.moved.len(),
        report.elapsed_us
    );
    for m in &report.moved {
        println!(
            "    {} v{} -> v{} (pause {} µs)",
            m.pid, m.from, report.version, m.pause_us
        );
    }
    if !report.stayed.is_empty() {
        let verb = if report.dry_run {
            "would stay"
        } else {
            "stayed"
        };
        println!("  {verb}: {} process(es)", report.stayed.len());
        for s in &report.stayed {
            println!("    {} on v{}: {}", s.pid, s.version, s.reason);
        }
    }
}
