//! The bad-input table of docs/RELIABILITY.md, as a test: every row runs
//! the real binary in a fresh workspace and asserts the exit code, the words
//! the user reads, and what was (not) written. The table in the document and
//! the rows here are checked against each other, so neither claims a row the
//! other lacks.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::*;

/// What a row may change in the workspace.
#[derive(Clone, Copy)]
enum Writes {
    /// Not one file created, changed or removed.
    Nothing,
    /// Runtime files under `.process-guardian/` (a state file, a log, an
    /// alert), never the registry.
    RuntimeOnly,
}

struct Row {
    what: &'static str,
    setup: fn(&Env),
    args: Vec<String>,
    exit: i32,
    says: &'static [&'static str],
    writes: Writes,
}

fn row(
    what: &'static str,
    setup: fn(&Env),
    args: &[&str],
    exit: i32,
    says: &'static [&'static str],
    writes: Writes,
) -> Row {
    Row {
        what,
        setup,
        args: args.iter().map(|a| a.to_string()).collect(),
        exit,
        says,
        writes,
    }
}

fn none(_: &Env) {}

fn registry(env: &Env, text: &[u8]) {
    fs::write(env.registry_path(), text).unwrap();
    fs::set_permissions(env.registry_path(), fs::Permissions::from_mode(0o600)).unwrap();
}

