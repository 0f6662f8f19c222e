//! The registry and the command line: concurrency, the seed's format,
//! corruption, bad names and exit codes.

mod common;

use std::fs;
use std::time::Duration;

use common::*;

#[test]
fn sixty_four_concurrent_registers_lose_nothing() {
    let env = Env::new();
    let children: Vec<_> = (0..64)
        .map(|i| {
            let mut c = env.cmd(&["register", &format!("p{i}"), &format!("sleep {i}")]);
            c.stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped());
            c.spawn().unwrap()
        })
        .collect();
    for mut c in children {
        let st = wait_child(&mut c, Duration::from_secs(60));
        assert!(st.success(), "a register failed");
    }
    let reg: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(env.registry_path()).unwrap()).unwrap();
    let map = reg.as_object().unwrap();
    assert_eq!(map.len(), 64);
    for i in 0..64 {
        assert_eq!(map[&format!("p{i}")]["command"], format!("sleep {i}"));
    }
}

#[test]
fn seed_registry_loads_and_shows_every_field() {
    let env = Env::new();
    let seed = r#"{
  "my-bot": {
    "command": "python3 bot.py",
    "duration_min": 480,
    "auto_restart": true,
    "max_restarts": 5,
    "restart_cooldown": 30,
    "owner": "ops-team"
  }
}
"#;
    fs::write(env.registry_path(), seed).unwrap();
    let all = env.status();
    assert_eq!(all.len(), 1);
    let p = &all[0];
    assert_eq!(p["name"], "my-bot");
    assert_eq!(p["state"], "never-started");
    for field in [
        "name",
        "state",
        "pid",
        "uptime_s",
        "restarts",
        "desired",
        "last_exit",
        "auto_restart",
        "duration_min",
        "command",
        "log",
    ] {
        assert!(p.get(field).is_some(), "missing {field}: {p}");
    }
    assert!(p["pid"].is_null());
    assert!(p["last_exit"].is_null());
    assert_eq!(p["restarts"], 0);
    assert_eq!(p["duration_min"], 480.0);
    assert_eq!(p["command"], "python3 bot.py");

    // The unknown field survives a register of another name.
    env.ok(&["register", "other", "sleep 5"]);
    let reg: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(env.registry_path()).unwrap()).unwrap();
    assert_eq!(reg["my-bot"]["owner"], "ops-team");
    assert_eq!(reg["my-bot"]["duration_min"], 480);
    assert_eq!(reg["other"]["command"], "sleep 5");
}

#[test]
fn truncated_registry_is_refused_and_left_byte_identical() {
    let env = Env::new();
    env.ok(&["register", "a", "sleep 100", "5"]);
    let full = fs::read(env.registry_path()).unwrap();
    let truncated = &full[..full.len() / 2];
    fs::write(env.registry_path(), truncated).unwrap();
    for args in [
        &["register", "b", "sleep 1"][..],
        &["status"][..],
        &["status", "--json"][..],
        &["start", "a"][..],
        &["healthcheck"][..],
    ] {
        let out = env.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        // With --json the error is a JSON document on stdout.
        let err = if args.contains(&"--json") {
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(v["error"]["code"], 2);
            v["error"]["message"].as_str().unwrap().to_string()
        } else {
            stderr(&out)
        };
        assert!(
            err.contains(&env.registry_path().display().to_string()),
            "{err}"
        );
        assert!(err.contains("line "), "{err}");
        assert_eq!(
            fs::read(env.registry_path()).unwrap(),
            truncated,
            "{args:?} changed the file"
        );
    }
}

#[test]
fn bad_names_are_refused_before_anything_is_written() {
    let env = Env::new();
    let long = "x".repeat(65);
    for name in ["../evil", "", "a b", "a/b", long.as_str(), "-flag-like"] {
        let out = env.run(&["register", "--", name, "sleep 1"]);
        assert_eq!(out.status.code(), Some(2), "{name:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("invalid name"), "{}", stderr(&out));
        for cmd in ["start", "stop", "logs", "deregister"] {
            let out = env.run(&[cmd, "--", name]);
            assert_eq!(out.status.code(), Some(2), "{cmd} {name:?}");
        }
    }
    // Nothing was created: no registry, no state dir, nothing beside the workspace.
    assert!(!env.registry_path().exists());
    assert!(!env.ws.join(".process-guardian").exists());
    let parent = env.ws.parent().unwrap();
    let mut names: Vec<_> = fs::read_dir(parent)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names, vec!["alerts", "ws"]);
}

