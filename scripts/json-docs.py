#!/usr/bin/env python3
"""Writes docs/JSON.md from the binary's real output: every example is run,
in order, in a scratch workspace (tests/json_docs.rs replays the file and
checks each documented shape against the binary).

    python3 scripts/json-docs.py [BINARY]   (default: target/debug/process-guardian)
"""

import json
import os
import shlex
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (heading, what it says, arguments after `process-guardian`)
EXAMPLES = [
    ("register", "What was written to the registry; `changes` lists what differs from the running definition.",
     "--json register web 'sleep 600'"),
    ("start", "`result` is `started`, `adopted` (a command that outlived its supervisor) or `already-running`.",
     "--json start web"),
    ("status", "Always an array, one object a process (`status NAME…` for some).", "--json status web"),
    ("signal", "The signal went to the command's process group.", "--json signal web CONT"),
    ("wait", "`reached` false (exit 1) when the timeout passed first.", "--json wait web --for running --timeout 5"),
    ("logs", "One object a line: `at` is the line's stamp, or that of the last stamped line before it.",
     "--json logs web -n 2"),
    ("run", "As `start`; when the definition changed, `changes`, `stop` and `start`.", "--json run worker -- sleep 700"),
    ("restart", "A stop and a start.", "--json restart web"),
    ("export systemd", "Each unit: its text (as written with `--dir`, where `path` says where), and what it could not say.",
     "--json export systemd web"),
    ("export kubernetes", "A Kubernetes `List` of the workloads, which `kubectl apply -f` takes as it is.",
     "--json export kubernetes web --image python:3.12-slim"),
    ("import", "What each process became (`result`: `registered`, `replaced`, `unchanged`, or with `--dry-run` "
     "`would-register`, `would-replace`, `conflicts`), `notes` on what changed in translation, `ignored` keys.",
     "--json import Procfile --dry-run"),
    ("stop, several names", "An array, one outcome a name, in the order given; the exit code is the worst.",
     "--json stop web worker"),
    ("start --all", "Every registered process.", "--json start --all"),
    ("stop --all", "", "--json stop --all"),
    ("healthcheck", "What it did (`actions`), what it found (`processes`, as `status`).", "--json healthcheck"),
    ("doctor", "Each check; exit 1 with any warning.", "--json doctor"),
    ("deregister", "", "--json deregister worker"),
    ("cron show", "This workspace's crontab lines.", "--json cron show"),
    ("an error", "On stdout, with the exit code of the error (3: no such process).", "--json start ghost"),
    ("a bad value", "Exit 2: bad input.", "--json register x 'sleep 1' --restart-cooldown -1"),
    ("wait, timed out", "", "--json wait web --for running --timeout 0.5"),
]

PROCFILE = "queue: python3 queue.py --port $PORT\n"

HEAD = """# JSON output

With `--json` (anywhere on the command line), every command prints one JSON
document on stdout and nothing else there; `logs --json` prints one JSON
object a line. An error is a document too, `{"error": {"code": N, "message":
"…"}}`, with the same exit code as without `--json` (0 success, 1 failed, 2
bad input, 3 no such process). A command for several names (or `--all`)
prints an array with one outcome a name, `{"name", "error"}` for one that
failed.

Written by `scripts/json-docs.py` from a real run; `tests/json_docs.rs`
replays every example below (in a workspace whose `Procfile` holds
`queue: python3 queue.py --port $PORT`) and checks that the binary prints exactly the
documented keys (values such as pids and times differ from run to run).
"""


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target", "debug", "process-guardian")
    ws = tempfile.mkdtemp(prefix="pg-json-docs-")
    env = dict(os.environ, PROCESS_GUARDIAN_WORKSPACE=ws, PROCESS_GUARDIAN_ALERT_DIR=ws, NO_COLOR="1")
    env.pop("PROCESS_GUARDIAN_ALERT_COMMAND", None)
    out = [HEAD]
    # What the import example reads (tests/json_docs.rs writes the same).
    with open(os.path.join(ws, "Procfile"), "w") as f:
        f.write(PROCFILE)
    try:
        for heading, says, cmd in EXAMPLES:
            r = subprocess.run([binary, *shlex.split(cmd)], cwd=ws, env=env, capture_output=True, text=True,
                               timeout=60)
            text = r.stdout.replace(ws, "/home/me/project").rstrip("\n")
            if "logs" not in shlex.split(cmd):
                json.loads(text)  # one document
            out.append(f"## {heading}\n")
            if says:
                out.append(says + "\n")
            out.append("```console")
            out.append(f"$ process-guardian {cmd}")
            if r.returncode:
                out.append(f"# exit {r.returncode}")
            out.append(text)
            out.append("```\n")
    finally:
        subprocess.run([binary, "stop", "--all"], cwd=ws, env=env, capture_output=True)
    with open(os.path.join(ROOT, "docs", "JSON.md"), "w") as f:
        f.write("\n".join(out))
    print("wrote docs/JSON.md", file=sys.stderr)


if __name__ == "__main__":
    main()
