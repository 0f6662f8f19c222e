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
    /// The state table, opened once: [to read, to write].
    table: std::sync::Arc<[std::sync::OnceLock<Option<fs::File>>; 2]>,
    /// Whether the trust check found `.process-guardian/` and the
    /// directories in it, all there: `ensure_dirs` then has nothing to do.
    dirs_present: bool,
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
        let mut ws = Workspace {
            root,
            run_fd: Default::default(),
            sup_lock: Default::default(),
            table: Default::default(),
            dirs_present: false,
        };
        ws.dirs_present = ws.check_trusted()?;
        Ok(ws)
    }

    /// Refuses a workspace that another user owns or can write: its
    /// directory, its registry, `.process-guardian/` and the directories in
    /// it. Found by ancestor search, the environment or `--workspace` alike.
    /// Says whether `.process-guardian/` and its directories are all there.
    pub fn check_trusted(&self) -> Result<bool> {
        check_owned(&self.root, Expect::Dir)?;
        check_owned(&self.registry_path(), Expect::File)?;
        let mut all = check_owned(&self.state_dir(), Expect::Dir)?;
        for dir in [self.run_dir(), self.logs_dir(), self.cooldown_dir()] {
            all &= check_owned(&dir, Expect::Dir)?;
        }
        Ok(all)
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
    /// Opens `run/<name><suffix>` for reading, never through a symlink;
    /// with `check_owner`, a file that is not a regular file of ours is
    /// refused (every decision reads it so; a listing, which acts on
    /// nothing, spares the extra system call for each process).
    pub fn open_run_file(
        &self,
        name: &str,
        suffix: &str,
        check_owner: bool,
    ) -> std::io::Result<fs::File> {
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
            Some(dir) => {
                let f = rustix::fs::openat(
                    dir,
                    format!("{name}{suffix}"),
                    OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
                    Mode::empty(),
                )
                .map(fs::File::from)
                .map_err(std::io::Error::from)?;
                if check_owner {
                    crate::fsutil::check_own_file(&f, &self.run_file(name, suffix))?;
                }
                Ok(f)
            }
            None => crate::fsutil::open_own_read(&self.run_file(name, suffix)),
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
        let f = crate::fsutil::open_own_read(&self.supervisors_lock_path()).ok()?;
        let _ = self.sup_lock.set(f);
        self.sup_lock.get()
    }

    /// A copy of each process's state in one file (see `state::table`).
    pub fn state_table_path(&self) -> PathBuf {
        self.state_dir().join("states.table")
    }

    /// The state table for writing, opened once (created if missing), never
    /// through a symlink, and only if it is a regular file of ours.
    pub fn state_table(&self) -> Option<&fs::File> {
        self.table[1]
            .get_or_init(|| {
                let mut opts = fs::OpenOptions::new();
                opts.read(true).write(true).create(true).truncate(false);
                crate::fsutil::open_own(&self.state_table_path(), &mut opts).ok()
            })
            .as_ref()
    }

    /// The state table for reading (`None` if missing), opened once as
    /// `state_table` is, and without writing its access time.
    pub fn state_table_to_read(&self) -> Option<&fs::File> {
        self.table[0]
            .get_or_init(|| crate::fsutil::open_own_read_quietly(&self.state_table_path()).ok())
            .as_ref()
    }

    pub fn cooldown_dir(&self) -> PathBuf {
        self.state_dir().join("alerted")
    }

    /// Where the alert flag and text go: `$PROCESS_GUARDIAN_ALERT_DIR` or
    /// /tmp. A relative directory is resolved once, against the directory
    /// the program started in (the supervisor resolves it before it leaves
    /// that directory), so the CLI and the supervisor agree.
    pub fn alert_dir() -> PathBuf {
        static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
        DIR.get_or_init(|| {
            let dir = std::env::var_os(ALERT_DIR_ENV)
                .filter(|d| !d.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/tmp"));
            if dir.is_relative()
                && let Ok(cwd) = std::env::current_dir()
            {
                return cwd.join(dir);
            }
            dir
        })
        .clone()
    }

    /// Creates `.process-guardian/` (mode 0700) and its subdirectories
    /// (whatever already stood there was checked by `check_trusted`).
    pub fn ensure_dirs(&self) -> Result<()> {
        if self.dirs_present {
            return Ok(());
        }
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

#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    Dir,
    File,
}

/// Checks one path of the workspace without following a symlink: missing
/// is fine (it will be created ours), anything else must be of the expected
/// type, owned by us, and writable by nobody else (group-writable only for a
/// group that holds no other user, such as a user-private group). Says
/// whether it is there.
fn check_owned(path: &Path, expect: Expect) -> Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let m = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::io("inspect", path, e)),
    };
    let refuse = |reason: String, fix: String| {
        Err(Error::Untrusted {
            path: path.to_path_buf(),
            reason,
            risk: "a workspace another user can change would run its commands as you",
            fix,
        })
    };
    let me = crate::fsutil::euid();
    let kind = match expect {
        Expect::Dir => "a directory",
        Expect::File => "a regular file",
    };
    let ft = m.file_type();
    if ft.is_symlink() {
        return refuse(
            "it is a symbolic link".into(),
            format!("Replace the link with {kind} of your own."),
        );
    }
    if (expect == Expect::Dir && !ft.is_dir()) || (expect == Expect::File && !ft.is_file()) {
        return refuse(
            format!("it is not {kind}"),
            "Move it away or pick another workspace with --workspace DIR.".into(),
        );
    }
    if m.uid() != me {
        return refuse(
            format!(
                "it is owned by uid {}{}, not by you (uid {me})",
                m.uid(),
                user_name(m.uid())
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default()
            ),
            format!(
                "Use a workspace of your own (--workspace DIR or PROCESS_GUARDIAN_WORKSPACE), or, if you trust it, take it over: chown {me} {}",
                path.display()
            ),
        );
    }
    let mode = m.mode() & 0o7777;
    if mode & 0o002 != 0 || (mode & 0o020 != 0 && !group_is_private(m.gid(), me)) {
        return refuse(
            format!(
                "it is writable by {} (mode {mode:o})",
                if mode & 0o002 != 0 {
                    "every user"
                } else {
                    "other users of its group"
                }
            ),
            format!("Make it yours alone: chmod go-w {}", path.display()),
        );
    }
    Ok(true)
}

