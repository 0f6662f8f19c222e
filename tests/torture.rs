//! The torture suite: 20 managed processes under random kill -9 of commands
//! and supervisors, SIGSTOP/SIGCONT of supervisors, 8 clients registering,
//! starting, stopping, restarting, deregistering and reading status at once,
//! and a healthcheck every 2 s. Then the invariants, reported with counts.
//!
//! It runs for PG_TORTURE_SECS (default 60) seconds, so it is not part of the
//! default `cargo test`; `.ci/run` runs it: `cargo test --test torture -- --ignored --nocapture`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;

const BASE: usize = 20;
const CLIENTS: usize = 8;
const NAMES_PER_CLIENT: usize = 3;

/// A small xorshift generator: no dependency, and the seed is printed to replay a run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn base_name(i: usize) -> String {
    format!("t{i}")
}
fn base_cmd(i: usize) -> String {
    format!("sleep {}", 100_000 + i)
}
fn client_name(k: usize, j: usize) -> String {
    format!("c{k}-{j}")
}
fn client_cmd(k: usize, j: usize) -> String {
    format!("sleep {}", 200_000 + k * 10 + j)
}

#[derive(Default)]
struct Counts {
    command_kills: AtomicU64,
    supervisor_kills: AtomicU64,
    freezes: AtomicU64,
    client_ops: AtomicU64,
    healthchecks: AtomicU64,
}

/// A live process whose whole command line is `cmdline`, among this test's.
fn copies(env: &Env, cmdline: &str) -> Vec<i32> {
    env.our_processes()
        .into_iter()
        .filter(|p| {
            let c = fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
            String::from_utf8_lossy(&c).replace('\0', " ").trim() == cmdline
        })
        .collect()
}

fn start_time(pid: i32) -> Option<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(19)?
        .parse()
        .ok()
}

