//! Disk trouble: the workspace on a tiny, full tmpfs. Needs root's right to
//! mount: where it is missing the test fails under CI (where it must run)
//! and is skipped with a message elsewhere.

mod common;

use std::fs;
use std::io::Write;
use std::process::Command;
use std::time::Duration;

use common::*;

struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(at: &std::path::Path, size: &str) -> Option<Tmpfs> {
        let ok = Command::new("mount")
            // mode=0755: a workspace writable by every user is refused.
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(at)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: the test's processes may still hold it while they are killed.
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the filesystem holding `dir` to the last byte.
fn fill(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("filler");
    let mut f = fs::File::create(&path).unwrap();
    let block = vec![b'x'; 4096];
    while f.write_all(&block).is_ok() {}
    while f.write_all(b"x").is_ok() {}
    path
}

#[test]
fn a_full_disk_refuses_register_and_keeps_the_command_running() {
    let env = Env::new();
    let Some(_mnt) = Tmpfs::mount(&env.ws, "1m") else {
        // CI runs as root, where the mount must work: a skip there would hide a regression.
        cannot_run(
            "cannot mount a tmpfs under CI, where root can",
            "cannot mount a tmpfs here (needs root and mount rights)",
        );
        return;
    };
    let pid = env.launch(
        "writer",
        "while true; do echo some-output-that-cannot-be-written; sleep 0.01; done",
        &["--log-max-bytes", "4096"],
    );
    let filler = fill(&env.ws);
    let before = fs::read(env.registry_path()).unwrap();

    let out = env.run(&["register", "other", "sleep 1"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("No space left on device"), "{err}");
    assert!(err.contains(".process-registry.json"), "{err}");
    assert_eq!(
        fs::read(env.registry_path()).unwrap(),
        before,
        "the old registry is intact"
    );

    // The log cannot grow and cannot rotate; the command lives on
    // regardless, and is not blocked writing into a full pipe: its loop
    // keeps starting new `sleep`s.
    let mut sleeps = std::collections::HashSet::new();
    let until = std::time::Instant::now() + Duration::from_secs(3);
    while std::time::Instant::now() < until {
        let children =
            fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        sleeps.extend(children.split_whitespace().map(str::to_string));
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(alive(pid), "the command was killed because its log is full");
    assert!(
        sleeps.len() > 20,
        "the command's loop stalled: {} iterations in 3 s",
        sleeps.len()
    );
    let s = env.status_of("writer");
    assert_eq!(s["state"], "running");
    assert_eq!(s["pid"], pid);

    fs::remove_file(filler).unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || read(&env.log_path("writer"))
            .contains("bytes of output were dropped while")),
        "the log says what was lost once it can"
    );
    env.ok(&["register", "other", "sleep 1"]);
    env.ok(&["stop", "writer"]);
    assert!(!alive(pid));
}