#[test]
fn exit_codes_mean_what_the_help_says() {
    let env = Env::new();
    assert_eq!(env.run(&["start", "ghost"]).status.code(), Some(3));
    assert_eq!(env.run(&["stop", "ghost"]).status.code(), Some(3));
    assert_eq!(env.run(&["status", "ghost"]).status.code(), Some(3));
    assert_eq!(env.run(&["deregister", "ghost"]).status.code(), Some(3));
    assert_eq!(env.run(&["no-such-command"]).status.code(), Some(2));
    assert_eq!(
        env.run(&["register", "x", "sleep 1", "-5"]).status.code(),
        Some(2)
    );
    assert_eq!(env.run(&["register", "x", "  "]).status.code(), Some(2));
    assert_eq!(
        env.run(&["register", "x", "sleep 1", "--stop-signal", "NOPE"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        env.run(&["register", "x", "sleep 1", "--cwd", "/no/such/dir"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        env.run(&["register", "x", "sleep 1", "--env", "NOEQUALS"])
            .status
            .code(),
        Some(2)
    );
    let help = stdout(&env.run(&["--help"]));
    assert!(
        help.contains("Exit codes:") && help.contains("3  no process"),
        "{help}"
    );
}

#[test]
fn register_again_updates_and_says_so() {
    let env = Env::new();
    let first = env.ok(&["register", "a", "sleep 100"]);
    assert!(first.contains("registered a"), "{first}");
    let second = env.ok(&[
        "register",
        "a",
        "sleep 200",
        "--env",
        "K=v",
        "--max-restarts",
        "0",
    ]);
    assert!(second.contains("updated a"), "{second}");
    let reg: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(env.registry_path()).unwrap()).unwrap();
    assert_eq!(reg["a"]["command"], "sleep 200");
    assert_eq!(reg["a"]["env"]["K"], "v");
    assert_eq!(reg["a"]["max_restarts"], 0);
    assert_eq!(reg["a"]["cwd"], env.ws.display().to_string());
}

#[test]
fn state_dir_and_registry_have_private_modes() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    env.ok(&["register", "a", "sleep 1"]);
    let mode = |p: &std::path::Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&env.ws.join(".process-guardian")), 0o700);
    assert_eq!(mode(&env.registry_path()), 0o600);
}

#[test]
fn status_table_reads_at_a_glance() {
    let env = Env::new();
    let empty = env.ok(&["status"]);
    assert!(empty.contains("no processes registered"), "{empty}");
    env.ok(&["register", "web", "sleep 100", "480"]);
    env.ok(&["register", "job", "sleep 100", "--no-auto-restart"]);
    let table = env.ok(&["status"]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("NAME")
            && lines[0].contains("STATE")
            && lines[0].contains("AUTO-RESTART"),
        "{table}"
    );
    assert!(
        lines[1].starts_with("web")
            && lines[1].contains("never-started")
            && lines[1].contains("480 min"),
        "{table}"
    );
    assert!(
        lines[2].starts_with("job") && lines[2].ends_with("no"),
        "{table}"
    );
    assert!(!table.contains('\x1b'), "no colour off a terminal");
}

#[test]
fn workspace_is_found_from_a_subdirectory() {
    let env = Env::new();
    env.ok(&["register", "a", "sleep 1"]);
    let sub = env.ws.join("deep/er");
    fs::create_dir_all(&sub).unwrap();
    let out = common::run_with_deadline(
        {
            let mut c = std::process::Command::new(BIN);
            c.args(["status", "--json"])
                .current_dir(&sub)
                .env_remove("PROCESS_GUARDIAN_WORKSPACE")
                .env("HOME", "/nonexistent");
            c
        },
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("\"a\""));
}
