//! `env_file` and `after`: a `.env` file read at each start, overridden by
//! `--env`; processes started and revived after what they come after, and
//! an unknown name or a cycle refused at register.

mod common;

use std::fs;
use std::time::Duration;

use common::*;

#[test]
fn an_env_file_is_read_at_start_and_env_overrides_it() {
    let env = Env::new();
    fs::write(
        env.ws.join(".env"),
        "# settings\nexport TOKEN='s3cr3t value'\nMODE=from-file\nQUOTED=\"a\\tb\"\n",
    )
    .unwrap();
    env.launch(
        "bot",
        "sh -c 'echo \"T=[$TOKEN] M=[$MODE] Q=[$QUOTED]\"; exec sleep 600'",
        &["--env-file", ".env", "--env", "MODE=from-flag"],
    );
    assert!(
        wait_until(Duration::from_secs(5), || read(&env.log_path("bot"))
            .contains("T=[s3cr3t value] M=[from-flag] Q=[a\tb]")),
        "{}",
        read(&env.log_path("bot"))
    );
    env.ok(&["stop", "bot"]);
    // Stored as an absolute path: it means the same from anywhere.
    let reg = read(&env.registry_path());
    assert!(
        reg.contains(&format!(
            "\"env_file\": \"{}\"",
            env.ws.join(".env").display()
        )),
        "{reg}"
    );
    // Missing at start: a start-failed naming the path.
    fs::remove_file(env.ws.join(".env")).unwrap();
    let out = env.run(&["start", "bot"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains(".env"), "{}", stderr(&out));
    // The alert follows the report to `start`: awaited, not assumed.
    assert!(wait_until(Duration::from_secs(5), || env
        .alerts_of_kind("start-failed")
        .len()
        == 1));
    // A line that is not KEY=VALUE: the line is named.
    fs::write(env.ws.join(".env"), "A=1\nnot a pair\n").unwrap();
    let out = env.run(&["start", "bot"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("line 2"), "{}", stderr(&out));
    // Writable by others: refused (its variables would run code as us).
    fs::write(env.ws.join(".env"), "A=1\n").unwrap();
    fs::set_permissions(
        env.ws.join(".env"),
        std::os::unix::fs::PermissionsExt::from_mode(0o666),
    )
    .unwrap();
    let out = env.run(&["start", "bot"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("writable"), "{}", stderr(&out));
}

/// The start time of a running process, from /proc (clock ticks since boot).
fn started_at(pid: i32) -> u64 {
    stat(pid).unwrap().start_time
}

#[test]
fn start_starts_what_it_comes_after_first_and_register_refuses_cycles() {
    let env = Env::new();
    env.ok(&["register", "db", "sleep 600"]);
    env.ok(&["register", "cache", "sleep 601", "--after", "db"]);
    env.ok(&[
        "register",
        "app",
        "sleep 602",
        "--after",
        "cache",
        "--after",
        "db",
    ]);
    let out = env.run(&["--json", "start", "app"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let after: Vec<&str> = v["after"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(after, ["db", "cache"]);
    let (db, cache, app) = (
        env.pid_of("db").unwrap(),
        env.pid_of("cache").unwrap(),
        env.pid_of("app").unwrap(),
    );
    assert!(started_at(db) <= started_at(cache) && started_at(cache) <= started_at(app));
    // Unknown names and cycles are refused at register, the registry untouched.
    let before = read(&env.registry_path());
    let out = env.run(&["register", "x", "sleep 1", "--after", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("\"nope\", which is not registered"),
        "{}",
        stderr(&out)
    );
    let out = env.run(&["register", "db", "sleep 600", "--after", "app"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("db → app → cache → db") || stderr(&out).contains("db → app → db"),
        "{}",
        stderr(&out)
    );
    assert_eq!(read(&env.registry_path()), before);
    env.ok(&["stop", "--all"]);
}

#[test]
fn healthcheck_revives_in_after_order() {
    let env = Env::new();
    // Registered in the reverse of their order.
    env.ok(&["register", "web", "sleep 700", "--restart-cooldown", "0"]);
    env.ok(&["register", "db", "sleep 600", "--restart-cooldown", "0"]);
    env.ok(&[
        "register",
        "web",
        "sleep 700",
        "--restart-cooldown",
        "0",
        "--after",
        "db",
    ]);
    env.ok(&["start", "web"]);
    for name in ["web", "db"] {
        let sup = env.supervisor_pid(name);
        let cmd = env.pid_of(name).unwrap();
        kill(sup, "KILL");
        kill(cmd, "KILL");
        assert!(wait_until(Duration::from_secs(3), || !alive(sup) && !alive(cmd)));
    }
    let out = env.run(&["--json", "healthcheck"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let acted: Vec<&str> = v["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(acted, ["db", "web"], "{v}");
    let (db, web) = (env.pid_of("db").unwrap(), env.pid_of("web").unwrap());
    assert!(started_at(db) <= started_at(web));
    env.ok(&["stop", "--all"]);
}

/// The supervisor runs with a glibc setting of its own (no per-thread cache
/// of freed blocks, which kept most of its heap): set by whoever starts it,
/// removed before it starts anything. The command sees the caller's
/// environment as it was, with or without a GLIBC_TUNABLES of the caller's.
#[test]
fn the_supervisors_glibc_setting_never_reaches_the_command() {
    let env = Env::new();
    let show = "sh -c 'echo \"GT=[${GLIBC_TUNABLES-unset}]\"; exec sleep 600'";
    for (name, theirs) in [("plain", None), ("tuned", Some("glibc.malloc.check=0"))] {
        env.ok(&["register", name, show]);
        let mut start = env.cmd(&["start", name]);
        match theirs {
            Some(v) => start.env("GLIBC_TUNABLES", v),
            None => start.env_remove("GLIBC_TUNABLES"),
        };
        let out = run_with_deadline(start, Duration::from_secs(30));
        assert!(out.status.success(), "{}", stderr(&out));
        let expected = format!("GT=[{}]", theirs.unwrap_or("unset"));
        let first = env.pid_of(name).expect("running");
        assert!(
            wait_until(Duration::from_secs(5), || read(&env.log_path(name))
                .contains(&expected)),
            "{name}: {}",
            read(&env.log_path(name))
        );
        // What the supervisor was started with: ours only where the caller had none.
        let sup = env.supervisor_pid(name);
        let sup_env = fs::read(format!("/proc/{sup}/environ")).unwrap();
        let sup_env = String::from_utf8_lossy(&sup_env);
        let ours = "GLIBC_TUNABLES=glibc.malloc.tcache_count=0";
        assert_eq!(
            sup_env.contains(ours),
            theirs.is_none(),
            "{name}: {sup_env}"
        );
        // A restart spawns it again from what the supervisor kept.
        kill(first, "KILL");
        assert!(wait_until(Duration::from_secs(10), || env
            .pid_of(name)
            .is_some_and(|p| p != first)));
        assert!(
            wait_until(Duration::from_secs(5), || read(&env.log_path(name))
                .matches(&expected)
                .count()
                == 2),
            "{name}: {}",
            read(&env.log_path(name))
        );
        assert!(
            !read(&env.log_path(name)).contains("tcache"),
            "{}",
            read(&env.log_path(name))
        );
        env.ok(&["stop", name]);
    }
}

/// A start that failed lets go of the name before it answers: a start right
/// after it, the cause fixed, starts the command. It used to find the
/// failing supervisor still holding the name while it raised its alert, and
/// say "already running" with nothing running (seen under load). Where that
/// supervisor is still there when `start` returns, it is frozen (SIGSTOP),
/// which holds that moment open; where it has already gone, the start right
/// after is all there is to check.
#[test]
fn a_start_right_after_a_failed_one_starts() {
    fn signal(pid: i32, sig: &str) {
        // It may have ended already: no error then.
        let _ = std::process::Command::new("kill")
            .args([&format!("-{sig}"), &pid.to_string()])
            .stderr(std::process::Stdio::null())
            .status();
    }
    struct Thaw(i32);
    impl Drop for Thaw {
        fn drop(&mut self) {
            signal(self.0, "CONT");
        }
    }
    let env = Env::new();
    env.ok(&["register", "bot", "sleep 600", "--env-file", ".env"]);
    for round in 0..10 {
        let out = env.run(&["start", "bot"]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "round {round}: {}",
            stderr(&out)
        );
        let failed = env.supervisor_pid("bot");
        let _thaw = Thaw(failed);
        signal(failed, "STOP");
        fs::write(env.ws.join(".env"), "A=1\n").unwrap();
        let out = env.run(&["start", "bot", "--json"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "round {round}: {}",
            stderr(&out)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["result"], "started", "round {round}: {v}");
        assert!(env.pid_of("bot").is_some(), "round {round}: {v}");
        env.ok(&["stop", "bot"]);
        fs::remove_file(env.ws.join(".env")).unwrap();
    }
}
