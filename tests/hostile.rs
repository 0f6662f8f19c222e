//! Hostile and unusual input, on a machine with several users: workspaces
//! another user controls, commands that stop slowly or scatter into new
//! sessions, hooks that never read, absurd numbers, races on one name,
//! alert files that belong to someone else, planted symlinks.
//!
//! The second user is real: `nobody` (uid 65534) through `chown` and
//! through the binary run as that uid.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const NOBODY: u32 = 65534;

fn chown(path: &Path, uid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(uid)).unwrap();
}

/// Whether the command `name` printed `line`, a whole line of its log.
fn said(env: &Env, name: &str, line: &str) -> bool {
    read(&env.log_path(name)).lines().any(|l| l == line)
}

fn code(out: &std::process::Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

/// Exit codes that mean something; 134 (abort) or a signal never.
fn assert_documented_code(args: &[&str], out: &std::process::Output) {
    assert!(
        matches!(out.status.code(), Some(0..=3)),
        "{args:?} ended with {:?}: {}",
        out.status,
        stderr(out)
    );
}

#[test]
fn a_registry_planted_by_another_user_is_refused_and_never_runs() {
    let env = Env::new();
    // alice's directory, with alice's registry whose command would prove it ran.
    let shared = env.ws.join("shared");
    let sub = shared.join("sub");
    fs::create_dir_all(&sub).unwrap();
    let proof = env.ws.join("ran-as");
    fs::write(
        shared.join(".process-registry.json"),
        format!(
            r#"{{"x": {{"command": "sh -c 'id -u > {}'"}}}}"#,
            proof.display()
        ),
    )
    .unwrap();
    chown(&shared, NOBODY);
    chown(&shared.join(".process-registry.json"), NOBODY);
    // Found by ancestor search from below it, by the environment, by the flag.
    type Way<'a> = Box<dyn Fn(&[&str]) -> std::process::Output + 'a>;
    let ways: Vec<Way> = vec![
        Box::new(|args: &[&str]| {
            let mut c = env.cmd(args);
            c.env_remove("PROCESS_GUARDIAN_WORKSPACE").current_dir(&sub);
            run_with_deadline(c, Duration::from_secs(30))
        }),
        Box::new(|args: &[&str]| {
            let mut c = env.cmd(args);
            c.env("PROCESS_GUARDIAN_WORKSPACE", &shared);
            run_with_deadline(c, Duration::from_secs(30))
        }),
        Box::new(|args: &[&str]| {
            let mut full = vec!["--workspace", shared.to_str().unwrap()];
            full.extend_from_slice(args);
            env.run(&full)
        }),
    ];
    for way in &ways {
        for args in [
            &["status"][..],
            &["start", "x"],
            &["healthcheck"],
            &["run", "y", "--", "true"],
        ] {
            let out = way(args);
            assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
            let err = stderr(&out);
            assert!(err.contains("owned by uid 65534"), "{err}");
            assert!(err.contains("chown"), "the fix is named: {err}");
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(!proof.exists(), "the planted command ran");
    assert!(
        !shared.join(".process-guardian").exists(),
        "nothing was written into the foreign workspace"
    );
}

#[test]
fn a_registry_or_state_directory_others_can_write_is_refused() {
    let env = Env::new();
    env.ok(&["register", "a", "sleep 600"]);
    let reg = env.registry_path();
    fs::set_permissions(&reg, fs::Permissions::from_mode(0o666)).unwrap();
    let out = env.run(&["status"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("chmod go-w"), "{}", stderr(&out));
    fs::set_permissions(&reg, fs::Permissions::from_mode(0o600)).unwrap();
    env.ok(&["status"]);

    let state = env.ws.join(".process-guardian");
    fs::set_permissions(&state, fs::Permissions::from_mode(0o777)).unwrap();
    for args in [&["status"][..], &["start", "a"], &["healthcheck"]] {
        let out = env.run(args);
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(".process-guardian"),
            "{}",
            stderr(&out)
        );
    }
    fs::set_permissions(&state, fs::Permissions::from_mode(0o700)).unwrap();
    // A state file planted by another user inside is not read either.
    fs::write(state.join("run/a.json"), r#"{"desired":"running"}"#).unwrap();
    chown(&state.join("run/a.json"), NOBODY);
    let out = env.run(&["status", "a"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("owned by uid 65534"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn another_user_cannot_use_a_workspace_they_do_not_own() {
    let env = Env::new();
    env.ok(&["register", "a", "sleep 600"]);
    // Let nobody reach the workspace, as on a shared machine.
    let top = env.ws.parent().unwrap();
    fs::set_permissions(top, fs::Permissions::from_mode(0o755)).unwrap();
    let mut c = env.cmd(&["status"]);
    c.uid(NOBODY).gid(NOBODY).env("HOME", "/nonexistent");
    let out = run_with_deadline(c, Duration::from_secs(30));
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not by you (uid 65534)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn stop_waits_for_a_command_that_flushes_on_term() {
    let env = Env::new();
    let script = env.ws.join("graceful.py");
    fs::write(
        &script,
        r#"import signal, sys, time
def bye(*_):
    time.sleep(2)
    with open(sys.argv[1], "a") as f:
        f.write("flushed\n")
    sys.exit(0)
signal.signal(signal.SIGTERM, bye)
print("ready", flush=True)
while True:
    time.sleep(1)
"#,
    )
    .unwrap();
    // The argument needs quoting: the command must still be exec'd without a shell.
    env.ok(&["run", "gr", "--", "python3", "graceful.py", "a b.txt"]);
    assert!(wait_until(Duration::from_secs(10), || said(
        &env, "gr", "ready"
    )));
    let pid = env.pid_of("gr").unwrap();
    let cmdline = fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(
        !cmdline.starts_with("/bin/sh") && cmdline.contains("graceful.py\0a b.txt\0"),
        "the program is the command, not a shell: {cmdline:?}"
    );
    let began = Instant::now();
    let out = env.ok(&["stop", "gr"]);
    let took = began.elapsed();
    assert!(
        took >= Duration::from_millis(1800),
        "stop returned after {took:?}: {out}"
    );
    assert_eq!(read(&env.ws.join("a b.txt")), "flushed\n");
    assert!(out.contains("SIGTERM"), "{out}");
    assert!(!alive(pid));
    assert_eq!(env.status_of("gr")["stopped_by"], "TERM");
}

#[test]
fn stop_waits_for_the_group_when_the_shell_exits_first() {
    let env = Env::new();
    // sh exits at once on TERM; its child traps TERM and takes a second.
    let pid = env.launch(
        "shelled",
        "sh -c 'trap \"sleep 1; echo child-done; exit 0\" TERM; echo up; while true; do sleep 0.1; done' & wait",
        &[],
    );
    // The line the command prints once its trap is set (the log's
    // "starting:" line holds the command's text, "echo up" included).
    assert!(wait_until(Duration::from_secs(5), || said(
        &env, "shelled", "up"
    )));
    let began = Instant::now();
    let out = env.ok(&["stop", "shelled"]);
    assert!(began.elapsed() >= Duration::from_millis(900), "{out}");
    assert!(read(&env.log_path("shelled")).contains("child-done"));
    assert!(!alive(pid));
    assert!(out.contains("SIGTERM"), "{out}");
}

#[test]
fn stop_sees_children_handed_over_while_it_walks_the_tree() {
    let env = Env::new();
    // Twenty middle shells die on TERM while the supervisor walks the tree;
    // each hands a child that traps TERM (and takes a second) to the
    // supervisor as it dies. A walk that read the supervisor's children
    // before they came and a dead middle's after they left saw an empty
    // tree, and stop returned at once. (That interleaving is rare here; the
    // unit test in proc.rs makes it happen.)
    let inner = r#"trap \"sleep 1; echo done >> done; exit 0\" TERM; echo up >> up; while :; do sleep 0.1; done"#;
    let command = format!("for i in $(seq 20); do sh -c 'sh -c \"{inner}\" & wait' & done; wait");
    let pid = env.launch("handed", &command, &[]);
    let up = env.ws.join("up");
    assert!(wait_until(Duration::from_secs(10), || read(&up)
        .lines()
        .count()
        == 20));
    let began = Instant::now();
    let out = env.ok(&["stop", "handed"]);
    assert!(began.elapsed() >= Duration::from_millis(900), "{out}");
    assert_eq!(read(&env.ws.join("done")).lines().count(), 20, "{out}");
    assert!(!alive(pid));
}

fn fifty_setsid_grandchildren_die_with_stop(command: &str) {
    let env = Env::new();
    let pid = env.launch("scatter", command, &[]);
    let pids_file = env.ws.join("pids");
    assert!(wait_until(Duration::from_secs(10), || read(&pids_file)
        .lines()
        .count()
        == 50));
    let kids: Vec<i32> = read(&pids_file)
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect();
    assert!(wait_until(Duration::from_secs(5), || kids
        .iter()
        .all(|k| { stat(*k).is_some_and(|s| s.session == *k) })));
    env.ok(&["stop", "scatter"]);
    let left: Vec<i32> = kids.iter().copied().filter(|k| alive(*k)).collect();
    assert!(
        left.is_empty(),
        "{} of 50 survived stop: {left:?}",
        left.len()
    );
    assert!(!alive(pid));
}

#[test]
fn none_of_fifty_setsid_grandchildren_outlive_stop() {
    // Children of the command itself, each in a session of its own.
    fifty_setsid_grandchildren_die_with_stop(
        "for i in $(seq 50); do setsid sleep 1000 & echo $! >> pids; done; wait",
    );
    // Deeper: their parent lives on in yet another session, so they are
    // neither in the group nor children of the supervisor when it stops.
    fifty_setsid_grandchildren_die_with_stop(
        "setsid sh -c 'for i in $(seq 50); do setsid sleep 1000 & echo $! >> pids; done; wait' & wait",
    );
}

#[test]
fn a_hook_that_never_reads_cannot_stall_restarts() {
    let env = Env::new();
    let ran = env.ws.join("hook-ran");
    let hook = format!("echo $$ >> {}; exec sleep 40", ran.display());
    let first = env.launch(
        "bigtail",
        "head -c 200000 /dev/zero | tr '\\0' x; echo; exec sleep 1000",
        &["--restart-cooldown", "0", "--alert-command", &hook],
    );
    assert!(wait_until(Duration::from_secs(5), || fs::metadata(
        env.log_path("bigtail")
    )
    .is_ok_and(|m| m.len() > 200_000)));
    let died = Instant::now();
    kill(first, "KILL");
    let mut second = None;
    assert!(
        wait_until(Duration::from_secs(2), || {
            second = env.pid_of("bigtail").filter(|p| *p != first);
            second.is_some()
        }),
        "not restarted within 2 s of dying"
    );
    assert!(died.elapsed() < Duration::from_secs(2));
    // The alert is bounded whatever the log holds. It is written after the
    // restart (the restart comes first), so it may follow the new pid.
    assert!(wait_until(Duration::from_secs(3), || !env
        .alerts_of_kind("died")
        .is_empty()));
    let alert = &env.alerts_of_kind("died")[0];
    let tail: usize = alert["log_tail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().len() + 1)
        .sum();
    assert!(tail <= 16 * 1024, "log_tail is {tail} bytes");
    assert!(wait_until(Duration::from_secs(3), || !read(&ran).is_empty()));
    let hook_pid: i32 = read(&ran).trim().parse().unwrap();
    assert!(alive(hook_pid));
    // A second death within the cooldown: recorded, the hook not run again.
    kill(second.unwrap(), "KILL");
    assert!(wait_until(Duration::from_secs(3), || env
        .alerts_of_kind("died")
        .len()
        == 2));
    // The hook's 10 s limit is enforced.
    assert!(
        wait_until(Duration::from_secs(14), || !alive(hook_pid)),
        "the hook outlived its limit"
    );
    assert!(
        died.elapsed() < Duration::from_secs(13),
        "{:?}",
        died.elapsed()
    );
    assert!(read(&env.log_path("bigtail")).contains("killed after 10 s"));
    assert_eq!(
        read(&ran).lines().count(),
        1,
        "the hook ran within the cooldown"
    );
    env.ok(&["stop", "bigtail"]);
}

#[test]
fn absurd_numbers_are_refused_naming_the_flag() {
    let env = Env::new();
    for (flag, value) in [
        ("--stop-timeout", "1e20"),
        ("--log-keep", "4294967295"),
        ("--stale-after", "1e20"),
        ("--stop-timeout", "-1"),
        ("--restart-cooldown", "1e300"),
        ("--log-max-bytes", "0"),
    ] {
        let args = ["register", "x", "sleep 600", flag, value];
        let out = env.run(&args);
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(flag), "{args:?}: {}", stderr(&out));
    }
    assert!(!env.registry_path().exists(), "nothing was registered");
    env.ok(&["register", "x", "sleep 600"]);
    for args in [
        &["stop", "x", "--timeout", "1e20"][..],
        &["start", "x", "--wait", "1e20"],
        &["stop", "x", "--timeout", "-1"],
        &["start", "x", "--wait", "NaN"],
    ] {
        let out = env.run(args);
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(args[2]), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn hand_written_absurd_numbers_fail_for_that_name_alone() {
    let env = Env::new();
    fs::write(
        env.registry_path(),
        r#"{
  "t": {"command": "sleep 600", "stop_timeout_s": 1e20},
  "k": {"command": "sleep 600", "log_keep": 4294967295},
  "s": {"command": "sleep 600", "stale_after_min": 1e20},
  "n": {"command": "sleep 600", "stop_timeout_s": -1},
  "e": {"command": "sleep 600", "env": {"A=B": "x"}},
  "g": {"command": "sleep 600", "stop_signal": "NOPE"},
  "good": {"command": "sleep 600"}
}"#,
    )
    .unwrap();
    fs::set_permissions(env.registry_path(), fs::Permissions::from_mode(0o600)).unwrap();
    let bad = ["t", "k", "s", "n", "e", "g"];
    for name in bad {
        for args in [
            &["start", name][..],
            &["stop", name],
            &["restart", name],
            &["status", name],
        ] {
            let out = env.run(args);
            assert_documented_code(args, &out);
            assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
            assert!(
                stderr(&out).contains(&format!("\"{name}\"")),
                "{args:?}: {}",
                stderr(&out)
            );
        }
    }
    // The others work, and status shows every name.
    env.ok(&["start", "good"]);
    let all = env.status();
    assert_eq!(all.len(), 7);
    for row in &all {
        let want = if row["name"] == "good" {
            "running"
        } else {
            "invalid"
        };
        assert_eq!(row["state"], want, "{row}");
    }
    let out = env.run(&["healthcheck"]);
    assert_documented_code(&["healthcheck"], &out);
    assert!(stdout(&out).contains("invalid t"), "{}", stdout(&out));
    // An invalid entry can still be removed, which is how it is fixed.
    env.ok(&["deregister", "t"]);
    env.ok(&["stop", "good"]);
}

#[test]
fn deregister_racing_start_leaves_no_hidden_process() {
    let env = Env::new();
    for round in 0..40 {
        let name = format!("d{round}");
        env.ok(&["register", &name, "sleep 600"]);
        let mut start = env.cmd(&["start", &name]);
        let mut dereg = env.cmd(&["deregister", &name]);
        let a = start
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let b = dereg
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        for mut child in [a, b] {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                assert!(Instant::now() < deadline, "a command hung");
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
    let registered: Vec<String> = env
        .status()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    let hidden = || -> Vec<String> {
        env.our_processes()
            .into_iter()
            .filter_map(|pid| {
                let args = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
                let args: Vec<String> = String::from_utf8_lossy(&args)
                    .split('\0')
                    .map(str::to_string)
                    .collect();
                let i = args.iter().position(|a| a == "supervise")?;
                let name = args.get(i + 1)?.clone();
                alive(pid)
                    .then_some(name)
                    .filter(|n| !registered.contains(n))
            })
            .collect()
    };
    assert!(
        wait_until(Duration::from_secs(3), || hidden().is_empty()),
        "supervisors of unregistered names: {:?}",
        hidden()
    );
    for name in &registered {
        env.ok(&["stop", name]);
    }
}

#[test]
fn alert_files_are_private_and_a_blocked_alert_dir_loses_nothing() {
    let env = Env::new();
    let pid = env.launch("a1", "sleep 600", &["--restart-cooldown", "0"]);
    kill(pid, "KILL");
    let text = env.alerts.join("process_monitor_alert.txt");
    let flag = env.alerts.join("process_monitor_alert.flag");
    assert!(wait_until(Duration::from_secs(3), || flag.exists()));
    for f in [&text, &flag] {
        assert_eq!(fs::metadata(f).unwrap().mode() & 0o777, 0o600, "{f:?}");
    }

    // Something that is not a file of ours stands at the text's name.
    fs::remove_file(&text).unwrap();
    fs::create_dir(&text).unwrap();
    let out = env.run(&["healthcheck"]);
    assert!(
        stdout(&out).contains("process_monitor_alert.txt")
            && stdout(&out).contains("PROCESS_GUARDIAN_ALERT_DIR"),
        "{}",
        stdout(&out)
    );
    let pid = env.launch("a2", "sleep 600", &["--restart-cooldown", "0"]);
    kill(pid, "KILL");
    assert!(wait_until(Duration::from_secs(3), || env
        .alerts()
        .iter()
        .any(|a| a["name"] == "a2")));
    let pid = env.pid_of("a2").unwrap();
    let c2 = env.cmd(&["--workspace", env.ws.to_str().unwrap(), "status"]);
    drop(c2);
    kill(pid, "KILL");
    assert!(wait_until(Duration::from_secs(3), || env
        .alerts()
        .iter()
        .filter(|a| a["name"] == "a2")
        .count()
        == 2));
    std::thread::sleep(Duration::from_millis(200));
    let log = read(&env.log_path("a2"));
    assert_eq!(
        log.matches("cannot write the alert files").count(),
        1,
        "the failure is logged once: {log}"
    );
    env.ok(&["stop", "a1"]);
    env.ok(&["stop", "a2"]);
}

#[test]
fn another_users_alert_text_is_named_by_healthcheck() {
    // The whole workspace belongs to nobody, who runs everything; root owns
    // the alert text in a shared sticky directory, as in /tmp.
    let env = Env::new();
    let top = env.ws.parent().unwrap();
    fs::set_permissions(top, fs::Permissions::from_mode(0o755)).unwrap();
    chown(&env.ws, NOBODY);
    fs::set_permissions(&env.alerts, fs::Permissions::from_mode(0o1777)).unwrap();
    let text = env.alerts.join("process_monitor_alert.txt");
    fs::write(&text, "root's\n").unwrap();
    let as_nobody = |args: &[&str]| {
        let mut c = env.cmd(args);
        c.uid(NOBODY).gid(NOBODY).env("HOME", "/nonexistent");
        run_with_deadline(c, Duration::from_secs(30))
    };
    let out = as_nobody(&["run", "n1", "--restart-cooldown", "0", "--", "sleep", "600"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let pid: i32 = {
        let out = as_nobody(&["status", "n1", "--json"]);
        let v: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
        v[0]["pid"].as_i64().unwrap() as i32
    };
    kill(pid, "KILL");
    assert!(wait_until(Duration::from_secs(3), || env
        .alerts_of_kind("died")
        .len()
        == 1));
    assert_eq!(read(&text), "root's\n", "another user's file was replaced");
    let out = as_nobody(&["healthcheck"]);
    let said = stdout(&out);
    assert!(
        said.contains(&text.display().to_string()) && said.contains("PROCESS_GUARDIAN_ALERT_DIR"),
        "{said}"
    );
    let out = as_nobody(&["stop", "n1"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[test]
fn a_symlinked_log_never_touches_its_target() {
    let env = Env::new();
    env.ok(&["register", "v", "echo hello; sleep 600"]);
    let victim = env.ws.join("victim");
    fs::write(&victim, "precious\n").unwrap();
    fs::create_dir_all(env.ws.join(".process-guardian/logs")).unwrap();
    std::os::unix::fs::symlink(&victim, env.log_path("v")).unwrap();
    let out = env.run(&["start", "v"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("symbolic link"), "{}", stderr(&out));
    assert_documented_code(&["logs", "v"], &env.run(&["logs", "v"]));
    assert_eq!(read(&victim), "precious\n");

    // A link planted at the rotated name while it runs: rotation replaces it.
    fs::remove_file(env.log_path("v")).unwrap();
    env.ok(&[
        "register",
        "v",
        "while true; do echo 0123456789012345678901234567890123456789; sleep 0.005; done",
        "--log-max-bytes",
        "4096",
        "--log-keep",
        "1",
    ]);
    let rotated = env.ws.join(".process-guardian/logs/v.log.1");
    std::os::unix::fs::symlink(&victim, &rotated).unwrap();
    env.ok(&["start", "v"]);
    assert!(wait_until(Duration::from_secs(10), || {
        fs::symlink_metadata(&rotated).is_ok_and(|m| m.file_type().is_file())
    }));
    env.ok(&["stop", "v"]);
    assert_eq!(read(&victim), "precious\n");
}

#[test]
fn a_revival_kills_what_is_left_of_the_old_group() {
    let env = Env::new();
    // sh is the leader; its child keeps the group alive after sh dies.
    let leader = env.launch("left", "sleep 1000 & echo $! > child; wait", &[]);
    let child_file = env.ws.join("child");
    assert!(wait_until(Duration::from_secs(5), || !read(&child_file).is_empty()));
    let child: i32 = read(&child_file).trim().parse().unwrap();
    let sup = env.supervisor_pid("left");
    kill(sup, "KILL");
    kill(leader, "KILL");
    assert!(wait_until(Duration::from_secs(3), || !alive(sup) && !alive(leader)));
    assert!(alive(child));
    let out = env.run(&["healthcheck"]);
    assert!(stdout(&out).contains("revived left"), "{}", stdout(&out));
    assert!(
        wait_until(Duration::from_secs(3), || !alive(child)),
        "the old group's child runs beside the new copy"
    );
    env.ok(&["stop", "left"]);
}

#[test]
fn a_revival_keeps_the_environment_of_the_last_start() {
    let env = Env::new();
    let mut c = env.cmd(&[
        "register",
        "envy",
        "sh -c 'echo key=$MY_API_KEY; exec sleep 600'",
    ]);
    c.env("MY_API_KEY", "s3cret");
    assert!(
        run_with_deadline(c, Duration::from_secs(30))
            .status
            .success()
    );
    let mut c = env.cmd(&["start", "envy"]);
    c.env("MY_API_KEY", "s3cret");
    assert!(
        run_with_deadline(c, Duration::from_secs(30))
            .status
            .success()
    );
    let saved = env.ws.join(".process-guardian/run/envy.env");
    // Written by the supervisor just after it answered `start`: awaited.
    assert!(wait_until(Duration::from_secs(5), || saved.exists()));
    assert_eq!(fs::metadata(&saved).unwrap().mode() & 0o777, 0o600);
    assert!(!read(&env.registry_path()).contains("s3cret"));
    let (sup, cmd) = (env.supervisor_pid("envy"), env.pid_of("envy").unwrap());
    kill(sup, "KILL");
    kill(cmd, "KILL");
    assert!(wait_until(Duration::from_secs(3), || !alive(sup) && !alive(cmd)));
    // A healthcheck from cron's bare environment.
    let mut c = env.cmd(&["healthcheck"]);
    c.env_clear()
        .env("PROCESS_GUARDIAN_WORKSPACE", &env.ws)
        .env("PROCESS_GUARDIAN_ALERT_DIR", &env.alerts);
    let out = run_with_deadline(c, Duration::from_secs(30));
    assert!(stdout(&out).contains("revived envy"), "{}", stdout(&out));
    assert!(wait_until(Duration::from_secs(3), || read(
        &env.log_path("envy")
    )
    .matches("key=s3cret")
    .count()
        == 2));
    env.ok(&["stop", "envy"]);
}

#[test]
fn a_self_daemonizing_command_is_told_to_stay_in_the_foreground() {
    let env = Env::new();
    env.ok(&[
        "register",
        "daemon",
        "sh -c '(setsid sleep 600 &) ; exit 0'",
        "--max-restarts",
        "1",
        "--restart-cooldown",
        "5",
    ]);
    let _ = env.run(&["start", "daemon"]);
    assert!(wait_until(Duration::from_secs(5), || read(
        &env.log_path("daemon")
    )
    .contains("forked into the background")));
    assert!(read(&env.log_path("daemon")).contains("run it in the foreground"));
    env.ok(&["stop", "daemon"]);
}

#[test]
fn a_frozen_supervisor_over_a_dead_command_is_not_shown_running() {
    let env = Env::new();
    let cmd = env.launch("frozen", "sleep 600", &[]);
    let sup = env.supervisor_pid("frozen");
    kill(sup, "STOP");
    kill(cmd, "KILL");
    std::thread::sleep(Duration::from_millis(200));
    let s = env.status_of("frozen");
    assert_eq!(s["state"], "dead", "{s}");
    assert!(s["message"].as_str().unwrap().contains("frozen"), "{s}");
    let out = env.run(&["healthcheck"]);
    assert_eq!(code(&out), 1);
    assert!(stdout(&out).contains("revived frozen"), "{}", stdout(&out));
    assert!(wait_until(Duration::from_secs(3), || !alive(sup)));
    assert_eq!(env.status_of("frozen")["state"], "running");
    env.ok(&["stop", "frozen"]);
}

#[test]
fn odd_registries_are_located_errors() {
    let env = Env::new();
    fs::write(env.registry_path(), b"{\"a\": {\"command\": \"\xff\"}}").unwrap();
    fs::set_permissions(env.registry_path(), fs::Permissions::from_mode(0o600)).unwrap();
    let out = env.run(&["status"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("line 1"), "{}", stderr(&out));
    fs::write(
        env.registry_path(),
        "{\"a\": {\"command\": \"x\"},\n \"a\": {\"command\": \"y\"}}",
    )
    .unwrap();
    let out = env.run(&["status"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("twice"), "{}", stderr(&out));
    let before = fs::read(env.registry_path()).unwrap();
    assert_eq!(code(&env.run(&["register", "b", "sleep 1"])), 2);
    assert_eq!(fs::read(env.registry_path()).unwrap(), before);
    let out = env.run(&["register", "healthcheck", "sleep 1"]);
    assert_eq!(code(&out), 2, "the healthcheck's log name is reserved");
}

#[test]
fn an_argument_that_is_not_utf8_is_a_usage_error() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let env = Env::new();
    let bad = OsStr::from_bytes(b"web\xff");
    let cases: [&[&OsStr]; 3] = [
        &[bad],
        &[OsStr::new("status"), bad],
        &[OsStr::new("--json"), OsStr::new("start"), bad],
    ];
    for args in cases {
        let mut c = env.cmd(&[]);
        c.args(args);
        let out = run_with_deadline(c, Duration::from_secs(30));
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        let said = format!("{}{}", stdout(&out), stderr(&out));
        assert!(!said.contains("panicked"), "{args:?}: {said}");
        // As a subcommand it is an unknown one; as an argument, not text.
        if args.len() > 1 {
            assert!(said.contains("UTF-8"), "{args:?}: {said}");
        }
    }
}

/// A workspace's path is passed to the supervisor byte for byte.
#[test]
fn a_workspace_whose_path_is_not_utf8_is_supervised() {
    use std::os::unix::ffi::OsStrExt;
    let env = Env::new();
    let ws = env.ws.join(std::ffi::OsStr::from_bytes(b"w\xff"));
    fs::create_dir(&ws).unwrap();
    fs::set_permissions(&ws, fs::Permissions::from_mode(0o700)).unwrap();
    let run = |args: &[&str]| {
        let mut c = env.cmd(args);
        c.env("PROCESS_GUARDIAN_WORKSPACE", &ws);
        run_with_deadline(c, Duration::from_secs(30))
    };
    let pid_of = || -> Option<i64> {
        let out = run(&["status", "u", "--json"]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let v: Vec<Value> = serde_json::from_slice(&out.stdout).expect("one JSON document");
        v[0]["pid"].as_i64()
    };
    assert_eq!(code(&run(&["register", "u", "sleep 600"])), 0);
    let out = run(&["start", "u"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let first = pid_of().expect("running");
    // Its supervisor is there to bring it back.
    kill(first as i32, "KILL");
    assert!(wait_until(Duration::from_secs(5), || pid_of()
        .is_some_and(|p| p != first)));
    // A readiness probe reads the log by its path, byte for byte.
    let out = run(&[
        "run",
        "w",
        "--ready-log",
        "^ready$",
        "--wait-ready",
        "20",
        "--",
        "sh",
        "-c",
        "echo ready; exec sleep 600",
    ]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    // The warden in w's supervisor repairs u's by the workspace's path.
    let sup_of = || -> Option<i64> {
        let out = run(&["status", "u", "--json"]);
        let v: Vec<Value> = serde_json::from_slice(&out.stdout).ok()?;
        v[0]["supervisor_pid"].as_i64()
    };
    let old_sup = sup_of().expect("supervised");
    let pid = pid_of().expect("running");
    kill(old_sup as i32, "KILL");
    assert!(
        wait_until(Duration::from_secs(20), || sup_of()
            .is_some_and(|s| s != old_sup && alive(s as i32))),
        "no new supervisor for u"
    );
    assert_eq!(
        pid_of(),
        Some(pid),
        "the command was adopted, not restarted"
    );
    for name in ["u", "w"] {
        let out = run(&["stop", name]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
    }
    assert!(fs::metadata(ws.join(".process-guardian/logs/u.log")).is_ok());
}

/// Started with descriptors 0, 1 and 2 closed (from some daemons, or
/// `>&-`), it opens /dev/null on them first, so that no file it opens later
/// becomes its stdout (a lock file, a temp registry) and takes its output.
#[test]
fn closed_stdio_is_opened_on_dev_null() {
    let env = Env::new();
    env.ok(&["register", "c", "sleep 600"]);
    let mut sh = std::process::Command::new("sh");
    sh.arg("-c")
        .arg(r#"exec "$0" wait c --for running --timeout 20 <&- >&- 2>&-"#)
        .arg(BIN)
        .env("PROCESS_GUARDIAN_WORKSPACE", &env.ws)
        .env("PROCESS_GUARDIAN_ALERT_DIR", &env.alerts);
    let mut waiter = sh.spawn().unwrap();
    let pid = waiter.id();
    let fd = |n: u32| fs::read_link(format!("/proc/{pid}/fd/{n}")).ok();
    let exe_is_ours = || {
        fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|p| p == fs::canonicalize(BIN).unwrap())
    };
    assert!(
        wait_until(Duration::from_secs(10), || exe_is_ours()
            && (0..3).all(|n| fd(n).is_some())),
        "descriptors 0 to 2 stayed closed: {:?}",
        (0..3).map(fd).collect::<Vec<_>>()
    );
    for n in 0..3 {
        assert_eq!(fd(n).unwrap(), Path::new("/dev/null"), "descriptor {n}");
    }
    env.ok(&["start", "c"]);
    assert!(wait_child(&mut waiter, Duration::from_secs(20)).success());
    env.ok(&["stop", "c"]);
}

/// Runs `cmd` with `pidfd_open` refused (ENOSYS), as on a kernel before 5.3
/// or under a seccomp profile that blocks it.
fn without_pidfds(cmd: &mut std::process::Command) {
    // SAFETY: between fork and exec the closure makes two prctl calls on
    // data it owns on its stack: async-signal-safe, no allocation.
    unsafe {
        cmd.pre_exec(|| {
            let mut filter = [
                libc::sock_filter {
                    code: (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16,
                    jt: 0,
                    jf: 0,
                    k: 0, // seccomp_data.nr
                },
                libc::sock_filter {
                    code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
                    jt: 0,
                    jf: 1,
                    k: libc::SYS_pidfd_open as u32,
                },
                libc::sock_filter {
                    code: (libc::BPF_RET | libc::BPF_K) as u16,
                    jt: 0,
                    jf: 0,
                    k: libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32,
                },
                libc::sock_filter {
                    code: (libc::BPF_RET | libc::BPF_K) as u16,
                    jt: 0,
                    jf: 0,
                    k: libc::SECCOMP_RET_ALLOW,
                },
            ];
            let prog = libc::sock_fprog {
                len: filter.len() as u16,
                filter: filter.as_mut_ptr(),
            };
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &prog) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[test]
fn without_pidfds_stop_refuses_and_the_process_runs_on() {
    let env = Env::new();
    let pid = env.launch("kept", "sleep 1000", &[]);
    // Every process would look gone: stop said "stopped", exit 0, and left
    // the supervisor and its command running.
    for args in [&["stop", "kept"][..], &["healthcheck"], &["start", "kept"]] {
        let mut cmd = env.cmd(args);
        without_pidfds(&mut cmd);
        let out = run_with_deadline(cmd, Duration::from_secs(60));
        assert_eq!(code(&out), 1, "{args:?}: {}", stdout(&out));
        assert!(stderr(&out).contains("pidfd"), "{}", stderr(&out));
    }
    // doctor says so, and what to do.
    let mut cmd = env.cmd(&["doctor", "--json"]);
    without_pidfds(&mut cmd);
    let out = run_with_deadline(cmd, Duration::from_secs(60));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let check = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "pidfds")
        .cloned()
        .unwrap();
    assert_eq!(check["ok"], false, "{check}");
    assert!(check["fix"].as_str().unwrap().contains("5.3"), "{check}");
    assert!(alive(pid));
    let st = env.status_of("kept");
    assert_eq!(st["state"], "running", "{st}");
    env.ok(&["stop", "kept"]);
    assert!(!alive(pid));
}
