//! Graduating and arriving: `export systemd` checked by `systemd-analyze
//! verify`, `export kubernetes` by `kubernetes-validate --strict`, and
//! `import` of a Procfile, a pm2 ecosystem file and a supervisord
//! configuration into the registry. The validators are the real tools;
//! `.ci/run` installs them, and under CI a missing one fails the test.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::Value;

/// Whether a validator runs here; under CI it must.
fn have(tool: &str) -> bool {
    let found = Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        cannot_run(
            &format!("{tool} must be installed under CI (.ci/run installs it)"),
            &format!("{tool} is not installed"),
        );
    }
    found
}

/// `systemd-analyze verify` of every unit in `dir`: exit 0, nothing on stderr.
fn verify_units(dir: &Path) {
    let mut units: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "service"))
        .collect();
    units.sort();
    assert!(!units.is_empty(), "no unit in {}", dir.display());
    let mut cmd = Command::new("systemd-analyze");
    cmd.arg("verify").args(&units);
    let out = run_with_deadline(cmd, Duration::from_secs(60));
    let texts: Vec<String> = units.iter().map(|u| read(u)).collect();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "systemd-analyze verify: {:?}\n{}{}\n{}",
        out.status,
        stderr(&out),
        stdout(&out),
        texts.join("\n")
    );
}

/// The two entries of the acceptance: one with env and a stop timeout, one
/// with a readiness probe and a memory limit (and an order).
fn two_entries(env: &Env) {
    env.ok(&[
        "register",
        "api",
        "sleep 600",
        "--env",
        "A=1",
        "--env",
        "B=two words $HOME 100%",
        "--stop-timeout",
        "2.5",
        "--stop-signal",
        "INT",
    ]);
    env.ok(&[
        "register",
        "web",
        "python3 -m http.server 8000",
        "--ready-http",
        "http://127.0.0.1:8000/",
        "--max-memory",
        "60M",
        "--after",
        "api",
    ]);
}

