//! The seed's shell interface and the installer.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

fn shim(env: &Env, args: &[&str]) -> std::process::Output {
    let mut c = Command::new("bash");
    c.arg(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scripts/managed-process.sh"
    ))
    .args(args)
    .current_dir(&env.ws)
    .env("PROCESS_GUARDIAN_BIN", BIN)
    .env("PROCESS_GUARDIAN_WORKSPACE", &env.ws)
    .env("PROCESS_GUARDIAN_ALERT_DIR", &env.alerts);
    run_with_deadline(c, Duration::from_secs(60))
}

#[test]
fn the_seed_quick_start_works_verbatim_through_the_shim() {
    let env = Env::new();
    std::fs::write(
        env.ws.join("bot.py"),
        "import time\nwhile True:\n    print('tick', flush=True)\n    time.sleep(1)\n",
    )
    .unwrap();
    let out = shim(&env, &["register", "my-bot", "python3 bot.py", "480"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = shim(&env, &["start", "my-bot"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = shim(&env, &["status"]);
    assert!(out.status.success());
    let table = stdout(&out);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("my-bot") && l.contains("running") && l.contains("480 min")),
        "{table}"
    );
    assert!(wait_until(Duration::from_secs(5), || read(
        &env.log_path("my-bot")
    )
    .contains("tick")));
    for cmd in [
        &["restart", "my-bot"][..],
        &["healthcheck"][..],
        &["stop", "my-bot"][..],
        &["deregister", "my-bot"][..],
    ] {
        let out = shim(&env, cmd);
        assert!(out.status.success(), "{cmd:?}: {}", stderr(&out));
    }
    // Exit codes pass through.
    assert_eq!(shim(&env, &["start", "my-bot"]).status.code(), Some(3));
}

/// Builds the static release binary, so it runs in CI rather than
/// the default `cargo test`: `cargo test --test scripts -- --ignored`.
#[test]
#[ignore = "builds a release binary; run by .ci/run"]
fn install_sh_twice_installs_once() {
    let Some(cron) = UserCrontab::take() else {
        return;
    };
    let env = Env::new();
    let prefix = env.ws.join("prefix");
    // install.sh runs as root here (it builds in this repository), and
    // `crontab` on its PATH is the real one pointed at the test user's
    // table: the invoking user's crontab is never touched.
    let wrapper = env.ws.join("crontab-of-test-user");
    std::fs::create_dir_all(&wrapper).unwrap();
    let real = stdout(
        &Command::new("sh")
            .args(["-c", "command -v crontab"])
            .output()
            .unwrap(),
    );
    std::fs::write(
        wrapper.join("crontab"),
        format!("#!/bin/sh\nexec {} -u {CRON_USER} \"$@\"\n", real.trim()),
    )
    .unwrap();
    std::fs::set_permissions(
        wrapper.join("crontab"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        wrapper.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let install = |extra: &[&str]| {
        let mut c = install_sh(&env, &prefix, extra);
        c.env("PATH", &path);
        run_with_deadline(c, Duration::from_secs(900))
    };
    let first = install(&[]);
    let second = install(&[]);
    let table = cron.read();
    let uninstall = install(&["--uninstall"]);
    let after = cron.read();
    assert!(
        first.status.success(),
        "{}{}",
        stdout(&first),
        stderr(&first)
    );
    assert!(second.status.success(), "{}", stderr(&second));
    assert!(
        stdout(&second).contains("already installed"),
        "{}",
        stdout(&second)
    );
    assert!(
        has_interpreter(&std::fs::read("/bin/sh").unwrap()),
        "the check sees a dynamic binary"
    );
    let installed = std::fs::read(prefix.join("bin/process-guardian")).unwrap();
    assert!(
        !has_interpreter(&installed),
        "the installed binary is static: no PT_INTERP (dynamic loader) in its program headers"
    );
    assert!(env.registry_path().exists());
    // The completion and the manual page, under the prefix.
    let completion = read(&prefix.join("share/bash-completion/completions/process-guardian"));
    assert!(completion.contains("complete -F"), "{completion}");
    assert!(completion.contains("healthcheck"), "{completion}");
    let man = read(&prefix.join("share/man/man1/process-guardian.1"));
    assert!(man.contains(".TH process-guardian"), "{man}");
    let ws = env.ws.display().to_string();
    assert_eq!(
        table.lines().filter(|l| l.contains(&ws)).count(),
        2,
        "{table}"
    );
    assert!(uninstall.status.success());
    assert_eq!(after.lines().filter(|l| l.contains(&ws)).count(), 0);
    assert!(
        prefix.join("bin/process-guardian").exists(),
        "--uninstall keeps the binary"
    );
}

/// Whether a 64-bit little-endian ELF file names a dynamic loader (PT_INTERP).
fn has_interpreter(elf: &[u8]) -> bool {
    assert_eq!(&elf[..4], b"\x7fELF", "not an ELF file");
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(elf[0x20..0x28].try_into().unwrap()) as usize;
    let (size, count) = (u16_at(0x36), u16_at(0x38));
    (0..count).any(|i| {
        let at = phoff + i * size;
        u32::from_le_bytes(elf[at..at + 4].try_into().unwrap()) == 3
    })
}

/// A PATH with every program of the usual directories but cron's and
/// systemctl, plus the directory of cargo: a fresh machine without cron.
fn path_without_cron(farm: &std::path::Path) -> String {
    std::fs::create_dir_all(farm).unwrap();
    for dir in [
        "/usr/local/sbin",
        "/usr/local/bin",
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
    ] {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            if matches!(
                name.to_str(),
                Some("crontab" | "cron" | "crond" | "systemctl")
            ) {
                continue;
            }
            let _ = std::os::unix::fs::symlink(e.path(), farm.join(&name));
        }
    }
    let cargo = Command::new("sh")
        .args(["-c", "command -v cargo"])
        .output()
        .unwrap();
    let cargo = std::path::PathBuf::from(stdout(&cargo).trim());
    format!("{}:{}", cargo.parent().unwrap().display(), farm.display())
}

/// install.sh on a machine without cron: it installs the binary and the
/// registry, says what is missing and how to fix it, and exits 0.
#[test]
#[ignore = "builds the static release binary; run by .ci/run"]
fn install_sh_without_cron_installs_and_says_what_is_missing() {
    let env = Env::new();
    let prefix = env.ws.join("prefix");
    let path = path_without_cron(&env.ws.join("path"));
    let mut c = install_sh(&env, &prefix, &[]);
    c.env("PATH", &path);
    let out = run_with_deadline(c, Duration::from_secs(900));
    let said = format!("{}{}", stdout(&out), stderr(&out));
    assert!(out.status.success(), "{said}");
    assert!(prefix.join("bin/process-guardian").exists(), "{said}");
    assert!(env.registry_path().exists(), "{said}");
    assert!(said.contains("crontab not found"), "{said}");
    assert!(
        said.contains("apt-get install -y cron"),
        "the fix is named: {said}"
    );
}

/// `bash scripts/install.sh [extra] --prefix PREFIX --workspace WS`, alerts in the test's directory.
fn install_sh(env: &Env, prefix: &std::path::Path, extra: &[&str]) -> Command {
    let mut c = Command::new("bash");
    c.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/install.sh"))
        .args(extra)
        .args([
            "--prefix",
            prefix.to_str().unwrap(),
            "--workspace",
            env.ws.to_str().unwrap(),
        ])
        .env("PROCESS_GUARDIAN_ALERT_DIR", &env.alerts);
    c
}
