//! `export`: registered entries as the definitions of a bigger engine, a
//! systemd unit or a Kubernetes workload, for users who outgrow one box.
//!
//! Each target keeps what it can express and says, in the output itself
//! (a comment, an annotation), what it cannot. The two share `Plan`: the
//! command as the supervisor would run it (argv, environment, directory).

pub mod kubernetes;
pub mod systemd;

use crate::cmdline;
use crate::registry::Entry;

/// One entry, ready to be written for another engine.
#[derive(Debug, Clone)]
pub struct Plan {
    pub name: String,
    pub entry: Entry,
    /// The program and its arguments; `["/bin/sh", "-c", command]` where
    /// the command needs a shell.
    pub argv: Vec<String>,
    pub shell: bool,
    /// What the command gets on top of its engine's environment, in the
    /// supervisor's order: the command's `VAR=value` words, then `env`
    /// (which wins), then `PROCESS_GUARDIAN_NAME`.
    pub env: Vec<(String, String)>,
    /// The working directory as the supervisor resolves it: the entry's,
    /// relative to the workspace, or the workspace itself.
    pub cwd: String,
}

impl Plan {
    pub fn new(name: &str, entry: &Entry, workspace: &std::path::Path) -> Plan {
        let parsed = cmdline::parse(&entry.command);
        let shell = parsed.argv.len() == 3
            && parsed.argv[0] == "/bin/sh"
            && parsed.argv[1] == "-c"
            && parsed.argv[2] == entry.command;
        let mut env: std::collections::BTreeMap<String, String> = parsed.env.into_iter().collect();
        env.extend(entry.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        env.insert("PROCESS_GUARDIAN_NAME".into(), name.to_string());
        Plan {
            name: name.to_string(),
            entry: entry.clone(),
            argv: parsed.argv,
            shell,
            env: env.into_iter().collect(),
            cwd: entry
                .cwd
                .as_ref()
                .map_or_else(|| workspace.to_path_buf(), |c| workspace.join(c))
                .display()
                .to_string(),
        }
    }

    pub fn cwd(&self) -> &str {
        &self.cwd
    }
}

/// What neither target expresses, in words for a comment: the same in both.
pub fn untranslated_common(e: &Entry) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(cmd) = &e.alert_command {
        out.push(format!(
            "alert_command {}: alerts are process-guardian's; hook the engine's own failure events",
            one_line(cmd)
        ));
    }
    if let Some(m) = e.stale_after_min {
        out.push(format!(
            "stale_after_min {m}: a quiet log is not a death to the engine; a liveness check that sees the hang can"
        ));
    }
    if e.duration_min > 0.0 {
        out.push(format!(
            "duration_min {}: process-guardian counted an exit 0 before 80 % of it as a crash{}; here any exit 0 is a completion. Nothing stops it at its duration, here as there",
            e.duration_min,
            if e.auto_restart {
                " and restarted it"
            } else {
                ""
            }
        ));
    }
    out
}

/// Text on one line, control characters shown as `?`: for a comment or an
/// annotation that a newline in a command would otherwise break.
pub fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// Seconds as a whole number for a field that takes one, rounded up (a
/// grace period is never shortened), at least `min`.
pub fn whole_secs(s: f64, min: i64) -> i64 {
    if !s.is_finite() {
        return min;
    }
    // Entry::validate bounds every duration to 10 years of minutes, far
    // inside i64; `as` saturates in any case.
    (s.ceil() as i64).max(min)
}
