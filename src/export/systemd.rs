//! An entry as a systemd `.service` unit.
//!
//! The unit is text in systemd's own syntax; every value that comes from the
//! registry goes through one of the escapes below, so no command, path or
//! variable can add a line or a setting. `%` (specifiers) is doubled
//! everywhere; `$` is doubled in `ExecStart=` (where systemd expands
//! variables); quotes and backslashes are escaped inside quoted words.

use std::fmt::Write as _;
use std::path::Path;

use super::{Plan, one_line, untranslated_common};
use crate::registry::Entry;

/// Where the unit runs: the system manager or a user's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Manager {
    System,
    User,
}

/// One unit, its file name and the notes its comment holds.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Unit {
    pub name: String,
    /// `NAME.service`.
    pub unit: String,
    pub text: String,
    /// What the unit does not express, as its comment says.
    pub untranslated: Vec<String>,
    /// The program was not found on PATH: `ExecStart=` names it bare.
    #[serde(skip)]
    pub unresolved: Option<String>,
}

/// What a unit needs besides the entry.
pub struct Context<'a> {
    pub manager: Manager,
    pub registry: &'a Path,
    pub log: &'a Path,
    /// The PATH the program is looked up on when the entry has none.
    pub path_var: &'a str,
    /// `User=` for a system unit written by someone other than root.
    pub user: Option<String>,
}

pub fn unit(plan: &Plan, cx: &Context) -> Result<Unit, String> {
    let e = &plan.entry;
    let mut untranslated = untranslated_common(e);
    untranslated.extend(probes_untranslated(e));
    if e.timestamps {
        untranslated.push(
            "timestamps: lines appended to a file are not stamped; StandardOutput=journal stamps each one"
                .into(),
        );
    }
    untranslated.push(format!(
        "log_max_bytes {} and log_keep {}: systemd appends without a bound; rotate the file with logrotate (copytruncate), or use StandardOutput=journal",
        e.log_max_bytes(),
        e.log_keep()
    ));

    // ExecStart: the program as an absolute path, found now on the PATH it
    // would have had.
    let cwd = plan.cwd();
    let path_var = plan
        .env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map_or(cx.path_var, |(_, v)| v.as_str());
    let mut argv = plan.argv.clone();
    let mut unresolved = None;
    match crate::launch::resolve_program(&argv[0], path_var, Path::new(cwd)) {
        Some(p) if p.is_absolute() => argv[0] = without_dots(&p),
        _ if argv[0].contains('/') => {
            // A path: absolute from the working directory, found or not.
            unresolved = Some(argv[0].clone());
            untranslated.push(format!(
                "the program {} did not exist when this was written",
                one_line(&argv[0])
            ));
            argv[0] = without_dots(&Path::new(cwd).join(&argv[0]));
        }
        _ => {
            unresolved = Some(argv[0].clone());
            untranslated.push(format!(
                "the program {} was not found on PATH when this was written: ExecStart names it bare, and systemd looks in its own directories",
                one_line(&argv[0])
            ));
        }
    }
    let exec = argv
        .iter()
        .map(|a| exec_word(a))
        .collect::<Result<Vec<_>, _>>()?
        .join(" ");

    let mut t = String::new();
    let _ = writeln!(
        t,
        "# {}.service: written by `process-guardian export systemd` from entry {:?} of",
        plan.name, plan.name
    );
    let _ = writeln!(t, "# {}", one_line(&cx.registry.display().to_string()));
    let _ = writeln!(t, "# The command: {}", one_line(&e.command));
    t.push_str(
        "# systemd starts it with its own environment, not the one of the shell that\n\
         # ran `process-guardian start`: Environment= below is all it adds.\n",
    );
    if !untranslated.is_empty() {
        t.push_str("# Not translated:\n");
        for u in &untranslated {
            let _ = writeln!(t, "#   - {}", one_line(u));
        }
    }
    if e.duration_min > 0.0 {
        let _ = writeln!(
            t,
            "# To stop it at its duration, add: RuntimeMaxSec={}\n\
             # (systemd counts that stop as a failure: with Restart=on-failure it starts again)",
            super::whole_secs(e.duration_min * 60.0, 1)
        );
    }

    t.push_str("\n[Unit]\n");
    let _ = writeln!(
        t,
        "Description={} (from process-guardian)",
        plain(&one_line(&plan.name))
    );
    for dep in &e.after {
        let _ = writeln!(t, "After={dep}.service\nWants={dep}.service");
    }
    let (burst, interval) = start_limit(e);
    match burst {
        Some(b) => {
            let _ = writeln!(t, "StartLimitBurst={b}\nStartLimitIntervalSec={interval}");
        }
        None => t.push_str("StartLimitIntervalSec=0\n"),
    }

    t.push_str("\n[Service]\nType=simple\n");
    if let Some(user) = &cx.user
        && cx.manager == Manager::System
    {
        let _ = writeln!(t, "User={}", path_value("User", user)?);
    }
    let _ = writeln!(
        t,
        "WorkingDirectory={}",
        path_value("WorkingDirectory", cwd)?
    );
    for (k, v) in &plan.env {
        let _ = writeln!(t, "Environment={}", env_word(k, v));
    }
    if let Some(file) = &e.env_file {
        let abs = Path::new(cwd).join(file);
        let _ = writeln!(
            t,
            "EnvironmentFile={}",
            path_value("EnvironmentFile", &abs.display().to_string())?
        );
    }
    let _ = writeln!(t, "ExecStart={exec}");
    let (restart, delay) = restart(e);
    let _ = writeln!(t, "Restart={restart}\nRestartSec={delay}");
    let _ = writeln!(
        t,
        "KillMode=control-group\nKillSignal=SIG{}\nTimeoutStopSec={}",
        e.stop_signal(),
        span(e.stop_timeout().as_secs_f64())
    );
    if let Some(m) = e.max_memory_bytes {
        let _ = writeln!(t, "MemoryMax={m}");
    }
    let log = path_value("StandardOutput", &cx.log.display().to_string())?;
    let _ = writeln!(
        t,
        "StandardInput=null\nStandardOutput=append:{log}\nStandardError=append:{log}"
    );

    t.push_str("\n[Install]\n");
    let _ = writeln!(
        t,
        "WantedBy={}",
        match cx.manager {
            Manager::System => "multi-user.target",
            Manager::User => "default.target",
        }
    );
    Ok(Unit {
        name: plan.name.clone(),
        unit: format!("{}.service", plan.name),
        text: t,
        untranslated,
        unresolved,
    })
}

