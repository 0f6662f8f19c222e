//! `status [name] [--json]`: a table for people, a JSON array for programs.

use std::io::IsTerminal;

use serde::Serialize;

use super::output::Output;
use crate::error::Result;
use crate::proc;
use crate::registry::{Entry, Registry};
use crate::state::{self, Desired, ExitRecord, Observed, Shown};
use crate::workspace::Workspace;

/// One process as `status --json` and `healthcheck --json` print it,
/// serialized straight from borrowed fields.
#[derive(Serialize)]
pub struct Row<'a> {
    name: &'a str,
    state: &'static str,
    pid: Option<i32>,
    uptime_s: Option<f64>,
    restarts: u32,
    desired: Desired,
    last_exit: Option<&'a ExitRecord>,
    auto_restart: bool,
    duration_min: f64,
    command: &'a str,
    /// As text (a path that is not UTF-8 has no JSON form).
    log: String,
    cwd: Option<&'a str>,
    supervisor_pid: Option<i32>,
    quick_crashes: u32,
    next_start_at: Option<&'a str>,
    stopped_by: Option<&'a str>,
    message: Option<String>,
    /// Running with a definition other than the registry's (see `restart`).
    config_changed: bool,
    /// CPU of its tree, percent of one core over the command's lifetime.
    cpu_pct: Option<f64>,
    /// Resident memory of its tree.
    rss_bytes: Option<u64>,
}

/// Whether a running process was started with a definition other than
/// the registry's entry now.
pub fn config_changed(entry: &Entry, seen: &Observed) -> bool {
    seen.supervisor_alive
        && seen.state.as_ref().and_then(|s| s.runs_definition(entry)) == Some(false)
}

/// An entry as status reads it: valid, or the reason it is not.
pub type Checked = std::result::Result<Entry, String>;

/// The placeholder behind the row of an entry that does not validate.
fn no_entry() -> &'static Entry {
    static E: std::sync::OnceLock<Entry> = std::sync::OnceLock::new();
    E.get_or_init(|| Entry::new(String::new()))
}

/// Where the rows' logs are, as text ending in `/`: built once for a
/// listing (a path built per row cost more than the rest of the row).
pub fn logs_prefix(ws: &Workspace) -> String {
    let mut dir = ws.logs_dir().to_string_lossy().into_owned();
    dir.push('/');
    dir
}

pub fn row<'a>(
    logs: &str,
    name: &'a str,
    entry: &'a Checked,
    seen: &'a Observed,
    usage: Option<proc::Usage>,
) -> Row<'a> {
    let st = seen.state.as_ref();
    let running = matches!(seen.shown, Shown::Running | Shown::Starting);
    let (entry, invalid) = match entry {
        Ok(e) => (e, None),
        Err(why) => (no_entry(), Some(why.as_str())),
    };
    Row {
        name,
        state: if invalid.is_some() {
            "invalid"
        } else {
            seen.shown.as_str()
        },
        pid: seen.pid().filter(|_| running),
        uptime_s: st
            .filter(|_| running && seen.command_alive)
            .and_then(|s| s.uptime_s())
            .map(|u| u.max(0.0)),
        restarts: st.map_or(0, |s| s.restarts),
        desired: if st.is_some() {
            seen.desired()
        } else {
            Desired::Stopped
        },
        last_exit: st.and_then(|s| s.last_exit.as_ref()),
        auto_restart: entry.auto_restart,
        duration_min: entry.duration_min,
        command: &entry.command,
        log: [logs, name, ".log"].concat(),
        cwd: entry.cwd.as_deref(),
        supervisor_pid: st
            .and_then(|s| s.supervisor_pid)
            .filter(|_| seen.supervisor_alive),
        quick_crashes: st.map_or(0, |s| s.quick_crashes),
        next_start_at: st
            .and_then(|s| s.next_start_at.as_deref())
            .filter(|_| seen.shown == Shown::Backoff),
        stopped_by: st.and_then(|s| s.stopped_by.as_deref()),
        message: invalid
            .map(str::to_string)
            .or_else(|| frozen_message(seen))
            .or_else(|| st.and_then(|s| s.message.clone())),
        config_changed: invalid.is_none() && config_changed(entry, seen),
        cpu_pct: usage.map(|u| u.cpu_pct),
        rss_bytes: usage.map(|u| u.rss_bytes),
    }
}

