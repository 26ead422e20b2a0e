//! `hotswap serve`: the long-running host with its control API.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};

use crate::api::server::{ApiState, router};
use crate::store::DataDir;
use crate::{Host, HostConfig};

/// Run the long-running host: modules persist in the data dir, the control API listens on
/// loopback, and every request needs the token `serve` stores in the data dir. SIGINT/SIGTERM
/// save every process (state, mailbox, names) in the data dir; the next `serve` resumes them.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  hotswap serve &\n  hotswap examples --out ex\n  hotswap deploy counter ex/counter-v1.wasm\n  hotswap spawn counter\n  hotswap logs -f"
)]
pub struct Serve {
    /// Address of the control API. Port 0 picks a free port (written to DIR/address).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7420")]
    listen: SocketAddr,
    /// Allow listening on a non-loopback address (the token is then all that guards the host).
    #[arg(long)]
    allow_remote: bool,
    /// Data dir for modules, compiled code, token and address
    /// (default: $XDG_DATA_HOME/hotswap or ~/.local/share/hotswap).
    #[arg(long, value_name = "DIR", env = "HOTSWAP_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Largest component upload accepted, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 64)]
    max_upload_mib: usize,
}

impl Serve {
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        if !self.listen.ip().is_loopback() && !self.allow_remote {
            bail!(
                "refusing to listen on {} (not loopback): anyone who can reach it could try the token. \
                 Add --allow-remote if that is what you want",
                self.listen
            );
        }
        let dir = self.data_dir.unwrap_or_else(DataDir::default_path);
        let data = DataDir::open(&dir)?;
        let token = data.token()?;
        let host = Host::new(HostConfig {
            data_dir: Some(dir.clone()),
            // Deploys come over the network: directory grants stay inside the data dir.
            dirs_root: Some(dir.join("dirs")),
            ..HostConfig::default()
        })?;
        let listener = tokio::net::TcpListener::bind(self.listen)
            .await
            .with_context(|| format!("failed to listen on {}", self.listen))?;
        let url = format!("http://{}", listener.local_addr()?);
        data.write_address(&url)?;
        // Counted without waking the resumed processes (`modules()` asks each of them).
        let modules = host.module_count();
        let resumed = host.process_count();
        let (compiled, cached) = host.compile_stats();
        eprintln!(
            "hotswap serving on {url}; data dir {} ({modules} modules restored: {cached} from the compiled cache, {compiled} compiled; {resumed} processes resumed); token in {}",
            dir.display(),
            dir.join("token").display()
        );
        let app = router(ApiState::new(
            host.clone(),
            &token,
            self.max_upload_mib << 20,
        ));
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown())
            .await
            .context("the control API failed")?;
        // No request comes in any more: save the processes for the next start.
        let processes = host.process_count();
        host.shutdown().await;
        if processes > 0 {
            eprintln!(
                "hotswap stopped; {processes} processes saved in {}, the next start resumes them",
                dir.join("processes.json").display()
            );
        } else {
            eprintln!("hotswap stopped");
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
