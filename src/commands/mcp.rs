//! `mcp`: a Model Context Protocol server on stdio, so that an agent can
//! manage processes without a shell. JSON-RPC 2.0, one message a line
//! (the MCP stdio transport); the tools are the commands themselves, run
//! in this process, and each result is the command's JSON as text.
//!
//! Hand-written rather than the rmcp SDK: the protocol surface needed
//! (initialize, ping, tools/list, tools/call) is small, and an async
//! runtime would weigh on a binary every supervisor is a copy of. The
//! supervisor never reaches this module.

use std::io::{BufRead, Write};

use serde::Deserialize;
use serde_json::{Value, json};

use super::output::{Output, error_json};
use crate::cli::{EntryOpts, WaitFor};
use crate::error::{Error, Result};
use crate::workspace::Workspace;

/// The protocol revisions we speak; the client's is echoed if we know it.
const VERSIONS: [&str; 3] = ["2025-06-18", "2025-03-26", "2024-11-05"];

pub fn serve(ws: &Workspace) -> Result<Output> {
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    for line in stdin.lock().lines() {
        let line = line.map_err(|e| Error::io("read", "stdin", e))?;
        if line.trim().is_empty() {
            continue;
        }
        let reply = match serde_json::from_str::<Value>(&line) {
            Ok(msg) => answer(ws, &msg),
            Err(e) => Some(failure(Value::Null, -32700, &format!("parse error: {e}"))),
        };
        if let Some(reply) = reply {
            let mut out = stdout.lock();
            let text = serde_json::to_string(&reply).unwrap_or_default();
            if writeln!(out, "{text}").and_then(|_| out.flush()).is_err() {
                break; // the client went away
            }
        }
    }
    Ok(Output::nothing())
}

fn success(id: Value, result: Value) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "result": result })
}

fn failure(id: Value, code: i64, message: &str) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "error": { "code": code, "message": message } })
}

/// The reply to one message; none to a notification.
fn answer(ws: &Workspace, msg: &Value) -> Option<Value> {
    let method = msg.get("method").and_then(Value::as_str);
    let id = msg.get("id").cloned();
    let params = msg.get("params").cloned().unwrap_or(Value::Null);
    let (Some(method), Some(id)) = (method, id) else {
        // A notification (initialized, cancelled) or a response: nothing to say.
        return None;
    };
    Some(match method {
        "initialize" => {
            let asked = params.get("protocolVersion").and_then(Value::as_str);
            let version = asked
                .filter(|v| VERSIONS.contains(v))
                .unwrap_or(VERSIONS[0]);
            success(
                id,
                json!({
                    "protocolVersion": version,
                    "capabilities": { "tools": { "listChanged": false } },
                    "serverInfo": { "name": "process-guardian", "version": env!("CARGO_PKG_VERSION") },
                    "instructions": "Manage long-running background processes of this workspace: register or run a command under a name, start, stop, restart, read status and logs, wait for a state, read recent alerts. Every result is JSON.",
                }),
            )
        }
        "ping" => success(id, json!({})),
        "tools/list" => success(id, json!({ "tools": tools() })),
        "tools/call" => {
            let name = params.get("name").and_then(Value::as_str).unwrap_or("");
            let args = params.get("arguments").cloned().unwrap_or(json!({}));
            match call(ws, name, args) {
                Ok((text, is_error)) => success(
                    id,
                    json!({ "content": [{ "type": "text", "text": text }], "isError": is_error }),
                ),
                Err(Call::Unknown) => failure(id, -32602, &format!("unknown tool {name:?}")),
                Err(Call::Failed(e)) => {
                    let text = json!({ "error": error_json(&e) }).to_string();
                    success(
                        id,
                        json!({ "content": [{ "type": "text", "text": text }], "isError": true }),
                    )
                }
            }
        }
        other => failure(id, -32601, &format!("method not found: {other}")),
    })
}

enum Call {
    Unknown,
    Failed(Error),
}

impl From<Error> for Call {
    fn from(e: Error) -> Call {
        Call::Failed(e)
    }
}