/// A JSON array of rows as `serde_json::to_string_pretty` writes it, byte
/// for byte (a test holds the two equal), without its call per token,
/// which cost more than the rest of a listing; a row at a time.
struct PrettyRows {
    out: Vec<u8>,
    rows: usize,
}

impl PrettyRows {
    fn with_capacity(rows: usize) -> PrettyRows {
        let mut out = Vec::with_capacity(rows.saturating_mul(700).min(1 << 24) + 2);
        out.push(b'[');
        PrettyRows { out, rows: 0 }
    }

    /// The document: for a program, printed as it is.
    fn finish(mut self) -> Output {
        self.out
            .extend_from_slice(if self.rows == 0 { b"]" } else { b"\n]" });
        // Always UTF-8: every piece is a `str` or serde_json's own output.
        let json = String::from_utf8(self.out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        Output {
            json,
            ..Output::human(Vec::new())
        }
    }

    fn push(&mut self, r: &Row) {
        use serde_json::ser::{CompactFormatter, Formatter};
        let out = &mut self.out;
        // A key with what comes before it, one literal: `first` of its
        // object or not, at the row's depth or inside `last_exit` (`in2`).
        macro_rules! key {
            (first, $k:literal) => {
                out.extend_from_slice(concat!("\n    \"", $k, "\": ").as_bytes())
            };
            ($k:literal) => {
                out.extend_from_slice(concat!(",\n    \"", $k, "\": ").as_bytes())
            };
            (in2 first, $k:literal) => {
                out.extend_from_slice(concat!("\n      \"", $k, "\": ").as_bytes())
            };
            (in2 $k:literal) => {
                out.extend_from_slice(concat!(",\n      \"", $k, "\": ").as_bytes())
            };
        }
        let text = |out: &mut Vec<u8>, s: &str| {
            if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
                out.push(b'"');
                out.extend_from_slice(s.as_bytes());
                out.push(b'"');
            } else {
                let _ = serde_json::to_writer(&mut *out, s);
            }
        };
        let opt_text = |out: &mut Vec<u8>, s: Option<&str>| match s {
            Some(s) => text(out, s),
            None => out.extend_from_slice(b"null"),
        };
        let float = |out: &mut Vec<u8>, v: f64| {
            if v.is_finite() {
                let _ = CompactFormatter.write_f64(out, v);
            } else {
                out.extend_from_slice(b"null");
            }
        };
        let opt = |out: &mut Vec<u8>, v: Option<i64>| match v {
            Some(v) => {
                let _ = CompactFormatter.write_i64(out, v);
            }
            None => out.extend_from_slice(b"null"),
        };
        let flag =
            |out: &mut Vec<u8>, v: bool| out.extend_from_slice(if v { b"true" } else { b"false" });
        // Every field named: a field added to `Row` does not compile here
        // until it is written.
        let Row {
            name,
            state,
            pid,
            uptime_s,
            restarts,
            desired,
            last_exit,
            auto_restart,
            duration_min,
            command,
            log,
            cwd,
            supervisor_pid,
            quick_crashes,
            next_start_at,
            stopped_by,
            message,
            config_changed,
            cpu_pct,
            rss_bytes,
        } = r;
        out.extend_from_slice(if self.rows == 0 { b"\n  {" } else { b",\n  {" });
        self.rows += 1;
        key!(first, "name");
        text(out, name);
        key!("state");
        text(out, state);
        key!("pid");
        opt(out, pid.map(i64::from));
        key!("uptime_s");
        match uptime_s {
            Some(v) => float(out, *v),
            None => out.extend_from_slice(b"null"),
        }
        key!("restarts");
        opt(out, Some(i64::from(*restarts)));
        key!("desired");
        text(
            out,
            match desired {
                Desired::Running => "running",
                Desired::Stopped => "stopped",
            },
        );
        key!("last_exit");
        match last_exit {
            None => out.extend_from_slice(b"null"),
            Some(ExitRecord {
                code,
                signal,
                at,
                uptime_s,
            }) => {
                out.push(b'{');
                key!(in2 first, "code");
                opt(out, code.map(i64::from));
                key!(in2 "signal");
                opt_text(out, signal.as_deref());
                key!(in2 "at");
                text(out, at);
                key!(in2 "uptime_s");
                float(out, *uptime_s);
                out.extend_from_slice(b"\n    }");
            }
        }
        key!("auto_restart");
        flag(out, *auto_restart);
        key!("duration_min");
        float(out, *duration_min);
        key!("command");
        text(out, command);
        key!("log");
        text(out, log);
        key!("cwd");
        opt_text(out, *cwd);
        key!("supervisor_pid");
        opt(out, supervisor_pid.map(i64::from));
        key!("quick_crashes");
        opt(out, Some(i64::from(*quick_crashes)));
        key!("next_start_at");
        opt_text(out, *next_start_at);
        key!("stopped_by");
        opt_text(out, *stopped_by);
        key!("message");
        opt_text(out, message.as_deref());
        key!("config_changed");
        flag(out, *config_changed);
        key!("cpu_pct");
        match cpu_pct {
            Some(v) => float(out, *v),
            None => out.extend_from_slice(b"null"),
        }
        key!("rss_bytes");
        match rss_bytes {
            Some(v) => {
                let _ = CompactFormatter.write_u64(out, *v);
            }
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b"\n  }");
    }
}

