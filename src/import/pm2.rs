//! A pm2 ecosystem file, JSON or YAML: `{"apps": [{name, script, …}]}`.
//!
//! Translated: name, script, args, interpreter (and interpreter_args,
//! node_args), cwd, env, max_memory_restart, autorestart, max_restarts,
//! min_uptime (the run length under which a restart counts as unstable:
//! our `restart_cooldown`), kill_timeout, time (timestamps). pm2 picks the
//! interpreter from the script's extension; so does this.

use std::path::Path;

use serde_json::{Map, Value};

use super::{Imported, Parsed, check_dir, directory, entry};
use crate::cmdline::quote;

/// Keys translated, or equal to what process-guardian always does.
const KNOWN: &[&str] = &[
    "name",
    "script",
    "args",
    "interpreter",
    "interpreter_args",
    "node_args",
    "cwd",
    "env",
    "max_memory_restart",
    "autorestart",
    "max_restarts",
    "min_uptime",
    "kill_timeout",
    "time",
    "instances",
    "exec_mode",
];

pub fn parse(text: &str, yaml: bool, base: &Path) -> Result<Parsed, String> {
    let doc: Value = if yaml {
        yaml_serde::from_str(text).map_err(|e| format!("not valid YAML: {e}"))?
    } else {
        serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?
    };
    let mut out = Parsed::default();
    let apps = match doc {
        Value::Array(apps) => apps,
        Value::Object(mut top) => {
            let apps = match top.remove("apps") {
                Some(Value::Array(a)) => a,
                Some(o @ Value::Object(_)) => vec![o],
                Some(_) => return Err("`apps` must be a list of applications".into()),
                None if top.contains_key("script") => vec![Value::Object(top.clone())],
                None => return Err("no `apps` list: this is not a pm2 ecosystem file".into()),
            };
            if !top.contains_key("script") {
                out.ignored.extend(top.keys().cloned());
            }
            apps
        }
        _ => return Err("expected an object with an `apps` list".into()),
    };
    for (i, app) in apps.into_iter().enumerate() {
        let Value::Object(app) = app else {
            return Err(format!("apps[{i}] is not an object"));
        };
        out.processes
            .push(one(&app, base).map_err(|e| format!("apps[{i}]: {e}"))?);
    }
    Ok(out)
}

fn one(app: &Map<String, Value>, base: &Path) -> Result<Imported, String> {
    let script = string(app, "script")?.ok_or("no `script`")?;
    let name = match string(app, "name")? {
        Some(n) => n,
        None => Path::new(&script)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .ok_or("no `name`, and none can be taken from the script")?,
    };
    let at = |e: String| format!("{name}: {e}");
    let mut notes = Vec::new();
    match app.get("instances") {
        None | Some(Value::Null) => {}
        Some(v) if v.as_u64() == Some(1) => {}
        Some(v) => {
            return Err(at(format!(
                "instances {v} runs several copies; process-guardian runs one process per name: set instances to 1, or register a name for each copy"
            )));
        }
    }
    if app.get("exec_mode").and_then(Value::as_str) == Some("cluster") {
        notes.push(
            "exec_mode cluster: runs as one ordinary process (pm2's cluster mode shares a port between Node workers)"
                .into(),
        );
    }
    let cwd = match string(app, "cwd").map_err(at)? {
        Some(d) => directory(base, &d),
        None => base.display().to_string(),
    };
    check_dir(&cwd, &mut notes);

    // The command line: interpreter, its arguments, the script, its arguments.
    let interpreter = match string(app, "interpreter").map_err(at)? {
        Some(i) if i == "none" => None,
        Some(i) => Some(i),
        None => by_extension(&script).map(|(i, note)| {
            if let Some(n) = note {
                notes.push(n);
            }
            i.to_string()
        }),
    };
    let mut words: Vec<String> = Vec::new();
    if let Some(i) = &interpreter {
        words.push(quote(i));
        for key in ["interpreter_args", "node_args"] {
            words.extend(args(app, key).map_err(at)?);
        }
    }
    words.push(quote(&script));
    words.extend(args(app, "args").map_err(at)?);
    let mut e = entry(words.join(" "), &cwd);

    if let Some(env) = app.get("env") {
        let Value::Object(env) = env else {
            return Err(at("`env` must be an object of NAME: value".into()));
        };
        for (k, v) in env {
            let v = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::Null => continue,
                _ => return Err(at(format!("env {k}: a value must be text or a number"))),
            };
            e.env.insert(k.clone(), v);
        }
    }
    if let Some(v) = app.get("max_memory_restart") {
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => String::new(),
        };
        e.max_memory_bytes = Some(crate::probe::parse_size(&text).ok_or_else(|| {
            at(format!(
                "max_memory_restart {v}: not a size (200M, 1G, 500K, or bytes)"
            ))
        })?);
    }
    if let Some(v) = app.get("autorestart") {
        e.auto_restart = v
            .as_bool()
            .ok_or_else(|| at(format!("autorestart {v}: expected true or false")))?;
    }
    if let Some(v) = app.get("max_restarts") {
        e.max_restarts = v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| at(format!("max_restarts {v}: expected a whole number")))?;
    }
    if let Some(v) = app.get("min_uptime") {
        e.restart_cooldown = millis(v).ok_or_else(|| {
            at(format!(
                "min_uptime {v}: expected milliseconds or 5s, 1m, 1h"
            ))
        })? / 1000.0;
    }
    if let Some(v) = app.get("kill_timeout") {
        e.stop_timeout_s = Some(
            millis(v).ok_or_else(|| at(format!("kill_timeout {v}: expected milliseconds")))?
                / 1000.0,
        );
    }
    if let Some(v) = app.get("time") {
        e.timestamps = v.as_bool().unwrap_or(false);
    }
    let mut ignored: Vec<String> = app
        .keys()
        .filter(|k| !KNOWN.contains(&k.as_str()))
        .cloned()
        .collect();
    ignored.sort();
    Ok(Imported {
        name,
        entry: e,
        notes,
        ignored,
    })
}

