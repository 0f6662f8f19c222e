//! The crontab lines, against the real `crontab` command. These tests change
//! the invoking user's crontab, so they hold a lock against each other and
//! put the original table back when they end.

mod common;

use std::fs;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

/// Holds the crontab for one test and restores it afterwards.
struct CrontabGuard {
    original: Option<String>,
    _lock: fs::File,
}

impl CrontabGuard {
    fn take() -> CrontabGuard {
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(std::env::temp_dir().join("process-guardian-crontab-tests.lock"))
            .unwrap();
        lock.lock().unwrap();
        let out = Command::new("crontab")
            .arg("-l")
            .output()
            .expect("the crontab command (Debian: apt-get install cron)");
        let original = out
            .status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned());
        CrontabGuard {
            original,
            _lock: lock,
        }
    }
}

impl Drop for CrontabGuard {
    fn drop(&mut self) {
        match &self.original {
            Some(text) => set_crontab(text),
            None => {
                let _ = Command::new("crontab")
                    .arg("-r")
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
}

fn set_crontab(text: &str) {
    let mut c = Command::new("crontab")
        .arg("-")
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(c.stdin.as_mut().unwrap(), text.as_bytes()).unwrap();
    drop(c.stdin.take());
    assert!(c.wait().unwrap().success());
}

fn crontab() -> String {
    String::from_utf8_lossy(&Command::new("crontab").arg("-l").output().unwrap().stdout)
        .into_owned()
}

#[test]
fn cron_install_is_idempotent_and_leaves_foreign_lines_alone() {
    let _guard = CrontabGuard::take();
    let env = Env::new();
    let foreign = "17 3 * * * /usr/bin/env echo 'nightly  job' # keep me exactly\n";
    set_crontab(foreign);
    env.ok(&["cron", "install"]);
    let out = env.ok(&["cron", "install"]);
    assert!(out.contains("already installed"), "{out}");
    let table = crontab();
    let ws = env.ws.display().to_string();
    let ours: Vec<&str> = table.lines().filter(|l| l.contains(&ws)).collect();
    assert_eq!(ours.len(), 2, "{table}");
    assert_eq!(
        table
            .lines()
            .filter(|l| l.starts_with("*/5 * * * * ") && l.contains(&ws))
            .count(),
        1
    );
    assert_eq!(
        table
            .lines()
            .filter(|l| l.starts_with("@reboot ") && l.contains(&ws))
            .count(),
        1
    );
    for l in &ours {
        assert!(
            l.contains(BIN) || l.contains(&fs::canonicalize(BIN).unwrap().display().to_string()),
            "{l}"
        );
        assert!(
            l.contains("healthcheck") && l.contains("healthcheck.log"),
            "{l}"
        );
    }
    assert!(table.starts_with(foreign), "foreign line changed:\n{table}");
    let shown = env.ok(&["cron", "show"]);
    assert_eq!(shown.lines().count(), 2, "{shown}");
    env.ok(&["cron", "uninstall"]);
    assert_eq!(crontab(), foreign);
    let again = env.ok(&["cron", "uninstall"]);
    assert!(again.contains("no healthcheck lines"), "{again}");
}

/// The real cron daemon revives a process with no command typed. It waits on
/// the clock (up to about two minutes), so it runs in CI, not in the default
/// `cargo test`: `cargo test --test cron -- --ignored`.
#[test]
#[ignore = "waits for the real cron daemon; run by .ci/run"]
fn real_cron_revives_a_dead_process() {
    let running = fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .any(|e| fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim() == "cron"));
    assert!(
        running,
        "the cron daemon is not running (start it: `cron` or `service cron start`)"
    );
    let _guard = CrontabGuard::take();
    let env = Env::new();
    env.ok(&["register", "cron-kept", "sleep 3000"]);
    env.ok(&["start", "cron-kept"]);
    env.ok(&["cron", "install", "--every-minute"]);
    let sup = env.supervisor_pid("cron-kept");
    let cmd = env.pid_of("cron-kept").unwrap();
    kill(sup, "KILL");
    kill(cmd, "KILL");
    assert!(wait_until(Duration::from_secs(3), || env
        .status_of("cron-kept")["state"]
        == "dead"));
    let t = std::time::Instant::now();
    let revived = wait_until(Duration::from_secs(130), || {
        env.pid_of("cron-kept")
            .is_some_and(|p| p != cmd && alive(p))
    });
    let log = read(&env.ws.join(".process-guardian/logs/healthcheck.log"));
    env.ok(&["cron", "uninstall"]);
    assert!(
        revived,
        "not revived by cron within 130 s; healthcheck.log:\n{log}"
    );
    eprintln!("revived by cron after {:?}", t.elapsed());
    assert!(log.contains("revived cron-kept"), "{log}");
}
