//! The MCP server, driven by the official Python SDK's stdio client
//! (`pip install mcp`; `.ci/run` installs it): initialize, list the tools
//! with their input schemas, run a process, wait for it, read its status and
//! logs, stop it, and the errors an agent gets for an unknown or bad name.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

fn python() -> String {
    std::env::var("PG_MCP_PYTHON").unwrap_or_else(|_| "python3".into())
}

#[test]
fn an_mcp_client_runs_reads_and_stops_a_process() {
    let has_sdk = Command::new(python())
        .args(["-c", "import mcp.client.stdio"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_sdk {
        cannot_run(
            "the MCP Python SDK must be installed under CI (pip install mcp)",
            "the MCP Python SDK is not installed (pip install mcp)",
        );
        return;
    }
    let env = Env::new();
    let mut c = Command::new(python());
    c.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/mcp/client.py"))
        .arg(BIN)
        .arg(&env.ws);
    let out = run_with_deadline(c, Duration::from_secs(60));
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(seen["server"], "process-guardian");
    let tools: Vec<&str> = seen["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(
        tools,
        [
            "alerts", "logs", "register", "restart", "run", "start", "status", "stop", "wait"
        ]
    );
    for (tool, schema) in seen["schemas"].as_object().unwrap() {
        assert_eq!(schema["type"], "object", "{tool}");
    }
    assert_eq!(
        seen["schemas"]["run"]["required"],
        serde_json::json!(["name", "command"])
    );
    assert_eq!(seen["run_is_error"], false, "{seen}");
    let pid = seen["run"]["pid"].as_i64().expect("run gives the pid") as i32;
    assert_eq!(seen["wait"]["reached"], true);
    assert_eq!(seen["status"][0]["name"], "echoer");
    assert_eq!(seen["status"][0]["state"], "running");
    assert_eq!(seen["status"][0]["pid"], pid);
    let lines = seen["logs"]["lines"].as_array().unwrap();
    assert!(
        lines
            .iter()
            .any(|l| l.as_str().unwrap().ends_with(" hello-from-mcp")),
        "{lines:?}"
    );
    assert_eq!(seen["stop"]["stopped"], true);
    assert!(!alive(pid), "stopped through MCP");
    assert_eq!(seen["unknown_is_error"], true);
    assert_eq!(seen["unknown"]["error"]["code"], 3);
    assert_eq!(seen["bad_name"]["error"]["code"], 2);
    assert!(seen["alerts"]["alerts"].is_array());
}
