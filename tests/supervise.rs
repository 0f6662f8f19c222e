//! Supervision with real processes and real signals: detachment, restart,
//! crash loops, stop, completion, start failures, orphans, pid reuse, logs.

mod common;

use std::fs;
use std::time::{Duration, Instant};

use common::*;

fn pid_changed(env: &Env, name: &str, old: i32) -> impl FnMut() -> bool {
    move || env.pid_of(name).is_some_and(|p| p != old)
}

#[test]
fn survives_the_death_of_the_launching_session() {
    let env = Env::new();
    env.ok(&["register", "keeper", "sleep 1000"]);
    // A launcher in its own session and group, as a login shell or an agent's tool call would be.
    let script = format!(
        "PROCESS_GUARDIAN_WORKSPACE='{}' PROCESS_GUARDIAN_ALERT_DIR='{}' '{}' start keeper >/dev/null; echo started; exec sleep 60",
        env.ws.display(),
        env.alerts.display(),
        BIN
    );
    let mut launcher = std::process::Command::new("setsid")
        .args(["bash", "-c", &script])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(launcher.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "started");
    let launcher_pid = launcher.id() as i32;
    let Stat {
        pgrp: launcher_pgid,
        session: launcher_sid,
        ..
    } = stat(launcher_pid).unwrap();
    let cmd_pid = env.pid_of("keeper").expect("running");
    let sup = env.supervisor_pid("keeper");
    let sup_sid = stat(sup).unwrap().session;
    assert_ne!(sup_sid, launcher_sid, "the supervisor has its own session");
    assert_ne!(sup_sid, sup, "the supervisor is not a session leader");
    // The launcher's whole group gets HUP (which the launching shell dies
    // of), then TERM and KILL for whatever was left.
    let hup = std::process::Command::new("kill")
        .args(["-HUP", "--", &format!("-{launcher_pgid}")])
        .status()
        .unwrap();
    assert!(hup.success(), "the launcher's group was signalled");
    for sig in ["TERM", "KILL"] {
        // The group may be gone already: that is the point.
        std::process::Command::new("kill")
            .args([&format!("-{sig}"), "--", &format!("-{launcher_pgid}")])
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
    }
    let ended = wait_child(&mut launcher, Duration::from_secs(10));
    assert!(
        !ended.success(),
        "the launcher died of the signals: {ended:?}"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(alive(sup), "supervisor survived");
    assert!(alive(cmd_pid), "command survived");
    assert_eq!(env.pid_of("keeper"), Some(cmd_pid));
    assert_eq!(env.status_of("keeper")["restarts"], 0);
}

#[test]
fn kill_nine_of_the_command_is_restarted_within_a_second() {
    let env = Env::new();
    env.ok(&["register", "svc", "sleep 1000", "--restart-cooldown", "0.5"]);
    env.ok(&["start", "svc"]);
    let old = env.pid_of("svc").unwrap();
    std::thread::sleep(Duration::from_millis(700)); // a stable run: longer than the cooldown
    let t = Instant::now();
    kill(old, "KILL");
    assert!(
        wait_until(Duration::from_secs(1), pid_changed(&env, "svc", old)),
        "no new pid within 1 s"
    );
    eprintln!("restart seen after {:?}", t.elapsed());
    let s = env.status_of("svc");
    assert_eq!(s["state"], "running");
    assert_eq!(s["restarts"], 1);
    assert_eq!(s["last_exit"]["signal"], "KILL");
    assert!(s["last_exit"]["code"].is_null());
    assert!(wait_until(Duration::from_secs(2), || !env
        .alerts_of_kind("died")
        .is_empty()));
    let died = &env.alerts_of_kind("died")[0];
    assert_eq!(died["name"], "svc");
    assert_eq!(died["pid"], old);
    assert_eq!(died["exit"]["signal"], "KILL");
    let tail = died["log_tail"].as_array().unwrap();
    assert!(
        tail.iter()
            .any(|l| l.as_str().unwrap().contains("killed by signal KILL")),
        "{tail:?}"
    );
}

#[test]
fn crash_loop_gives_up_after_max_restarts() {
    let env = Env::new();
    env.ok(&[
        "register",
        "crashy",
        "false",
        "--max-restarts",
        "3",
        "--restart-cooldown",
        "2",
    ]);
    let t = Instant::now();
    env.ok(&["start", "crashy"]);
    assert!(wait_until(Duration::from_secs(15), || env
        .status_of("crashy")["state"]
        == "failed"));
    let took = t.elapsed().as_secs_f64();
    assert!(
        (4.0..9.0).contains(&took),
        "gave up after {took} s, expected about 5 s"
    );
    let s = env.status_of("crashy");
    assert_eq!(s["restarts"], 3);
    assert_eq!(s["last_exit"]["code"], 1);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(env.alerts_of_kind("crash-loop").len(), 1);
    assert_eq!(
        env.status_of("crashy")["restarts"],
        3,
        "no restart after giving up"
    );
    assert!(
        env.our_processes().is_empty(),
        "the supervisor exits once failed"
    );
}

#[test]
fn stop_kills_a_group_that_ignores_term() {
    let env = Env::new();
    let leader = env.launch(
        "stubborn",
        "trap '' TERM; sleep 1000 & sleep 1000 & wait",
        &["--stop-timeout", "1"],
    );
    let pgid = stat(leader).unwrap().pgrp;
    assert!(wait_until(Duration::from_secs(2), || group_members(pgid)
        .len()
        >= 3));
    let members = group_members(pgid);
    let out = env.ok(&["stop", "stubborn"]);
    assert!(out.contains("SIGKILL"), "{out}");
    for pid in members {
        assert!(!alive(pid), "{pid} of the group survived stop");
    }
    assert!(group_members(pgid).is_empty());
    let s = env.status_of("stubborn");
    assert_eq!(s["state"], "stopped");
    assert_eq!(s["desired"], "stopped");
    // Idempotent.
    let again = env.ok(&["stop", "stubborn"]);
    assert!(again.contains("not running"), "{again}");
}

#[test]
fn stop_reports_term_for_a_polite_command() {
    let env = Env::new();
    env.ok(&["register", "polite", "sleep 1000"]);
    env.ok(&["start", "polite"]);
    let out = env.ok(&["stop", "polite"]);
    assert!(out.contains("SIGTERM"), "{out}");
    assert_eq!(env.state_file("polite")["stopped_by"], "TERM");
}

fn group_members(pgid: i32) -> Vec<i32> {
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<i32>().ok())
        .filter(|&p| alive(p) && stat(p).is_some_and(|s| s.pgrp == pgid))
        .collect()
}