/// A path without its `.` components (`/srv/./run.sh` is `/srv/run.sh`).
fn without_dots(p: &Path) -> String {
    p.components()
        .filter(|c| *c != std::path::Component::CurDir)
        .collect::<std::path::PathBuf>()
        .display()
        .to_string()
}

fn probes_untranslated(e: &Entry) -> Vec<String> {
    let mut out = Vec::new();
    if let Some((kind, target)) = e.ready.as_ref().and_then(|r| r.probe()) {
        out.push(format!(
            "ready ({kind} {}): systemd has no readiness probe; units ordered after this one start once it has exec'd (Type=simple), or when the program says so with sd_notify (Type=notify)",
            one_line(target)
        ));
    }
    if let Some((kind, target)) = e.health.as_ref().and_then(|h| h.probe()) {
        out.push(format!(
            "health ({kind} {}): systemd has no HTTP, TCP or command liveness probe; WatchdogSec= restarts a program that stops calling sd_notify",
            one_line(target)
        ));
    }
    out
}

/// `Restart=` and `RestartSec=`. process-guardian restarts any exit of an
/// indefinite entry (an exit 0 included), an entry with a duration unless
/// it completed, and nothing without `auto_restart`. It restarts at once
/// after a long run and backs off 1, 2, 4… s after quick crashes; systemd
/// 252 has one delay, so the first back-off is used (100 ms, systemd's
/// default, when the crash-loop protection is off).
fn restart(e: &Entry) -> (&'static str, &'static str) {
    let policy = if !e.auto_restart {
        "no"
    } else if e.duration_min > 0.0 {
        "on-failure"
    } else {
        "always"
    };
    let delay = if e.restart_cooldown > 0.0 {
        "1s"
    } else {
        "100ms"
    };
    (policy, delay)
}

