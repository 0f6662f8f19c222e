#!/usr/bin/env python3
"""A/B: two process-guardian binaries measured side by side, interleaved.

    python3 bench/ab.py OLD_BINARY NEW_BINARY [--kills N] [--rounds N]

On a noisy machine two separate benchmark runs differ by more than a change
does; here every sample of A is taken next to one of B, in alternating
order, in workspaces of their own. It measures the figures a change to the
supervisor or the command line can move:

- restart after kill -9 of the command (restart_cooldown 0): median, p90;
- start confirmed (start of a registered, stopped process): median;
- status --json with 100 running: median, beside /bin/true;
- supervisor PSS with 10 running: mean per supervisor;
- CPU of 100 idle supervisors over --idle seconds, both sets at once.

It reports; it never fails because the machine is slow.
"""

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys_path_dir = os.path.dirname(os.path.abspath(__file__))
if sys_path_dir not in sys.path:
    sys.path.insert(0, sys_path_dir)
from bench import comm, cpu_ns  # noqa: E402  (the same helpers as the main benchmark)


def env_for(ws):
    return dict(os.environ, PROCESS_GUARDIAN_WORKSPACE=ws, PROCESS_GUARDIAN_ALERT_DIR=ws,
                PROCESS_GUARDIAN_ALERT_COOLDOWN="100000")


def run(binary, ws, *args):
    return subprocess.run([binary, *args], capture_output=True, env=env_for(ws))


def children(pid):
    """Children of every thread of pid (bench.py's own `children` reads the main thread's)."""
    out = []
    for t in os.listdir(f"/proc/{pid}/task") if os.path.isdir(f"/proc/{pid}/task") else []:
        try:
            with open(f"/proc/{pid}/task/{t}/children") as f:
                out += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return out


def sleeper(sup):
    for c in children(sup):
        if comm(c) == "sleep":
            return c
    return None


def state(ws, name):
    with open(f"{ws}/.process-guardian/run/{name}.json") as f:
        return json.load(f)


def pss_kib(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def restart_samples(bins, kills):
    setups = {}
    for k, b in bins.items():
        ws = tempfile.mkdtemp(prefix="pg-ab-")
        run(b, ws, "register", "r", "sleep 100000", "--restart-cooldown", "0")
        run(b, ws, "start", "r")
        setups[k] = (ws, state(ws, "r")["supervisor_pid"])
    samples = {k: [] for k in bins}
    for i in range(kills):
        for k in (list(bins) if i % 2 == 0 else list(bins)[::-1]):
            ws, sup = setups[k]
            deadline = time.time() + 5
            old = None
            while not old and time.time() < deadline:
                old = sleeper(sup)
            if not old:
                continue
            time.sleep(0.02)
            t = time.perf_counter()
            os.kill(old, signal.SIGKILL)
            while time.perf_counter() - t < 5:
                p = sleeper(sup)
                if p and p != old:
                    samples[k].append((time.perf_counter() - t) * 1000)
                    break
                # As bench.py: a spinning poll holds a core the supervisor needs.
                os.sched_yield()
    for k, b in bins.items():
        run(b, setups[k][0], "deregister", "r", "--purge")
    return samples


def start_samples(bins, rounds):
    wss = {}
    for k, b in bins.items():
        ws = tempfile.mkdtemp(prefix="pg-ab-")
        run(b, ws, "register", "s", "sleep 100000")
        wss[k] = ws
    samples = {k: [] for k in bins}
    for i in range(rounds):
        for k in (list(bins) if i % 2 == 0 else list(bins)[::-1]):
            t = time.perf_counter()
            r = run(bins[k], wss[k], "start", "s")
            if r.returncode == 0:
                samples[k].append((time.perf_counter() - t) * 1000)
            run(bins[k], wss[k], "stop", "s")
    return samples


def status_and_memory(bins, rounds, idle_s):
    wss = {}
    for k, b in bins.items():
        ws = tempfile.mkdtemp(prefix="pg-ab-")
        for i in range(100):
            run(b, ws, "register", f"p{i}", "sleep 100000")
            run(b, ws, "start", f"p{i}")
        wss[k] = ws
    pss, idle = {}, {}
    sups = {k: [state(ws, f"p{i}")["supervisor_pid"] for i in range(100)] for k, ws in wss.items()}
    for k in wss:
        vals = [v for v in (pss_kib(p) for p in sups[k][:10]) if v is not None]
        pss[k] = statistics.mean(vals) if vals else None
    # Both sets idle over the same seconds: the same machine for each.
    before = {k: cpu_ns(p) for k, p in sups.items()}
    t0 = time.perf_counter()
    time.sleep(idle_s)
    wall = time.perf_counter() - t0
    for k, p in sups.items():
        idle[k] = 100 * (cpu_ns(p) - before[k]) / 1e9 / wall
    cmds = dict(bins, true="/bin/true")
    samples = {k: [] for k in cmds}
    for r in range(rounds):
        for k in (list(cmds) if r % 2 == 0 else list(cmds)[::-1]):
            ws = wss.get(k, next(iter(wss.values())))
            for _ in range(5):
                t = time.perf_counter()
                subprocess.run([cmds[k], "status", "--json"], stdout=subprocess.DEVNULL, env=env_for(ws))
                samples[k].append((time.perf_counter() - t) * 1000)
    for k, b in bins.items():
        for i in range(100):
            run(b, wss[k], "stop", f"p{i}")
    return samples, pss, idle


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--kills", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--idle", type=float, default=60, help="seconds of idle CPU measured (default 60)")
    args = ap.parse_args()
    bins = {"A": args.a, "B": args.b}
    restart = restart_samples(bins, args.kills)
    start = start_samples(bins, args.rounds)
    status, pss, idle = status_and_memory(bins, args.rounds, args.idle)
    med = lambda v: statistics.median(v) if v else float("nan")
    p90 = lambda v: sorted(v)[int(len(v) * 0.9)] if v else float("nan")
    print(f"A = {args.a}\nB = {args.b}\n")
    print("| figure | A | B | B/A |")
    print("| --- | --- | --- | --- |")
    rows = [
        ("restart after kill -9, median ms", med(restart["A"]), med(restart["B"])),
        ("restart after kill -9, p90 ms", p90(restart["A"]), p90(restart["B"])),
        ("start confirmed, median ms", med(start["A"]), med(start["B"])),
        ("status --json of 100, median ms", med(status["A"]), med(status["B"])),
        ("supervisor PSS at 100 running, KiB", pss["A"] or float("nan"), pss["B"] or float("nan")),
        (f"CPU of 100 idle supervisors over {args.idle:.0f} s, % of one core", idle["A"], idle["B"]),
    ]
    for name, a, b in rows:
        ratio = f"{b / a:.2f}" if a else "n/a"
        print(f"| {name} | {a:.3f} | {b:.3f} | {ratio} |")
    print(f"\n/bin/true spawned the same way: {med(status['true']):.2f} ms; "
          f"samples: restart {len(restart['A'])}/{len(restart['B'])}, start {len(start['A'])}/{len(start['B'])}, "
          f"status {len(status['A'])}/{len(status['B'])}")


if __name__ == "__main__":
    main()
