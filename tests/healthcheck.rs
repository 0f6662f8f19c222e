//! The second line of defence: healthcheck revival and adoption, alerts,
//! concurrency, a new boot, and the crontab.

mod common;

use std::fs;
use std::time::Duration;

use common::*;
use serde_json::Value;

fn kill_all_of(env: &Env, name: &str) -> (i32, i32) {
    let sup = env.supervisor_pid(name);
    let cmd = env.pid_of(name).expect("running");
    kill(sup, "KILL");
    kill(cmd, "KILL");
    assert!(wait_until(Duration::from_secs(3), || !alive(sup) && !alive(cmd)));
    (sup, cmd)
}

fn healthcheck_json(env: &Env, extra_env: &[(&str, &str)]) -> (i32, Value) {
    let mut c = env.cmd(&["healthcheck", "--json"]);
    for (k, v) in extra_env {
        c.env(k, v);
    }
    let out = run_with_deadline(c, Duration::from_secs(60));
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("healthcheck --json: {e}: {}", stdout(&out)));
    (out.status.code().unwrap(), v)
}

#[test]
fn a_lost_supervisor_is_replaced_and_the_command_adopted() {
    let env = Env::new();
    let cmd = env.launch("bot", "sleep 1000", &["--restart-cooldown", "0.2"]);
    let sup = env.supervisor_pid("bot");
    kill(sup, "KILL");
    assert!(wait_until(Duration::from_secs(2), || !alive(sup)));
    assert_eq!(env.status_of("bot")["state"], "dead");
    let out = env.run(&["healthcheck"]);
    assert_eq!(out.status.code(), Some(1), "it had to act");
    assert!(stdout(&out).contains("adopted bot"), "{}", stdout(&out));
    let new_sup = env.supervisor_pid("bot");
    assert_ne!(new_sup, sup);
    assert!(alive(new_sup));
    assert_eq!(
        env.pid_of("bot"),
        Some(cmd),
        "the same command keeps running"
    );
    assert_eq!(env.alerts_of_kind("supervisor-lost").len(), 1);
    // The new supervisor watches it: a kill -9 is restarted without another healthcheck.
    std::thread::sleep(Duration::from_millis(300));
    kill(cmd, "KILL");
    assert!(
        wait_until(Duration::from_secs(1), || env
            .pid_of("bot")
            .is_some_and(|p| p != cmd)),
        "not restarted within 1 s"
    );
    // And it stops it.
    env.ok(&["stop", "bot"]);
    assert!(env.our_processes().is_empty());
}

#[test]
fn a_dead_process_is_revived_and_flagged() {
    let env = Env::new();
    env.ok(&["register", "scraper", "sleep 1000"]);
    env.ok(&["start", "scraper"]);
    let (_, old_cmd) = kill_all_of(&env, "scraper");
    assert_eq!(env.status_of("scraper")["state"], "dead");
    let (code, report) = healthcheck_json(&env, &[]);
    assert_eq!(code, 1);
    assert_eq!(report["actions"][0]["name"], "scraper");
    assert_eq!(report["actions"][0]["action"], "revived");
    let s = env.status_of("scraper");
    assert_eq!(s["state"], "running");
    let pid = s["pid"].as_i64().unwrap() as i32;
    assert_ne!(pid, old_cmd);
    assert!(alive(pid));
    assert_eq!(s["restarts"], 1, "a revival counts as a restart");
    let flag = env.alerts.join("process_monitor_alert.flag");
    let text = env.alerts.join("process_monitor_alert.txt");
    assert!(flag.exists());
    assert!(read(&text).contains("scraper"), "{}", read(&text));
    assert_eq!(env.alerts_of_kind("died").len(), 1);
    let (code, report) = healthcheck_json(&env, &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["healthy"], true);
}