/// `StartLimitBurst=` and `StartLimitIntervalSec=`: process-guardian gives
/// up at the (max_restarts + 1)-th run in a row shorter than
/// `restart_cooldown`; systemd refuses a start past `burst` starts within
/// `interval`. So `burst` is the first start and its `max_restarts`
/// restarts, and `interval` the longest those quick runs can take, each
/// under the cooldown plus the one-second delay. No limit (`None`) when
/// either setting turns the protection off.
fn start_limit(e: &Entry) -> (Option<u64>, String) {
    if !e.auto_restart || e.max_restarts == 0 || e.restart_cooldown <= 0.0 {
        return (None, "0".into());
    }
    let burst = u64::from(e.max_restarts) + 1;
    let interval = (e.restart_cooldown + 1.0) * burst as f64;
    (Some(burst), span(interval))
}

/// A time span systemd reads: whole seconds as `10s`, else milliseconds.
fn span(s: f64) -> String {
    let ms = (s * 1000.0).round();
    if !ms.is_finite() || ms <= 0.0 {
        return "0".into();
    }
    // Bounded by Entry::validate (a day, or ten years of minutes).
    let ms = ms as u64;
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// A value that systemd takes as it stands (a path, a user name): specifiers
/// doubled, and refused if it holds what would end the line or be trimmed.
fn path_value(setting: &str, v: &str) -> Result<String, String> {
    if v.chars().any(char::is_control) || v.trim() != v || v.is_empty() {
        return Err(format!(
            "{setting}={v:?} holds a control character or surrounding blanks, which a unit file cannot hold"
        ));
    }
    Ok(plain(v))
}

/// Specifiers (`%n`, `%h`…) are expanded in most settings: `%%` is a `%`.
fn plain(v: &str) -> String {
    v.replace('%', "%%")
}

/// A word of `ExecStart=`: bare when nothing in it is special to systemd,
/// else in double quotes with C escapes. `$` is doubled (systemd expands
/// `$VAR`), `%` too. A word that is exactly `;` would separate commands.
fn exec_word(w: &str) -> Result<String, String> {
    let bare = !w.is_empty()
        && w.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:,+=@^".contains(c));
    if bare {
        return Ok(w.to_string());
    }
    Ok(format!("\"{}\"", c_escape(w).replace('$', "$$")))
}

/// `Environment="KEY=value"`: quoted, C escapes, `%` doubled; `$` is not
/// expanded there, so it stays.
fn env_word(k: &str, v: &str) -> String {
    format!("\"{}\"", c_escape(&format!("{k}={v}")))
}

fn c_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '%' => out.push_str("%%"),
            c if c.is_control() => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    let _ = write!(out, "\\x{b:02x}");
                }
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_escaped_for_systemd() {
        assert_eq!(exec_word("/usr/bin/python3").unwrap(), "/usr/bin/python3");
        assert_eq!(exec_word("a b").unwrap(), "\"a b\"");
        assert_eq!(exec_word("$HOME").unwrap(), "\"$$HOME\"");
        assert_eq!(exec_word("50%").unwrap(), "\"50%%\"");
        assert_eq!(exec_word(";").unwrap(), "\";\"");
        assert_eq!(exec_word("").unwrap(), "\"\"");
        assert_eq!(
            exec_word("say \"hi\"\nnext").unwrap(),
            "\"say \\\"hi\\\"\\nnext\""
        );
        assert_eq!(env_word("A", "1 \\ 2"), "\"A=1 \\\\ 2\"");
        assert_eq!(env_word("P", "$x%"), "\"P=$x%%\"");
        assert!(path_value("WorkingDirectory", "/a\nExecStart=/bin/evil").is_err());
        assert_eq!(
            path_value("WorkingDirectory", "/srv/50%").unwrap(),
            "/srv/50%%"
        );
    }

    #[test]
    fn restart_policy_and_limits_follow_the_entry() {
        let mut e = Entry::new("sleep 1".into());
        assert_eq!(restart(&e), ("always", "1s"));
        assert_eq!(start_limit(&e), (Some(6), "186s".to_string()));
        e.duration_min = 5.0;
        assert_eq!(restart(&e).0, "on-failure");
        e.auto_restart = false;
        assert_eq!(restart(&e).0, "no");
        assert_eq!(start_limit(&e).0, None);
        e.auto_restart = true;
        e.max_restarts = 0;
        assert_eq!(start_limit(&e).0, None);
        e.max_restarts = 2;
        e.restart_cooldown = 0.0;
        assert_eq!(start_limit(&e).0, None);
        assert_eq!(restart(&e).1, "100ms");
        assert_eq!(span(2.5), "2500ms");
        assert_eq!(span(10.0), "10s");
    }
}
