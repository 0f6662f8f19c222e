//! docs/JSON.md, replayed: every documented `process-guardian --json …`
//! example is run, in the order written, in one workspace, and the real
//! output must have the documented keys, no more and no fewer (values such as
//! pids and times differ, of course), and the documented exit code.

mod common;

use std::collections::BTreeSet;

use serde_json::Value;

use common::*;

/// Splits a documented command line like sh would (single quotes only).
fn split(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                any = true;
            }
            ' ' if !quoted => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}

/// Differences between the keys of two documents, as paths.
fn compare(path: &str, doc: &Value, real: &Value, diffs: &mut Vec<String>) {
    match (doc, real) {
        (Value::Object(d), Value::Object(r)) => {
            let dk: BTreeSet<&String> = d.keys().collect();
            let rk: BTreeSet<&String> = r.keys().collect();
            for k in dk.difference(&rk) {
                diffs.push(format!("{path}.{k}: documented, not in the output"));
            }
            for k in rk.difference(&dk) {
                diffs.push(format!("{path}.{k}: in the output, not documented"));
            }
            for k in dk.intersection(&rk) {
                compare(&format!("{path}.{k}"), &d[*k], &r[*k], diffs);
            }
        }
        (Value::Array(d), Value::Array(r)) => {
            if let (Some(d0), Some(r0)) = (d.first(), r.first()) {
                compare(&format!("{path}[0]"), d0, r0, diffs);
            }
        }
        (Value::Object(_), _)
        | (Value::Array(_), _)
        | (_, Value::Object(_))
        | (_, Value::Array(_))
            if !doc.is_null() && !real.is_null() =>
        {
            diffs.push(format!("{path}: documented {doc}, got {real}"));
        }
        _ => {}
    }
}

struct Example {
    args: Vec<String>,
    exit: i32,
    /// One document, or (logs) one a line.
    docs: Vec<Value>,
}

fn examples() -> Vec<Example> {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/JSON.md")).unwrap();
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line != "```console" {
            continue;
        }
        let cmd = lines.next().unwrap();
        let cmd = cmd
            .strip_prefix("$ process-guardian ")
            .expect("a documented command");
        let mut body = Vec::new();
        let mut exit = 0;
        for l in lines.by_ref() {
            if l == "```" {
                break;
            }
            if let Some(code) = l.strip_prefix("# exit ") {
                exit = code.trim().parse().unwrap();
                continue;
            }
            body.push(l);
        }
        let body = body.join("\n");
        let args = split(cmd);
        let docs = if args.iter().any(|a| a == "logs") {
            body.lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        } else {
            vec![serde_json::from_str(&body).unwrap_or_else(|e| panic!("{cmd}: {e}\n{body}"))]
        };
        out.push(Example { args, exit, docs });
    }
    out
}

#[test]
fn every_documented_json_shape_is_what_the_binary_prints() {
    let env = Env::new();
    // What the import example reads (scripts/json-docs.py writes the same).
    std::fs::write(
        env.ws.join("Procfile"),
        "queue: python3 queue.py --port $PORT\n",
    )
    .unwrap();
    let examples = examples();
    assert!(examples.len() >= 15, "{} examples", examples.len());
    let mut covered = BTreeSet::new();
    for ex in &examples {
        let args: Vec<&str> = ex.args.iter().map(String::as_str).collect();
        assert_eq!(args[0], "--json", "every example asks for JSON: {args:?}");
        covered.insert(args[1].to_string());
        let out = env.run(&args);
        assert_eq!(
            out.status.code(),
            Some(ex.exit),
            "{args:?}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        let real: Vec<Value> = if args.contains(&"logs") {
            stdout(&out)
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        } else {
            vec![
                serde_json::from_slice(&out.stdout)
                    .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {}", stdout(&out))),
            ]
        };
        assert!(!real.is_empty(), "{args:?}: printed nothing");
        let mut diffs = Vec::new();
        for (i, r) in real.iter().enumerate() {
            let d = ex.docs.get(i).or(ex.docs.first()).unwrap();
            compare("", d, r, &mut diffs);
        }
        assert!(diffs.is_empty(), "{args:?}:\n{}", diffs.join("\n"));
    }
    // Every subcommand with an output of its own is documented.
    for cmd in [
        "register",
        "run",
        "deregister",
        "start",
        "stop",
        "restart",
        "status",
        "signal",
        "wait",
        "healthcheck",
        "doctor",
        "logs",
        "export",
        "import",
    ] {
        assert!(
            covered.contains(cmd),
            "docs/JSON.md has no example of {cmd}"
        );
    }
}