/// `rows` written by `PrettyRows`.
#[cfg(test)]
fn pretty_rows(rows: &[Row]) -> String {
    let mut doc = PrettyRows::with_capacity(rows.len());
    for r in rows {
        doc.push(r);
    }
    doc.finish().json
}

/// The usage of each running row's tree: for one process, read from /proc
/// now; for a listing, as its supervisor last sampled it (every 30 s) into
/// the state file already read, since /proc costs more than a whole row.
fn usages(rows: &[(String, Checked, Observed)]) -> Vec<Option<proc::Usage>> {
    let live = rows.len() == 1;
    rows.iter().map(|(_, _, seen)| usage(seen, live)).collect()
}

/// The usage of a running process's tree: read now from /proc when `live`,
/// else as its supervisor last sampled it.
fn usage(seen: &Observed, live: bool) -> Option<proc::Usage> {
    let pid = seen
        .pid()
        .filter(|_| matches!(seen.shown, Shown::Running | Shown::Starting))?;
    if live {
        proc::tree_usage(pid, proc::uptime_s())
    } else {
        seen.state.as_ref().and_then(|s| s.usage)
    }
}

/// `12.3%`, `850K`, `12.4M`, `1.2G`, as a table shows them.
fn human_bytes(b: u64) -> String {
    let b = b as f64;
    if b < 1024.0 * 1024.0 {
        format!("{:.0}K", b / 1024.0)
    } else if b < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.1}M", b / 1048576.0)
    } else {
        format!("{:.1}G", b / 1073741824.0)
    }
}

/// What a row says of a supervisor that is stopped by a signal.
fn frozen_message(seen: &Observed) -> Option<String> {
    if !seen.supervisor_frozen {
        return None;
    }
    let pid = seen.state.as_ref().and_then(|s| s.supervisor_pid)?;
    Some(format!(
        "its supervisor (pid {pid}) is frozen (stopped by a signal) and watches nothing; the next healthcheck replaces it"
    ))
}

