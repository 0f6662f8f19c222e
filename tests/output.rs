//! Output through the supervisor: the hard log bound under a flood, no line
//! lost across the supervisor's death, timestamps and `--since`, bounded
//! bookkeeping, and output that is not UTF-8.

mod common;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::time::Duration;

use common::*;

const MIB: u64 = 1 << 20;

/// The total size of `<name>.log` and its rotations.
fn log_total(env: &Env, name: &str) -> u64 {
    let dir = env.ws.join(".process-guardian/logs");
    let prefix = format!("{name}.log");
    fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

#[test]
fn a_60_mb_burst_stays_within_the_bound_and_loses_its_last_line_nowhere() {
    let env = Env::new();
    let bound = 3 * MIB + 64 * 1024;
    // Sizes sampled every 5 ms by a thread of their own (a stat per file),
    // from the start until END is in the log.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        let dir = env.ws.clone();
        std::thread::spawn(move || {
            let (mut worst, mut samples) = (0u64, 0u32);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let total: u64 = ["", ".1", ".2", ".3"]
                    .iter()
                    .filter_map(|s| {
                        fs::metadata(dir.join(format!(".process-guardian/logs/flood.log{s}"))).ok()
                    })
                    .map(|m| m.len())
                    .sum();
                worst = worst.max(total);
                samples += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
            (worst, samples)
        })
    };
    let pid = env.launch(
        "flood",
        "sh -c 'yes 0123456789abcdefghijklmnopqrstuvwxyz | head -c 60000000; echo; echo END; exec sleep 600'",
        &["--log-max-bytes", "1048576", "--log-keep", "2"],
    );
    let done = wait_until(Duration::from_secs(60), || {
        read(&env.log_path("flood")).contains("\nEND\n")
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (worst, samples) = sampler.join().unwrap();
    assert!(done, "END reached the log within 60 s");
    assert!(samples >= 3, "sampled during the burst ({samples} samples)");
    assert!(worst <= bound, "the logs held {worst} bytes, over {bound}");
    assert!(log_total(&env, "flood") <= bound);
    // Rotation cuts at line ends: every rotated file ends with one.
    for n in 1..=2 {
        let p = env.ws.join(format!(".process-guardian/logs/flood.log.{n}"));
        let body = fs::read(&p).unwrap();
        assert!(
            body.len() as u64 <= MIB,
            "{} is {} bytes",
            p.display(),
            body.len()
        );
        assert_eq!(body.last(), Some(&b'\n'), "{} ends mid-line", p.display());
    }
    assert!(!env.log_path("flood.log.3").exists());
    assert!(alive(pid), "the command is still running");
    assert_eq!(env.status_of("flood")["pid"], pid);
    env.ok(&["stop", "flood"]);
}

/// The pid and the numbers a counter printed, from its log.
fn counted(env: &Env, name: &str) -> Vec<u64> {
    read(&env.log_path(name))
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

#[test]
fn the_supervisors_death_loses_no_line_and_kills_nothing() {
    let env = Env::new();
    let pid = env.launch(
        "counter",
        "python3 -u -c 'import time\ni = 0\nwhile True:\n    i += 1\n    print(i)\n    time.sleep(0.002)'",
        &[],
    );
    assert!(wait_until(Duration::from_secs(5), || counted(
        &env, "counter"
    )
    .len()
        > 50));
    let sup = env.supervisor_pid("counter");
    kill(sup, "KILL");
    assert!(wait_until(Duration::from_secs(5), || !alive(sup)));
    // No supervisor for a while: the command goes on writing into the pipe.
    let before = counted(&env, "counter").len();
    std::thread::sleep(Duration::from_millis(800));
    assert!(alive(pid), "the command lives without its supervisor");
    assert!(
        counted(&env, "counter").len() <= before + 5,
        "nothing drained the pipe meanwhile"
    );
    // A healthcheck adopts it; its output goes on into the log.
    let out = env.run(&["healthcheck"]);
    assert_eq!(out.status.code(), Some(1), "it acted: exit 1");
    assert!(stdout(&out).contains("adopted"), "{}", stdout(&out));
    assert_eq!(env.pid_of("counter"), Some(pid));
    let at_adoption = counted(&env, "counter").len();
    assert!(wait_until(Duration::from_secs(10), || counted(
        &env, "counter"
    )
    .len()
        > at_adoption + 200));
    env.ok(&["stop", "counter"]);
    assert!(!alive(pid));
    let numbers = counted(&env, "counter");
    assert_eq!(numbers.first(), Some(&1));
    for pair in numbers.windows(2) {
        assert_eq!(pair[1], pair[0] + 1, "a gap in the counter: {pair:?}");
    }
    assert!(numbers.len() > at_adoption, "{} numbers", numbers.len());
    assert!(
        read(&env.log_path("counter")).contains(&format!("adopted running command pid {pid}")),
        "{}",
        read(&env.log_path("counter"))
    );
}

fn stamped(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() > 25
        && b[..24].iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'.',
            23 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
        && b[24] == b' '
}

#[test]
fn timestamps_stamp_every_line_and_since_finds_them() {
    let env = Env::new();
    env.launch(
        "ts",
        "sh -c 'sleep 0.3; printf part; sleep 0.2; echo ial; echo two; echo three >&2; exec sleep 600'",
        &["--timestamps"],
    );
    let output_lines = || {
        read(&env.log_path("ts"))
            .lines()
            .filter(|l| !l.starts_with('['))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let three = wait_until(Duration::from_secs(5), || output_lines().len() >= 3);
    assert!(three, "{}", read(&env.log_path("ts")));
    let log = read(&env.log_path("ts"));
    let output = output_lines();
    assert_eq!(output.len(), 3, "{log}");
    for line in &output {
        assert!(stamped(line), "not stamped: {line:?}");
    }
    assert!(output[0].ends_with(" partial"), "{log}");
    // `--since` finds them; a time after them finds none of them.
    let since = env.ok(&["logs", "ts", "--since", "5m"]);
    assert!(
        since.contains(" partial") && since.contains(" three"),
        "{since}"
    );
    let later = chrono_like_now_plus_minutes(1);
    let none = env.ok(&["logs", "ts", "--since", &later]);
    assert!(!none.contains("three"), "{none}");
    let bad = env.run(&["logs", "ts", "--since", "soon"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("--since"), "{}", stderr(&bad));
    env.ok(&["stop", "ts"]);
}

/// An RFC 3339 time `minutes` from now, from `date` (no clock crate in the tests).
fn chrono_like_now_plus_minutes(minutes: i64) -> String {
    let out = std::process::Command::new("date")
        .args([
            "-u",
            "-d",
            &format!("+{minutes} minutes"),
            "+%Y-%m-%dT%H:%M:%SZ",
        ])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn since_without_timestamps_counts_from_lifecycle_lines() {
    let env = Env::new();
    env.launch("plain", "sh -c 'echo hel\"\"lo; exec sleep 600'", &[]);
    assert!(wait_until(Duration::from_secs(5), || read(
        &env.log_path("plain")
    )
    .contains("hello")));
    let recent = env.ok(&["logs", "plain", "--since", "1h"]);
    assert!(
        recent.contains("hello") && recent.contains("started pid"),
        "{recent}"
    );
    let future = chrono_like_now_plus_minutes(5);
    assert_eq!(env.ok(&["logs", "plain", "--since", &future]), "");
    env.ok(&["stop", "plain"]);
}

#[test]
fn a_crash_loop_writes_a_bounded_alert_history() {
    let env = Env::new();
    env.ok(&[
        "register",
        "loop",
        // A long line of output before each death: a large log_tail.
        "sh -c 'head -c 3000 /dev/zero | tr \"\\0\" x; echo; exit 1'",
        "--restart-cooldown",
        "0",
        "--max-restarts",
        "0",
    ]);
    env.ok(&["start", "loop"]);
    std::thread::sleep(Duration::from_secs(6));
    let restarts = env.status_of("loop")["restarts"].as_u64().unwrap();
    env.ok(&["stop", "loop"]);
    assert!(restarts > 100, "a real crash loop: {restarts} restarts");
    let dir = env.ws.join(".process-guardian");
    let history = fs::metadata(dir.join("alerts.jsonl"))
        .map(|m| m.len())
        .unwrap_or(0);
    assert!(
        history <= MIB + 64 * 1024,
        "alerts.jsonl is {history} bytes"
    );
    assert!(!dir.join("alerts.jsonl.4").exists(), "at most 3 rotations");
    let alerts = env.alerts_of_kind("died");
    assert!(!alerts.is_empty());
    assert!(
        (alerts.len() as u64) < restarts / 10,
        "{} died alerts recorded for {restarts} deaths",
        alerts.len()
    );
    // What was not recorded one by one is counted in the next one that was.
    let counted = alerts
        .iter()
        .find(|a| a["coalesced"]["count"].as_u64() > Some(0));
    let counted = counted.expect("a coalesced count after 6 s of crash loop");
    assert!(
        counted["message"]
            .as_str()
            .unwrap()
            .contains("more deaths since"),
        "{counted}"
    );
}

#[test]
fn bookkeeping_files_rotate_at_one_mib() {
    let env = Env::new();
    env.ok(&["register", "idle", "sleep 600"]);
    let logs = env.ws.join(".process-guardian/logs");
    fs::create_dir_all(&logs).unwrap();
    let hc = logs.join("healthcheck.log");
    fs::write(&hc, vec![b'x'; (MIB + 10) as usize]).unwrap();
    fs::set_permissions(&hc, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    env.run(&["healthcheck"]);
    assert_eq!(
        fs::metadata(logs.join("healthcheck.log.1")).unwrap().len(),
        MIB + 10
    );
    assert!(fs::metadata(&hc).map(|m| m.len()).unwrap_or(0) < MIB);
}

#[test]
fn output_that_is_not_utf8_is_shown_safely() {
    let env = Env::new();
    env.ok(&[
        "register",
        "bytes",
        r#"sh -c 'printf "bad \377\376 \033[31mred\n"; sleep 0.3; exit 3'"#,
        "--no-auto-restart",
    ]);
    env.ok(&["start", "bytes"]);
    assert!(wait_until(Duration::from_secs(5), || !env
        .alerts_of_kind("exited")
        .is_empty()
        || !env.alerts_of_kind("died").is_empty()));
    let raw = fs::read(env.log_path("bytes")).unwrap();
    assert!(
        raw.windows(2).any(|w| w == [0xff, 0xfe]),
        "the log keeps the bytes as written"
    );
    // `logs` prints valid UTF-8.
    let out = env.run(&["logs", "bytes"]);
    let text = String::from_utf8(out.stdout).expect("logs prints valid UTF-8");
    assert!(text.contains("bad \u{fffd}\u{fffd}"), "{text}");
    // The alert's JSON parsed (env.alerts() parses each line), its tail lossy and visible.
    let alert = env.alerts().pop().unwrap();
    let tail: Vec<&str> = alert["log_tail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert!(
        tail.iter()
            .any(|l| l.contains("bad \u{fffd}\u{fffd} ^[[31mred")),
        "{tail:?}"
    );
    let text = fs::read(env.alerts.join("process_monitor_alert.txt")).unwrap();
    let text = String::from_utf8(text).expect("the alert text is valid UTF-8");
    assert!(!text.contains('\u{1b}'), "{text}");
}

#[test]
fn a_planted_link_or_foreign_fifo_at_the_pipe_is_replaced_not_used() {
    let env = Env::new();
    env.ok(&["register", "p", "sh -c 'echo through; exec sleep 600'"]);
    let run = env.ws.join(".process-guardian/run");
    fs::create_dir_all(&run).unwrap();
    let victim = env.ws.join("victim");
    fs::write(&victim, "precious\n").unwrap();
    std::os::unix::fs::symlink(&victim, run.join("p.out")).unwrap();
    env.ok(&["start", "p"]);
    assert!(wait_until(Duration::from_secs(5), || read(
        &env.log_path("p")
    )
    .contains("\nthrough\n")));
    assert_eq!(read(&victim), "precious\n");
    let m = fs::symlink_metadata(run.join("p.out")).unwrap();
    assert!(m.file_type().is_fifo() && m.uid() == unsafe_free_euid() && m.mode() & 0o077 == 0);
    env.ok(&["stop", "p"]);
    // A FIFO of another user there is replaced too.
    fs::remove_file(run.join("p.out")).unwrap();
    let made = std::process::Command::new("mkfifo")
        .args(["-m", "0666"])
        .arg(run.join("p.out"))
        .status()
        .unwrap();
    assert!(made.success());
    std::process::Command::new("chown")
        .args(["nobody"])
        .arg(run.join("p.out"))
        .status()
        .unwrap();
    env.ok(&["start", "p"]);
    let m = fs::symlink_metadata(run.join("p.out")).unwrap();
    assert_eq!(m.uid(), unsafe_free_euid());
    assert_eq!(m.mode() & 0o777, 0o600);
    env.ok(&["stop", "p"]);
}

fn unsafe_free_euid() -> u32 {
    fs::metadata("/proc/self").unwrap().uid()
}