#[test]
fn a_second_death_within_the_cooldown_is_recorded_but_not_flagged_again() {
    let env = Env::new();
    env.ok(&[
        "register",
        "flappy",
        "sleep 1000",
        "--restart-cooldown",
        "0.2",
    ]);
    env.ok(&["start", "flappy"]);
    std::thread::sleep(Duration::from_millis(300));
    let first = env.pid_of("flappy").unwrap();
    kill(first, "KILL");
    let flag = env.alerts.join("process_monitor_alert.flag");
    assert!(wait_until(Duration::from_secs(2), || flag.exists()));
    // The agent reads and clears the flag.
    fs::remove_file(&flag).unwrap();
    assert!(wait_until(Duration::from_secs(2), || env
        .pid_of("flappy")
        .is_some_and(|p| p != first)));
    std::thread::sleep(Duration::from_millis(300));
    let second = env.pid_of("flappy").unwrap();
    kill(second, "KILL");
    assert!(wait_until(Duration::from_secs(2), || env
        .alerts_of_kind("died")
        .len()
        == 2));
    std::thread::sleep(Duration::from_millis(200));
    assert!(!flag.exists(), "flag raised again within the cooldown");

    // With the cooldown at zero, every death raises it.
    let env2 = Env::new();
    let mut c = env2.cmd(&[
        "register",
        "flappy",
        "sleep 1000",
        "--restart-cooldown",
        "0.2",
    ]);
    c.env("PROCESS_GUARDIAN_ALERT_COOLDOWN", "0");
    assert!(c.status().unwrap().success());
    let mut c = env2.cmd(&["start", "flappy"]);
    c.env("PROCESS_GUARDIAN_ALERT_COOLDOWN", "0");
    assert!(c.status().unwrap().success());
    let flag2 = env2.alerts.join("process_monitor_alert.flag");
    for _ in 0..2 {
        std::thread::sleep(Duration::from_millis(300));
        let _ = fs::remove_file(&flag2);
        kill(env2.pid_of("flappy").unwrap(), "KILL");
        assert!(
            wait_until(Duration::from_secs(2), || flag2.exists()),
            "cooldown 0 must flag every death"
        );
    }
}

#[test]
fn a_planted_symlink_is_replaced_not_followed() {
    let env = Env::new();
    let victim = env.ws.join("precious.txt");
    fs::write(&victim, "do not touch").unwrap();
    std::os::unix::fs::symlink(&victim, env.alerts.join("process_monitor_alert.txt")).unwrap();
    std::os::unix::fs::symlink(&victim, env.alerts.join("process_monitor_alert.flag")).unwrap();
    env.ok(&["register", "x", "sleep 1000", "--restart-cooldown", "0"]);
    env.ok(&["start", "x"]);
    kill(env.pid_of("x").unwrap(), "KILL");
    assert!(wait_until(Duration::from_secs(2), || !env
        .alerts_of_kind("died")
        .is_empty()));
    let text = env.alerts.join("process_monitor_alert.txt");
    // The flag and text follow the history line: wait for them, by content.
    assert!(
        wait_until(Duration::from_secs(5), || read(&text).contains("[died] x")),
        "the alert text was not written"
    );
    assert!(
        fs::symlink_metadata(&text).unwrap().file_type().is_file(),
        "the link was replaced by a file of ours"
    );
    assert_eq!(fs::read_to_string(&victim).unwrap(), "do not touch");
}

#[test]
fn concurrent_healthchecks_start_exactly_one_copy() {
    let env = Env::new();
    for i in 0..10 {
        env.ok(&["register", &format!("p{i}"), &format!("sleep {}", 2000 + i)]);
        env.ok(&["start", &format!("p{i}")]);
    }
    for i in 0..10 {
        kill_all_of(&env, &format!("p{i}"));
    }
    let children: Vec<_> = (0..20)
        .map(|_| {
            let mut c = env.cmd(&["healthcheck"]);
            c.stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
            c.spawn().unwrap()
        })
        .collect();
    for mut c in children {
        let st = wait_child(&mut c, Duration::from_secs(60));
        assert!(matches!(st.code(), Some(0) | Some(1)), "{st:?}");
    }
    std::thread::sleep(Duration::from_millis(200));
    for i in 0..10 {
        let copies = count_commands(&env, &format!("sleep {}", 2000 + i));
        assert_eq!(copies, 1, "p{i} runs {copies} times");
        assert_eq!(env.status_of(&format!("p{i}"))["state"], "running");
    }
    assert_eq!(
        env.alerts_of_kind("died").len(),
        10,
        "one revival alert each"
    );
}