#[test]
fn finishing_the_duration_completes_and_an_early_exit_restarts() {
    let env = Env::new();
    // 0.05 min: 3 s, of which 80 % (2.4 s) completes; sleep 3 is well past
    // it and sleep 1 well short of it, on a loaded machine too.
    env.ok(&["register", "job", "sleep 3", "0.05"]);
    env.ok(&["start", "job"]);
    assert!(wait_until(Duration::from_secs(10), || env.status_of("job")
        ["state"]
        == "completed"));
    let s = env.status_of("job");
    assert_eq!(s["restarts"], 0);
    assert_eq!(s["last_exit"]["code"], 0);
    assert!(env.alerts().is_empty(), "completion raises no alert");

    env.ok(&["register", "early", "sleep 1", "0.05"]);
    env.ok(&["start", "early"]);
    assert!(wait_until(Duration::from_secs(6), || env
        .status_of("early")["restarts"]
        .as_u64()
        >= Some(1)));
    assert_ne!(env.status_of("early")["state"], "completed");
    assert!(
        !env.alerts_of_kind("died").is_empty(),
        "an early clean exit is a premature death"
    );
}

#[test]
fn a_command_that_cannot_start_fails_at_once() {
    let env = Env::new();
    env.ok(&["register", "typo", "definitely-not-a-program --flag"]);
    let t = Instant::now();
    let out = env.run(&["start", "typo"]);
    // At once, not after a timeout (the supervisor's report waits 15 s at
    // most); 3 s leaves room for a loaded machine and a debug build.
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "took {:?}",
        t.elapsed()
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not found"), "{}", stderr(&out));
    let s = env.status_of("typo");
    assert_eq!(s["state"], "failed");
    assert!(s["pid"].is_null());
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(env.status_of("typo")["restarts"], 0, "no restart loop");
    assert_eq!(env.alerts_of_kind("start-failed").len(), 1);
    assert!(env.our_processes().is_empty());

    // A missing working directory is named as such.
    let dir = env.ws.join("gone");
    fs::create_dir(&dir).unwrap();
    env.ok(&[
        "register",
        "nodir",
        "sleep 100",
        "--cwd",
        dir.to_str().unwrap(),
    ]);
    fs::remove_dir(&dir).unwrap();
    let out = env.run(&["start", "nodir"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("working directory"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn orphans_are_reaped_by_the_supervisor() {
    let env = Env::new();
    env.ok(&["register", "orphaner", "(sleep 2 &); exec sleep 1000"]);
    env.ok(&["start", "orphaner"]);
    let sup = env.supervisor_pid("orphaner");
    let leader = env.pid_of("orphaner").unwrap();
    // The orphan: a `sleep 2` whose parent is the supervisor.
    let mut orphan = None;
    assert!(wait_until(Duration::from_secs(2), || {
        orphan = children_of(sup).into_iter().find(|&p| p != leader);
        orphan.is_some()
    }));
    let orphan = orphan.unwrap();
    assert_eq!(stat(orphan).unwrap().ppid, sup);
    // Once it exits, it is reaped at once: no zombie lingers.
    assert!(
        wait_until(Duration::from_secs(4), || stat(orphan).is_none()),
        "orphan {orphan} not reaped: {:?}",
        stat(orphan)
    );
    assert_eq!(env.pid_of("orphaner"), Some(leader));
}

fn children_of(pid: i32) -> Vec<i32> {
    fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

#[test]
fn a_recycled_pid_is_never_ours() {
    let env = Env::new();
    env.ok(&["register", "ghost", "sleep 1000"]);
    env.ok(&["start", "ghost"]);
    env.ok(&["stop", "ghost"]);
    // An unrelated live process, recorded as if it were ours but with another start time.
    let mut bystander = std::process::Command::new("sleep")
        .arg("1000")
        .spawn()
        .unwrap();
    let pid = bystander.id() as i32;
    let path = env.ws.join(".process-guardian/run/ghost.json");
    let mut st: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    st["pid"] = pid.into();
    st["pid_start"] = 1.into();
    st["phase"] = "running".into();
    st["desired"] = "running".into();
    fs::write(&path, serde_json::to_vec(&st).unwrap()).unwrap();
    let s = env.status_of("ghost");
    assert_ne!(s["state"], "running");
    assert!(s["pid"].is_null());
    env.ok(&["stop", "ghost"]);
    // A signal sent would end it within moments: it must not.
    assert!(
        !wait_until(Duration::from_millis(500), || bystander
            .try_wait()
            .unwrap()
            .is_some()),
        "stop signalled an unrelated process"
    );
    bystander.kill().unwrap();
    wait_child(&mut bystander, Duration::from_secs(5));
}

#[test]
fn logs_hold_stdout_and_stderr_and_follow_across_rotation() {
    let env = Env::new();
    env.ok(&[
        "register",
        "chatty",
        "echo to-stdout; echo to-stderr >&2; i=0; while true; do i=$((i+1)); echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; sleep 0.01; done",
        "--log-max-bytes",
        "4096",
        "--log-keep",
        "2",
    ]);
    let mut follower = env.cmd(&["logs", "chatty", "-n", "0", "-f"]);
    let follow_out = env.ws.join("follow.txt");
    follower.stdout(fs::File::create(&follow_out).unwrap());
    let mut follower = follower.spawn().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    env.ok(&["start", "chatty"]);
    let log = env.log_path("chatty");
    let rotated1 = log.with_extension("log.1");
    let rotated2 = log.with_extension("log.2");
    assert!(
        wait_until(Duration::from_secs(15), || rotated2.exists()),
        "log never rotated twice"
    );
    let all = format!("{}{}{}", read(&rotated2), read(&rotated1), read(&log));
    assert!(all.contains("to-stdout") || read(&follow_out).contains("to-stdout"));
    assert!(
        !log.with_extension("log.3").exists(),
        "log_keep 2 keeps two rotated files"
    );
    std::thread::sleep(Duration::from_millis(300));
    env.ok(&["stop", "chatty"]);
    follower.kill().unwrap();
    wait_child(&mut follower, Duration::from_secs(5));
    // The follower saw every numbered line, in order, across the rotations.
    let seen = read(&follow_out);
    assert!(
        seen.contains("to-stdout") && seen.contains("to-stderr"),
        "{}",
        &seen[..seen.len().min(300)]
    );
    let numbers: Vec<u64> = seen
        .lines()
        .filter_map(|l| l.strip_prefix("line-")?.split('-').next()?.parse().ok())
        .collect();
    assert!(numbers.len() > 100, "only {} lines followed", numbers.len());
    let missing = numbers.windows(2).filter(|w| w[1] != w[0] + 1).count();
    assert_eq!(missing, 0, "gaps in the followed lines");
    let tail = env.ok(&["logs", "chatty", "-n", "3"]);
    assert_eq!(tail.lines().count(), 3, "{tail}");
}

#[test]
fn restart_resets_counters_and_run_registers_and_starts() {
    let env = Env::new();
    env.ok(&[
        "run",
        "argv-job",
        "--",
        "sh",
        "-c",
        "echo \"$0 $1\"; sleep 1000",
        "first arg",
        "it's",
    ]);
    let pid = env.pid_of("argv-job").expect("running");
    assert!(wait_until(Duration::from_secs(2), || read(
        &env.log_path("argv-job")
    )
    .contains("first arg it's")));
    kill(pid, "KILL");
    assert!(wait_until(Duration::from_secs(3), || env
        .status_of("argv-job")["restarts"]
        == 1));
    let out = env.ok(&["restart", "argv-job"]);
    assert!(out.contains("started argv-job"), "{out}");
    let s = env.status_of("argv-job");
    assert_eq!(s["restarts"], 0);
    assert_eq!(s["state"], "running");
    let out = env.ok(&["deregister", "argv-job", "--purge"]);
    assert!(out.contains("deregistered"), "{out}");
    assert!(env.our_processes().is_empty());
    assert!(!env.log_path("argv-job").exists());
    assert_eq!(env.run(&["status", "argv-job"]).status.code(), Some(3));
}

#[test]
fn start_wait_reports_a_command_that_dies_soon() {
    let env = Env::new();
    env.ok(&["register", "brief", "sleep 0.3"]);
    let out = env.run(&["start", "brief", "--wait", "1"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stderr(&out).contains("died within"), "{}", stderr(&out));
    env.ok(&["register", "steady", "sleep 100"]);
    env.ok(&["start", "steady", "--wait", "0.5"]);
}

#[test]
fn a_quiet_command_is_restarted_as_stale() {
    let env = Env::new();
    let first = env.launch(
        "quiet",
        "sleep 1000",
        &["--stale-after", "0.02", "--restart-cooldown", "0"],
    );
    assert!(
        wait_until(Duration::from_secs(5), || env
            .pid_of("quiet")
            .is_some_and(|p| p != first)),
        "a command silent for 1.2 s was not restarted"
    );
    assert!(!alive(first));
    let stale = env.alerts_of_kind("stale");
    assert!(!stale.is_empty());
    assert_eq!(stale[0]["pid"], first);
    assert!(
        env.alerts_of_kind("died").is_empty(),
        "a stale restart raises `stale`, not `died` as well"
    );
}
