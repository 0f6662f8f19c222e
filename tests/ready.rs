//! Readiness: real servers (python3 -m http.server, a listener that binds
//! after 2 s), a log line, a command; `--wait-ready` returns when it is
//! ready, at once when it dies, after its timeout otherwise; `status` says
//! `starting` meanwhile; a probe costs the supervisor next to no memory.

mod common;

use std::time::{Duration, Instant};

use common::*;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn an_http_server_that_binds_late_is_starting_then_ready() {
    let env = Env::new();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/");
    let command = format!("sh -c 'sleep 2; exec python3 -m http.server {port} --bind 127.0.0.1'");
    env.ok(&["register", "web", &command, "--ready-http", &url]);
    env.ok(&["start", "web"]);
    assert_eq!(env.status_of("web")["state"], "starting");
    let t = Instant::now();
    let out = env.run(&["wait", "web", "--for", "ready", "--timeout", "30"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        t.elapsed() >= Duration::from_millis(1500),
        "ready before it served"
    );
    assert_eq!(env.status_of("web")["state"], "running");
    assert!(read(&env.log_path("web")).contains("ready after"));
    env.ok(&["stop", "web"]);
    // run --wait-ready: returns once it serves.
    let t = Instant::now();
    let out = env.run(&[
        "run",
        "web2",
        "--ready-http",
        &url,
        "--wait-ready",
        "30",
        "--",
        "sh",
        "-c",
        &format!("sleep 2; exec python3 -m http.server {port} --bind 127.0.0.1"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(t.elapsed() >= Duration::from_millis(1500));
    assert!(stdout(&out).contains("web2 is ready"), "{}", stdout(&out));
    let answer = std::process::Command::new("python3")
        .args([
            "-c",
            &format!("import urllib.request; print(urllib.request.urlopen('{url}').status)"),
        ])
        .output()
        .unwrap();
    assert_eq!(stdout(&answer).trim(), "200");
    env.ok(&["stop", "web2"]);
}

#[test]
fn a_tcp_listener_binding_after_two_seconds() {
    let env = Env::new();
    let port = free_port();
    let listener = format!(
        "sh -c 'sleep 2; exec python3 -c \"import socket,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((\\\"127.0.0.1\\\", {port})); s.listen(); time.sleep(600)\"'"
    );
    env.ok(&[
        "register",
        "l",
        &listener,
        "--ready-tcp",
        &format!("127.0.0.1:{port}"),
    ]);
    let t = Instant::now();
    let out = env.run(&["start", "l", "--wait-ready", "30"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(1800), "ready after {took:?}");
    assert!(took < Duration::from_secs(15), "ready after {took:?}");
    assert_eq!(env.status_of("l")["state"], "running");
    env.ok(&["stop", "l"]);
}

#[test]
fn wait_ready_fails_at_once_when_it_dies_and_after_the_timeout_when_it_never_is() {
    let env = Env::new();
    let port = free_port();
    env.ok(&[
        "register",
        "dies",
        "sh -c 'echo cannot-bind-$((6*7)); sleep 0.5; exit 3'",
        "--ready-tcp",
        &format!("127.0.0.1:{port}"),
    ]);
    let t = Instant::now();
    let out = env.run(&["start", "dies", "--wait-ready", "30"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "not at once: {:?}",
        t.elapsed()
    );
    let err = stderr(&out);
    assert!(err.contains("died before it was ready"), "{err}");
    assert!(
        err.contains("cannot-bind-42"),
        "the log tail is shown: {err}"
    );
    env.ok(&["stop", "dies"]);
    env.ok(&[
        "register",
        "never",
        "sleep 600",
        "--ready-tcp",
        &format!("127.0.0.1:{port}"),
    ]);
    let t = Instant::now();
    let out = env.run(&["--json", "start", "never", "--wait-ready", "1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(t.elapsed() >= Duration::from_secs(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not ready after 1.0 s"),
        "{v}"
    );
    assert_eq!(env.status_of("never")["state"], "starting");
    env.ok(&["stop", "never"]);
}

#[test]
fn a_log_line_or_a_command_says_ready() {
    let env = Env::new();
    env.ok(&[
        "register",
        "logged",
        "sh -c 'sleep 1; echo \"listening on port $((4000+242))\"; exec sleep 600'",
        "--ready-log",
        r"listening on port \d+",
    ]);
    let out = env.run(&["start", "logged", "--wait-ready", "20"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(read(&env.log_path("logged")).contains("listening on port 4242"));
    env.ok(&[
        "register",
        "flagged",
        "sh -c 'sleep 1; touch ready.flag; exec sleep 600'",
        "--ready-cmd",
        "test -f ready.flag",
    ]);
    let t = Instant::now();
    let out = env.run(&["start", "flagged", "--wait-ready", "20"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(t.elapsed() >= Duration::from_millis(800));
    env.ok(&["stop", "--all"]);
    // Without a probe, --wait-ready waits for the exec, as start always did.
    env.ok(&["register", "plain", "sleep 600"]);
    let out = env.run(&["start", "plain", "--wait-ready"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    env.ok(&["stop", "plain"]);
}

#[test]
fn bad_probes_are_refused_at_register() {
    let env = Env::new();
    for (args, says) in [
        (
            &["--ready-http", "https://example.com/"][..],
            "--ready-cmd 'curl -fsS https://example.com/'",
        ),
        (&["--ready-tcp", "nohostport"][..], "HOST:PORT"),
        (&["--ready-log", "("][..], "--ready-log"),
        (
            &["--ready-tcp", "h:1", "--ready-cmd", "true"][..],
            "exactly one probe",
        ),
        (&["--ready-timeout", "5"][..], "exactly one probe"),
    ] {
        let mut a = vec!["register", "x", "sleep 1"];
        a.extend_from_slice(args);
        let out = env.run(&a);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
    }
    assert!(!env.registry_path().exists() || !read(&env.registry_path()).contains("\"x\""));
}

/// The anonymous memory of a process (heap, stack, private data), in KiB:
/// what a probe could make a supervisor keep. (Its file-backed pages are
/// the same for every supervisor of one binary, and count as private dirty
/// for a while after the binary is rebuilt.)
fn anonymous_kib(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Anonymous:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn a_probe_costs_the_supervisor_next_to_no_memory() {
    let env = Env::new();
    let port = free_port();
    env.ok(&["register", "plain", "sleep 600"]);
    env.ok(&[
        "register",
        "probed",
        &format!("python3 -m http.server {port} --bind 127.0.0.1"),
        "--ready-http",
        &format!("http://127.0.0.1:{port}/"),
    ]);
    env.ok(&["start", "plain"]);
    let out = env.run(&["start", "probed", "--wait-ready", "30"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // Both past their start-up; the probed one has run its probes.
    std::thread::sleep(Duration::from_millis(1500));
    let plain = anonymous_kib(env.supervisor_pid("plain"));
    let probed = anonymous_kib(env.supervisor_pid("probed"));
    assert!(
        probed <= plain + 16,
        "a supervisor with a probe keeps {probed} KiB private, one without {plain} KiB"
    );
    env.ok(&["stop", "--all"]);
}

#[test]
fn failed_health_probes_in_a_row_restart_it_with_an_unhealthy_alert() {
    let env = Env::new();
    let port = free_port();
    // A real server, healthy: left alone.
    env.ok(&[
        "register",
        "web",
        &format!("python3 -m http.server {port} --bind 127.0.0.1"),
        "--ready-http",
        &format!("http://127.0.0.1:{port}/"),
        "--health-http",
        &format!("http://127.0.0.1:{port}/"),
        "--health-interval",
        "0.3",
    ]);
    let out = env.run(&["start", "web", "--wait-ready", "30"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let web = env.pid_of("web").unwrap();
    // A worker that turns sick when told to.
    let pid = env.launch(
        "worker",
        "sleep 600",
        &[
            "--health-cmd",
            "test ! -f sick.flag || { echo sick-since-flag >&2; exit 1; }",
            "--health-interval",
            "0.3",
            "--health-failures",
            "2",
            "--restart-cooldown",
            "0",
        ],
    );
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(env.pid_of("worker"), Some(pid), "healthy: not restarted");
    std::fs::write(env.ws.join("sick.flag"), "").unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || env
            .pid_of("worker")
            .is_some_and(|p| p != pid)),
        "not restarted after failed probes"
    );
    assert!(!alive(pid));
    assert!(wait_until(Duration::from_secs(5), || !env
        .alerts_of_kind("unhealthy")
        .is_empty()));
    let a = &env.alerts_of_kind("unhealthy")[0];
    let msg = a["message"].as_str().unwrap();
    assert!(msg.contains("2 health probes"), "{msg}");
    assert!(
        msg.contains("sick-since-flag"),
        "the probe's last error: {msg}"
    );
    assert!(
        env.alerts_of_kind("died").is_empty(),
        "no died alert on top"
    );
    std::fs::remove_file(env.ws.join("sick.flag")).unwrap();
    assert_eq!(
        env.pid_of("web"),
        Some(web),
        "the healthy server was left alone"
    );
    env.ok(&["stop", "--all"]);
}

#[test]
fn a_leaking_process_is_restarted_past_its_memory_limit() {
    let env = Env::new();
    let pid = env.launch(
        "leaky",
        "python3 -c 'import time\nkeep = []\nwhile True:\n    keep.append(b\"x\" * (5 * 1024 * 1024))\n    time.sleep(0.1)'",
        &["--max-memory", "60M", "--restart-cooldown", "0"],
    );
    assert!(
        wait_until(Duration::from_secs(20), || env
            .pid_of("leaky")
            .is_some_and(|p| p != pid)),
        "not restarted past its limit"
    );
    assert!(wait_until(Duration::from_secs(5), || !env
        .alerts_of_kind("memory")
        .is_empty()));
    let msg = env.alerts_of_kind("memory")[0]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(msg.contains("over its limit of 60.0 MiB"), "{msg}");
    env.ok(&["stop", "leaky"]);
    // Sizes as people write them; nonsense refused.
    env.ok(&["register", "m", "sleep 1", "--max-memory", "1.5G"]);
    assert!(read(&env.registry_path()).contains("\"max_memory_bytes\": 1610612736"));
    for bad in ["lots", "-5M", "0", "2P"] {
        let out = env.run(&["register", "m", "sleep 1", "--max-memory", bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", stderr(&out));
    }
}

#[test]
fn a_frozen_server_fails_its_health_probes_and_is_restarted() {
    let env = Env::new();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/");
    env.ok(&[
        "register",
        "web",
        &format!("python3 -m http.server {port} --bind 127.0.0.1"),
        "--ready-http",
        &url,
        "--health-http",
        &url,
        "--health-interval",
        "1",
        "--health-failures",
        "2",
        "--restart-cooldown",
        "0",
    ]);
    let out = env.run(&["start", "web", "--wait-ready", "30"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let pid = env.pid_of("web").unwrap();
    // Frozen: the kernel still accepts connections, nothing answers them.
    kill(pid, "STOP");
    let t = Instant::now();
    assert!(
        wait_until(Duration::from_secs(10), || env
            .pid_of("web")
            .is_some_and(|p| p != pid)),
        "not restarted"
    );
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "restarted after {:?}",
        t.elapsed()
    );
    assert!(wait_until(Duration::from_secs(5), || !env
        .alerts_of_kind("unhealthy")
        .is_empty()));
    env.ok(&["stop", "web"]);
}

#[test]
fn status_shows_the_cpu_and_memory_of_each_tree() {
    let env = Env::new();
    env.launch(
        "busy",
        "python3 -c 'x = bytearray(30 * 1024 * 1024)\nfor i in range(0, len(x), 4096):\n    x[i] = 1\nwhile True:\n    pass'",
        &[],
    );
    env.ok(&["register", "idle", "sleep 600"]);
    std::thread::sleep(Duration::from_millis(1500));
    let s = env.status_of("busy");
    assert!(s["cpu_pct"].as_f64().unwrap() > 20.0, "{s}");
    assert!(s["rss_bytes"].as_u64().unwrap() > 25 << 20, "{s}");
    // Not running: no figures.
    assert!(env.status_of("idle")["cpu_pct"].is_null());
    let table = env.ok(&["status"]);
    let head = table.lines().next().unwrap();
    assert!(head.contains("CPU") && head.contains("MEM"), "{table}");
    let busy = table.lines().find(|l| l.starts_with("busy")).unwrap();
    assert!(busy.contains('%') && busy.contains('M'), "{table}");
    env.ok(&["stop", "busy"]);
}

#[test]
fn what_an_app_comes_after_is_serving_before_the_app_starts() {
    let env = Env::new();
    let port = free_port();
    // The database takes a second to listen.
    env.ok(&[
        "register",
        "db",
        &format!(
            "sh -c 'sleep 1; exec python3 -c \"import socket,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((\\\"127.0.0.1\\\", {port})); s.listen(); time.sleep(600)\"'"
        ),
        "--ready-tcp",
        &format!("127.0.0.1:{port}"),
    ]);
    // The app tries once, at its start, and says what it found.
    env.ok(&[
        "register",
        "app",
        &format!(
            "python3 -c 'import socket,time\ntry:\n    socket.create_connection((\"127.0.0.1\", {port}), 1)\n    print(\"db-serving\", flush=True)\nexcept OSError as e:\n    print(\"db-missing\", e, flush=True)\ntime.sleep(600)'"
        ),
        "--after",
        "db",
    ]);
    let out = env.run(&["start", "app"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        wait_until(Duration::from_secs(10), || read(&env.log_path("app"))
            .contains("db-")),
        "{}",
        read(&env.log_path("app"))
    );
    let log = read(&env.log_path("app"));
    assert!(log.contains("db-serving"), "{log}");
    env.ok(&["stop", "--all"]);
    // c2 after c1, then c1 after c2: refused.
    env.ok(&["register", "c1", "sleep 1"]);
    env.ok(&["register", "c2", "sleep 1", "--after", "c1"]);
    let out = env.run(&["register", "c1", "sleep 1", "--after", "c2"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("c1 → c2 → c1"), "{}", stderr(&out));
}