fn count_commands(env: &Env, cmdline: &str) -> usize {
    env.our_processes()
        .into_iter()
        .filter(|p| {
            let c = fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
            String::from_utf8_lossy(&c).replace('\0', " ").trim() == cmdline
        })
        .count()
}

#[test]
fn a_new_boot_restarts_what_should_run() {
    let env = Env::new();
    env.ok(&["register", "web", "sleep 1000"]);
    env.ok(&["register", "batch", "sleep 0.2", "0.003"]);
    env.ok(&["register", "off", "sleep 1000"]);
    env.ok(&["start", "web"]);
    env.ok(&["start", "batch"]);
    env.ok(&["start", "off"]);
    env.ok(&["stop", "off"]);
    assert!(wait_until(Duration::from_secs(3), || env
        .status_of("batch")["state"]
        == "completed"));
    kill_all_of(&env, "web");
    // After a reboot, the recorded pids can belong to unrelated processes
    // that happen to run with the same start times: only the boot id tells
    // them apart. Two decoys take web's recorded pids, start times included.
    let spawn_decoy = || {
        std::process::Command::new("sleep")
            .arg("1000")
            .current_dir(&env.ws)
            .spawn()
            .unwrap()
    };
    let (mut decoy_cmd, mut decoy_sup) = (spawn_decoy(), spawn_decoy());
    let state_path = env.ws.join(".process-guardian/run/web.json");
    let mut st: Value = serde_json::from_slice(&fs::read(&state_path).unwrap()).unwrap();
    for (key, start, child) in [
        ("pid", "pid_start", &decoy_cmd),
        ("supervisor_pid", "supervisor_start", &decoy_sup),
    ] {
        let pid = child.id() as i32;
        st[key] = pid.into();
        st[start] = stat(pid).unwrap().start_time.into();
    }
    fs::write(&state_path, serde_json::to_vec(&st).unwrap()).unwrap();
    // In the same boot, web's recorded command would be taken for alive
    // (pid and start time match) and adopted, not started.
    let recorded_boot = st["boot_id"].as_str().unwrap().to_string();
    assert!(process_guardian::proc::is_ours_alive(
        decoy_cmd.id() as i32,
        stat(decoy_cmd.id() as i32).unwrap().start_time,
        &recorded_boot
    ));
    // The machine "rebooted": the boot id changed (test-only override).
    let boot = [("PROCESS_GUARDIAN_BOOT_ID", "simulated-next-boot")];
    let (code, report) = healthcheck_json(&env, &boot);
    let web = report["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "web")
        .cloned()
        .unwrap_or_default();
    assert_eq!(web["action"], "revived", "{report}");
    assert_ne!(web["pid"], decoy_cmd.id(), "{report}");
    for decoy in [&mut decoy_cmd, &mut decoy_sup] {
        assert!(
            decoy.try_wait().unwrap().is_none(),
            "a process of the previous boot's pids was signalled"
        );
    }
    decoy_cmd.kill().unwrap();
    decoy_sup.kill().unwrap();
    wait_child(&mut decoy_cmd, Duration::from_secs(5));
    wait_child(&mut decoy_sup, Duration::from_secs(5));
    assert_eq!(code, 1);
    let acted: Vec<&str> = report["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert!(
        acted.contains(&"web") && acted.contains(&"batch"),
        "{report}"
    );
    assert!(!acted.contains(&"off"), "a stopped process stays stopped");
    let procs = report["processes"].as_array().unwrap();
    let state = |n: &str| procs.iter().find(|p| p["name"] == n).unwrap()["state"].clone();
    assert_eq!(state("web"), "running");
    assert_eq!(state("off"), "stopped");
}

#[test]
fn alert_hook_gets_the_json_and_a_failing_hook_is_logged() {
    let env = Env::new();
    let got = env.ws.join("hook-got.json");
    let hook = format!(
        "cat > '{}'; echo \"$PG_ALERT_NAME/$PG_ALERT_KIND\" >> '{}'",
        got.display(),
        got.display()
    );
    env.ok(&[
        "register",
        "hooked",
        "sleep 1000",
        "--restart-cooldown",
        "0",
        "--alert-command",
        &hook,
    ]);
    env.ok(&["start", "hooked"]);
    kill(env.pid_of("hooked").unwrap(), "KILL");
    assert!(wait_until(Duration::from_secs(3), || read(&got)
        .contains("hooked/died")));
    let text = read(&got);
    let alert: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(alert["kind"], "died");
    assert_eq!(alert["name"], "hooked");

    let first = env.launch(
        "badhook",
        "sleep 1000",
        &["--restart-cooldown", "0", "--alert-command", "exit 7"],
    );
    kill(first, "KILL");
    assert!(wait_until(Duration::from_secs(3), || read(
        &env.log_path("badhook")
    )
    .contains("alert hook")));
    assert!(
        env.pid_of("badhook").is_some_and(|p| p != first),
        "a failing hook is not fatal"
    );
}

#[test]
fn a_process_failed_for_an_hour_gets_one_fresh_try() {
    let env = Env::new();
    env.ok(&[
        "register",
        "flaky",
        "false",
        "--max-restarts",
        "1",
        "--restart-cooldown",
        "5",
    ]);
    env.ok(&["start", "flaky"]);
    assert!(wait_until(Duration::from_secs(5), || env
        .status_of("flaky")["state"]
        == "failed"));
    assert!(wait_until(Duration::from_secs(3), || env
        .our_processes()
        .is_empty()));
    let (code, report) = healthcheck_json(&env, &[]);
    assert_eq!(code, 1, "failed is unhealthy");
    assert_eq!(report["actions"][0]["action"], "failed");
    // An hour later…
    let path = env.ws.join(".process-guardian/run/flaky.json");
    let mut st: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    st["failed_at"] = "2000-01-01T00:00:00.000Z".into();
    fs::write(&path, serde_json::to_vec(&st).unwrap()).unwrap();
    env.ok(&["register", "flaky", "sleep 1000"]); // the network came back
    let (code, report) = healthcheck_json(&env, &[]);
    assert_eq!(code, 1);
    assert_eq!(report["actions"][0]["action"], "revived", "{report}");
    assert_eq!(env.status_of("flaky")["state"], "running");
}

#[test]
fn stale_state_is_cleaned_and_old_exits_are_dropped() {
    let env = Env::new();
    env.ok(&["register", "oneshot", "true", "--no-auto-restart"]);
    env.ok(&["start", "oneshot"]);
    assert!(wait_until(Duration::from_secs(3), || env
        .status_of("oneshot")["state"]
        == "exited"));
    let path = env.ws.join(".process-guardian/run/oneshot.json");
    let mut st: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    st["last_exit"]["at"] = "2000-01-01T00:00:00.000Z".into();
    fs::write(&path, serde_json::to_vec(&st).unwrap()).unwrap();
    fs::write(env.ws.join(".process-guardian/run/gone-away.json"), "{}").unwrap();
    let (code, report) = healthcheck_json(&env, &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["actions"][0]["action"], "dropped");
    assert!(
        report["removed_state"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == "gone-away")
    );
    assert_eq!(env.run(&["status", "oneshot"]).status.code(), Some(3));
    assert!(env.log_path("oneshot").exists(), "its log stays");
}

#[test]
fn a_hung_command_under_a_frozen_supervisor_is_replaced() {
    let env = Env::new();
    let cmd = env.launch("hung", "sleep 1000", &["--stale-after", "1"]);
    let sup = env.supervisor_pid("hung");
    kill(sup, "STOP");
    // Its log has been quiet for ten minutes, far past stale_after plus the grace period.
    let st = std::process::Command::new("touch")
        .args(["-d", "10 minutes ago"])
        .arg(env.log_path("hung"))
        .status()
        .unwrap();
    assert!(st.success());
    let (code, report) = healthcheck_json(&env, &[]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["actions"][0]["action"], "revived", "{report}");
    assert!(wait_until(Duration::from_secs(2), || !alive(sup) && !alive(cmd)));
    let s = env.status_of("hung");
    assert_eq!(s["state"], "running");
    assert_ne!(s["pid"], cmd);
    assert_eq!(env.alerts_of_kind("stale").len(), 1);
}
