//! The harness every integration test uses: a temp workspace with its own
//! `PROCESS_GUARDIAN_WORKSPACE` and `PROCESS_GUARDIAN_ALERT_DIR`, a runner for
//! the real binary, `wait_until` with a deadline, and, on drop, the kill of
//! every process the test started (found by pid: supervisors by the
//! workspace path in their arguments, commands by their working directory).
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_process-guardian");

pub struct Env {
    _dir: tempfile::TempDir,
    pub ws: PathBuf,
    pub alerts: PathBuf,
}

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::Builder::new()
            .prefix("pg-test-")
            .tempdir()
            .expect("tempdir");
        let ws = dir.path().join("ws");
        let alerts = dir.path().join("alerts");
        fs::create_dir_all(&ws).unwrap();
        fs::create_dir_all(&alerts).unwrap();
        // Canonical, so it matches what the binary records.
        let ws = fs::canonicalize(ws).unwrap();
        let alerts = fs::canonicalize(alerts).unwrap();
        Env {
            _dir: dir,
            ws,
            alerts,
        }
    }

    /// A command for the real binary, in this workspace.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .current_dir(&self.ws)
            .env("PROCESS_GUARDIAN_WORKSPACE", &self.ws)
            .env("PROCESS_GUARDIAN_ALERT_DIR", &self.alerts)
            .env_remove("PROCESS_GUARDIAN_ALERT_COMMAND")
            .env_remove("PROCESS_GUARDIAN_ALERT_COOLDOWN")
            .env_remove("PROCESS_GUARDIAN_BOOT_ID")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        c
    }

    /// Runs the binary to completion (at most 60 s).
    pub fn run(&self, args: &[&str]) -> Output {
        run_with_deadline(self.cmd(args), Duration::from_secs(60))
    }

    /// Runs it and insists on exit 0; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?} failed: {:?}\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn status(&self) -> Vec<Value> {
        serde_json::from_str(&self.ok(&["status", "--json"])).expect("status --json parses")
    }

    pub fn status_of(&self, name: &str) -> Value {
        let mut all: Vec<Value> =
            serde_json::from_str(&self.ok(&["status", name, "--json"])).unwrap();
        all.remove(0)
    }

    /// `register <name> <command> [options]`, then `start <name>`; the command's pid.
    pub fn launch(&self, name: &str, command: &str, options: &[&str]) -> i32 {
        let mut args = vec!["register", name, command];
        args.extend_from_slice(options);
        self.ok(&args);
        self.ok(&["start", name]);
        self.pid_of(name).expect("running after start")
    }

    pub fn pid_of(&self, name: &str) -> Option<i32> {
        self.status_of(name)["pid"].as_i64().map(|p| p as i32)
    }

    pub fn state_file(&self, name: &str) -> Value {
        let p = self.ws.join(format!(".process-guardian/run/{name}.json"));
        serde_json::from_slice(&fs::read(p).unwrap()).unwrap()
    }

    pub fn registry_path(&self) -> PathBuf {
        self.ws.join(".process-registry.json")
    }

    pub fn log_path(&self, name: &str) -> PathBuf {
        self.ws.join(format!(".process-guardian/logs/{name}.log"))
    }

    pub fn alerts(&self) -> Vec<Value> {
        fs::read_to_string(self.ws.join(".process-guardian/alerts.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("alert line parses"))
            .collect()
    }

    pub fn alerts_of_kind(&self, kind: &str) -> Vec<Value> {
        self.alerts()
            .into_iter()
            .filter(|a| a["kind"] == kind)
            .collect()
    }

    pub fn supervisor_pid(&self, name: &str) -> i32 {
        self.state_file(name)["supervisor_pid"].as_i64().unwrap() as i32
    }

    /// Every live process this test started: supervisors (their arguments
    /// name the workspace) and anything running in the workspace directory.
    pub fn our_processes(&self) -> Vec<i32> {
        let ws = self.ws.to_string_lossy().into_owned();
        let mut found = vec![];
        for e in fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            if pid == std::process::id() as i32 || !alive(pid) {
                continue;
            }
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let args = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            let cwd = fs::read_link(format!("/proc/{pid}/cwd")).unwrap_or_default();
            if (args.contains(" supervise ") && args.contains(&ws)) || cwd.starts_with(&self.ws) {
                found.push(pid);
            }
        }
        found
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for _ in 0..3 {
            let pids = self.our_processes();
            if pids.is_empty() {
                return;
            }
            for pid in pids {
                // SAFETY-free: plain kill by the exact pid we found.
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

pub fn run_with_deadline(mut cmd: Command, limit: Duration) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.expect("wait"),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("command did not finish within {limit:?}");
        }
    }
}

/// Polls `cond` every 10 ms until it holds or `limit` passes.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[allow(unused_imports)]
pub use process_guardian::proc::{Stat, stat};

/// Alive and not a zombie, as the binary itself judges it.
pub fn alive(pid: i32) -> bool {
    stat(pid).is_some_and(|s| !s.is_dead())
}

pub fn kill(pid: i32, sig: &str) {
    let st = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success(), "kill -{sig} {pid}");
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap_or_default()
}

