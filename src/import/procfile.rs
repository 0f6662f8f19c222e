//! A `Procfile`: one `name: command` a line, `#` comments. As foreman and
//! honcho do, a `.env` beside it is the processes' environment file, and
//! `$PORT` is 5000 for the first process, 5100 for the second, and so on.

use std::path::Path;

use super::{Imported, Parsed, entry};

/// A Procfile's process name: what foreman accepts.
fn is_proc_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn split(line: &str) -> Option<(&str, &str)> {
    let (name, command) = line.split_once(':')?;
    let name = name.trim();
    let command = command.trim();
    (is_proc_name(name) && !command.is_empty()).then_some((name, command))
}

/// Whether every meaningful line is `name: command`.
pub fn looks_like(text: &str) -> bool {
    let mut any = false;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if split(line).is_none() {
            return false;
        }
        any = true;
    }
    any
}

pub fn parse(text: &str, base: &Path) -> Result<Parsed, String> {
    let cwd = base.display().to_string();
    let dotenv = base.join(".env");
    let mut out = Parsed::default();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, command) = split(line).ok_or_else(|| {
            format!(
                "line {}: expected `name: command` (a name of letters, digits, '_' and '-'), not {line:?}",
                i + 1
            )
        })?;
        let mut e = entry(command.to_string(), &cwd);
        let mut notes = Vec::new();
        if dotenv.is_file() {
            e.env_file = Some(dotenv.display().to_string());
            notes.push(format!(
                "env_file {}: the .env beside the Procfile, as foreman reads it",
                dotenv.display()
            ));
        }
        if command.contains("$PORT") || command.contains("${PORT}") {
            let port = 5000 + 100 * out.processes.len();
            e.env.insert("PORT".into(), port.to_string());
            notes.push(format!(
                "PORT={port}: the port foreman gives the process in this place of the file"
            ));
        }
        out.processes.push(Imported {
            name: name.to_string(),
            entry: e,
            notes,
            ignored: Vec::new(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn procfile_lines() {
        let p = parse(
            "# app\nweb: python3 -m http.server $PORT\n\nworker:   python3 worker.py --queue default\n",
            Path::new("/srv/app"),
        )
        .unwrap();
        assert_eq!(p.processes.len(), 2);
        assert_eq!(p.processes[0].name, "web");
        assert_eq!(p.processes[0].entry.env["PORT"], "5000");
        assert_eq!(
            p.processes[1].entry.command,
            "python3 worker.py --queue default"
        );
        assert_eq!(p.processes[1].entry.cwd.as_deref(), Some("/srv/app"));
        assert!(parse("web python3\n", Path::new("/")).is_err());
        assert!(looks_like("a: b\n# c\n"));
        assert!(!looks_like("[program:x]\ncommand=y\n"));
    }
}
