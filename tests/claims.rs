//! What the README says, each claim that no other test checks, checked here
//! against the real binary: `--env`, `--stop-signal`, the `exited` alert,
//! the hook's environment and the global alert command, the `$HOME`
//! fallback, orphans outside the group, and an exec'd command when `start`
//! returns.

mod common;

use std::fs;
use std::time::Duration;

use common::*;

#[test]
fn env_pairs_reach_the_command() {
    let env = Env::new();
    env.launch(
        "e",
        "sh -c 'echo \"FOO is [$FOO]\"; exec sleep 600'",
        &["--env", "FOO=bar baz"],
    );
    assert!(
        wait_until(Duration::from_secs(5), || read(&env.log_path("e"))
            .contains("FOO is [bar baz]")),
        "{}",
        read(&env.log_path("e"))
    );
    env.ok(&["stop", "e"]);
}

#[test]
fn stop_sends_the_entrys_stop_signal() {
    let env = Env::new();
    let pid = env.launch(
        "s",
        "sh -c 'trap \"echo got-INT-$((6*7)); exit 0\" INT; trap \"echo got-TERM-$((6*7)); exit 0\" TERM; while true; do sleep 0.05; done'",
        &["--stop-signal", "INT"],
    );
    let out = env.ok(&["stop", "s"]);
    assert!(!alive(pid));
    let log = read(&env.log_path("s"));
    // The numbers are computed by the shell: only its output holds them.
    assert!(log.contains("got-INT-42"), "{log}");
    assert!(!log.contains("got-TERM-42"), "{log}");
    assert!(out.contains("stopped s"), "{out}");
}

#[test]
fn an_exit_without_auto_restart_raises_exited() {
    let env = Env::new();
    env.ok(&[
        "register",
        "once",
        "sh -c 'sleep 0.3; exit 4'",
        "--no-auto-restart",
    ]);
    env.ok(&["start", "once"]);
    assert!(wait_until(Duration::from_secs(5), || !env
        .alerts_of_kind("exited")
        .is_empty()));
    let a = &env.alerts_of_kind("exited")[0];
    assert_eq!(a["exit"]["code"], 4, "{a}");
    let s = env.status_of("once");
    assert_eq!(s["state"], "exited");
    assert_eq!(s["restarts"], 0);
    assert!(env.alerts_of_kind("died").is_empty());
}

#[test]
fn hooks_get_the_message_in_their_environment_and_the_global_command_runs() {
    let env = Env::new();
    let own = env.ws.join("own-hook.txt");
    let global = env.ws.join("global-hook.txt");
    // The entry's own hook sees PG_ALERT_MESSAGE.
    env.ok(&[
        "register",
        "h",
        "sleep 600",
        "--restart-cooldown",
        "0",
        "--alert-command",
        &format!("printf '%s' \"$PG_ALERT_MESSAGE\" > '{}'", own.display()),
    ]);
    env.ok(&["start", "h"]);
    kill(env.pid_of("h").unwrap(), "KILL");
    assert!(wait_until(Duration::from_secs(5), || own.exists()
        && !read(&own).is_empty()));
    let died = &env.alerts_of_kind("died")[0];
    assert_eq!(read(&own), died["message"].as_str().unwrap());
    // An entry without one: PROCESS_GUARDIAN_ALERT_COMMAND, from the start's environment.
    env.ok(&["register", "g", "sleep 600", "--restart-cooldown", "0"]);
    let mut c = env.cmd(&["start", "g"]);
    c.env(
        "PROCESS_GUARDIAN_ALERT_COMMAND",
        format!("cat > '{}'", global.display()),
    );
    let out = run_with_deadline(c, Duration::from_secs(30));
    assert!(out.status.success(), "{}", stderr(&out));
    kill(env.pid_of("g").unwrap(), "KILL");
    assert!(wait_until(Duration::from_secs(5), || read(&global)
        .contains("\"kind\":\"died\"")));
    let got: serde_json::Value = serde_json::from_str(read(&global).trim()).unwrap();
    assert_eq!(got["name"], "g");
    env.ok(&["stop", "h"]);
    env.ok(&["stop", "g"]);
}

#[test]
fn without_a_workspace_home_is_the_workspace() {
    let env = Env::new();
    let elsewhere = tempfile::tempdir().unwrap();
    let mut c = env.cmd(&["register", "x", "sleep 1"]);
    c.current_dir(elsewhere.path())
        .env_remove("PROCESS_GUARDIAN_WORKSPACE")
        .env("HOME", &env.ws);
    let out = run_with_deadline(c, Duration::from_secs(30));
    assert!(out.status.success(), "{}", stderr(&out));
    let reg = read(&env.registry_path());
    assert!(reg.contains("\"x\""), "{reg}");
    assert!(!elsewhere.path().join(".process-registry.json").exists());
}

#[test]
fn stop_kills_orphans_that_left_the_group() {
    let env = Env::new();
    let pid = env.launch("o", "sh -c '(setsid sleep 1001 &); exec sleep 1000'", &[]);
    let sup = env.supervisor_pid("o");
    // The orphan: re-parented to the supervisor (a subreaper), in a session of its own.
    let mut orphan = None;
    assert!(wait_until(Duration::from_secs(5), || {
        orphan = fs::read_to_string(format!("/proc/{sup}/task/{sup}/children"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
            .find(|p| {
                fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| c == b"sleep\x001001\x00")
            });
        orphan.is_some()
    }));
    let orphan = orphan.unwrap();
    assert_ne!(stat(orphan).unwrap().pgrp, stat(pid).unwrap().pgrp);
    env.ok(&["stop", "o"]);
    assert!(!alive(pid));
    assert!(
        wait_until(Duration::from_secs(2), || !alive(orphan)),
        "the orphan outside the group outlived stop"
    );
}

#[test]
fn start_returns_once_the_command_has_execd() {
    let env = Env::new();
    env.ok(&["register", "x", "sleep 1000"]);
    // Thirty rounds: the moment between an exec that can no longer fail and
    // the new program's command line being in place is short.
    for _ in 0..30 {
        env.ok(&["start", "x"]);
        // Read at once: the pid is already the program, not a copy of us.
        let pid = env.state_file("x")["pid"].as_i64().unwrap() as i32;
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap();
        assert_eq!(cmdline, b"sleep\x001000\x00");
        env.ok(&["stop", "x"]);
    }
}