pub fn run(ws: &Workspace, only: &[String], as_json: bool) -> Result<Output> {
    let registry = Registry::load(ws)?;
    let names: Vec<String> = if only.is_empty() {
        registry.names().map(str::to_string).collect()
    } else {
        for n in only {
            registry.require(n)?;
        }
        only.to_vec()
    };
    if as_json && names.len() < PARALLEL_FROM {
        return listing_json(ws, &registry, &names);
    }
    let rows = observe_all(ws, &registry, &names)?;
    // An invalid entry is a row of its own; the others are shown as usual.
    for (n, e, _) in &rows {
        if let Err(why) = e {
            eprintln!("process-guardian: {n}: {why}");
        }
    }
    let usage = usages(&rows);
    if as_json {
        let logs = logs_prefix(ws);
        let arr: Vec<Row> = rows
            .iter()
            .zip(&usage)
            .map(|((n, e, s), u)| row(&logs, n, e, s, *u))
            .collect();
        let mut doc = PrettyRows::with_capacity(arr.len());
        for r in &arr {
            doc.push(r);
        }
        return Ok(doc.finish());
    }
    if registry.is_empty() {
        return Ok(Output::human(vec![
            format!("no processes registered in {}", registry.path().display()),
            "add one with: process-guardian register NAME 'COMMAND' [DURATION_MIN]".into(),
        ]));
    }
    let color = std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let mut lines = table(&rows, &usage, color);
    if rows
        .iter()
        .any(|(_, e, s)| e.as_ref().is_ok_and(|e| config_changed(e, s)))
    {
        lines.push(
            "* runs an older definition than the registry's: apply it with process-guardian restart NAME"
                .into(),
        );
    }
    for (n, _, seen) in &rows {
        if let Some(m) = frozen_message(seen) {
            lines.push(format!("{n}: {m}"));
        }
    }
    Ok(Output::human(lines))
}

/// From this many names on, a listing is observed across the cores.
const PARALLEL_FROM: usize = 500;

/// `status --json` of fewer than `PARALLEL_FROM`, a row at a time: each
/// row's entry and state are freed before the next is read, so the
/// listing's memory is its output (the pages a listing of all rows first
/// touched cost it more than a tenth of its time).
fn listing_json(ws: &Workspace, registry: &Registry, names: &[String]) -> Result<Output> {
    let logs = logs_prefix(ws);
    let mut doc = PrettyRows::with_capacity(names.len());
    for (at, n) in names.iter().enumerate() {
        let (entry, seen) = observe_one(ws, registry, at, n, names.len() == 1)?;
        if let Err(why) = &entry {
            eprintln!("process-guardian: {n}: {why}");
        }
        doc.push(&row(
            &logs,
            n,
            &entry,
            &seen,
            usage(&seen, names.len() == 1),
        ));
    }
    Ok(doc.finish())
}

/// One process's entry and what its state means now: looked at closely
/// (`close`), or trusting a live supervisor's record, as a listing does.
/// `at`: where `n` is likely to be in the registry's order.
fn observe_one(
    ws: &Workspace,
    registry: &Registry,
    at: usize,
    n: &str,
    close: bool,
) -> Result<(Checked, Observed)> {
    let entry = match registry.get_listed(at, n) {
        Ok(Some(e)) => Ok(e),
        Ok(None) => {
            return Err(registry
                .require(n)
                .err()
                .unwrap_or_else(|| crate::error::Error::Failed(format!("{n} vanished"))));
        }
        Err(e) => Err(e.to_string()),
    };
    let seen = if close {
        state::observe(ws, n)?
    } else {
        state::observe_quick(ws, n)?
    };
    Ok((entry, seen))
}

/// Observes every process; a large registry is split across the cores, since
/// each process costs a few file reads.
pub fn observe_all(
    ws: &Workspace,
    registry: &Registry,
    names: &[String],
) -> Result<Vec<(String, Checked, Observed)>> {
    // One name is looked at closely; a listing trusts live supervisors.
    let one = |(at, n): (usize, &String)| -> Result<(String, Checked, Observed)> {
        let (entry, seen) = observe_one(ws, registry, at, n, names.len() == 1)?;
        Ok((n.clone(), entry, seen))
    };
    // Asked only for a long list: the answer costs three /proc and /sys reads.
    if names.len() < PARALLEL_FROM {
        return names.iter().enumerate().map(one).collect();
    }
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    if threads < 2 {
        return names.iter().enumerate().map(one).collect();
    }
    let chunk = names.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = names
            .chunks(chunk)
            .enumerate()
            .map(|(k, part)| {
                s.spawn(move || {
                    let first = k * chunk;
                    part.iter()
                        .enumerate()
                        .map(|(j, n)| one((first + j, n)))
                        .collect::<Result<Vec<_>>>()
                })
            })
            .collect();
        let mut rows = Vec::with_capacity(names.len());
        for h in handles {
            rows.extend(h.join().map_err(|_| {
                crate::error::Error::Failed("status: a worker thread panicked".into())
            })??);
        }
        Ok(rows)
    })
}

