//! The `hotswap` command line: one struct per subcommand, each in its own file with `run()`.
//! The binary (`src/bin/hotswap.rs`) only sets up logging and calls [`Cli::run`].

mod demo;
mod deploy;
mod examples;
mod logs;
mod modules;
mod policy;
mod ps;
mod remote;
mod rollback;
mod run;
mod send;
mod serve;
mod spawn;
mod stop;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Run WebAssembly components as Erlang-style processes and swap their code while they run.
#[derive(Debug, Parser)]
#[command(
    name = "hotswap",
    version,
    after_help = "Try `hotswap demo` first.\n\nLogs go to stderr; set RUST_LOG=hotswap=debug for more."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Demo(demo::Demo),
    Run(run::Run),
    Examples(examples::Examples),
    Serve(serve::Serve),
    Deploy(deploy::Deploy),
    Spawn(spawn::Spawn),
    Send(send::Send),
    Stop(stop::Stop),
    Ps(ps::Ps),
    Modules(modules::Modules),
    Logs(logs::Logs),
    Rollback(rollback::Rollback),
}

impl Cli {
    /// Runs the chosen subcommand.
    ///
    /// # Errors
    /// Whatever the subcommand reports; the binary prints it with its cause chain.
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        match self.command {
            Command::Demo(c) => c.run().await,
            Command::Run(c) => c.run().await,
            Command::Examples(c) => c.run(),
            Command::Serve(c) => c.run().await,
            // Client commands make one blocking request each; nothing else runs in this process.
            Command::Deploy(c) => c.run(),
            Command::Spawn(c) => c.run(),
            Command::Send(c) => c.run(),
            Command::Stop(c) => c.run(),
            Command::Ps(c) => c.run(),
            Command::Modules(c) => c.run(),
            Command::Logs(c) => c.run(),
            Command::Rollback(c) => c.run(),
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_valid() {
        super::Cli::command().debug_assert();
    }
}
