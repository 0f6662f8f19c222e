//! A supervisord configuration: its `[program:NAME]` sections.
//!
//! The file is read as supervisord's parser reads it: `key = value` or
//! `key: value`, comments from `;` or `#` at a line's start or after a
//! blank, indented lines continuing a value, keys in any case, and
//! `%(here)s`, `%(program_name)s`, `%(ENV_X)s` expanded.
//!
//! Translated: command, directory, environment, autorestart, startretries
//! (our `max_restarts`), startsecs (a shorter run is a quick crash: our
//! `restart_cooldown`), stopsignal, stopwaitsecs. stopasgroup, killasgroup
//! and redirect_stderr are what process-guardian always does. numprocs
//! above 1 is refused: one process per name here.

use std::collections::BTreeMap;
use std::path::Path;

use super::{Imported, Parsed, check_dir, directory, entry};

/// Keys translated, or equal to what process-guardian always does.
const KNOWN: &[&str] = &[
    "command",
    "directory",
    "environment",
    "autorestart",
    "startretries",
    "startsecs",
    "stopsignal",
    "stopwaitsecs",
    "stopasgroup",
    "killasgroup",
    "redirect_stderr",
    "numprocs",
    "process_name",
];

/// Sections, in the file's order, each with its keys in order.
type Sections = Vec<(String, Vec<(String, String)>)>;

fn sections(text: &str) -> Result<Sections, String> {
    let mut out: Sections = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let at = |e: &str| format!("line {}: {e}", i + 1);
        if raw.trim().is_empty() {
            continue;
        }
        let first = raw.trim_start();
        if first.starts_with(';') || first.starts_with('#') {
            continue;
        }
        let line = strip_comment(raw);
        if raw.starts_with([' ', '\t']) {
            // A continuation of the last value.
            let value = out
                .last_mut()
                .and_then(|(_, keys)| keys.last_mut())
                .ok_or_else(|| at("an indented line that continues nothing"))?;
            if !line.trim().is_empty() {
                value.1.push('\n');
                value.1.push_str(line.trim());
            }
            continue;
        }
        let line = line.trim();
        if let Some(header) = line.strip_prefix('[') {
            let name = header
                .strip_suffix(']')
                .ok_or_else(|| at("a section header without its closing ]"))?;
            out.push((name.trim().to_string(), Vec::new()));
            continue;
        }
        let split = line
            .find(['=', ':'])
            .ok_or_else(|| at("expected `key = value`"))?;
        let (key, value) = (&line[..split], &line[split + 1..]);
        let keys = &mut out
            .last_mut()
            .ok_or_else(|| at("a key before any [section]"))?
            .1;
        keys.push((key.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    Ok(out)
}

/// The line without an inline comment: `;` or `#` after a blank.
fn strip_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    for i in 1..bytes.len() {
        if matches!(bytes[i], b';' | b'#') && matches!(bytes[i - 1], b' ' | b'\t') {
            return &line[..i];
        }
    }
    line
}

pub fn parse(text: &str, base: &Path) -> Result<Parsed, String> {
    let mut out = Parsed::default();
    for (section, keys) in sections(text)? {
        let Some(name) = section.strip_prefix("program:") else {
            out.ignored.push(format!("[{section}]"));
            continue;
        };
        let name = name.trim();
        out.processes
            .push(program(name, &keys, base).map_err(|e| format!("[program:{name}]: {e}"))?);
    }
    Ok(out)
}

fn program(name: &str, keys: &[(String, String)], base: &Path) -> Result<Imported, String> {
    // The last of a repeated key wins, as in supervisord.
    let map: BTreeMap<&str, &str> = keys.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let expand = |v: &str| expand(v, name, base);
    if let Some(n) = map.get("numprocs") {
        let n: u32 = n
            .parse()
            .map_err(|_| format!("numprocs {n:?}: expected a whole number"))?;
        if n != 1 {
            return Err(format!(
                "numprocs={n} runs {n} copies of one program; process-guardian runs one process per name: set numprocs=1, or register {name}-0 to {name}-{} yourself",
                n.saturating_sub(1)
            ));
        }
    }
    // Continuation lines are words of the same command, as supervisord splits it.
    let command = expand(map.get("command").ok_or("no `command`")?)?.replace('\n', " ");
    let mut notes = Vec::new();
    let cwd = match map.get("directory") {
        Some(d) => directory(base, &expand(d)?),
        None => {
            notes.push(format!(
                "no directory: it runs in the configuration file's, {}",
                base.display()
            ));
            base.display().to_string()
        }
    };
    check_dir(&cwd, &mut notes);
    let mut e = entry(command, &cwd);
    if let Some(env) = map.get("environment") {
        e.env = environment(&expand(env)?).map_err(|err| format!("environment: {err}"))?;
    }
    match map.get("autorestart").map(|v| v.to_ascii_lowercase()) {
        None => {}
        Some(v) if v == "unexpected" => notes.push(
            "autorestart=unexpected: every exit restarts it (process-guardian counts a clean-looking exit as a crash)"
                .into(),
        ),
        Some(v) => e.auto_restart = boolean(&v).ok_or(format!("autorestart {v:?}: expected true, false or unexpected"))?,
    }
    if let Some(v) = map.get("startretries") {
        e.max_restarts = v
            .parse()
            .map_err(|_| format!("startretries {v:?}: expected a whole number"))?;
    }
    if let Some(v) = map.get("startsecs") {
        e.restart_cooldown = seconds("startsecs", v)?;
    }
    if let Some(v) = map.get("stopsignal") {
        e.stop_signal = Some(crate::signals::StopSignal(
            crate::signals::parse(v).map_err(|err| format!("stopsignal: {err}"))?,
        ));
    }
    if let Some(v) = map.get("stopwaitsecs") {
        e.stop_timeout_s = Some(seconds("stopwaitsecs", v)?);
    }
    for key in ["stopasgroup", "killasgroup"] {
        if map.get(key).and_then(|v| boolean(v)) == Some(false) {
            notes.push(format!(
                "{key}=false: process-guardian signals the whole process group"
            ));
        }
    }
    let mut ignored: Vec<String> = map
        .keys()
        .filter(|k| !KNOWN.contains(k))
        .map(|k| k.to_string())
        .collect();
    ignored.sort();
    Ok(Imported {
        name: name.to_string(),
        entry: e,
        notes,
        ignored,
    })
}

fn boolean(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Some(true),
        "false" | "no" | "off" | "0" => Some(false),
        _ => None,
    }
}