/// A test that cannot run on this machine: under CI, where everything it
/// needs is installed, that is a failure (`under_ci` says what is missing);
/// elsewhere it is skipped, saying why (`here`).
pub fn cannot_run(under_ci: &str, here: &str) {
    assert!(std::env::var_os("CI").is_none(), "{under_ci}");
    eprintln!("skipped: {here}");
}

/// A system user of the tests' own (created with `useradd` if missing), so
/// that what belongs to a user, such as a crontab, is never the invoking
/// user's. `None` where users cannot be created (not root).
pub fn test_user(name: &str) -> Option<(u32, u32)> {
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").args([flag, name]).output().ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    if id("-u").is_none() {
        let _ = Command::new("useradd")
            .args(["--no-create-home", "--shell", "/usr/sbin/nologin", name])
            .stderr(Stdio::null())
            .status();
    }
    Some((id("-u")?, id("-g")?))
}

impl Env {
    /// Gives the workspace and the alert directory to `uid`, so that the
    /// binary run as that user accepts them as its own.
    pub fn give_to(&self, uid: u32, gid: u32) {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(self.ws.parent().unwrap(), fs::Permissions::from_mode(0o755)).unwrap();
        for dir in [&self.ws, &self.alerts] {
            std::os::unix::fs::chown(dir, Some(uid), Some(gid)).unwrap();
        }
    }

    /// The binary in this workspace, run as `user` (`uid`, `gid`).
    pub fn as_user(&self, user: (&str, u32, u32), args: &[&str]) -> Output {
        use std::os::unix::process::CommandExt;
        let (name, uid, gid) = user;
        let mut c = self.cmd(args);
        c.uid(uid)
            .gid(gid)
            .env("HOME", &self.ws)
            .env("USER", name)
            .env("LOGNAME", name);
        run_with_deadline(c, Duration::from_secs(60))
    }
}

pub const CRON_USER: &str = "pg-cron-test";

/// The crontab of the tests' own user `pg-cron-test`, held by one test at a time and emptied after.
pub struct UserCrontab {
    pub uid: u32,
    pub gid: u32,
    _lock: fs::File,
}

impl UserCrontab {
    pub fn take() -> Option<UserCrontab> {
        let Some((uid, gid)) = test_user(CRON_USER) else {
            cannot_run(
                "CI runs as root: the cron tests must run there",
                &format!("needs root to create the user {CRON_USER}"),
            );
            return None;
        };
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(std::env::temp_dir().join("process-guardian-crontab-tests.lock"))
            .unwrap();
        lock.lock().unwrap();
        let table = UserCrontab {
            uid,
            gid,
            _lock: lock,
        };
        table.clear();
        Some(table)
    }

    pub fn who(&self) -> (&'static str, u32, u32) {
        (CRON_USER, self.uid, self.gid)
    }

    pub fn set(&self, text: &str) {
        let mut c = Command::new("crontab")
            .args(["-u", CRON_USER, "-"])
            .stdin(Stdio::piped())
            .spawn()
            .expect("the crontab command (Debian: apt-get install cron)");
        std::io::Write::write_all(c.stdin.as_mut().unwrap(), text.as_bytes()).unwrap();
        drop(c.stdin.take());
        assert!(c.wait().unwrap().success());
    }

    pub fn read(&self) -> String {
        stdout(
            &Command::new("crontab")
                .args(["-u", CRON_USER, "-l"])
                .output()
                .unwrap(),
        )
    }

    pub fn clear(&self) {
        let _ = Command::new("crontab")
            .args(["-u", CRON_USER, "-r"])
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for UserCrontab {
    fn drop(&mut self) {
        self.clear();
    }
}

/// Waits for a child of the test up to `limit`; past it, kills it and fails.
pub fn wait_child(child: &mut std::process::Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            return st;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("pid {} did not exit within {limit:?}", child.id());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