/// A string field, absent, or an error naming it.
fn string(app: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match app.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(format!("`{key}` must be text, not {v}")),
    }
}

/// Arguments as pm2 takes them: a string (a command line, kept as written)
/// or a list (each quoted).
fn args(app: &Map<String, Value>, key: &str) -> Result<Vec<String>, String> {
    match app.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.trim().to_string()]),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(quote(s)),
                Value::Number(n) => Ok(n.to_string()),
                _ => Err(format!("`{key}` must hold text, not {v}")),
            })
            .collect(),
        Some(v) => Err(format!("`{key}` must be text or a list, not {v}")),
    }
}

/// The interpreter pm2 gives a script with this extension, and a note where
/// ours differs from pm2's.
fn by_extension(script: &str) -> Option<(&'static str, Option<String>)> {
    let ext = Path::new(script).extension()?.to_str()?;
    Some(match ext {
        "js" | "cjs" | "mjs" => ("node", None),
        "py" => (
            "python3",
            Some("interpreter python3 for a .py script (pm2 runs `python`, which many systems no longer have)".into()),
        ),
        "sh" => ("bash", None),
        "rb" => ("ruby", None),
        "pl" => ("perl", None),
        "php" => ("php", None),
        "coffee" => ("coffee", None),
        "ts" => ("ts-node", None),
        _ => return None,
    })
}

/// A time as pm2 writes it: milliseconds, or `500ms`, `5s`, `1m`, `1h`.
fn millis(v: &Value) -> Option<f64> {
    let ms = match v {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => {
            let s = s.trim();
            let (num, unit) = s
                .find(|c: char| c.is_ascii_alphabetic())
                .map_or((s, ""), |i| s.split_at(i));
            let n: f64 = num.trim().parse().ok()?;
            n * match unit {
                "" | "ms" => 1.0,
                "s" => 1000.0,
                "m" => 60_000.0,
                "h" => 3_600_000.0,
                _ => return None,
            }
        }
        _ => return None,
    };
    (ms.is_finite() && ms >= 0.0).then_some(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecosystem_apps() {
        let text = r#"{"apps": [
            {"name": "api", "script": "server.js", "args": ["--port", "3000"],
             "env": {"NODE_ENV": "production", "WORKERS": 4},
             "max_memory_restart": "200M", "min_uptime": "5s", "kill_timeout": 3000,
             "watch": true},
            {"name": "bot", "script": "bot.py", "cwd": "bots", "autorestart": false}
        ], "deploy": {}}"#;
        let p = parse(text, false, Path::new("/srv/app")).unwrap();
        assert_eq!(p.ignored, vec!["deploy"]);
        let api = &p.processes[0];
        assert_eq!(api.entry.command, "node server.js --port 3000");
        assert_eq!(api.entry.env["WORKERS"], "4");
        assert_eq!(api.entry.max_memory_bytes, Some(200 << 20));
        assert_eq!(api.entry.restart_cooldown, 5.0);
        assert_eq!(api.entry.stop_timeout_s, Some(3.0));
        assert_eq!(api.ignored, vec!["watch"]);
        let bot = &p.processes[1];
        assert_eq!(bot.entry.command, "python3 bot.py");
        assert_eq!(bot.entry.cwd.as_deref(), Some("/srv/app/bots"));
        assert!(!bot.entry.auto_restart);
        assert!(
            parse(
                r#"{"apps": [{"script": "a.js", "instances": 4}]}"#,
                false,
                Path::new("/")
            )
            .is_err()
        );
        let y = parse(
            "apps:\n  - name: w\n    script: w.sh\n",
            true,
            Path::new("/"),
        )
        .unwrap();
        assert_eq!(y.processes[0].entry.command, "bash w.sh");
    }
}
