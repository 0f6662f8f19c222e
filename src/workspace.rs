//! Where a workspace keeps its registry, runtime state, logs and alerts.
//!
//! A workspace is a directory holding `.process-registry.json`; it is chosen
//! by `--workspace`, `$PROCESS_GUARDIAN_WORKSPACE`, the nearest ancestor of
//! the current directory that holds a registry, or `$HOME`, in that order.

use std::fs::{self, DirBuilder};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

pub const REGISTRY_FILE: &str = ".process-registry.json";
pub const STATE_DIR: &str = ".process-guardian";
pub const WORKSPACE_ENV: &str = "PROCESS_GUARDIAN_WORKSPACE";
pub const ALERT_DIR_ENV: &str = "PROCESS_GUARDIAN_ALERT_DIR";

#[derive(Clone, Debug)]
pub struct Workspace {
    root: PathBuf,
    /// `run/`, opened once: status reads two files a process from it, and a
    /// lookup relative to it skips walking the whole path each time.
    run_fd: std::sync::Arc<std::sync::OnceLock<Option<std::os::fd::OwnedFd>>>,
    sup_lock: std::sync::Arc<std::sync::OnceLock<fs::File>>,
}

impl Workspace {
    /// Resolves the workspace from the flag, the environment, the current
    /// directory's ancestors, or `$HOME`.
    pub fn resolve(flag: Option<&Path>) -> Result<Workspace> {
        if let Some(dir) = flag {
            return Workspace::at(dir);
        }
        if let Some(dir) = std::env::var_os(WORKSPACE_ENV).filter(|d| !d.is_empty()) {
            return Workspace::at(Path::new(&dir));
        }
        if let Ok(cwd) = std::env::current_dir()
            && let Some(found) = cwd.ancestors().find(|d| d.join(REGISTRY_FILE).is_file())
        {
            return Workspace::at(found);
        }
        match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
            Some(home) => Workspace::at(Path::new(&home)),
            None => Err(Error::Invalid(
                "no workspace: pass --workspace DIR or set PROCESS_GUARDIAN_WORKSPACE".into(),
            )),
        }
    }

    /// A workspace rooted at `dir`, which must be an existing directory.
    pub fn at(dir: &Path) -> Result<Workspace> {
        let root = fs::canonicalize(dir).map_err(|e| {
            Error::Invalid(format!(
                "workspace {}: {e}; create it or pick another with --workspace",
                dir.display()
            ))
        })?;
        if !root.is_dir() {
            return Err(Error::Invalid(format!(
                "workspace {} is not a directory",
                root.display()
            )));
        }
        Ok(Workspace {
            root,
            run_fd: Default::default(),
            sup_lock: Default::default(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn registry_path(&self) -> PathBuf {
        self.root.join(REGISTRY_FILE)
    }
    pub fn state_dir(&self) -> PathBuf {
        self.root.join(STATE_DIR)
    }
    pub fn registry_lock_path(&self) -> PathBuf {
        self.state_dir().join("registry.lock")
    }
    pub fn run_dir(&self) -> PathBuf {
        self.state_dir().join("run")
    }
    pub fn logs_dir(&self) -> PathBuf {
        self.state_dir().join("logs")
    }
    pub fn alerts_path(&self) -> PathBuf {
        self.state_dir().join("alerts.jsonl")
    }
    /// Files named after a process: `run/<name><suffix>`. The name is validated before any path is built.
    pub fn run_file(&self, name: &str, suffix: &str) -> PathBuf {
        self.run_dir().join(format!("{name}{suffix}"))
    }
    /// Opens `run/<name><suffix>` for reading.
    pub fn open_run_file(&self, name: &str, suffix: &str) -> std::io::Result<fs::File> {
        use rustix::fs::{Mode, OFlags};
        let dir = self.run_fd.get_or_init(|| {
            rustix::fs::open(
                self.run_dir(),
                OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .ok()
        });
        match dir {
            Some(dir) => rustix::fs::openat(
                dir,
                format!("{name}{suffix}"),
                OFlags::RDONLY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map(fs::File::from)
            .map_err(std::io::Error::from),
            None => fs::File::open(self.run_file(name, suffix)),
        }
    }

    pub fn log_path(&self, name: &str) -> PathBuf {
        self.logs_dir().join(format!("{name}.log"))
    }
    /// One byte a supervisor, locked for as long as it lives (see
    /// `state::liveness_slot`). Beside run/, so no name's files can clash with it.
    pub fn supervisors_lock_path(&self) -> PathBuf {
        self.state_dir().join("supervisors.lock")
    }

    /// The supervisors' lock file, opened once for probing (`None` while no
    /// supervisor has ever run here, and then no supervisor is alive).
    pub fn supervisors_lock(&self) -> Option<&fs::File> {
        if let Some(f) = self.sup_lock.get() {
            return Some(f);
        }
        let f = fs::File::open(self.supervisors_lock_path()).ok()?;
        let _ = self.sup_lock.set(f);
        self.sup_lock.get()
    }

    pub fn cooldown_dir(&self) -> PathBuf {
        self.state_dir().join("alerted")
    }

    /// Where the alert flag and text go: `$PROCESS_GUARDIAN_ALERT_DIR` or /tmp.
    pub fn alert_dir() -> PathBuf {
        std::env::var_os(ALERT_DIR_ENV)
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/tmp"))
    }

    /// Creates `.process-guardian/` (mode 0700) and its subdirectories.
    pub fn ensure_dirs(&self) -> Result<()> {
        let state = self.state_dir();
        if !state.is_dir() {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&state)
                .map_err(|e| Error::io("create", &state, e))?;
            // The umask may have narrowed the mode; it must be exactly 0700.
            fs::set_permissions(&state, fs::Permissions::from_mode(0o700))
                .map_err(|e| Error::io("set permissions on", &state, e))?;
        }
        for dir in [self.run_dir(), self.logs_dir(), self.cooldown_dir()] {
            if !dir.is_dir() {
                DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(&dir)
                    .map_err(|e| Error::io("create", &dir, e))?;
            }
        }
        Ok(())
    }
}