/// Lines of a colon-separated database such as /etc/passwd, split into fields.
fn db_rows(path: &str) -> Vec<Vec<String>> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split(':').map(str::to_string).collect())
        .collect()
}

pub(crate) fn user_name(uid: u32) -> Option<String> {
    db_rows("/etc/passwd")
        .into_iter()
        .find(|f| f.len() > 3 && f[2].parse() == Ok(uid))
        .map(|f| f[0].clone())
}

/// Whether group `gid` holds no user but `uid`: no other user has it as
/// primary group and its member list names nobody else. A group we cannot
/// find is not private.
fn group_is_private(gid: u32, uid: u32) -> bool {
    let me = user_name(uid);
    let others_primary = db_rows("/etc/passwd")
        .iter()
        .any(|f| f.len() > 3 && f[3].parse() == Ok(gid) && f[2].parse() != Ok(uid));
    if others_primary {
        return false;
    }
    let groups = db_rows("/etc/group");
    let Some(group) = groups
        .iter()
        .find(|f| f.len() > 3 && f[2].parse() == Ok(gid))
    else {
        return false;
    };
    group[3]
        .split(',')
        .filter(|m| !m.trim().is_empty())
        .all(|m| Some(m.trim()) == me.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn foreign_or_open_workspaces_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::at(dir.path()).unwrap();
        fs::write(ws.registry_path(), "{}").unwrap();
        fs::set_permissions(ws.registry_path(), fs::Permissions::from_mode(0o666)).unwrap();
        let err = Workspace::at(dir.path()).unwrap_err();
        assert!(matches!(err, Error::Untrusted { .. }), "{err}");
        assert!(err.to_string().contains("chmod go-w"), "{err}");
        fs::set_permissions(ws.registry_path(), fs::Permissions::from_mode(0o600)).unwrap();
        ws.ensure_dirs().unwrap();
        fs::set_permissions(ws.state_dir(), fs::Permissions::from_mode(0o777)).unwrap();
        assert!(matches!(
            Workspace::at(dir.path()),
            Err(Error::Untrusted { .. })
        ));
        fs::set_permissions(ws.state_dir(), fs::Permissions::from_mode(0o700)).unwrap();
        fs::remove_dir(ws.logs_dir()).unwrap();
        std::os::unix::fs::symlink("/tmp", ws.logs_dir()).unwrap();
        let err = Workspace::at(dir.path()).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
    }

    #[test]
    fn a_group_with_other_members_is_not_private() {
        // Group 0 (root) holds only root on a stock system; a gid that no
        // group has cannot be shown private.
        assert!(!group_is_private(4_000_000_000, 0));
    }
}
