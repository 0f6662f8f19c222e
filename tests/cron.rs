//! The crontab lines, against the real `crontab` command and the real cron
//! daemon. Every test works on the crontab of a user of its own
//! (`pg-cron-test`, created with `useradd`), never on the invoking user's:
//! the binary runs as that user, and the test reads and resets that user's
//! table with `crontab -u`. Needs root; under CI it must run, elsewhere it
//! says it was skipped.

mod common;

use std::fs;
use std::time::Duration;

use common::*;

#[test]
fn cron_install_is_idempotent_and_leaves_foreign_lines_alone() {
    let Some(cron) = UserCrontab::take() else {
        return;
    };
    let env = Env::new();
    env.give_to(cron.uid, cron.gid);
    let ok = |args: &[&str]| {
        let out = env.as_user(cron.who(), args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        stdout(&out)
    };
    let foreign = "17 3 * * * /usr/bin/env echo 'nightly  job' # keep me exactly\n";
    cron.set(foreign);
    ok(&["cron", "install"]);
    let out = ok(&["cron", "install"]);
    assert!(out.contains("already installed"), "{out}");
    let table = cron.read();
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
    // Cron's environment is bare: the lines carry PATH and the alert directory.
    for l in &ours {
        assert!(l.contains("PATH="), "{l}");
        assert!(
            l.contains(&format!(
                "PROCESS_GUARDIAN_ALERT_DIR={}",
                env.alerts.display()
            )),
            "{l}"
        );
    }
    assert!(table.starts_with(foreign), "foreign line changed:\n{table}");
    let shown = ok(&["cron", "show"]);
    assert_eq!(shown.lines().count(), 2, "{shown}");
    ok(&["cron", "uninstall"]);
    assert_eq!(cron.read(), foreign);
    let again = ok(&["cron", "uninstall"]);
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
    let cron = UserCrontab::take().expect("root, to create the test user");
    let env = Env::new();
    env.give_to(cron.uid, cron.gid);
    let ok = |args: &[&str]| {
        let out = env.as_user(cron.who(), args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    };
    ok(&["register", "cron-kept", "sleep 3000"]);
    ok(&["start", "cron-kept"]);
    ok(&["cron", "install", "--every-minute"]);
    let status = || -> serde_json::Value {
        let out = env.as_user(cron.who(), &["status", "cron-kept", "--json"]);
        serde_json::from_slice::<Vec<serde_json::Value>>(&out.stdout).unwrap()[0].clone()
    };
    let sup = env.supervisor_pid("cron-kept");
    let cmd = status()["pid"].as_i64().unwrap() as i32;
    kill(sup, "KILL");
    kill(cmd, "KILL");
    assert!(wait_until(Duration::from_secs(3), || status()["state"] == "dead"));
    let t = std::time::Instant::now();
    let revived = wait_until(Duration::from_secs(130), || {
        status()["pid"]
            .as_i64()
            .is_some_and(|p| p as i32 != cmd && alive(p as i32))
    });
    let elapsed = t.elapsed();
    // The healthcheck prints its report (cron appends it to the log) after
    // the revival it reports, so the new pid is seen before the line is there.
    let log_path = env.ws.join(".process-guardian/logs/healthcheck.log");
    let logged = wait_until(Duration::from_secs(10), || {
        read(&log_path).contains("revived cron-kept")
    });
    let log = read(&log_path);
    ok(&["cron", "uninstall"]);
    assert!(
        revived,
        "not revived by cron within 130 s; healthcheck.log:\n{log}"
    );
    eprintln!("revived by cron after {elapsed:?}");
    assert!(
        logged,
        "no report of the revival in healthcheck.log:\n{log}"
    );
}