fn seconds(key: &str, v: &str) -> Result<f64, String> {
    v.parse::<u32>()
        .map(f64::from)
        .map_err(|_| format!("{key} {v:?}: expected a whole number of seconds"))
}

/// `%(name)s` as supervisord expands it; `%%` is a `%`.
fn expand(v: &str, program: &str, base: &Path) -> Result<String, String> {
    let mut out = String::with_capacity(v.len());
    let mut rest = v;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        if let Some(r) = rest.strip_prefix("%%") {
            out.push('%');
            rest = r;
            continue;
        }
        let Some(close) = rest.strip_prefix("%(").and_then(|r| r.find(')')) else {
            return Err(format!("{v:?}: a lone % (write %% for a percent sign)"));
        };
        let key = &rest[2..2 + close];
        let after = &rest[3 + close..];
        let conv = after.chars().next().filter(|c| *c == 's' || *c == 'd');
        let Some(conv) = conv else {
            return Err(format!("{v:?}: %({key}) needs s or d after it"));
        };
        let value = match key {
            "here" => base.display().to_string(),
            "program_name" | "group_name" => program.to_string(),
            "process_num" => "0".into(),
            "numprocs" => "1".into(),
            "host_node_name" => std::fs::read_to_string("/proc/sys/kernel/hostname")
                .unwrap_or_default()
                .trim()
                .to_string(),
            k => match k.strip_prefix("ENV_") {
                Some(var) => std::env::var(var)
                    .map_err(|_| format!("%({k})s: the variable {var} is not set"))?,
                None => return Err(format!("%({k}){conv}: not a name supervisord knows")),
            },
        };
        out.push_str(&value);
        rest = &after[conv.len_utf8()..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `KEY="value",KEY2=value2`: supervisord's list of pairs (values may be
/// quoted with " or ', a backslash escapes in double quotes).
fn environment(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if chars.next() != Some('=') {
            return Err(format!("expected KEY=value, found {key:?}"));
        }
        let key = key.trim().to_string();
        let mut value = String::new();
        let mut quoted = false;
        while let Some(&c) = chars.peek() {
            match c {
                ',' => break,
                '"' | '\'' => {
                    quoted = true;
                    chars.next();
                    loop {
                        match chars.next() {
                            None => return Err(format!("{key}: a quote is not closed")),
                            Some(q) if q == c => break,
                            Some('\\') if c == '"' => match chars.next() {
                                Some(e @ ('"' | '\\')) => value.push(e),
                                Some(e) => {
                                    value.push('\\');
                                    value.push(e);
                                }
                                None => return Err(format!("{key}: a quote is not closed")),
                            },
                            Some(x) => value.push(x),
                        }
                    }
                }
                c if c.is_whitespace() => {
                    // A blank outside quotes ends the value (as shlex splits).
                    while chars.peek().is_some_and(|c| c.is_whitespace()) {
                        chars.next();
                    }
                    if (quoted || !value.is_empty()) && chars.peek().is_some_and(|c| *c != ',') {
                        return Err(format!("{key}: a value with blanks must be quoted"));
                    }
                }
                c => {
                    value.push(c);
                    chars.next();
                }
            }
        }
        out.insert(key, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_translate() {
        let conf = "\
[supervisord]
nodaemon=true

; the web app
[program:web]
command=python3 -m http.server 8000 ; inline comment
directory=/srv/web
environment=A=\"1\",B=\"two\"
stopsignal=INT
stopwaitsecs=5
startretries=2
startsecs = 3
autorestart=true
user=www-data

[group:all]
programs=web
";
        let p = parse(conf, Path::new("/etc/supervisor")).unwrap();
        assert_eq!(p.ignored, vec!["[supervisord]", "[group:all]"]);
        let web = &p.processes[0];
        assert_eq!(web.name, "web");
        assert_eq!(web.entry.command, "python3 -m http.server 8000");
        assert_eq!(web.entry.cwd.as_deref(), Some("/srv/web"));
        assert_eq!(web.entry.env["A"], "1");
        assert_eq!(web.entry.env["B"], "two");
        assert_eq!(web.entry.stop_signal().to_string(), "INT");
        assert_eq!(web.entry.stop_timeout_s, Some(5.0));
        assert_eq!(
            (web.entry.max_restarts, web.entry.restart_cooldown),
            (2, 3.0)
        );
        assert_eq!(web.ignored, vec!["user"]);
    }

    #[test]
    fn expansions_environment_and_refusals() {
        let here = Path::new("/etc/x");
        assert_eq!(
            expand("%(here)s/run %(program_name)s 100%%", "w", here).unwrap(),
            "/etc/x/run w 100%"
        );
        assert!(expand("%(nope)s", "w", here).is_err());
        assert!(expand("50%", "w", here).is_err());
        let env = environment("A=\"x, y\", B='q' ,C=plain,D=\"say \\\"hi\\\"\"").unwrap();
        assert_eq!(env["A"], "x, y");
        assert_eq!(env["B"], "q");
        assert_eq!(env["C"], "plain");
        assert_eq!(env["D"], "say \"hi\"");
        assert!(environment("A=two words").is_err());
        assert_eq!(environment("A= spaced ,B=x,\n C=y").unwrap()["A"], "spaced");
        let err = parse("[program:w]\ncommand=sleep 1\nnumprocs=3\n", here).unwrap_err();
        assert!(err.contains("numprocs=3"), "{err}");
        let cont = parse("[program:w]\ncommand=sleep\n  100\n", here).unwrap();
        assert_eq!(cont.processes[0].entry.command, "sleep 100");
    }
}
