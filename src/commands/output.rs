//! What a command did, and the one place that prints it: lines for a
//! person, or one JSON document for a program. Commands build a typed
//! outcome (`StartOutcome`, `StopOutcome`, the healthcheck's report…) and
//! turn it into an `Output`; they print nothing themselves (but `logs`,
//! which streams).

use std::io::Write;

use serde::Serialize;

use crate::error::{EXIT_FAILURE, EXIT_OK};

pub struct Output {
    pub code: i32,
    pub human: Vec<String>,
    /// Lines for a person's stderr (what went wrong for one of several names).
    pub stderr: Vec<String>,
    /// Bytes printed as they are, JSON or not (a completion script, a man page).
    pub raw: Option<Vec<u8>>,
    /// The JSON document, already rendered (serialized straight from the
    /// outcome's borrowed fields: `status` of many processes stays cheap).
    pub json: String,
    /// Whether the caller asked for JSON.
    pub as_json: bool,
}

impl Output {
    pub fn new(human: Vec<String>, json: impl Serialize) -> Output {
        // Cannot fail on our outcomes, whose paths are text; if it ever
        // did, a program reading the JSON is told so, never handed nothing.
        let (code, json) = match serde_json::to_string_pretty(&json) {
            Ok(doc) => (EXIT_OK, doc),
            Err(e) => {
                let message = format!("cannot write the answer as JSON: {e}");
                let doc =
                    serde_json::json!({ "error": { "code": EXIT_FAILURE, "message": message } });
                (EXIT_FAILURE, doc.to_string())
            }
        };
        Output {
            code,
            human,
            stderr: Vec::new(),
            raw: None,
            json,
            as_json: false,
        }
    }

    /// Bytes to print as they are.
    pub fn raw(bytes: Vec<u8>) -> Output {
        Output {
            raw: Some(bytes),
            ..Output::human(Vec::new())
        }
    }

    /// Lines for a person only.
    pub fn human(human: Vec<String>) -> Output {
        Output {
            code: EXIT_OK,
            human,
            stderr: Vec::new(),
            raw: None,
            json: String::new(),
            as_json: false,
        }
    }

    /// Nothing more to print (a command that already streamed its output).
    pub fn nothing() -> Output {
        Output::human(Vec::new())
    }

    pub fn with_code(mut self, code: i32) -> Output {
        self.code = code;
        self
    }

    pub fn json(mut self, as_json: bool) -> Output {
        self.as_json = as_json;
        self
    }
}

/// Prints an output to stdout; a reader that went away is not our failure.
pub fn print(out: &Output) {
    let stdout = std::io::stdout();
    let mut w = std::io::BufWriter::new(stdout.lock());
    if let Some(raw) = &out.raw {
        let _ = w.write_all(raw);
        let _ = w.flush();
        return;
    }
    if !out.as_json {
        for line in &out.stderr {
            eprintln!("{line}");
        }
    }
    if out.as_json {
        if !out.json.is_empty() {
            let _ = writeln!(w, "{}", out.json);
        }
    } else {
        for line in &out.human {
            let _ = writeln!(w, "{line}");
        }
    }
    let _ = w.flush();
}

/// An error as JSON: `{"code": N, "message": "…"}`.
pub fn error_json(e: &crate::error::Error) -> serde_json::Value {
    serde_json::json!({ "code": e.exit_code(), "message": e.to_string() })
}

/// Prints an error for a program: `{"error": {"code", "message"}}` on stdout.
pub fn print_error_json(code: i32, message: &str) {
    let doc = serde_json::json!({ "error": { "code": code, "message": message } });
    let _ = writeln!(
        std::io::stdout(),
        "{}",
        serde_json::to_string_pretty(&doc).unwrap_or_default()
    );
}

/// What `start` (and `run`, `restart`) did.
#[derive(Serialize, Debug, Clone)]
pub struct StartOutcome {
    pub name: String,
    /// `started`, `adopted` (a command that outlived its supervisor), or `already-running`.
    pub result: &'static str,
    pub pid: Option<i32>,
    /// The state it was found in, when it was already supervised.
    pub state: Option<&'static str>,
    /// `start --wait S`: it was still running after this many seconds.
    pub waited_s: Option<f64>,
    /// What it comes after, started (or found running) first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<StartOutcome>,
}

impl StartOutcome {
    pub fn lines(&self) -> Vec<String> {
        let name = &self.name;
        let mut out: Vec<String> = self.after.iter().flat_map(|a| a.lines()).collect();
        out.push(match (self.result, self.pid) {
            ("started", Some(pid)) => format!("started {name} (pid {pid})"),
            ("adopted", Some(pid)) => {
                format!("{name} was still running (pid {pid}); it is supervised again")
            }
            (_, Some(pid)) => format!("{name} is already running (pid {pid})"),
            (_, None) => format!(
                "{name} is already supervised ({})",
                self.state.unwrap_or("running")
            ),
        });
        if let Some(s) = self.waited_s {
            out.push(format!("{name} is still running after {s} s"));
        }
        out
    }

    pub fn output(&self) -> Output {
        Output::new(self.lines(), self)
    }
}

/// What `stop` did.
#[derive(Serialize, Debug, Clone)]
pub struct StopOutcome {
    pub name: String,
    /// Whether anything was running to stop.
    pub stopped: bool,
    pub pid: Option<i32>,
    /// The signal that ended its last process (`TERM`, `KILL`).
    pub ended_by: Option<String>,
    pub took_s: f64,
    /// Its stop signal, as registered.
    #[serde(skip)]
    pub stop_signal: String,
}

impl StopOutcome {
    pub fn lines(&self) -> Vec<String> {
        let name = &self.name;
        if !self.stopped {
            return vec![format!("{name} is not running (nothing to stop)")];
        }
        let who = self.pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
        let took = self.took_s;
        vec![match self.ended_by.as_deref() {
            Some("KILL") if self.stop_signal != "KILL" => format!(
                "stopped {name}{who}: it ignored {} for {took:.1} s, so it was killed with SIGKILL",
                self.stop_signal
            ),
            Some(sig) => format!("stopped {name}{who}: ended by SIG{sig} after {took:.1} s"),
            None => format!("stopped {name}{who}"),
        }]
    }

    pub fn output(&self) -> Output {
        Output::new(self.lines(), self)
    }
}

/// Two steps as one output: `restart` is a stop and a start.
pub fn both(name: &str, stop: &StopOutcome, start: &StartOutcome) -> Output {
    let mut human = stop.lines();
    human.extend(start.lines());
    Output::new(
        human,
        serde_json::json!({ "name": name, "stop": stop, "start": start }),
    )
}
