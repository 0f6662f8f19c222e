//! `cron install|uninstall|show`: two lines in the invoking user's crontab
//! (`*/5` and `@reboot`) that run this binary's healthcheck for this
//! workspace. Every other line of the crontab is kept byte for byte.

use std::io::Write;
use std::process::{Command, Stdio};

use super::output::Output;
use crate::cli::CronAction;
use crate::cmdline::quote;
use crate::error::{Error, Result};
use crate::workspace::Workspace;

/// Environment worth carrying into cron's bare environment.
const CARRIED_ENV: &[&str] = &[
    "PATH",
    crate::workspace::ALERT_DIR_ENV,
    crate::alert::COMMAND_ENV,
    crate::alert::COOLDOWN_ENV,
];

fn marker(ws: &Workspace) -> String {
    format!("# process-guardian healthcheck {}", ws.root().display())
}

/// `%` ends a cron command line unless escaped.
fn cron_escape(s: &str) -> String {
    s.replace('%', "\\%")
}

fn our_lines(ws: &Workspace, every_minute: bool) -> Result<Vec<String>> {
    let exe = std::env::current_exe().map_err(|e| Error::io("find", "/proc/self/exe", e))?;
    let exe = std::fs::canonicalize(&exe).unwrap_or(exe);
    let log = ws.logs_dir().join("healthcheck.log");
    let mut env = String::new();
    for var in CARRIED_ENV {
        // The alert directory as resolved here: cron runs from another directory.
        let value = if *var == crate::workspace::ALERT_DIR_ENV {
            std::env::var_os(var).map(|_| Workspace::alert_dir().display().to_string())
        } else {
            std::env::var(var).ok()
        };
        if let Some(v) = value
            && !v.is_empty()
        {
            env.push_str(&format!("{var}={} ", quote(&v)));
        }
    }
    let cmd = cron_escape(&format!(
        "{env}{} --workspace {} healthcheck >> {} 2>&1",
        quote(&exe.display().to_string()),
        quote(&ws.root().display().to_string()),
        quote(&log.display().to_string())
    ));
    let schedule = if every_minute {
        "* * * * *"
    } else {
        "*/5 * * * *"
    };
    let m = marker(ws);
    Ok(vec![
        format!("{schedule} {cmd} {m}"),
        format!("@reboot {cmd} {m}"),
    ])
}

fn read_crontab() -> Result<String> {
    let out = Command::new("crontab")
        .arg("-l")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            Error::Failed(format!(
                "cannot run crontab: {e}; install cron (Debian: apt-get install cron)"
            ))
        })?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    if err.contains("no crontab") {
        return Ok(String::new());
    }
    Err(Error::Failed(format!("crontab -l failed: {}", err.trim())))
}

fn write_crontab(text: &str) -> Result<()> {
    let mut child = Command::new("crontab")
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Failed(format!("cannot run crontab: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| Error::Failed(format!("cannot write to crontab: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Error::Failed(format!("crontab: {e}")))?;
    if !out.status.success() {
        return Err(Error::Failed(format!(
            "crontab refused the new table: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// The crontab without our lines, each other line exactly as it was.
fn without_ours(current: &str, marker: &str) -> String {
    let mut kept = String::new();
    for line in current.split_inclusive('\n') {
        if !line.trim_end_matches('\n').ends_with(marker) {
            kept.push_str(line);
        }
    }
    if !kept.is_empty() && !kept.ends_with('\n') {
        kept.push('\n');
    }
    kept
}

/// Whether a cron daemon runs on this machine (`cron`, `crond`, busybox's `crond`).
pub fn cron_daemon_running() -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return false;
    };
    dir.flatten().any(|e| {
        e.file_name()
            .to_str()
            .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
            && std::fs::read_to_string(e.path().join("comm"))
                .is_ok_and(|c| matches!(c.trim(), "cron" | "crond"))
    })
}

/// This workspace's lines in the user's crontab.
pub fn installed_lines(ws: &Workspace) -> Result<Vec<String>> {
    let m = marker(ws);
    Ok(read_crontab()?
        .lines()
        .filter(|l| l.ends_with(&m))
        .map(str::to_string)
        .collect())
}

pub fn run(ws: &Workspace, action: CronAction) -> Result<Output> {
    let m = marker(ws);
    let current = read_crontab()?;
    let (verb, lines, changed, human) = match action {
        CronAction::Show => {
            let ours: Vec<String> = current
                .lines()
                .filter(|l| l.ends_with(&m))
                .map(str::to_string)
                .collect();
            let human = if ours.is_empty() {
                vec![format!(
                    "no healthcheck lines for {} (add them with: process-guardian cron install)",
                    ws.root().display()
                )]
            } else {
                ours.clone()
            };
            ("show", ours, false, human)
        }
        CronAction::Install { every_minute } => {
            ws.ensure_dirs()?;
            let lines = our_lines(ws, every_minute)?;
            let mut next = without_ours(&current, &m);
            for l in &lines {
                next.push_str(l);
                next.push('\n');
            }
            let changed = next != current;
            if changed {
                write_crontab(&next)?;
            }
            let mut human = vec![if changed {
                "installed the healthcheck lines:".to_string()
            } else {
                "the healthcheck lines are already installed:".to_string()
            }];
            human.extend(lines.iter().map(|l| format!("  {l}")));
            if !cron_daemon_running() {
                human.push(
                    "warning: no cron daemon is running, so these lines will not run: start it (cron, or: service cron start); meanwhile the warden revives what dies while any supervisor lives".into(),
                );
            }
            ("install", lines, changed, human)
        }
        CronAction::Uninstall => {
            let next = without_ours(&current, &m);
            let changed = next != current;
            if changed {
                write_crontab(&next)?;
            }
            let root = ws.root().display();
            let human = vec![if changed {
                format!("removed the healthcheck lines for {root}")
            } else {
                format!("no healthcheck lines to remove for {root}")
            }];
            ("uninstall", Vec::new(), changed, human)
        }
    };
    Ok(Output::new(
        human,
        serde_json::json!({ "action": verb, "changed": changed, "lines": lines }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_lines_are_kept_byte_for_byte() {
        let m = "# process-guardian healthcheck /w";
        let current = format!(
            "MAILTO=x\n0 1 * * * echo   'a%b'  \n*/5 * * * * pg healthcheck {m}\n@reboot pg {m}\n# end"
        );
        assert_eq!(
            without_ours(&current, m),
            "MAILTO=x\n0 1 * * * echo   'a%b'  \n# end\n"
        );
        assert_eq!(without_ours("", m), "");
        assert!(cron_escape("a%b").contains("a\\%b"));
    }
}