#[test]
#[ignore = "runs for a minute; run by .ci/run"]
fn torture() {
    let secs: u64 = std::env::var("PG_TORTURE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let seed: u64 = std::env::var("PG_TORTURE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("torture: {secs} s, seed {seed} (PG_TORTURE_SEED={seed} replays the choices)");
    let env = Arc::new(Env::new());
    for i in 0..BASE {
        // Half restart at once, half go through the quick-crash backoff (never giving up).
        let extra: &[&str] = if i % 2 == 0 {
            &["--restart-cooldown", "0"]
        } else {
            &["--restart-cooldown", "1", "--max-restarts", "0"]
        };
        let mut args = vec!["register", "--stop-timeout", "2"];
        let name = base_name(i);
        let cmd = base_cmd(i);
        args.extend([name.as_str(), cmd.as_str()]);
        args.extend(extra);
        env.ok(&args);
        env.ok(&["start", &name]);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new(Counts::default());
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let killed_commands = Arc::new(Mutex::new(Vec::<(String, i32)>::new()));
    let frozen = Arc::new(Mutex::new(BTreeSet::<i32>::new()));

    // Chaos on the 20 base processes.
    let chaos = {
        let (env, stop, counts, killed, frozen) = (
            env.clone(),
            stop.clone(),
            counts.clone(),
            killed_commands.clone(),
            frozen.clone(),
        );
        std::thread::spawn(move || {
            let mut rng = Rng(seed);
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(20 + rng.below(60) as u64));
                let name = base_name(rng.below(BASE));
                let path = env.ws.join(format!(".process-guardian/run/{name}.json"));
                let Ok(st) = fs::read(&path)
                    .map(|b| serde_json::from_slice::<serde_json::Value>(&b).unwrap_or_default())
                else {
                    continue;
                };
                let pid = st["pid"].as_i64().map(|p| p as i32);
                let pid_start = st["pid_start"].as_u64();
                let sup = st["supervisor_pid"].as_i64().map(|p| p as i32);
                let sup_start = st["supervisor_start"].as_u64();
                match rng.below(10) {
                    0..=4 => {
                        // kill -9 of the command, only if it is still the recorded process.
                        if let (Some(p), Some(s)) = (pid, pid_start)
                            && start_time(p) == Some(s)
                            && alive(p)
                            && unsafe_kill(p, 9)
                        {
                            killed.lock().unwrap().push((name, p));
                            counts.command_kills.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    5..=6 => {
                        if let (Some(p), Some(s)) = (sup, sup_start)
                            && start_time(p) == Some(s)
                            && alive(p)
                            && unsafe_kill(p, 9)
                        {
                            frozen.lock().unwrap().remove(&p);
                            counts.supervisor_kills.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    _ => {
                        if let (Some(p), Some(s)) = (sup, sup_start)
                            && start_time(p) == Some(s)
                            && alive(p)
                            && unsafe_kill(p, 19)
                        {
                            frozen.lock().unwrap().insert(p);
                            counts.freezes.fetch_add(1, Ordering::Relaxed);
                            std::thread::sleep(Duration::from_millis(50 + rng.below(250) as u64));
                            if start_time(p) == Some(s) {
                                unsafe_kill(p, 18);
                            }
                            frozen.lock().unwrap().remove(&p);
                        }
                    }
                }
            }
        })
    };

    // A healthcheck every 2 s, as a very impatient cron.
    let healer = {
        let (env, stop, counts, failures) =
            (env.clone(), stop.clone(), counts.clone(), failures.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let out = env.run(&["healthcheck"]);
                counts.healthchecks.fetch_add(1, Ordering::Relaxed);
                if !matches!(out.status.code(), Some(0) | Some(1)) {
                    failures.lock().unwrap().push(format!(
                        "healthcheck exited {:?}: {}",
                        out.status,
                        stderr(&out)
                    ));
                }
                std::thread::sleep(Duration::from_secs(2));
            }
        })
    };

    // 8 clients, each the only writer of its own names; status of any name.
    let clients: Vec<_> = (0..CLIENTS)
        .map(|k| {
            let (env, stop, counts, failures) =
                (env.clone(), stop.clone(), counts.clone(), failures.clone());
            std::thread::spawn(move || {
                let mut rng = Rng(seed.wrapping_mul(31).wrapping_add(k as u64 * 7919) | 1);
                // name -> (registered, should run)
                let mut model: BTreeMap<String, (bool, bool)> = BTreeMap::new();
                for j in 0..NAMES_PER_CLIENT {
                    model.insert(client_name(k, j), (false, false));
                }
                while !stop.load(Ordering::Relaxed) {
                    let j = rng.below(NAMES_PER_CLIENT);
                    let name = client_name(k, j);
                    let cmd = client_cmd(k, j);
                    let (registered, running) = model[&name];
                    let op = rng.below(6);
                    let (args, expect): (Vec<String>, i32) = match op {
                        0 => (
                            vec![
                                "register".into(),
                                name.clone(),
                                cmd.clone(),
                                "--stop-timeout".into(),
                                "2".into(),
                            ],
                            0,
                        ),
                        1 => (
                            vec!["deregister".into(), name.clone()],
                            if registered { 0 } else { 3 },
                        ),
                        2 => (
                            vec!["start".into(), name.clone()],
                            if registered { 0 } else { 3 },
                        ),
                        3 => (
                            vec!["stop".into(), name.clone()],
                            if registered { 0 } else { 3 },
                        ),
                        4 => (
                            vec!["restart".into(), name.clone()],
                            if registered { 0 } else { 3 },
                        ),
                        _ => {
                            let any = if rng.below(2) == 0 {
                                base_name(rng.below(BASE))
                            } else {
                                name.clone()
                            };
                            let expect = if any.starts_with('t') || registered {
                                0
                            } else {
                                3
                            };
                            (vec!["status".into(), any, "--json".into()], expect)
                        }
                    };
                    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
                    let out = env.run(&argv);
                    counts.client_ops.fetch_add(1, Ordering::Relaxed);
                    if out.status.code() != Some(expect) {
                        failures.lock().unwrap().push(format!(
                            "client {k}: {argv:?} exited {:?}, expected {expect}: {}",
                            out.status.code(),
                            stderr(&out).trim()
                        ));
                        continue;
                    }
                    let next = match op {
                        0 => (true, running),
                        1 => (false, false),
                        2 | 4 if registered => (true, true),
                        3 if registered => (true, false),
                        _ => (registered, running),
                    };
                    model.insert(name, next);
                    std::thread::sleep(Duration::from_millis(rng.below(40) as u64));
                }
                model
            })
        })
        .collect();

    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    chaos.join().unwrap();
    healer.join().unwrap();
    let mut expected: BTreeMap<String, (bool, bool)> = BTreeMap::new();
    for c in clients {
        expected.extend(c.join().unwrap());
    }
    for p in frozen.lock().unwrap().iter() {
        unsafe_kill(*p, 18);
    }
    for i in 0..BASE {
        expected.insert(base_name(i), (true, true));
    }

    let mut violations: Vec<String> = failures.lock().unwrap().clone();
    // A final healthcheck, as cron would run.
    let out = env.run(&["healthcheck"]);
    if !matches!(out.status.code(), Some(0) | Some(1)) {
        violations.push(format!(
            "final healthcheck: {:?} {}",
            out.status,
            stderr(&out)
        ));
    }

    // 1. The registry parses and holds exactly the names the clients left there.
    let reg: serde_json::Value =
        match fs::read_to_string(env.registry_path()).map(|t| serde_json::from_str(&t)) {
            Ok(Ok(v)) => v,
            other => panic!("registry does not parse: {other:?}"),
        };
    let in_registry: BTreeSet<String> = reg.as_object().unwrap().keys().cloned().collect();
    let should_be: BTreeSet<String> = expected
        .iter()
        .filter(|(_, (r, _))| *r)
        .map(|(n, _)| n.clone())
        .collect();
    if in_registry != should_be {
        violations.push(format!(
            "registry holds {in_registry:?}, clients left {should_be:?}"
        ));
    }

    // 2. Every process that should run runs exactly once; nothing stopped is alive.
    let cmdline_of = |name: &str| -> String {
        if let Some(i) = name.strip_prefix('t') {
            base_cmd(i.parse().unwrap())
        } else {
            let (k, j) = name[1..].split_once('-').unwrap();
            client_cmd(k.parse().unwrap(), j.parse().unwrap())
        }
    };
    let settled = wait_until(Duration::from_secs(10), || {
        expected
            .iter()
            .all(|(name, (_, run))| copies(&env, &cmdline_of(name)).len() == usize::from(*run))
    });
    let mut running = 0;
    for (name, (_, run)) in &expected {
        let n = copies(&env, &cmdline_of(name)).len();
        if *run {
            running += 1;
        }
        if n != usize::from(*run) {
            violations.push(format!(
                "{name}: {n} live copies, expected {}",
                usize::from(*run)
            ));
        }
    }
    if !settled {
        eprintln!("torture: processes did not settle within 10 s");
    }

    // 4. After stopping everything: nothing of ours alive, no zombie left.
    let supervisors_seen: Vec<i32> = expected
        .keys()
        .filter_map(|n| {
            let p = env.ws.join(format!(".process-guardian/run/{n}.json"));
            let st: serde_json::Value = serde_json::from_slice(&fs::read(p).ok()?).ok()?;
            st["supervisor_pid"].as_i64().map(|p| p as i32)
        })
        .collect();
    for name in in_registry.iter() {
        let out = env.run(&["stop", name]);
        if out.status.code() != Some(0) {
            violations.push(format!(
                "final stop {name}: {:?} {}",
                out.status.code(),
                stderr(&out)
            ));
        }
    }
    let leftovers = env.our_processes();
    if !leftovers.is_empty() {
        violations.push(format!("alive after stopping all: {leftovers:?}"));
    }
    // Exited supervisors are zombies until PID 1 reaps them (late here);
    // give it a moment. Any zombie left, whoever its parent, is a failure.
    let zombies_gone = wait_until(Duration::from_secs(10), || {
        supervisors_seen
            .iter()
            .all(|p| stat(*p).is_none_or(|s| s.state != b'Z'))
    });
    if !zombies_gone {
        violations.push("zombie supervisors left unreaped".into());
    }

    // 3. Every unexpected death (a kill -9 of a base command) is in
    // alerts.jsonl: one by one, or within the count of a coalesced record
    // (at most 5 a name in 10 s are recorded one by one; the supervisors,
    // now stopped, wrote what they had only counted).
    let alerts = env.alerts();
    let killed = killed_commands.lock().unwrap().clone();
    let mut unrecorded = 0;
    let mut missing: std::collections::BTreeMap<String, Vec<i32>> = Default::default();
    for (name, pid) in &killed {
        let found = alerts
            .iter()
            .any(|a| a["name"] == name.as_str() && a["pid"] == *pid && a["kind"] == "died");
        if !found {
            missing.entry(name.clone()).or_default().push(*pid);
        }
    }
    for (name, pids) in &missing {
        let counted: u64 = alerts
            .iter()
            .filter(|a| a["name"] == name.as_str() && a["kind"] == "died")
            .filter_map(|a| a["coalesced"]["count"].as_u64())
            .sum();
        if (pids.len() as u64) > counted {
            unrecorded += pids.len();
            violations.push(format!(
                "kill -9 of {name} pids {pids:?} is not in alerts.jsonl (coalesced counts {counted})"
            ));
        }
    }

    let c = &counts;
    eprintln!(
        "torture: {secs} s, {} processes ({} should run), command kills {}, supervisor kills {}, SIGSTOP/SIGCONT {}, \
         client ops {}, healthchecks {}, alerts {}, deaths not in alerts {}; violations {}",
        expected.len(),
        running,
        c.command_kills.load(Ordering::Relaxed),
        c.supervisor_kills.load(Ordering::Relaxed),
        c.freezes.load(Ordering::Relaxed),
        c.client_ops.load(Ordering::Relaxed),
        c.healthchecks.load(Ordering::Relaxed),
        alerts.len(),
        unrecorded,
        violations.len()
    );
    for v in &violations {
        eprintln!("  violation: {v}");
    }
    assert!(
        violations.is_empty(),
        "{} invariant violations (seed {seed})",
        violations.len()
    );
}

/// kill(2) by exact pid; true if delivered.
fn unsafe_kill(pid: i32, sig: i32) -> bool {
    std::process::Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
