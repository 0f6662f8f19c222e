//! What it says is what runs, and the safety net without cron: declarative
//! `run`, config drift, the warden, `doctor`.

mod common;

use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

#[test]
fn run_again_with_another_command_restarts_it_and_says_what_changed() {
    let env = Env::new();
    let out = env.ok(&["run", "s", "--", "sleep", "301"]);
    assert!(out.contains("started s"), "{out}");
    let first = env.pid_of("s").unwrap();
    // The same declaration: nothing restarted.
    let out = env.ok(&["run", "s", "--", "sleep", "301"]);
    assert!(out.contains("already running"), "{out}");
    assert_eq!(env.pid_of("s"), Some(first));
    // Another: the old command goes, the new one runs, and it says why.
    let out = env.ok(&["run", "s", "--", "sleep", "402"]);
    assert!(out.contains("command: 'sleep 301' → 'sleep 402'"), "{out}");
    assert!(!alive(first), "the old command still runs");
    let second = env.pid_of("s").unwrap();
    assert_ne!(second, first);
    let cmdline = fs::read_to_string(format!("/proc/{second}/cmdline")).unwrap();
    assert_eq!(
        cmdline.split('\0').collect::<Vec<_>>(),
        ["sleep", "402", ""]
    );
    let s = env.status_of("s");
    assert_eq!(s["command"], "sleep 402");
    assert_eq!(s["config_changed"], false);
    env.ok(&["stop", "s"]);
}

#[test]
fn register_of_a_running_name_changes_the_registry_only_until_restart() {
    let env = Env::new();
    let pid = env.launch("d", "sleep 501", &[]);
    assert_eq!(env.status_of("d")["config_changed"], false);
    let out = env.ok(&["register", "d", "sleep 502"]);
    assert!(
        out.contains("keeps running with its old definition")
            && out.contains("command: 'sleep 501' → 'sleep 502'"),
        "{out}"
    );
    assert_eq!(env.pid_of("d"), Some(pid), "register restarted it");
    let s = env.status_of("d");
    assert_eq!(s["config_changed"], true, "{s}");
    let table = env.ok(&["status"]);
    assert!(table.contains("running*"), "{table}");
    assert!(table.contains("older definition"), "{table}");
    env.ok(&["restart", "d"]);
    let s = env.status_of("d");
    assert_eq!(s["config_changed"], false, "{s}");
    assert_ne!(env.pid_of("d"), Some(pid));
    env.ok(&["stop", "d"]);
}

fn supervisor_of(env: &Env, name: &str) -> i32 {
    env.supervisor_pid(name)
}

/// Waits until `name` is supervised by another supervisor than `old_sup`
/// whose command is `cmd`; returns how long it took.
fn adopted_within(env: &Env, name: &str, old_sup: i32, cmd: i32, limit: Duration) -> Duration {
    let t = Instant::now();
    let ok = wait_until(limit, || {
        let st = env.state_file(name);
        let sup = st["supervisor_pid"].as_i64().unwrap_or(0) as i32;
        sup != old_sup && alive(sup) && st["pid"].as_i64() == Some(cmd as i64)
    });
    assert!(
        ok,
        "{name} was not adopted within {limit:?}: {}",
        env.state_file(name)
    );
    t.elapsed()
}

#[test]
fn the_warden_replaces_lost_supervisors_without_cron() {
    let env = Env::new();
    let names = ["w1", "w2", "w3"];
    let cmds: Vec<i32> = names
        .iter()
        .map(|n| env.launch(n, "sleep 1000", &[]))
        .collect();
    // Let every supervisor tick once, so that one of them is the warden.
    assert!(wait_until(Duration::from_secs(5), || {
        names
            .iter()
            .any(|n| read(&env.log_path(n)).contains("now the warden"))
    }));
    // Kill each supervisor in turn: the warden among them, once.
    for (name, cmd) in names.iter().zip(&cmds) {
        let sup = supervisor_of(&env, name);
        kill(sup, "KILL");
        let took = adopted_within(&env, name, sup, *cmd, Duration::from_secs(2));
        eprintln!("{name}: adopted {took:?} after kill -9 of its supervisor");
        assert!(alive(*cmd), "the command died with its supervisor");
    }
    // The first warden died with the others: another took its place.
    let takeovers: usize = names
        .iter()
        .map(|n| read(&env.log_path(n)).matches("now the warden").count())
        .sum();
    assert!(takeovers >= 2, "no supervisor took over the warden's lock");
    // Supervisor and command both killed: running again within 2 s.
    let (sup, cmd) = (supervisor_of(&env, "w2"), env.pid_of("w2").unwrap());
    kill(sup, "KILL");
    kill(cmd, "KILL");
    assert!(
        wait_until(Duration::from_secs(2), || {
            env.pid_of("w2").is_some_and(|p| p != cmd && alive(p))
        }),
        "not revived within 2 s: {}",
        env.state_file("w2")
    );
    // Stopped stays stopped, even with its supervisor gone.
    env.ok(&["stop", "w3"]);
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(env.status_of("w3")["state"], "stopped");
    assert_eq!(env.status()[0]["state"], "running");
    // No copy twice: each name has one supervisor.
    for name in ["w1", "w2"] {
        let sups: Vec<i32> = env
            .our_processes()
            .into_iter()
            .filter(|p| {
                fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| {
                    String::from_utf8_lossy(&c).contains(&format!("supervise\0{name}\0"))
                })
            })
            .collect();
        assert_eq!(sups.len(), 1, "{name}: supervisors {sups:?}");
    }
    env.ok(&["stop", "w1"]);
    env.ok(&["stop", "w2"]);
}

#[test]
fn doctor_says_when_no_cron_daemon_runs() {
    let env = Env::new();
    env.ok(&["register", "x", "sleep 1"]);
    // A process namespace of its own: no cron daemon is visible there.
    let mut c = Command::new("unshare");
    c.args(["--pid", "--fork", "--mount-proc", BIN, "doctor"])
        .current_dir(&env.ws)
        .env("PROCESS_GUARDIAN_WORKSPACE", &env.ws)
        .env("PROCESS_GUARDIAN_ALERT_DIR", &env.alerts);
    let out = run_with_deadline(c, Duration::from_secs(30));
    if !out.status.success() && stderr(&out).contains("unshare failed") {
        cannot_run(
            &format!("unshare is refused under CI: {}", stderr(&out)),
            "this machine refuses a new pid namespace",
        );
        return;
    }
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("no cron daemon is running"),
        "{}",
        stdout(&out)
    );
    let out = env.run(&["doctor", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["checks"].as_array().unwrap().len() >= 5, "{v}");
}

#[test]
fn doctor_is_content_when_cron_runs_our_lines() {
    let running = fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .any(|e| fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim() == "cron"));
    let Some((uid, gid)) = test_user("pg-doctor-test").filter(|_| running) else {
        cannot_run(
            "CI runs as root with a cron daemon: this test must run there",
            "needs root (useradd) and a running cron daemon",
        );
        return;
    };
    let env = Env::new();
    env.give_to(uid, gid);
    let as_user = |args: &[&str]| env.as_user(("pg-doctor-test", uid, gid), args);
    for args in [
        &["register", "x", "sleep 1"][..],
        &["cron", "install"],
        &["healthcheck"],
    ] {
        let out = as_user(args);
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    let out = as_user(&["doctor"]);
    let said = stdout(&out);
    let _ = as_user(&["cron", "uninstall"]);
    assert_eq!(out.status.code(), Some(0), "{said}{}", stderr(&out));
    assert!(said.contains("all is well"), "{said}");
}