#[test]
fn systemd_units_of_two_entries_verify_clean() {
    if !have("systemd-analyze") {
        return;
    }
    let env = Env::new();
    two_entries(&env);
    let dir = env.ws.join("units");
    let out = env.ok(&["export", "systemd", "--dir", dir.to_str().unwrap()]);
    assert!(out.contains("wrote") && out.contains("systemctl"), "{out}");
    verify_units(&dir);
    let api = read(&dir.join("api.service"));
    for want in [
        "Environment=\"A=1\"",
        // `%` is a specifier to systemd, doubled; `$` is literal in Environment=.
        "Environment=\"B=two words $HOME 100%%\"",
        "TimeoutStopSec=2500ms",
        "KillSignal=SIGINT",
        "KillMode=control-group",
        "Restart=always",
        "StartLimitBurst=6",
        &format!("WorkingDirectory={}", env.ws.display()),
        &format!("StandardOutput=append:{}", env.log_path("api").display()),
    ] {
        assert!(api.contains(want), "{want} missing from:\n{api}");
    }
    let exec = api
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart");
    assert!(
        exec.starts_with('/') && exec.ends_with("sleep 600"),
        "{exec}"
    );
    let web = read(&dir.join("web.service"));
    for want in [
        "MemoryMax=62914560",
        "After=api.service",
        "Wants=api.service",
        "# Not translated:",
        "systemd has no readiness probe",
    ] {
        assert!(web.contains(want), "{want} missing from:\n{web}");
    }
    // On stdout, the same units one after the other.
    let printed = env.ok(&["export", "systemd"]);
    assert!(
        printed.contains(&api) && printed.contains(&web),
        "{printed}"
    );
    let json: Value =
        serde_json::from_str(&env.ok(&["--json", "export", "systemd", "web"])).unwrap();
    assert_eq!(json["units"][0]["unit"], "web.service");
    assert!(
        !json["units"][0]["untranslated"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn hostile_values_stay_values_in_a_unit() {
    if !have("systemd-analyze") {
        return;
    }
    let env = Env::new();
    // A newline in a value must not start a new setting; quotes, a
    // backslash, `$` and `%` must not end or change it.
    env.ok(&[
        "register",
        "odd",
        "sh -c 'echo \"$HOME\" 50% \\done; sleep 600'",
        "--env",
        "X=a\"b\\c\nExecStartPre=/bin/false",
    ]);
    // A program given by a relative path, in a directory with a blank.
    let spaced = env.ws.join("my app");
    fs::create_dir(&spaced).unwrap();
    fs::write(spaced.join("run.sh"), "#!/bin/sh\nexec sleep 600\n").unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(spaced.join("run.sh"), fs::Permissions::from_mode(0o700)).unwrap();
    }
    env.ok(&[
        "register",
        "rel",
        "./run.sh --fast",
        "--cwd",
        spaced.to_str().unwrap(),
    ]);
    let dir = env.ws.join("units");
    env.ok(&["export", "systemd", "--dir", dir.to_str().unwrap()]);
    verify_units(&dir);
    let rel = read(&dir.join("rel.service"));
    assert!(
        rel.contains(&format!(
            "ExecStart=\"{}\" --fast",
            spaced.join("run.sh").display()
        )),
        "{rel}"
    );
    let unit = read(&dir.join("odd.service"));
    assert!(
        !unit.lines().any(|l| l.starts_with("ExecStartPre")),
        "{unit}"
    );
    assert!(
        unit.contains(r#"Environment="X=a\"b\\c\nExecStartPre=/bin/false""#),
        "{unit}"
    );
    assert!(
        unit.contains(r#"-c "echo \"$$HOME\" 50%% \\done; sleep 600""#),
        "{unit}"
    );
}

#[test]
fn kubernetes_manifests_validate_strict_with_the_probe() {
    if !have("kubernetes-validate") {
        return;
    }
    let env = Env::new();
    two_entries(&env);
    env.ok(&["register", "batch", "python3 job.py", "30"]);
    // `on` is a string to YAML 1.2 and a boolean to YAML 1.1, which
    // Kubernetes and the validator read: it must arrive as a string.
    env.ok(&["register", "flag", "sleep 600", "--env", "VERBOSE=on"]);
    let yaml = env.ok(&["export", "kubernetes", "--image", "python:3.12-slim"]);
    let file = env.ws.join("app.yaml");
    fs::write(&file, &yaml).unwrap();
    let mut cmd = Command::new("kubernetes-validate");
    cmd.arg("--strict").arg(&file);
    let out = run_with_deadline(cmd, Duration::from_secs(120));
    let said = format!("{}{}", stdout(&out), stderr(&out));
    assert!(out.status.success(), "{said}\n{yaml}");
    for kind in [
        "deployment/api",
        "deployment/web",
        "job/batch",
        "deployment/flag",
    ] {
        assert!(
            said.contains(&format!("passed for resource {kind}")),
            "{said}"
        );
    }
    assert!(!said.contains("WARN") && !said.contains("ERROR"), "{said}");

    // The same objects as JSON, read field by field.
    let list: Value = serde_json::from_str(&env.ok(&[
        "--json",
        "export",
        "kubernetes",
        "--image",
        "python:3.12-slim",
    ]))
    .unwrap();
    let items = list["items"].as_array().unwrap();
    let find = |name: &str| {
        items
            .iter()
            .find(|o| o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("{name} not in {list}"))
    };
    let web = find("web");
    assert_eq!(web["kind"], "Deployment");
    let c = &web["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["image"], "python:3.12-slim");
    assert_eq!(c["readinessProbe"]["httpGet"]["port"], 8000);
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/");
    assert_eq!(c["resources"]["limits"]["memory"], "60Mi");
    assert_eq!(
        c["command"],
        serde_json::json!(["python3", "-m", "http.server", "8000"])
    );
    let api = find("api");
    assert_eq!(
        api["spec"]["template"]["spec"]["terminationGracePeriodSeconds"],
        3
    );
    let api_env = &api["spec"]["template"]["spec"]["containers"][0]["env"];
    // `$` doubled: Kubernetes would otherwise expand $(VAR) itself.
    assert!(
        api_env
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["name"] == "B" && v["value"] == "two words $$HOME 100%"),
        "{api_env}"
    );
    assert!(
        api["metadata"]["annotations"]["process-guardian/untranslated"]
            .as_str()
            .unwrap()
            .contains("stop_signal INT")
    );
    let batch = find("batch");
    assert_eq!(batch["kind"], "Job");
    assert_eq!(
        batch["spec"]["template"]["spec"]["restartPolicy"],
        "OnFailure"
    );
    // An image is required, and a bad one refused before anything is written.
    refused(&env, &["export", "kubernetes"], &[]);
    refused(&env, &["export", "kubernetes", "--image", "a b"], &[]);
}

/// Runs `args`, which must be refused as bad input (exit 2) with each of
/// `says` in its message.
fn refused(env: &Env, args: &[&str], says: &[&str]) {
    let out = env.run(args);
    let said = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {said}");
    for s in says {
        assert!(said.contains(s), "{args:?}: {s:?} missing from: {said}");
    }
}

/// The registry's entry for `name`.
fn entry(env: &Env, name: &str) -> Value {
    let reg: Value = serde_json::from_str(&read(&env.registry_path())).unwrap();
    reg[name].clone()
}

#[test]
fn a_procfile_imports_its_processes() {
    let env = Env::new();
    let app = env.ws.join("app");
    fs::create_dir(&app).unwrap();
    fs::write(
        app.join("Procfile"),
        "# processes\nweb: python3 -m http.server $PORT\nworker: python3 worker.py --queue default\n",
    )
    .unwrap();
    let out: Value = serde_json::from_str(&env.ok(&[
        "--json",
        "import",
        app.join("Procfile").to_str().unwrap(),
    ]))
    .unwrap();
    assert_eq!(out["format"], "procfile");
    let web = entry(&env, "web");
    assert_eq!(web["command"], "python3 -m http.server $PORT");
    assert_eq!(web["cwd"], app.display().to_string());
    assert_eq!(web["env"]["PORT"], "5000");
    let worker = entry(&env, "worker");
    assert_eq!(worker["command"], "python3 worker.py --queue default");
    assert_eq!(worker["auto_restart"], true);
    assert!(worker.get("env").is_none(), "{worker}");
}

#[test]
fn a_pm2_ecosystem_file_imports_env_and_memory_limit() {
    let env = Env::new();
    let file = env.ws.join("ecosystem.config.json");
    fs::write(
        &file,
        r#"{
  "apps": [
    {
      "name": "api",
      "script": "server.js",
      "args": ["--port", "3000"],
      "cwd": ".",
      "env": {"NODE_ENV": "production", "WORKERS": 4},
      "max_memory_restart": "200M",
      "max_restarts": 7,
      "min_uptime": "5s",
      "kill_timeout": 3000,
      "watch": true,
      "log_date_format": "YYYY"
    },
    {"name": "bot", "script": "bot.sh", "autorestart": false}
  ]
}"#,
    )
    .unwrap();
    let out: Value =
        serde_json::from_str(&env.ok(&["--json", "import", file.to_str().unwrap()])).unwrap();
    assert_eq!(out["format"], "pm2");
    let api = entry(&env, "api");
    assert_eq!(api["command"], "node server.js --port 3000");
    assert_eq!(api["env"]["NODE_ENV"], "production");
    assert_eq!(api["env"]["WORKERS"], "4");
    assert_eq!(api["max_memory_bytes"], 200 * 1024 * 1024);
    assert_eq!(api["max_restarts"], 7);
    assert_eq!(api["restart_cooldown"], 5);
    assert_eq!(api["stop_timeout_s"].as_f64(), Some(3.0));
    assert_eq!(api["cwd"], env.ws.display().to_string());
    let bot = entry(&env, "bot");
    assert_eq!(bot["command"], "bash bot.sh");
    assert_eq!(bot["auto_restart"], false);
    // The keys with no translation are listed, not dropped in silence.
    let listed = &out["processes"][0]["ignored"];
    assert_eq!(listed, &serde_json::json!(["log_date_format", "watch"]));
    let human = env.ok(&["import", file.to_str().unwrap()]);
    assert!(
        human.contains("not translated: log_date_format, watch") && human.contains("unchanged api"),
        "{human}"
    );
    // A JavaScript ecosystem file is code: refused, with the way to JSON.
    let js = env.ws.join("ecosystem.config.js");
    fs::write(&js, "module.exports = {apps: []}\n").unwrap();
    refused(&env, &["import", js.to_str().unwrap()], &["JSON.stringify"]);
}

const SUPERVISORD_CONF: &str = "\
[supervisord]
nodaemon=true

[program:svc]
command=sh -c 'echo \"A=$A B=$B\"; exec sleep 600'
directory=%(here)s/srv
environment=A=\"1\",B=\"two\"
stopsignal=INT
stopwaitsecs=4
startretries=2
autorestart=true
user=nobody
stdout_logfile=/var/log/svc.log ; not ours
";

/// `svc.conf` (SUPERVISORD_CONF) in the workspace, with the `srv`
/// directory it names; its path.
fn supervisord_conf(env: &Env) -> std::path::PathBuf {
    fs::create_dir_all(env.ws.join("srv")).unwrap();
    let conf = env.ws.join("svc.conf");
    fs::write(&conf, SUPERVISORD_CONF).unwrap();
    conf
}

#[test]
fn a_supervisord_program_imports_and_runs_with_its_settings() {
    let env = Env::new();
    let conf = supervisord_conf(&env);
    let srv = env.ws.join("srv");
    let out: Value =
        serde_json::from_str(&env.ok(&["--json", "import", conf.to_str().unwrap()])).unwrap();
    assert_eq!(out["format"], "supervisord");
    assert_eq!(out["ignored"], serde_json::json!(["[supervisord]"]));
    assert_eq!(
        out["processes"][0]["ignored"],
        serde_json::json!(["stdout_logfile", "user"])
    );
    let svc = entry(&env, "svc");
    assert_eq!(svc["cwd"], srv.display().to_string());
    assert_eq!(svc["stop_signal"], "INT");
    assert_eq!(svc["stop_timeout_s"].as_f64(), Some(4.0));
    assert_eq!(svc["max_restarts"], 2);
    assert_eq!(svc["env"], serde_json::json!({"A": "1", "B": "two"}));
    // The entry runs as supervisord ran it.
    env.ok(&["start", "svc"]);
    let log = env.log_path("svc");
    let seen = wait_until(Duration::from_secs(5), || read(&log).contains("A=1 B=two"));
    env.ok(&["stop", "svc"]);
    assert!(seen, "{}", read(&log));
}

#[test]
fn dry_run_leaves_the_registry_byte_identical() {
    let env = Env::new();
    fs::write(env.ws.join("Procfile"), "web: sleep 600\n").unwrap();
    // No registry yet: a dry run creates none, nor anything beside it.
    let out: Value =
        serde_json::from_str(&env.ok(&["--json", "import", "Procfile", "--dry-run"])).unwrap();
    assert_eq!(out["processes"][0]["result"], "would-register");
    assert!(!env.registry_path().exists());
    assert!(!env.ws.join(".process-guardian").exists());
    // With one: not a byte changes, though the import would change it.
    env.ok(&["register", "web", "sleep 1", "--env", "K=v"]);
    env.ok(&["register", "other", "sleep 2"]);
    let before = fs::read(env.registry_path()).unwrap();
    let conf = supervisord_conf(&env);
    for file in ["Procfile", conf.to_str().unwrap()] {
        for extra in [&[][..], &["--force"][..]] {
            let mut args = vec!["import", file, "--dry-run"];
            args.extend_from_slice(extra);
            let out = env.run(&args);
            assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
            assert!(
                stdout(&out).contains("registry unchanged"),
                "{}",
                stdout(&out)
            );
            assert_eq!(fs::read(env.registry_path()).unwrap(), before);
        }
    }
    let said = env.ok(&["import", "Procfile", "--dry-run"]);
    assert!(
        said.contains("conflicts web") && said.contains("--force"),
        "{said}"
    );
}

#[test]
fn existing_names_need_force_and_numprocs_is_refused() {
    let env = Env::new();
    env.ok(&["register", "web", "sleep 1"]);
    fs::write(env.ws.join("Procfile"), "web: sleep 600\nnew: sleep 700\n").unwrap();
    let before = fs::read(env.registry_path()).unwrap();
    let out = env.run(&["import", "Procfile"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("web") && stderr(&out).contains("--force"),
        "{}",
        stderr(&out)
    );
    // All or nothing: `new` was not registered either.
    assert_eq!(fs::read(env.registry_path()).unwrap(), before);
    env.ok(&["import", "Procfile", "--force"]);
    assert_eq!(entry(&env, "web")["command"], "sleep 600");
    assert_eq!(entry(&env, "new")["command"], "sleep 700");

    let before = fs::read(env.registry_path()).unwrap();
    let conf = env.ws.join("many.conf");
    fs::write(&conf, "[program:many]\ncommand=sleep 600\nnumprocs=4\n").unwrap();
    refused(
        &env,
        &["import", conf.to_str().unwrap()],
        &["numprocs=4", "one process per name"],
    );
    assert_eq!(fs::read(env.registry_path()).unwrap(), before);
    // A bad name in the file is refused before anything is written.
    fs::write(
        env.ws.join("bad.conf"),
        "[program:../evil]\ncommand=sleep 1\n",
    )
    .unwrap();
    refused(&env, &["import", "bad.conf"], &[]);
    assert_eq!(fs::read(env.registry_path()).unwrap(), before);
}

#[test]
fn an_imported_supervisord_program_exports_to_a_unit_that_verifies() {
    if !have("systemd-analyze") {
        return;
    }
    let env = Env::new();
    let conf = supervisord_conf(&env);
    env.ok(&["import", conf.to_str().unwrap()]);
    let dir = env.ws.join("units");
    env.ok(&["export", "systemd", "svc", "--dir", dir.to_str().unwrap()]);
    verify_units(&dir);
    let unit = read(&dir.join("svc.service"));
    for want in [
        "KillSignal=SIGINT",
        "TimeoutStopSec=4s",
        "Environment=\"A=1\"",
        "Environment=\"B=two\"",
        "StartLimitBurst=3",
        &format!("WorkingDirectory={}", env.ws.join("srv").display()),
    ] {
        assert!(unit.contains(want), "{want} missing from:\n{unit}");
    }
}

#[test]
fn a_unit_directory_or_a_file_another_user_controls_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    env.ok(&["register", "web", "sleep 600"]);
    // A directory every user can write: a unit there could be swapped
    // before root installs it.
    let open = env.ws.join("open");
    fs::create_dir(&open).unwrap();
    fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
    refused(
        &env,
        &["export", "systemd", "--dir", open.to_str().unwrap()],
        &["others can write it"],
    );
    assert_eq!(fs::read_dir(&open).unwrap().count(), 0);
    // A directory of another user's.
    if let Some((uid, gid)) = test_user("pg-export-test") {
        let theirs = env.ws.join("theirs");
        fs::create_dir(&theirs).unwrap();
        std::os::unix::fs::chown(&theirs, Some(uid), Some(gid)).unwrap();
        refused(
            &env,
            &["export", "systemd", "--dir", theirs.to_str().unwrap()],
            &["owned by uid"],
        );
        assert_eq!(fs::read_dir(&theirs).unwrap().count(), 0);
    }
    // A link planted where the units go: refused, its target untouched.
    let target = env.ws.join("target");
    fs::create_dir(&target).unwrap();
    let link = env.ws.join("link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    refused(
        &env,
        &["export", "systemd", "--dir", link.to_str().unwrap()],
        &["symbolic link"],
    );
    assert_eq!(fs::read_dir(&target).unwrap().count(), 0);
    // A number out of range in an imported file: refused, nothing written.
    let before = fs::read(env.registry_path()).unwrap();
    fs::write(
        env.ws.join("eco.json"),
        r#"{"apps": [{"name": "a", "script": "a.js", "kill_timeout": 1e20}]}"#,
    )
    .unwrap();
    refused(&env, &["import", "eco.json"], &["stop_timeout_s"]);
    assert_eq!(fs::read(env.registry_path()).unwrap(), before);
    // A file every user can write is not imported.
    let procfile = env.ws.join("Procfile");
    fs::write(&procfile, "evil: sleep 600\n").unwrap();
    fs::set_permissions(&procfile, fs::Permissions::from_mode(0o666)).unwrap();
    refused(&env, &["import", "Procfile"], &["chmod o-w"]);
    assert_eq!(fs::read(env.registry_path()).unwrap(), before);
}

#[test]
fn a_seed_entry_exports_with_the_workspace_as_its_directory() {
    if !have("systemd-analyze") {
        return;
    }
    let env = Env::new();
    // The original tool's format: no cwd (the workspace), a duration.
    fs::write(
        env.registry_path(),
        r#"{"my-bot": {"command": "sleep 600", "duration_min": 480, "auto_restart": true, "max_restarts": 5, "restart_cooldown": 30}}"#,
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(env.registry_path(), fs::Permissions::from_mode(0o600)).unwrap();
    }
    let dir = env.ws.join("units");
    env.ok(&["export", "systemd", "--dir", dir.to_str().unwrap()]);
    verify_units(&dir);
    let unit = read(&dir.join("my-bot.service"));
    for want in [
        format!("WorkingDirectory={}\n", env.ws.display()),
        "Restart=on-failure".to_string(),
        // Not stopped at its duration (process-guardian does not), but said how.
        "# To stop it at its duration, add: RuntimeMaxSec=28800".to_string(),
    ] {
        assert!(unit.contains(&want), "{want} missing from:\n{unit}");
    }
    assert!(!unit.contains("\nRuntimeMaxSec="), "{unit}");
    let list: Value = serde_json::from_str(&env.ok(&[
        "--json",
        "export",
        "kubernetes",
        "--image",
        "python:3.12-slim",
    ]))
    .unwrap();
    let job = &list["items"][0];
    assert_eq!(job["kind"], "Job");
    assert_eq!(
        job["spec"]["template"]["spec"]["containers"][0]["workingDir"],
        env.ws.display().to_string()
    );
}
