//! The data directory of a long-running host: module components stored by content (sha256), each
//! module's version history, the compiled-component cache, and the control API's token and address.
//!
//! ```text
//! DATA/token                 bearer token of the control API (mode 0600)
//! DATA/address               URL the control API listens on
//! DATA/registry.json         { "modules": { "counter": { "current": 2, "versions": [{"sha256": ..., "policy": {...}}] } } }
//! DATA/modules/<sha256>.wasm the components, as uploaded
//! DATA/compiled/<sha256>.cwasm (+ .cwasm.sha256)  compiled by this host, reused after a restart
//! DATA/processes.json        the processes a graceful shutdown saved (pid, version, state, mailbox);
//!                            the next start resumes them and removes the file
//! ```
//!
//! Processes are saved only by a graceful shutdown (`Host::shutdown`, SIGINT/SIGTERM to `serve`):
//! a host that is killed has its modules and versions back at its next start, not its processes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The data directory, opened.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

/// `registry.json`: every module's versions, oldest first, and the current one.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct RegistryFile {
    /// By module name.
    pub modules: BTreeMap<String, ModuleRecord>,
}

/// One module's history.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct ModuleRecord {
    /// The version new processes start on.
    pub current: u32,
    /// Each version; version N is at index N - 1.
    pub versions: Vec<VersionRecord>,
}

/// One version in `registry.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionRecord {
    /// sha256 of the component (its file is `modules/<sha256>.wasm`).
    pub sha256: String,
    /// The policy it was deployed with.
    #[serde(default)]
    pub policy: crate::policy::Policy,
}

/// `processes.json`: what a graceful shutdown saved, for the next start to resume.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ProcessesFile {
    /// The next pid the host would have given: pids are never reused.
    pub next_pid: u64,
    /// Registered names.
    pub names: BTreeMap<String, crate::Pid>,
    /// Who monitored whom: (target, watchers).
    pub monitors: Vec<(crate::Pid, Vec<crate::Pid>)>,
    pub processes: Vec<crate::process::Saved>,
}