fn rows() -> Vec<Row> {
    use Writes::*;
    let long = "x".repeat(65);
    let long: &'static str = Box::leak(long.into_boxed_str());
    vec![
        row(
            "name with a path",
            none,
            &["register", "../evil", "sleep 1"],
            2,
            &["invalid name \"../evil\""],
            Nothing,
        ),
        row(
            "empty name",
            none,
            &["register", "", "sleep 1"],
            2,
            &["invalid name \"\"", "cannot be empty"],
            Nothing,
        ),
        row(
            "name with a space",
            none,
            &["register", "a b", "sleep 1"],
            2,
            &["invalid name \"a b\""],
            Nothing,
        ),
        row(
            "name with a slash",
            none,
            &["register", "a/b", "sleep 1"],
            2,
            &["invalid name \"a/b\""],
            Nothing,
        ),
        row(
            "65-character name",
            none,
            &["register", long, "sleep 1"],
            2,
            &["at most 64 characters"],
            Nothing,
        ),
        row(
            "empty command",
            none,
            &["register", "x", "  "],
            2,
            &["the command is empty"],
            Nothing,
        ),
        row(
            "negative duration",
            none,
            &["register", "x", "sleep 1", "-5"],
            2,
            &["duration_min", "not -5"],
            Nothing,
        ),
        row(
            "duration not a number",
            none,
            &["register", "x", "sleep 1", "soon"],
            2,
            &["invalid value 'soon'"],
            Nothing,
        ),
        row(
            "negative cooldown",
            none,
            &["register", "x", "sleep 1", "--restart-cooldown", "-1"],
            2,
            &["restart_cooldown (--restart-cooldown)", "not -1"],
            Nothing,
        ),
        row(
            "unknown stop signal",
            none,
            &["register", "x", "sleep 1", "--stop-signal", "NOPE"],
            2,
            &["unknown signal \"NOPE\""],
            Nothing,
        ),
        row(
            "missing cwd",
            none,
            &["register", "x", "sleep 1", "--cwd", "/no/such/dir"],
            2,
            &["--cwd /no/such/dir: not an existing directory"],
            Nothing,
        ),
        row(
            "env pair without =",
            none,
            &["register", "x", "sleep 1", "--env", "NOEQUALS"],
            2,
            &["expected KEY=VALUE"],
            Nothing,
        ),
        row(
            "env key starting with a digit",
            none,
            &["register", "x", "sleep 1", "--env", "1X=y"],
            2,
            &["\"1X\" is invalid"],
            Nothing,
        ),
        row(
            "zero log size",
            none,
            &["register", "x", "sleep 1", "--log-max-bytes", "0"],
            2,
            &["log_max_bytes (--log-max-bytes)", "not 0"],
            Nothing,
        ),
        row(
            "stop timeout of 1e20 s",
            none,
            &["register", "x", "sleep 1", "--stop-timeout", "1e20"],
            2,
            &["stop_timeout_s (--stop-timeout)"],
            Nothing,
        ),
        row(
            "log_keep of 2^32-1",
            none,
            &["register", "x", "sleep 1", "--log-keep", "4294967295"],
            2,
            &["log_keep (--log-keep)", "not 4294967295"],
            Nothing,
        ),
        row(
            "stale-after of 1e20 min",
            none,
            &["register", "x", "sleep 1", "--stale-after", "1e20"],
            2,
            &["stale_after_min (--stale-after)"],
            Nothing,
        ),
        row(
            "stop --timeout of 1e20 s",
            none,
            &["stop", "ghost", "--timeout", "1e20"],
            2,
            &["--timeout must be a number of seconds"],
            Nothing,
        ),
        row(
            "the healthcheck's own name",
            none,
            &["register", "healthcheck", "sleep 1"],
            2,
            &["it is reserved"],
            Nothing,
        ),
        row(
            "run without a program",
            none,
            &["run", "x"],
            2,
            &["<PROGRAM>"],
            Nothing,
        ),
        row(
            "unknown name",
            none,
            &["start", "ghost"],
            3,
            &["no process named \"ghost\""],
            Nothing,
        ),
        row(
            "unknown subcommand",
            none,
            &["frobnicate"],
            2,
            &["unrecognized subcommand 'frobnicate'"],
            Nothing,
        ),
        row(
            "negative stop timeout",
            none,
            &["stop", "ghost", "--timeout", "-1"],
            2,
            &["--timeout must be a number of seconds", "not -1"],
            Nothing,
        ),
        row(
            "negative --wait",
            none,
            &["start", "ghost", "--wait", "-1"],
            2,
            &["--wait must be a number of seconds", "not -1"],
            Nothing,
        ),
        row(
            "--since not a time",
            |e| {
                e.ok(&["register", "x", "sleep 1"]);
            },
            &["logs", "x", "--since", "soon"],
            2,
            &["--since \"soon\""],
            Nothing,
        ),
        row(
            "program not found",
            |e| {
                e.ok(&["register", "typo", "definitely-not-a-program --flag"]);
            },
            &["start", "typo"],
            1,
            &[
                "program not found: definitely-not-a-program",
                "register typo",
            ],
            RuntimeOnly,
        ),
        row(
            "program not executable",
            |e| {
                fs::write(e.ws.join("noexec.sh"), "echo hi\n").unwrap();
                fs::set_permissions(e.ws.join("noexec.sh"), fs::Permissions::from_mode(0o644))
                    .unwrap();
                e.ok(&["register", "noexec", "./noexec.sh"]);
            },
            &["start", "noexec"],
            1,
            &["permission denied: ./noexec.sh is not executable"],
            RuntimeOnly,
        ),
        row(
            "cwd removed after register",
            |e| {
                fs::create_dir(e.ws.join("gone")).unwrap();
                e.ok(&["register", "nodir", "sleep 100", "--cwd", "gone"]);
                fs::remove_dir(e.ws.join("gone")).unwrap();
            },
            &["start", "nodir"],
            1,
            &["working directory", "gone not found"],
            RuntimeOnly,
        ),
        row(
            "truncated registry",
            |e| registry(e, br#"{"a": {"command": "sleep 1"}, "b": {"comm"#),
            &["status"],
            2,
            &["not a valid registry (line 1", "left untouched"],
            Nothing,
        ),
        row(
            "truncated registry, on a write",
            |e| registry(e, br#"{"a": {"command": "sleep 1"}, "b": {"comm"#),
            &["register", "y", "sleep 1"],
            2,
            &["not a valid registry (line 1", "left untouched"],
            Nothing,
        ),
        row(
            "registry not an object",
            |e| registry(e, b"[1,2]\n"),
            &["status"],
            2,
            &["the top level must be an object"],
            Nothing,
        ),
        row(
            "entry without a command",
            |e| registry(e, br#"{"a": {"duration_min": 5}}"#),
            &["start", "a"],
            2,
            &["entry \"a\" is invalid: missing field `command`"],
            Nothing,
        ),
        row(
            "entry with a negative count",
            |e| registry(e, br#"{"a": {"command": "sleep 1", "max_restarts": -3}}"#),
            &["start", "a"],
            2,
            &["max_restarts = -3: invalid number"],
            Nothing,
        ),
        row(
            "hand-written stop timeout of 1e20 s",
            |e| {
                registry(e, br#"{"a": {"command": "sleep 1", "stop_timeout_s": 1e20}, "b": {"command": "sleep 1"}}"#)
            },
            &["start", "a"],
            2,
            &["entry \"a\" is invalid: stop_timeout_s"],
            Nothing,
        ),
        row(
            "a key twice",
            |e| {
                registry(
                    e,
                    b"{\"a\": {\"command\": \"x\"},\n \"a\": {\"command\": \"y\"}}\n",
                )
            },
            &["status"],
            2,
            &["the key \"a\" appears twice"],
            Nothing,
        ),
        row(
            "invalid UTF-8",
            |e| registry(e, b"{\"a\": {\"command\": \"\xff\"}}"),
            &["status"],
            2,
            &["invalid UTF-8"],
            Nothing,
        ),
        row(
            "registry writable by others",
            |e| {
                registry(e, b"{}\n");
                fs::set_permissions(e.registry_path(), fs::Permissions::from_mode(0o666)).unwrap();
            },
            &["status"],
            2,
            &["writable by every user", "chmod go-w"],
            Nothing,
        ),
        row(
            "registry owned by another user",
            |e| {
                registry(e, b"{}\n");
                std::os::unix::fs::chown(e.registry_path(), Some(65534), None).unwrap();
            },
            &["status"],
            2,
            &["owned by uid 65534", "chown"],
            Nothing,
        ),
        row(
            "corrupt state file",
            |e| {
                e.ok(&["register", "typo", "sleep 1"]);
                fs::create_dir_all(e.ws.join(".process-guardian/run")).unwrap();
                fs::write(e.ws.join(".process-guardian/run/typo.json"), "garbage").unwrap();
                fs::set_permissions(
                    e.ws.join(".process-guardian/run/typo.json"),
                    fs::Permissions::from_mode(0o600),
                )
                .unwrap();
            },
            &["status", "typo"],
            0,
            &[],
            Nothing,
        ),
        row(
            "workspace missing",
            none,
            &["--workspace", "/no/such/ws", "status"],
            2,
            &["workspace /no/such/ws", "create it or pick another"],
            Nothing,
        ),
        row(
            "import of a missing file",
            none,
            &["import", "nofile"],
            2,
            &["nofile: no such file to import"],
            Nothing,
        ),
        row(
            "import of numprocs=4",
            |env| {
                fs::write(
                    env.ws.join("many.conf"),
                    "[program:many]\ncommand=sleep 9\nnumprocs=4\n",
                )
                .unwrap()
            },
            &["import", "many.conf"],
            2,
            &["numprocs=4", "one process per name"],
            Nothing,
        ),
        row(
            "Procfile line without a colon",
            |env| fs::write(env.ws.join("Procfile"), "web python3 app.py\n").unwrap(),
            &["import", "Procfile"],
            2,
            &["line 1: expected `name: command`"],
            Nothing,
        ),
        row(
            "export of an unknown name",
            none,
            &["export", "systemd", "ghost"],
            3,
            &["no process named \"ghost\""],
            Nothing,
        ),
        row(
            "export kubernetes without an image",
            none,
            &["export", "kubernetes"],
            2,
            &["--image <IMAGE>"],
            Nothing,
        ),
    ]
}

/// Every file under `dir`, with its bytes (a FIFO or other file as its kind).
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                out.insert(format!("{rel}/"), Vec::new());
                stack.push(p);
            } else if ft.is_file() {
                out.insert(rel, fs::read(&p).unwrap_or_default());
            } else {
                out.insert(rel, b"(not a regular file)".to_vec());
            }
        }
    }
    out
}

#[test]
fn every_bad_input_gets_its_exit_code_its_words_and_writes_nothing_it_should_not() {
    for r in rows() {
        let env = Env::new();
        (r.setup)(&env);
        let before = snapshot(&env.ws);
        let args: Vec<&str> = r.args.iter().map(String::as_str).collect();
        let out = env.run(&args);
        let err = stderr(&out);
        assert_eq!(
            out.status.code(),
            Some(r.exit),
            "{}: {args:?}\n{err}",
            r.what
        );
        for words in r.says {
            assert!(err.contains(words), "{}: {words:?} not in: {err}", r.what);
        }
        if r.exit != 0 {
            assert!(!err.trim().is_empty(), "{}: says nothing", r.what);
        }
        let after = snapshot(&env.ws);
        match r.writes {
            Writes::Nothing => assert_eq!(before, after, "{}: the workspace changed", r.what),
            Writes::RuntimeOnly => {
                for (path, bytes) in &before {
                    if !path.starts_with(".process-guardian/") {
                        assert_eq!(after.get(path), Some(bytes), "{}: {path} changed", r.what);
                    }
                }
                for path in after.keys() {
                    assert!(
                        path.starts_with(".process-guardian/") || before.contains_key(path),
                        "{}: {path} appeared",
                        r.what
                    );
                }
                assert_eq!(
                    before.get(".process-registry.json"),
                    after.get(".process-registry.json"),
                    "{}: the registry changed",
                    r.what
                );
            }
        }
    }
}

#[test]
fn the_documented_table_is_exactly_the_tested_rows() {
    let doc =
        fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/RELIABILITY.md")).unwrap();
    let table: BTreeMap<String, i32> = doc
        .lines()
        .skip_while(|l| !l.starts_with("| bad input |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.split(" | ").collect();
            let what = cells[0].trim_start_matches("| ").to_string();
            (what, cells[2].trim().parse().unwrap_or(-1))
        })
        .collect();
    let tested: BTreeMap<String, i32> = rows()
        .iter()
        .map(|r| (r.what.to_string(), r.exit))
        .collect();
    assert_eq!(
        table, tested,
        "docs/RELIABILITY.md's table and the rows of tests/bad_input.rs differ"
    );
}