fn bad_args(tool: &str, e: serde_json::Error) -> Call {
    Call::Failed(Error::Invalid(format!("{tool}: invalid arguments: {e}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NameArg {
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusArgs {
    #[serde(default)]
    names: Vec<String>,
}

#[derive(Deserialize)]
struct RegisterArgs {
    name: String,
    command: String,
    #[serde(default)]
    duration_min: Option<f64>,
    #[serde(flatten)]
    opts: EntryOpts,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StopArgs {
    name: String,
    #[serde(default)]
    timeout: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogsArgs {
    name: String,
    #[serde(default)]
    lines: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WaitArgs {
    name: String,
    #[serde(rename = "for", default = "running")]
    until: WaitFor,
    #[serde(default)]
    timeout: Option<f64>,
}

fn running() -> WaitFor {
    WaitFor::Running
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertsArgs {
    #[serde(default)]
    limit: Option<usize>,
}

/// Runs one tool; its JSON text and whether it failed.
fn call(ws: &Workspace, tool: &str, args: Value) -> std::result::Result<(String, bool), Call> {
    if matches!(tool, "run" | "start" | "restart" | "stop") {
        super::require_pidfds()?;
    }
    let out: Output = match tool {
        "status" => {
            let a: StatusArgs = serde_json::from_value(args).map_err(|e| bad_args(tool, e))?;
            for n in &a.names {
                crate::registry::validate_name(n)?;
            }
            super::status::run(ws, &a.names, true)?
        }
        "register" | "run" => {
            let a: RegisterArgs = serde_json::from_value(args).map_err(|e| bad_args(tool, e))?;
            crate::registry::validate_name(&a.name)?;
            if tool == "register" {
                super::register::register(ws, &a.name, a.command, a.duration_min, &a.opts)?
            } else {
                super::register::run_command(ws, &a.name, a.command, a.duration_min, &a.opts)?
            }
        }
        "start" | "restart" => {
            let a: NameArg = serde_json::from_value(args).map_err(|e| bad_args(tool, e))?;
            crate::registry::validate_name(&a.name)?;
            if tool == "start" {
                super::start::start(ws, &a.name, None)?
            } else {
                super::start::restart(ws, &a.name)?
            }
        }
        "stop" => {
            let a: StopArgs = serde_json::from_value(args).map_err(|e| bad_args(tool, e))?;
            crate::registry::validate_name(&a.name)?;
            let timeout = a
                .timeout
                .map(|t| super::start::flag_secs("timeout", t))
                .transpose()?;
            super::stop::run(ws, &a.name, timeout)?
        }
        "logs" => {
            let a: LogsArgs = serde_json::from_value(args).map_err(|e| bad_args(tool, e))?;
            crate::registry::validate_name(&a.name)?;
            crate::registry::Registry::load(ws)?.require(&a.name)?;
            let n = a.lines.unwrap_or(50).min(10_000);
            let path = ws.log_path(&a.name);
            let lines = match crate::logs::tail(&path, n) {
                Ok(l) => l,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(e) => return Err(Error::io("read", &path, e).into()),
            };
            Output::new(
                Vec::new(),
                json!({ "name": a.name, "log": path, "lines": lines }),
            )
        }
        "wait" => {
            let a: WaitArgs = serde_json::from_value(args).map_err(|e| bad_args(tool, e))?;
            crate::registry::validate_name(&a.name)?;
            super::wait::run(ws, &a.name, a.until, a.timeout)?
        }
        "alerts" => {
            let a: AlertsArgs = serde_json::from_value(args).map_err(|e| bad_args(tool, e))?;
            let limit = a.limit.unwrap_or(20).min(1000);
            let path = ws.alerts_path();
            let lines = crate::logs::tail(&path, limit).unwrap_or_default();
            let alerts: Vec<Value> = lines
                .iter()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect();
            Output::new(Vec::new(), json!({ "alerts": alerts }))
        }
        _ => return Err(Call::Unknown),
    };
    let text = if out.json.is_empty() {
        json!({ "message": out.human.join("\n") }).to_string()
    } else {
        out.json.clone()
    };
    Ok((text, out.code != 0))
}

fn name_schema() -> Value {
    json!({ "type": "string", "description": crate::cli::NAME_HELP, "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$" })
}

fn tools() -> Value {
    let entry_props = json!({
        "name": name_schema(),
        "command": { "type": "string", "description": "The command line; shell syntax runs under sh -c" },
        "duration_min": { "type": "number", "minimum": 0, "description": "Expected run time in minutes (0: indefinite); exiting 0 after 80 % of it counts as done" },
        "no_auto_restart": { "type": "boolean", "description": "Do not restart it when it exits" },
        "max_restarts": { "type": "integer", "minimum": 0, "description": "Quick crashes in a row before giving up (0: no limit; default 5)" },
        "restart_cooldown": { "type": "number", "minimum": 0, "description": "A run shorter than this many seconds is a quick crash (default 30)" },
        "cwd": { "type": "string", "description": "Working directory (default: the workspace)" },
        "env": { "type": "array", "items": { "type": "string" }, "description": "Environment variables as KEY=VALUE" },
        "stop_signal": { "type": "string", "description": "Signal that asks it to stop (default TERM)" },
        "stop_timeout": { "type": "number", "minimum": 0, "description": "Seconds between the stop signal and SIGKILL (default 10)" },
        "alert_command": { "type": "string", "description": "Command run with sh -c on every alert of this process" },
        "stale_after": { "type": "number", "description": "Restart it when its log has not grown for this many minutes" },
        "log_max_bytes": { "type": "integer", "minimum": 4096, "description": "Rotate its log past this size (default 10 MiB)" },
        "log_keep": { "type": "integer", "minimum": 0, "maximum": 100, "description": "Rotated logs to keep (default 3)" },
        "timestamps": { "type": "boolean", "description": "Prefix each line of output with its UTC time" },
        "env_file": { "type": "string", "description": "A .env file of KEY=VALUE lines read at each start (relative to cwd); env overrides it" },
        "after": { "type": "array", "items": name_schema(), "description": "Registered processes started (and revived) before this one" },
        "ready_http": { "type": "string", "description": "Ready once this plain http:// URL answers 2xx or 3xx" },
        "ready_tcp": { "type": "string", "description": "Ready once HOST:PORT accepts a connection" },
        "ready_cmd": { "type": "string", "description": "Ready once this command exits 0" },
        "ready_log": { "type": "string", "description": "Ready once a line of its output matches this regex" },
        "ready_timeout": { "type": "number", "description": "Seconds it may take to become ready (default 60)" },
        "health_http": { "type": "string", "description": "Healthy while this http:// URL answers 2xx or 3xx" },
        "health_tcp": { "type": "string", "description": "Healthy while HOST:PORT accepts a connection" },
        "health_cmd": { "type": "string", "description": "Healthy while this command exits 0" },
        "health_interval": { "type": "number", "description": "Seconds between health probes (default 10)" },
        "health_timeout": { "type": "number", "description": "Seconds one health probe may take" },
        "health_failures": { "type": "integer", "minimum": 1, "description": "Failed probes in a row that restart it (default 3)" },
        "max_memory": { "type": "string", "description": "Restart it past this resident memory (200M, 1.5G)" },
    });
    let name_only = json!({ "type": "object", "properties": { "name": name_schema() }, "required": ["name"], "additionalProperties": false });
    json!([
        { "name": "status", "description": "The state of registered processes (all, or the names given): state, pid, uptime, restarts, last exit, log path.",
          "inputSchema": { "type": "object", "properties": { "names": { "type": "array", "items": name_schema() } }, "additionalProperties": false } },
        { "name": "register", "description": "Define or update a managed process (does not start it).",
          "inputSchema": { "type": "object", "properties": entry_props, "required": ["name", "command"], "additionalProperties": false } },
        { "name": "run", "description": "Register and start in one step; idempotent: the same definition already running is left alone, a changed one is restarted.",
          "inputSchema": { "type": "object", "properties": entry_props, "required": ["name", "command"], "additionalProperties": false } },
        { "name": "start", "description": "Start a registered process, detached; returns once it has exec'd.", "inputSchema": name_only },
        { "name": "stop", "description": "Stop a process: its stop signal to the whole group, SIGKILL after the timeout.",
          "inputSchema": { "type": "object", "properties": { "name": name_schema(), "timeout": { "type": "number", "minimum": 0, "maximum": 86400 } }, "required": ["name"], "additionalProperties": false } },
        { "name": "restart", "description": "Stop and start again, resetting the crash counters.", "inputSchema": name_only },
        { "name": "logs", "description": "The last lines of a process's log (its stdout, stderr and lifecycle lines).",
          "inputSchema": { "type": "object", "properties": { "name": name_schema(), "lines": { "type": "integer", "minimum": 0, "maximum": 10000, "default": 50 } }, "required": ["name"], "additionalProperties": false } },
        { "name": "wait", "description": "Wait until a process is running, ready, stopped or exited, up to a timeout (default 60 s).",
          "inputSchema": { "type": "object", "properties": { "name": name_schema(), "for": { "type": "string", "enum": ["running", "ready", "stopped", "exited"], "default": "running" }, "timeout": { "type": "number", "minimum": 0, "maximum": 86400 } }, "required": ["name"], "additionalProperties": false } },
        { "name": "alerts", "description": "The most recent alerts (deaths, crash loops, exits, hung processes), newest last.",
          "inputSchema": { "type": "object", "properties": { "limit": { "type": "integer", "minimum": 1, "maximum": 1000, "default": 20 } }, "additionalProperties": false } },
    ])
}