const HEADER: [&str; 10] = [
    "NAME",
    "STATE",
    "PID",
    "CPU",
    "MEM",
    "UPTIME",
    "RESTARTS",
    "LAST EXIT",
    "DURATION",
    "AUTO-RESTART",
];

/// The table's cells for one process.
fn cells(name: &str, entry: &Checked, seen: &Observed, usage: Option<proc::Usage>) -> [String; 10] {
    let Ok(entry) = entry else {
        let mut cells: [String; 10] = std::array::from_fn(|_| "-".to_string());
        cells[0] = name.to_string();
        cells[1] = "invalid".into();
        return cells;
    };
    let st = seen.state.as_ref();
    let running = matches!(seen.shown, Shown::Running | Shown::Starting);
    let last_exit = st
        .and_then(|s| s.last_exit.as_ref())
        .map_or("-".into(), |e| {
            let ago = crate::fsutil::seconds_since(&e.at)
                .map(|s| format!(", {} ago", human_duration(s)))
                .unwrap_or_default();
            format!("{}{ago}", e.describe())
        });
    let marker = if config_changed(entry, seen) { "*" } else { "" };
    [
        name.to_string(),
        format!("{}{marker}", seen.shown.as_str()),
        seen.pid()
            .filter(|_| running)
            .map_or("-".into(), |p| p.to_string()),
        usage.map_or("-".into(), |u| format!("{:.1}%", u.cpu_pct)),
        usage.map_or("-".into(), |u| human_bytes(u.rss_bytes)),
        st.filter(|_| running)
            .and_then(|s| s.uptime_s())
            .map_or("-".into(), human_duration),
        st.map_or(0, |s| s.restarts).to_string(),
        last_exit,
        if entry.duration_min > 0.0 {
            format!("{} min", entry.duration_min)
        } else {
            "-".into()
        },
        if entry.auto_restart { "yes" } else { "no" }.into(),
    ]
}

/// The table for people: aligned columns, the state painted when `color`.
fn table(
    rows: &[(String, Checked, Observed)],
    usage: &[Option<proc::Usage>],
    color: bool,
) -> Vec<String> {
    let cells: Vec<[String; 10]> = rows
        .iter()
        .zip(usage)
        .map(|((n, e, s), u)| cells(n, e, s, *u))
        .collect();
    let mut widths = HEADER.map(str::len);
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |row: &[String], paint: Option<&str>| {
        let mut s = String::new();
        for (i, (c, w)) in row.iter().zip(widths).enumerate() {
            let padded = format!("{c:<w$}");
            match (i, paint) {
                (1, Some(code)) => s.push_str(&format!("\x1b[{code}m{padded}\x1b[0m")),
                _ => s.push_str(&padded),
            }
            if i + 1 < row.len() {
                s.push_str("  ");
            }
        }
        s.trim_end().to_string()
    };
    let head: Vec<String> = HEADER.iter().map(|h| h.to_string()).collect();
    let mut out = vec![line(&head, None)];
    for (row, (_, entry, seen)) in cells.iter().zip(rows) {
        let paint = color.then_some(match seen.shown {
            _ if entry.is_err() => "31",
            Shown::Running => "32",
            Shown::Backoff | Shown::Starting => "33",
            Shown::Dead | Shown::Failed => "31",
            _ => "2",
        });
        out.push(line(row, paint));
    }
    out
}

