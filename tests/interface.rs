//! The interface programs and agents use: `--json` errors, several names and
//! `--all` with the worst exit code, `signal`, `wait`, completions, the
//! manual page, and examples in every subcommand's help.

mod common;

use std::time::{Duration, Instant};

use serde_json::Value;

use common::*;

fn json_of(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}{}", stdout(out), stderr(out)))
}

#[test]
fn errors_are_json_with_the_same_exit_code() {
    let env = Env::new();
    for (args, code) in [
        (&["--json", "start", "ghost"][..], 3),
        (&["--json", "register", "../x", "sleep 1"][..], 2),
        (&["--json", "frobnicate"][..], 2),
        (&["start", "--json", "--wait", "-1", "ghost"][..], 2),
        (&["start", "no-such", "--json"][..], 3),
    ] {
        let out = env.run(args);
        assert_eq!(out.status.code(), Some(code), "{args:?}");
        let v = json_of(&out);
        assert_eq!(v["error"]["code"], code, "{args:?}: {v}");
        assert!(!v["error"]["message"].as_str().unwrap().is_empty());
        assert!(stderr(&out).is_empty(), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn several_names_and_all_report_each_with_the_worst_exit_code() {
    let env = Env::new();
    env.ok(&["register", "a", "sleep 600"]);
    env.ok(&["register", "b", "sleep 601"]);
    let out = env.run(&["--json", "start", "a", "b"]);
    assert_eq!(out.status.code(), Some(0));
    let v = json_of(&out);
    assert_eq!(v.as_array().unwrap().len(), 2);
    assert_eq!(v[0]["name"], "a");
    assert_eq!(v[1]["name"], "b");
    assert!(v[1]["pid"].as_i64().is_some());
    // One unknown name among them: the others still act; exit 3, the worst.
    let out = env.run(&["--json", "stop", "a", "ghost", "b"]);
    assert_eq!(out.status.code(), Some(3));
    let v = json_of(&out);
    assert_eq!(v[0]["stopped"], true);
    assert_eq!(v[1]["name"], "ghost");
    assert_eq!(v[1]["error"]["code"], 3);
    assert_eq!(v[2]["stopped"], true);
    // Without --json: a line each, the error on stderr.
    let out = env.run(&["start", "a", "ghost"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(stdout(&out).contains("started a"), "{}", stdout(&out));
    assert!(stderr(&out).contains("no process named \"ghost\""));
    let out = env.run(&["--json", "restart", "--all"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json_of(&out).as_array().unwrap().len(), 2);
    let out = env.run(&["--json", "status", "b", "a"]);
    let v = json_of(&out);
    assert_eq!(v[0]["name"], "b");
    assert_eq!(v[0]["state"], "running");
    env.ok(&["stop", "--all"]);
    for s in env.status() {
        assert_eq!(s["state"], "stopped", "{s}");
    }
    // A name and --all together is a usage error.
    assert_eq!(env.run(&["stop", "a", "--all"]).status.code(), Some(2));
}

#[test]
fn signal_reaches_the_group_and_a_fatal_one_is_an_ordinary_death() {
    let env = Env::new();
    let pid = env.launch(
        "hup",
        "sh -c 'trap \"echo reloaded-$((6*7))\" HUP; while true; do sleep 0.05; done'",
        &["--restart-cooldown", "0"],
    );
    let out = env.run(&["--json", "signal", "hup", "HUP"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json_of(&out)["signal"], "HUP");
    assert!(wait_until(Duration::from_secs(5), || read(
        &env.log_path("hup")
    )
    .contains("reloaded-42")));
    assert!(alive(pid), "HUP with a handler leaves it running");
    assert_eq!(env.pid_of("hup"), Some(pid));
    // KILL ends it; its supervisor restarts it as after any death.
    env.ok(&["signal", "hup", "KILL"]);
    assert!(wait_until(Duration::from_secs(5), || env
        .pid_of("hup")
        .is_some_and(|p| p != pid)));
    assert!(wait_until(Duration::from_secs(5), || !env
        .alerts_of_kind("died")
        .is_empty()));
    env.ok(&["stop", "hup"]);
    // Nothing to signal: exit 1, said plainly; a bad signal: exit 2.
    let out = env.run(&["signal", "hup", "HUP"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not running"), "{}", stderr(&out));
    assert_eq!(env.run(&["signal", "hup", "NOPE"]).status.code(), Some(2));
}

#[test]
fn wait_returns_when_the_state_is_reached_or_fails_after_the_timeout() {
    let env = Env::new();
    env.ok(&["register", "job", "sleep 1", "--no-auto-restart"]);
    env.ok(&["start", "job"]);
    let out = env.run(&[
        "--json",
        "wait",
        "job",
        "--for",
        "running",
        "--timeout",
        "5",
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json_of(&out)["reached"], true);
    // It exits after about a second: wait sees it then, not at its timeout.
    let t = Instant::now();
    let out = env.run(&[
        "--json",
        "wait",
        "job",
        "--for",
        "exited",
        "--timeout",
        "20",
    ]);
    let took = t.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert_eq!(json_of(&out)["state"], "exited");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    // Never reached: exit 1 after the timeout.
    let t = Instant::now();
    let out = env.run(&[
        "--json",
        "wait",
        "job",
        "--for",
        "running",
        "--timeout",
        "0.5",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json_of(&out)["reached"], false);
    assert!(t.elapsed() >= Duration::from_millis(500));
    // Stopped.
    env.ok(&["register", "svc", "sleep 600"]);
    env.ok(&["start", "svc"]);
    let stopper = std::thread::spawn({
        let cmd = env.cmd(&["stop", "svc"]);
        move || {
            std::thread::sleep(Duration::from_millis(300));
            run_with_deadline(cmd, Duration::from_secs(30))
        }
    });
    let out = env.run(&["wait", "svc", "--for", "stopped", "--timeout", "20"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stopper.join().unwrap().status.success());
}

#[test]
fn completions_and_the_manual_page_are_printed() {
    let env = Env::new();
    let bash = env.ok(&["completions", "bash"]);
    assert!(bash.contains("complete -F") && bash.contains("healthcheck"));
    let script = env.ws.join("completion.bash");
    std::fs::write(&script, &bash).unwrap();
    let syntax = std::process::Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(syntax.status.success(), "bash -n: {}", stderr(&syntax));
    let zsh = env.ok(&["completions", "zsh"]);
    assert!(zsh.starts_with("#compdef process-guardian"), "{zsh}");
    let fish = env.ok(&["completions", "fish"]);
    assert!(fish.contains("complete -c process-guardian"));
    let man = env.ok(&["man"]);
    assert!(man.contains(".TH process-guardian"), "{man}");
    assert!(man.contains("healthcheck"));
}

#[test]
fn every_subcommand_explains_name_and_shows_examples() {
    let env = Env::new();
    let top = env.ok(&["--help"]);
    let subcommands: Vec<String> = top
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|c| c != "help")
        .collect();
    assert!(subcommands.len() >= 15, "{subcommands:?}");
    for sub in &subcommands {
        let help = env.ok(&[sub, "--help"]);
        assert!(
            help.contains("Example"),
            "{sub} --help has no example:\n{help}"
        );
        if help.contains("<NAME") {
            assert!(
                help.contains("letters, digits"),
                "{sub} --help does not explain NAME:\n{help}"
            );
        }
    }
}