impl DataDir {
    /// The default data directory: `$HOTSWAP_DATA_DIR`, else `$XDG_DATA_HOME/hotswap`, else
    /// `~/.local/share/hotswap`, else `./.hotswap`.
    pub fn default_path() -> PathBuf {
        if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
            return PathBuf::from(dir).join("hotswap");
        }
        if let Some(home) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
            return PathBuf::from(home).join(".local/share/hotswap");
        }
        PathBuf::from(".hotswap")
    }

    /// Opens (creating if needed) a data directory, readable by its owner only.
    ///
    /// # Errors
    /// When the directories cannot be created.
    pub fn open(root: &Path) -> anyhow::Result<Self> {
        for dir in [
            root.to_path_buf(),
            root.join("modules"),
            root.join("compiled"),
        ] {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("failed to create {}", dir.display()))?;
        }
        restrict(root, 0o700)?;
        Ok(Self {
            root: root.to_path_buf(),
        })
    }

    /// The directory itself.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Where compiled components are cached.
    pub fn compiled_dir(&self) -> PathBuf {
        self.root.join("compiled")
    }

    /// The control API token, created (random, 256 bits, mode 0600) on first use.
    ///
    /// # Errors
    /// When the token cannot be read or written.
    pub fn token(&self) -> anyhow::Result<String> {
        let path = self.root.join("token");
        if let Ok(token) = std::fs::read_to_string(&path) {
            return Ok(token.trim().to_owned());
        }
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret)
            .map_err(|e| anyhow::anyhow!("no randomness for the token: {e}"))?;
        let token = hex::encode(secret);
        write_atomic(&path, token.as_bytes())?;
        restrict(&path, 0o600)?;
        Ok(token)
    }

    /// Records the address the control API listens on, for client commands.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn write_address(&self, url: &str) -> anyhow::Result<()> {
        write_atomic(&self.root.join("address"), url.as_bytes())
    }

    /// Stores a component under its sha256 and returns the hash.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn save_component(&self, bytes: &[u8]) -> anyhow::Result<String> {
        let hash = hex::encode(Sha256::digest(bytes));
        let path = self.root.join("modules").join(format!("{hash}.wasm"));
        if !path.exists() {
            write_atomic(&path, bytes)?;
        }
        Ok(hash)
    }

    /// Reads a stored component and checks it still has the hash it is stored under.
    ///
    /// # Errors
    /// When it is missing or was changed on disk.
    pub fn load_component(&self, hash: &str) -> anyhow::Result<Vec<u8>> {
        let path = self.root.join("modules").join(format!("{hash}.wasm"));
        let bytes =
            std::fs::read(&path).with_context(|| format!("failed to read {}", path.display()))?;
        if hex::encode(Sha256::digest(&bytes)) != hash {
            bail!(
                "{} was changed on disk: its content no longer has the hash it is named after",
                path.display()
            );
        }
        Ok(bytes)
    }

    /// Reads `registry.json` (empty if there is none yet).
    ///
    /// # Errors
    /// When it exists but cannot be read or parsed.
    pub fn load_registry(&self) -> anyhow::Result<RegistryFile> {
        let path = self.root.join("registry.json");
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is not valid", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(RegistryFile::default()),
            Err(e) => Err(e).with_context(|| format!("failed to read {}", path.display())),
        }
    }

    /// Writes `processes.json`.
    ///
    /// # Errors
    /// When it cannot be written.
    pub(crate) fn save_processes(&self, file: &ProcessesFile) -> anyhow::Result<()> {
        let json = serde_json::to_vec(file).context("failed to encode the saved processes")?;
        write_atomic(&self.processes_path(), &json)
    }

    /// Reads `processes.json`, if a shutdown left one.
    ///
    /// # Errors
    /// When it exists but cannot be read or parsed: the host must not start without the
    /// processes it holds (nor overwrite them at its next shutdown).
    pub(crate) fn load_processes(&self) -> anyhow::Result<Option<ProcessesFile>> {
        let path = self.processes_path();
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).with_context(|| {
                format!(
                    "{} (the processes the last shutdown saved) is not valid; move it aside to \
                     start without them",
                    path.display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("failed to read {}", path.display())),
        }
    }

    /// Removes `processes.json` once its processes run again.
    ///
    /// # Errors
    /// When it cannot be removed (the next start would resume the same processes twice).
    pub(crate) fn remove_processes(&self) -> anyhow::Result<()> {
        let path = self.processes_path();
        std::fs::remove_file(&path).with_context(|| format!("failed to remove {}", path.display()))
    }

    fn processes_path(&self) -> PathBuf {
        self.root.join("processes.json")
    }

    /// Replaces `registry.json`.
    ///
    /// # Errors
    /// When it cannot be written.
    pub fn save_registry(&self, registry: &RegistryFile) -> anyhow::Result<()> {
        let json = serde_json::to_vec_pretty(registry).context("failed to encode the registry")?;
        write_atomic(&self.root.join("registry.json"), &json)
    }
}

/// Writes `bytes` to a temporary file beside `path` and renames it into place.
///
/// # Errors
/// When either step fails.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes).with_context(|| format!("failed to write {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("failed to move {} into place", path.display()))
}

#[cfg(unix)]
fn restrict(path: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("failed to restrict permissions of {}", path.display()))
}

#[cfg(not(unix))]
fn restrict(_path: &Path, _mode: u32) -> anyhow::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_created_once_and_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::open(dir.path()).unwrap();
        let token = data.token().unwrap();
        assert_eq!(token.len(), 64);
        assert_eq!(data.token().unwrap(), token);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join("token"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn tampered_component_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::open(dir.path()).unwrap();
        let hash = data.save_component(b"\0asm\x0d\0\x01\0").unwrap();
        assert!(data.load_component(&hash).is_ok());
        std::fs::write(
            dir.path().join("modules").join(format!("{hash}.wasm")),
            b"other",
        )
        .unwrap();
        assert!(
            data.load_component(&hash)
                .unwrap_err()
                .to_string()
                .contains("changed on disk")
        );
    }
}