/// 75 → `1m15s`, 7380 → `2h03m`.
pub fn human_duration(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        3600..=86399 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{:02}h", s / 86400, (s % 86400) / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Owned values for one `Row`.
    #[derive(Debug, Clone)]
    struct Owned {
        texts: [String; 4],
        opt_texts: [Option<String>; 4],
        ints: [Option<i32>; 3],
        counts: [u32; 2],
        floats: [f64; 2],
        opt_floats: [Option<f64>; 2],
        exit: Option<(Option<i32>, Option<String>, String, f64)>,
        flags: [bool; 3],
        rss: Option<u64>,
    }

    fn any_text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z0-9 ._/-]{0,12}",
            any::<String>(),
            "[\\x00-\\x1f\"\\\\\\x7f\u{e9}\u{2028}\u{1f600}]{0,6}",
        ]
    }

    fn any_float() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<f64>(),
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(-0.0),
            Just(1e21),
            Just(0.1),
            (0u32..100000).prop_map(|v| f64::from(v) / 8.0),
        ]
    }

    fn owned() -> impl Strategy<Value = Owned> {
        let exit = proptest::option::of((
            proptest::option::of(any::<i32>()),
            proptest::option::of(any_text()),
            any_text(),
            any_float(),
        ));
        (
            (
                [any_text(), any_text(), any_text(), any_text()],
                [
                    proptest::option::of(any_text()),
                    proptest::option::of(any_text()),
                    proptest::option::of(any_text()),
                    proptest::option::of(any_text()),
                ],
                [
                    proptest::option::of(any::<i32>()),
                    proptest::option::of(any::<i32>()),
                    proptest::option::of(any::<i32>()),
                ],
                [any::<u32>(), any::<u32>()],
            ),
            (
                [any_float(), any_float()],
                [
                    proptest::option::of(any_float()),
                    proptest::option::of(any_float()),
                ],
                exit,
                [any::<bool>(), any::<bool>(), any::<bool>()],
                proptest::option::of(any::<u64>()),
            ),
        )
            .prop_map(
                |((texts, opt_texts, ints, counts), (floats, opt_floats, exit, flags, rss))| {
                    Owned {
                        texts,
                        opt_texts,
                        ints,
                        counts,
                        floats,
                        opt_floats,
                        exit,
                        flags,
                        rss,
                    }
                },
            )
    }

    fn rows_of<'a>(owned: &'a [Owned], exits: &'a [Option<ExitRecord>]) -> Vec<Row<'a>> {
        owned
            .iter()
            .zip(exits)
            .map(|(o, exit)| Row {
                name: &o.texts[0],
                state: if o.flags[0] { "running" } else { "dead" },
                pid: o.ints[0],
                uptime_s: o.opt_floats[0],
                restarts: o.counts[0],
                desired: if o.flags[1] {
                    Desired::Running
                } else {
                    Desired::Stopped
                },
                last_exit: exit.as_ref(),
                auto_restart: o.flags[1],
                duration_min: o.floats[0],
                command: &o.texts[1],
                log: o.texts[2].clone(),
                cwd: o.opt_texts[0].as_deref(),
                supervisor_pid: o.ints[1],
                quick_crashes: o.counts[1],
                next_start_at: o.opt_texts[1].as_deref(),
                stopped_by: o.opt_texts[2].as_deref(),
                message: o.opt_texts[3].clone(),
                config_changed: o.flags[2],
                cpu_pct: o.opt_floats[1],
                rss_bytes: o.rss,
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn rows_are_written_as_serde_json_writes_them(owned in proptest::collection::vec(owned(), 0..4)) {
            let exits: Vec<Option<ExitRecord>> = owned
                .iter()
                .map(|o| {
                    o.exit.clone().map(|(code, signal, at, uptime_s)| ExitRecord {
                        code,
                        signal,
                        at,
                        uptime_s,
                    })
                })
                .collect();
            let rows = rows_of(&owned, &exits);
            let ours = pretty_rows(&rows);
            prop_assert_eq!(ours, serde_json::to_string_pretty(&rows).unwrap());
        }
    }

    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(human_duration(5.2), "5s");
        assert_eq!(human_duration(75.0), "1m15s");
        assert_eq!(human_duration(7380.0), "2h03m");
        assert_eq!(human_duration(90000.0), "1d01h");
    }
}
