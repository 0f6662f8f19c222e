#!/usr/bin/env python3
"""Benchmark: process-guardian beside the supervisors people use instead.

Measures, on one workload (a supervised `sleep`), with min / median / p99 and
the number of samples:

  restart   kill -9 of a stable command -> its replacement's pid exists
  start     the start command returns with the command running
  stop      the stop command returns, for a command that exits on TERM
  status    status of 1 / 100 / 1000 registered (up to 100 running)
  health    healthcheck with 1 / 100 / 1000 registered (up to 100 running)
  memory    RSS and proportional set size of the supervision, per process
  registry  64 concurrent `register` writers: registrations/s, lost ones

With --peers, the same restart / start / stop / status / memory measures for
the peers that are installed: supervisord, pm2, runit, s6 (and a bare bash
`while true` loop, the practical floor of restart latency). It installs
nothing: see the README for the apt and npm lines.

It reports; it never fails because a machine is slow. Output: a Markdown
table on stdout, a JSON file (--json-out), and with --write-docs the file
docs/BENCHMARKS.md.
"""

import argparse
import math
import datetime
import json
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ---------------------------------------------------------------- helpers

def percentile(sorted_samples, q):
    """Nearest rank: the smallest sample with at least q of all samples at
    or below it (the maximum for q = 0.99 and fewer than 100 samples). The
    one definition every figure of every tool uses."""
    n = len(sorted_samples)
    return sorted_samples[max(0, min(n - 1, math.ceil(q * n) - 1))]


def summarize(samples, failed=0):
    """Every sample kept; `failed` counts the attempts that did not succeed
    (their time is still among the samples when there is one)."""
    if not samples:
        return {"n": 0, "failed": failed, "min": None, "median": None, "p99": None}
    s = sorted(samples)
    return {"n": len(s), "failed": failed, "min": round(s[0], 3), "median": round(statistics.median(s), 3),
            "p99": round(percentile(s, 0.99), 3)}


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def descendants(pid):
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in children(p):
            out.append(c)
            todo.append(c)
    return out


def cpu_ns(pids):
    """Nanoseconds the processes spent on a CPU (schedstat): exact, where
    clock ticks of 10 ms miss a process that runs microseconds a second."""
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, IndexError, ValueError):
            pass
    return total


def comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def mem_kib(pid):
    """(rss, pss) in KiB from smaps_rollup."""
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def mapping_kind(line, exe, previous):
    """What one /proc/<pid>/smaps mapping holds: the executable's code,
    read-only data, relocated read-only data (relro), data, its zeroed data
    (bss: the nameless mapping right after it), the heap, the stack, or other."""
    f = line.split()
    perms, offset = f[1], f[2]
    path = f[5] if len(f) > 5 else ""
    if path == exe or path == os.path.realpath(exe):
        if "x" in perms:
            return "code"
        if perms.startswith("r-"):
            return "read-only data" if int(offset, 16) == 0 else "relro (relocated read-only)"
        return "data"
    if not path and previous == "data":
        return "bss"
    if path in ("[heap]", "[stack]"):
        return path.strip("[]")
    if path in ("[vdso]", "[vvar]", "[vvar_vclock]", "[vsyscall]"):
        return "vdso"
    return "other"


def mapping_breakdown(pids, exe):
    """Mean KiB per process of each kind of mapping: Rss, Pss, private clean, private dirty."""
    keys = {"Rss": "rss", "Pss": "pss", "Private_Clean": "private_clean", "Private_Dirty": "private_dirty"}
    total = {}
    counted = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps") as f:
                lines = f.read().splitlines()
        except OSError:
            continue
        counted += 1
        kind = previous = None
        for line in lines:
            head = line.split(None, 1)[0]
            if "-" in head and not head.endswith(":"):
                kind = mapping_kind(line, exe, previous)
                previous = kind
                total.setdefault(kind, {v: 0 for v in keys.values()})
            elif head.rstrip(":") in keys and kind:
                total[kind][keys[head.rstrip(":")]] += int(line.split()[1])
    order = ["code", "read-only data", "relro (relocated read-only)", "data", "bss", "heap", "stack", "vdso", "other"]
    return {k: {m: round(v / max(1, counted), 1) for m, v in total[k].items()} for k in order if k in total}


def wait_for(cond, timeout=10.0, step=0.0005):
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(step)
    return None


def timed(cmd, env=None, cwd=None):
    t = time.perf_counter()
    r = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return (time.perf_counter() - t) * 1000, r.returncode


class Samples:
    """Times of one figure, each kept, failures (a non-zero exit) counted."""

    def __init__(self):
        self.ms, self.failed = [], 0

    def add(self, ms, rc=0):
        self.ms.append(ms)
        if rc != 0:
            self.failed += 1

    def summary(self):
        return summarize(self.ms, self.failed)


def kill_tree(pid):
    for p in [pid] + descendants(pid):
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass


def restart_latency(get_pid, kills, settle=0.02):
    """kill -9 the supervised command, time until a different pid is its replacement.

    Before each kill the command has run `settle` seconds: a stable run, so
    that no tool applies its crash-loop delay (runit and s6 wait a second
    before restarting a service that ran less than a second).

    The poll yields the CPU between two looks: a poll that spun took a whole
    core of two, and the supervisor it was waiting for then waited for a
    time slice (about one sample in ten took 3-7 ms, for every tool and
    the bash loop alike)."""
    samples, timeouts = [], 0
    for _ in range(kills):
        if timeouts >= 3:
            break  # it has stopped restarting: report what we have
        old = wait_for(get_pid, timeout=5)
        if not old:
            timeouts += 1
            continue
        time.sleep(settle)
        t = time.perf_counter()
        os.kill(old, signal.SIGKILL)
        deadline = t + 5
        while True:
            p = get_pid()
            if p and p != old:
                samples.append((time.perf_counter() - t) * 1000)
                break
            if time.perf_counter() > deadline:
                timeouts += 1
                break
            os.sched_yield()
    out = summarize(samples, failed=timeouts)
    out["timeouts"] = timeouts
    return out


def first_child(pid, name="sleep"):
    def get():
        for c in children(pid):
            if comm(c) == name and alive(c):
                return c
        return None
    return get


# ---------------------------------------------------------- process-guardian

class Ours:
    name = "process-guardian"

    def __init__(self, binary, tmp):
        self.bin = binary
        self.ws = os.path.join(tmp, "pg")
        os.makedirs(self.ws, exist_ok=True)
        self.env = dict(os.environ, PROCESS_GUARDIAN_WORKSPACE=self.ws,
                        PROCESS_GUARDIAN_ALERT_DIR=os.path.join(tmp, "pg-alerts"))
        self.env.pop("PROCESS_GUARDIAN_ALERT_COMMAND", None)

    def close(self):
        """Stops what this workspace still runs: a run interrupted mid-figure
        (Ctrl-C) would otherwise leave supervisors and their commands behind,
        their workspace deleted, to skew the next run."""
        try:
            subprocess.run([self.bin, "stop", "--all"], env=self.env, cwd=self.ws,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
        except (OSError, subprocess.SubprocessError):
            pass

    def pg(self, *args, check=True):
        r = subprocess.run([self.bin, *args], env=self.env, cwd=self.ws, capture_output=True, text=True)
        if check and r.returncode != 0:
            raise RuntimeError(f"{args}: {r.stderr}")
        return r

    def state(self, name):
        with open(os.path.join(self.ws, ".process-guardian", "run", f"{name}.json")) as f:
            return json.load(f)

    def write_registry(self, n, prefix="p"):
        reg = {f"{prefix}{i}": {"command": f"sleep {100000 + i}", "restart_cooldown": 0, "cwd": self.ws}
               for i in range(n)}
        with open(os.path.join(self.ws, ".process-registry.json"), "w") as f:
            json.dump(reg, f)

    def restart(self, kills):
        self.pg("register", "r", "sleep 100000", "--restart-cooldown", "0")
        self.pg("start", "r")
        sup = self.state("r")["supervisor_pid"]
        out = restart_latency(first_child(sup), kills)
        self.pg("deregister", "r", "--purge")
        return out

    def start_stop(self, runs, registered=1, beside=None):
        """start and stop of one name among `registered`, each beside a
        /bin/true spawned the same way (the floor of any command). With
        `beside` (another workspace of ours, one name registered), the same
        there too, sample by sample in turn: the two figures are then taken
        over the same seconds, and their ratio is the registry's cost, not
        the machine's drift between two phases of the run."""
        spaces = [(self, registered)] + ([(beside, 1)] if beside else [])
        for o, n in spaces:
            if n > 1:
                o.write_registry(n - 1, prefix="q")
            o.pg("register", "s", "sleep 100000")
        figures = [(Samples(), Samples(), Samples()) for _ in spaces]
        for i in range(runs):
            order = list(range(len(spaces)))
            for k in (order if i % 2 == 0 else order[::-1]):
                o, (starts, stops, trues) = spaces[k][0], figures[k]
                trues.add(*timed(["/bin/true"], env=o.env, cwd=o.ws))
                starts.add(*timed([o.bin, "start", "s"], env=o.env, cwd=o.ws))
                stops.add(*timed([o.bin, "stop", "s"], env=o.env, cwd=o.ws))
        for o, n in spaces:
            o.pg("deregister", "s", "--purge")
            if n > 1:
                o.write_registry(0)
        out = [tuple(f.summary() for f in fig) for fig in figures]
        return out if beside else out[0]

    def start_many(self, n):
        for i in range(n):
            self.pg("start", f"p{i}")

    def supervisors(self):
        pids = []
        for f in os.listdir(os.path.join(self.ws, ".process-guardian", "run")):
            if f.endswith(".json"):
                st = json.load(open(os.path.join(self.ws, ".process-guardian", "run", f)))
                if st.get("supervisor_pid") and alive(st["supervisor_pid"]) and st.get("phase") == "running":
                    pids.append(st["supervisor_pid"])
        return pids

    def memory(self, n, settle=None):
        """PSS and RSS per supervisor 0.5 s after the last start; with `settle`,
        again that many seconds after it (past the first looks at the registry
        and usage samples, every 30 s), with the breakdown by mapping: then the
        settled figure is the one reported."""
        self.write_registry(n)
        self.start_many(n)
        started = time.perf_counter()
        os.sync()
        time.sleep(0.5)
        sups = self.supervisors()
        rss = [mem_kib(p)[0] for p in sups]
        pss = [mem_kib(p)[1] for p in sups]
        out = {"supervised": len(sups), "rss_kib_per_process": round(sum(rss) / max(1, len(rss)), 1),
               "pss_kib_per_process": round(sum(pss) / max(1, len(pss)), 1)}
        if settle:
            time.sleep(max(0.0, settle - (time.perf_counter() - started)))
            sups = self.supervisors()
            m = [mem_kib(p) for p in sups]
            out = {"supervised": len(sups),
                   "rss_kib_per_process": round(sum(x[0] for x in m) / max(1, len(m)), 1),
                   "pss_kib_per_process": round(sum(x[1] for x in m) / max(1, len(m)), 1),
                   "pss_kib_at_half_s": out["pss_kib_per_process"], "settled_s": settle,
                   "by_mapping": mapping_breakdown(sups, self.bin)}
        self.stop_all(n)
        return out

    def warden(self, n, idle_s, kills, baseline=None):
        """The safety net's cost and speed: CPU of n idle supervisors over
        idle_s seconds (the warden probes every name once a second), and the
        time from kill -9 of a supervisor to its command's adoption by a new
        one, with no cron (the warden's repair)."""
        self.write_registry(n)
        self.start_many(n)
        base_sups = []
        if baseline:
            # The same number of the baseline binary's supervisors, idle over
            # the same seconds: the warden's cost, before and after.
            baseline.write_registry(n)
            baseline.start_many(n)
            base_sups = baseline.supervisors()
        time.sleep(2)
        sups = self.supervisors()

        before, base_before, t0 = cpu_ns(sups), cpu_ns(base_sups), time.perf_counter()
        time.sleep(idle_s)
        used_s = (cpu_ns(sups) - before) / 1e9
        base_used_s = (cpu_ns(base_sups) - base_before) / 1e9
        wall = time.perf_counter() - t0
        if baseline:
            baseline.stop_all(n)
        samples = []
        rng = random.Random(kills)
        for i in range(kills):
            # A kill at any moment of the warden's one-second tick, not right
            # after its last repair woke it: wait a random 1 to 2 s first.
            time.sleep(rng.uniform(1.0, 2.0))
            name = f"p{i % n}"
            st = self.state(name)
            sup, cmd = st.get("supervisor_pid"), st.get("pid")
            if not sup or not cmd or not alive(sup):
                time.sleep(0.5)
                continue
            t = time.perf_counter()
            os.kill(sup, signal.SIGKILL)
            while time.perf_counter() - t < 10:
                try:
                    now = self.state(name)
                except (OSError, ValueError):
                    now = {}
                new = now.get("supervisor_pid")
                if new and new != sup and alive(new) and now.get("pid") == cmd:
                    samples.append((time.perf_counter() - t) * 1000)
                    break
                time.sleep(0.005)
        self.stop_all(n)
        return {"supervisors": len(sups), "idle_s": round(wall, 1),
                "cpu_pct_of_one_core": round(100 * used_s / wall, 3),
                "baseline": baseline.bin if baseline else None,
                "baseline_supervisors": len(base_sups),
                "baseline_cpu_pct_of_one_core": round(100 * base_used_s / wall, 3) if baseline else None,
                "cpu_us_per_supervisor_per_s": round(1e6 * used_s / wall / max(1, len(sups)), 1),
                "adoption": summarize(samples), "kills": kills}

    def throughput(self, mb, runs):
        """A command writing `mb` MB of 64-byte lines as fast as it can:
        straight to a file (the shell's redirect), and through the
        supervisor into the log, with and without timestamps. MB/s, from
        before the command starts until its last byte is in the file."""
        size = mb * 1_000_000
        lines = size // 64
        writer = f"yes {'x' * 63} | head -c {size}"
        target = os.path.join(self.ws, "straight.out")
        out = {"mb": mb, "runs": runs}
        straight = []
        for _ in range(runs):
            t = time.perf_counter()
            subprocess.run(["sh", "-c", f"{writer} > {target}"], check=True)
            straight.append(mb / (time.perf_counter() - t))
            os.unlink(target)
        out["straight_mb_s"] = summarize(straight)
        for label, extra, expected in (("supervised_mb_s", [], size),
                                       ("supervised_timestamps_mb_s", ["--timestamps"], size + lines * 25)):
            rates = []
            for i in range(runs):
                name = f"tp{i}"
                self.pg("register", name, f"sh -c '{writer}; exec sleep 100000'",
                        "--log-max-bytes", str(4 * size), *extra)
                log = os.path.join(self.ws, ".process-guardian", "logs", f"{name}.log")
                t = time.perf_counter()
                self.pg("start", name)
                ok = wait_for(lambda: os.path.exists(log) and os.path.getsize(log) >= expected, timeout=120, step=0.001)
                if ok:
                    rates.append(mb / (time.perf_counter() - t))
                self.pg("deregister", name, "--purge")
            out[label] = summarize(rates)
            out[label]["failed"] = runs - len(rates)
        return out

    def stop_all(self, n):
        procs = [subprocess.Popen([self.bin, "stop", f"p{i}"], env=self.env, cwd=self.ws,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for i in range(n)]
        for p in procs:
            p.wait()

    def status_health(self, sizes, runs):
        out = {}
        for n in sizes:
            running = min(n, 100)
            self.write_registry(n)
            self.start_many(running)
            st, hc, tr = Samples(), Samples(), Samples()
            for _ in range(runs):
                tr.add(*timed(["/bin/true"], env=self.env, cwd=self.ws))
                st.add(*timed([self.bin, "status", "--json"], env=self.env, cwd=self.ws))
                hc.add(*timed([self.bin, "healthcheck"], env=self.env, cwd=self.ws))
            out[n] = {"running": running, "status": st.summary(), "healthcheck": hc.summary(),
                      "true": tr.summary()}
            self.stop_all(running)
        return out

    def registry_writers(self, writers, rounds):
        rates, lost = [], 0
        for r in range(rounds):
            with open(os.path.join(self.ws, ".process-registry.json"), "w") as f:
                f.write("{}")
            t = time.perf_counter()
            procs = [subprocess.Popen([self.bin, "register", f"w{r}-{i}", f"sleep {i}"], env=self.env,
                                      cwd=self.ws, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                     for i in range(writers)]
            for p in procs:
                p.wait()
            rates.append(writers / (time.perf_counter() - t))
            with open(os.path.join(self.ws, ".process-registry.json")) as f:
                lost += writers - len(json.load(f))
        return {"writers": writers, "rounds": rounds, "registrations_per_s": round(statistics.median(rates), 1),
                "lost": lost}


# ------------------------------------------------------------------ peers

class BashLoop:
    name = "bash while-loop (floor)"
    defaults = "bash -c 'while true; do sleep 100000; done'"

    def restart(self, kills):
        p = subprocess.Popen(["bash", "-c", "while true; do sleep 100000; done"], start_new_session=True,
                             stderr=subprocess.DEVNULL)
        try:
            return restart_latency(first_child(p.pid), kills)
        finally:
            kill_tree(p.pid)
            p.wait()


class Supervisord:
    name = "supervisord"
    defaults = ("autorestart=true, startsecs=0 (no wait before a start counts as started), startretries=1000000, "
                "for every figure")

    def __init__(self, tmp):
        self.dir = os.path.join(tmp, "supervisord")
        os.makedirs(self.dir, exist_ok=True)
        self.conf = os.path.join(self.dir, "supervisord.conf")
        self.proc = None

    def available(self):
        return shutil.which("supervisord") and shutil.which("supervisorctl")

    def write(self, programs, startsecs=0):
        lines = [
            "[unix_http_server]", f"file={self.dir}/s.sock",
            "[supervisord]", f"logfile={self.dir}/d.log", f"pidfile={self.dir}/d.pid", "nodaemon=true",
            f"childlogdir={self.dir}",
            "[rpcinterface:supervisor]",
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
            "[supervisorctl]", f"serverurl=unix://{self.dir}/s.sock",
        ]
        for name, cmd, autostart in programs:
            lines += [f"[program:{name}]", f"command={cmd}", f"autostart={'true' if autostart else 'false'}",
                      "autorestart=true", f"startsecs={startsecs}", "startretries=1000000",
                      "stdout_logfile=NONE", "stderr_logfile=NONE"]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def up(self):
        self.proc = subprocess.Popen(["supervisord", "-c", self.conf], start_new_session=True,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: os.path.exists(f"{self.dir}/s.sock"), timeout=10)
        time.sleep(0.5)

    def down(self):
        if self.proc:
            kill_tree(self.proc.pid)
            self.proc.wait()
            self.proc = None
        for f in ("s.sock", "d.pid"):
            try:
                os.unlink(os.path.join(self.dir, f))
            except OSError:
                pass

    def ctl(self, *args):
        return ["supervisorctl", "-c", self.conf, *args]

    def restart(self, kills):
        self.write([("r", "sleep 100000", True)])
        self.up()
        try:
            return restart_latency(first_child(self.proc.pid), kills)
        finally:
            self.down()

    def start_stop(self, runs):
        self.write([("s", "sleep 100000", False)])
        self.up()
        starts, stops = Samples(), Samples()
        try:
            for _ in range(runs):
                starts.add(*timed(self.ctl("start", "s")))
                stops.add(*timed(self.ctl("stop", "s")))
        finally:
            self.down()
        return starts.summary(), stops.summary()

    def hundred(self, runs):
        self.write([(f"p{i}", f"sleep {100000 + i}", True) for i in range(100)])
        self.up()
        try:
            wait_for(lambda: len([c for c in children(self.proc.pid) if comm(c) == "sleep"]) >= 100, timeout=30)
            os.sync()
            time.sleep(0.5)
            rss, pss = mem_kib(self.proc.pid)
            st = Samples()
            for _ in range(runs):
                st.add(*timed(self.ctl("status")))
            return st.summary(), {"supervised": 100, "rss_kib_per_process": round(rss / 100, 1),
                                   "pss_kib_per_process": round(pss / 100, 1)}
        finally:
            self.down()


class Pm2:
    name = "pm2"
    defaults = ("fork mode, autorestart, restart_delay 0 (its minimum), no exponential backoff; "
                "min_uptime 0 and max_restarts 1000000 for the restart figure, else it stops after 15 quick restarts")

    def __init__(self, tmp):
        self.home = os.path.join(tmp, "pm2")
        os.makedirs(self.home, exist_ok=True)
        self.env = dict(os.environ, PM2_HOME=self.home)

    def available(self):
        return shutil.which("pm2")

    def run(self, *args):
        return subprocess.run(["pm2", *args], env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def god(self):
        try:
            with open(os.path.join(self.home, "pm2.pid")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def kill(self):
        self.run("kill")
        g = self.god()
        if g:
            kill_tree(g)

    def restart(self, kills):
        eco = os.path.join(self.home, "restart.json")
        with open(eco, "w") as f:
            json.dump({"apps": [{"name": "r", "script": "sleep", "args": "100000", "interpreter": "none",
                                 "autorestart": True, "restart_delay": 0, "min_uptime": 0,
                                 "max_restarts": 1000000}]}, f)
        self.run("start", eco)
        try:
            return restart_latency(first_child(self.god()), kills)
        finally:
            self.kill()

    def start_stop(self, runs):
        self.run("ping")
        starts, stops = Samples(), Samples()
        try:
            for _ in range(runs):
                starts.add(*timed(["pm2", "start", "sleep", "--name", "s", "--", "100000"], env=self.env))
                stops.add(*timed(["pm2", "stop", "s"], env=self.env))
                self.run("delete", "s")
        finally:
            self.kill()
        return starts.summary(), stops.summary()

    def hundred(self, runs):
        eco = os.path.join(self.home, "eco.json")
        with open(eco, "w") as f:
            json.dump({"apps": [{"name": f"p{i}", "script": "sleep", "args": str(100000 + i),
                                 "interpreter": "none", "autorestart": True} for i in range(100)]}, f)
        self.run("start", eco)
        try:
            g = self.god()
            wait_for(lambda: len([c for c in children(g) if comm(c) == "sleep"]) >= 100, timeout=60)
            os.sync()
            time.sleep(0.5)
            rss, pss = mem_kib(g)
            st = Samples()
            for _ in range(runs):
                st.add(*timed(["pm2", "jlist"], env=self.env))
            return st.summary(), {"supervised": 100, "rss_kib_per_process": round(rss / 100, 1),
                                   "pss_kib_per_process": round(pss / 100, 1)}
        finally:
            self.kill()


class ServiceDirs:
    """runit and s6: a scanner process, one supervisor process per service
    directory holding a `run` script. Subclasses name the programs."""

    name = scanner = supervisor = ""
    check = ()
    ready_file = ""

    def __init__(self, tmp):
        self.dir = os.path.join(tmp, self.name)
        self.proc = None

    def available(self):
        return all(shutil.which(c) for c in self.check)

    def services(self, names, down=False):
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        for name, cmd in names:
            d = os.path.join(self.dir, name)
            os.makedirs(d)
            with open(os.path.join(d, "run"), "w") as f:
                f.write(f"#!/bin/sh\nexec {cmd}\n")
            os.chmod(os.path.join(d, "run"), 0o755)
            if down:
                open(os.path.join(d, "down"), "w").close()

    def up(self, count):
        self.proc = subprocess.Popen([self.scanner, self.dir], start_new_session=True,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: len(self.supervisors()) >= count, timeout=30)

    def supervisors(self):
        return [c for c in children(self.proc.pid) if comm(c) == self.supervisor]

    def down(self):
        if self.proc:
            kill_tree(self.proc.pid)
            self.proc.wait()
            self.proc = None

    def restart(self, kills):
        self.services([("r", "sleep 100000")])
        self.up(1)
        try:
            return restart_latency(first_child(self.supervisors()[0]), kills, settle=1.1)
        finally:
            self.down()

    def start_stop(self, runs):
        self.services([("s", "sleep 100000")], down=True)
        self.up(1)
        svc = os.path.join(self.dir, "s")
        wait_for(lambda: os.path.exists(os.path.join(svc, "supervise", self.ready_file)), timeout=10)
        starts, stops = Samples(), Samples()
        try:
            for _ in range(runs):
                starts.add(*timed(self.start_cmd(svc)))
                stops.add(*timed(self.stop_cmd(svc)))
        finally:
            self.down()
        return starts.summary(), stops.summary()

    def hundred(self, runs):
        self.services([(f"p{i}", f"sleep {100000 + i}") for i in range(100)])
        self.up(100)
        try:
            wait_for(lambda: sum(1 for s in self.supervisors() for c in children(s) if comm(c) == "sleep") >= 100,
                     timeout=30)
            os.sync()
            time.sleep(0.5)
            pids = self.supervisors() + [self.proc.pid]
            rss = sum(mem_kib(p)[0] for p in pids)
            pss = sum(mem_kib(p)[1] for p in pids)
            dirs = [os.path.join(self.dir, f"p{i}") for i in range(100)]
            st = Samples()
            for _ in range(runs):
                st.add(*self.status_ms(dirs))
            return st.summary(), {"supervised": 100, "rss_kib_per_process": round(rss / 100, 1),
                                   "pss_kib_per_process": round(pss / 100, 1)}
        finally:
            self.down()


class Runit(ServiceDirs):
    name, scanner, supervisor = "runit", "runsvdir", "runsv"
    check = ("runsvdir", "runsv", "sv")
    ready_file = "ok"
    defaults = ("runsvdir + runsv per service; each kill after 1.1 s of uptime, since runsv waits 1 s "
                "before restarting a service that ran less than 1 s")

    def start_cmd(self, svc):
        return ["sv", "start", svc]

    def stop_cmd(self, svc):
        return ["sv", "stop", svc]

    def status_ms(self, dirs):
        return timed(["sv", "status", *dirs])


class S6(ServiceDirs):
    name, scanner, supervisor = "s6", "s6-svscan", "s6-supervise"
    check = ("s6-svscan", "s6-svc", "s6-svstat")
    ready_file = "control"
    defaults = ("s6-svscan + s6-supervise per service; each kill after 1.1 s of uptime, since "
                "s6-supervise waits 1 s between two starts of a service; its status of 100 is 100 runs of "
                "s6-svstat (it has no command for several services), so 100 processes, not one")

    def start_cmd(self, svc):
        return ["s6-svc", "-wu", "-u", svc]

    def stop_cmd(self, svc):
        return ["s6-svc", "-wd", "-d", svc]

    def status_ms(self, dirs):
        # s6 has no status of several services in one command: 100 s6-svstat runs.
        t, rc = time.perf_counter(), 0
        for d in dirs:
            rc |= subprocess.run(["s6-svstat", d], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
        return (time.perf_counter() - t) * 1000, rc


# ----------------------------------------------------------------- report

def fmt(s):
    if not s or not s.get("n"):
        return "n/a"
    failed = f", {s['failed']} failed" if s.get("failed") else ""
    return f"{s['median']:.2f} ({s['min']:.2f} / {s['p99']:.2f}, n={s['n']}{failed})"


def machine():
    cpu = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        mem = open("/proc/meminfo").readline().split(":")[1].strip()
    except OSError:
        pass
    return {"kernel": platform.release(), "cpu": cpu, "cores": os.cpu_count(), "memory": mem}


def version_of(cmd):
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
        lines = (r.stdout or r.stderr).strip().splitlines()
        return lines[-1].strip(" └─") if cmd[0] == "npm" else lines[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        return "?"


def ratio(a, b):
    """a's median over b's, or None."""
    if not a or not b or not a.get("median") or not b.get("median"):
        return None
    return a["median"] / b["median"]


def verdicts(results):
    """The targets, each checked against this run's figures: nothing here is
    written by hand."""
    ours = results["tools"].get("process-guardian", {})
    loop = results["tools"].get("bash while-loop (floor)", {})
    rows = []

    def row(target, measured, met):
        rows.append(f"| {target} | {measured} | {'n/a' if met is None else ('yes' if met else 'no')} |")

    r = ours.get("restart") or {}
    floor = (loop.get("restart") or {}).get("median")
    if r.get("median") is not None:
        row("restart after kill -9: median ≤ the bash-loop floor of the same run",
            f"{r['median']:.2f} ms against {floor:.2f} ms" if floor else f"{r['median']:.2f} ms; no floor measured",
            (r["median"] <= floor) if floor else None)
        row("restart after kill -9: p99 ≤ 5 ms", f"{r['p99']:.2f} ms (n={r['n']}, {r.get('failed', 0)} failed)",
            r["p99"] <= 5 and not r.get("failed"))
    x = ratio(ours.get("start"), ours.get("true_beside_start"))
    if x is not None:
        row("`start` ≤ 3 × `/bin/true` spawned the same way", f"{x:.2f} ×", x <= 3)
    y = ratio(ours.get("start_1000"), ours.get("start"))
    if y is not None:
        row("`start` with 1000 registered ≤ 1.15 × with 1", f"{y:.2f} ×", y <= 1.15)
    z = ratio(ours.get("status_100"), ours.get("true_beside_status_100"))
    if z is not None:
        row("`status --json` of 100 running ≤ 1.5 × `/bin/true`", f"{z:.2f} ×", z <= 1.5)
    m = (ours.get("memory_100") or {}).get("pss_kib_per_process")
    if m is not None:
        runit = ((results["tools"].get("runit") or {}).get("memory_100") or {}).get("pss_kib_per_process")
        row("supervisor PSS ≤ 90 KiB each with 100 running (below runit's 95)",
            f"{m} KiB" + (f"; runit {runit} KiB in this run" if runit else ""), m <= 90)
    t = ours.get("throughput")
    if t:
        for key, what in (("supervised_mb_s", "output through the supervisor"),
                          ("supervised_timestamps_mb_s", "output with timestamps")):
            q = ratio(t.get(key), t.get("straight_mb_s"))
            if q is not None:
                row(f"{what} ≥ half the speed of writing straight to a file", f"{100 * q:.0f} %", q >= 0.5)
    g = ours.get("registry")
    if g:
        row("64 concurrent registry writers: none lost", f"{g['lost']} lost", g["lost"] == 0)
    if not rows:
        return []
    return ["Targets, checked against this run by the script:", "",
            "| target | measured | met |", "| --- | --- | --- |", *rows]


def markdown(results):
    out = []
    m = results["machine"]
    out.append(f"Machine: {m['cores']} cores, {m['memory']} memory, {m['cpu']}, Linux {m['kernel']}. "
               f"Date: {results['date']}. Command: `{results['command']}`.")
    out.append("")
    out.append("Times in ms: median (min / p99, samples). Memory in KiB per supervised process.")
    out.append("")
    out.append("| tool | restart after kill -9 | start (confirmed) | stop (exits on TERM) | status of 100 | PSS / process at 100 | RSS / process at 100 |")
    out.append("| --- | --- | --- | --- | --- | --- | --- |")
    for name, r in results["tools"].items():
        mem = r.get("memory_100") or {}
        out.append(f"| {name} | {fmt(r.get('restart'))} | {fmt(r.get('start'))} | {fmt(r.get('stop'))} | "
                   f"{fmt(r.get('status_100'))} | {mem.get('pss_kib_per_process', 'n/a')} | "
                   f"{mem.get('rss_kib_per_process', 'n/a')} |")
    ours = results["tools"].get("process-guardian", {})
    if ours.get("status_health"):
        out.append("")
        out.append("process-guardian, by registry size:")
        out.append("")
        out.append("| registered | running | status --json | healthcheck |")
        out.append("| --- | --- | --- | --- |")
        for n, r in ours["status_health"].items():
            out.append(f"| {n} | {r['running']} | {fmt(r['status'])} | {fmt(r['healthcheck'])} |")
    if ours.get("true_beside_start"):
        out.append("")
        out.append(f"`/bin/true` spawned the same way, interleaved: {fmt(ours['true_beside_start'])} beside `start`, "
                   f"{fmt(ours.get('true_beside_status_100'))} beside `status` of 100. "
                   f"`start` with 1000 registered: {fmt(ours.get('start_1000'))}.")
    if ours.get("memory_10"):
        m10 = ours["memory_10"]
        out.append("")
        out.append(f"process-guardian memory with 10 running: PSS {m10['pss_kib_per_process']} KiB, "
                   f"RSS {m10['rss_kib_per_process']} KiB per supervised process.")
    m100 = ours.get("memory_100") or {}
    if m100.get("by_mapping"):
        before = (ours.get("memory_100_baseline") or {})
        out.append("")
        out.append(f"Memory of one supervisor with 100 running, {m100['settled_s']} s after the last start "
                   f"(PSS {m100['pss_kib_per_process']} KiB; {m100['pss_kib_at_half_s']} KiB at 0.5 s), "
                   "by mapping, KiB (mean of the 100)"
                   + (f"; before: the baseline binary `{before.get('binary')}` measured the same way "
                      f"(PSS {before.get('pss_kib_per_process')} KiB; {before.get('pss_kib_at_half_s')} at 0.5 s)"
                      if before.get("by_mapping") else "") + ":")
        out.append("")
        cols = ["rss", "pss", "private_clean", "private_dirty"]
        if before.get("by_mapping"):
            out.append("| mapping | RSS | PSS | private clean | private dirty | before: RSS | PSS | private clean | private dirty |")
            out.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        else:
            out.append("| mapping | RSS | PSS | private clean | private dirty |")
            out.append("| --- | --- | --- | --- | --- |")
        kinds = list(m100["by_mapping"]) + [k for k in before.get("by_mapping", {}) if k not in m100["by_mapping"]]
        for k in kinds:
            now = m100["by_mapping"].get(k, {})
            cells = [str(now.get(c, 0)) for c in cols]
            if before.get("by_mapping"):
                b = before["by_mapping"].get(k, {})
                cells += [str(b.get(c, 0)) for c in cols]
            out.append(f"| {k} | " + " | ".join(cells) + " |")
        out.append("")
    if ours.get("registry"):
        r = ours["registry"]
        out.append(f"Registry: {r['writers']} concurrent writers, {r['registrations_per_s']} registrations/s "
                   f"(median of {r['rounds']} rounds), {r['lost']} lost.")
    if ours.get("warden"):
        w = ours["warden"]
        out.append(f"The warden (no cron): {w['supervisors']} idle supervisors used {w['cpu_pct_of_one_core']} % of one core "
                   f"over {w['idle_s']} s ({w['cpu_us_per_supervisor_per_s']} µs of CPU per supervisor per second); "
                   f"kill -9 of a supervisor to its command's adoption by a new one: {fmt(w['adoption'])} ms.")
        if w.get("baseline"):
            out.append(f"Beside it, over the same seconds, {w['baseline_supervisors']} idle supervisors of the baseline "
                       f"`{w['baseline']}` used {w['baseline_cpu_pct_of_one_core']} % of one core.")
    if ours.get("throughput"):
        t = ours["throughput"]
        out.append("")
        out.append(f"Output throughput, a command writing {t['mb']} MB of 64-byte lines as fast as it can "
                   f"(MB/s, median of {t['runs']}, from its start to its last byte in the file): "
                   f"straight to a file {t['straight_mb_s']['median']:.0f}; through the supervisor "
                   f"{t['supervised_mb_s']['median']:.0f} "
                   f"({100 * t['supervised_mb_s']['median'] / t['straight_mb_s']['median']:.0f} % of straight); "
                   f"with timestamps {t['supervised_timestamps_mb_s']['median']:.0f} "
                   f"({100 * t['supervised_timestamps_mb_s']['median'] / t['straight_mb_s']['median']:.0f} %).")
    out.append("")
    out.extend(verdicts(results))
    out.append("")
    out.append("Settings of each tool:")
    out.append("")
    for name, r in results["tools"].items():
        out.append(f"- {name} ({r.get('version', '?')}): {r.get('defaults', '')}")
    return "\n".join(out)


# Past the first look at the registry and the second usage sample (every 30 s).
MEMORY_SETTLE_S = 35


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=None, help="process-guardian binary (default: the release build)")
    ap.add_argument("--peers", action="store_true", help="also measure the installed peers")
    ap.add_argument("--kills", type=int, default=100, help="kill -9 samples, the same for every tool (default 100)")
    ap.add_argument("--runs", type=int, default=30, help="samples of start/stop/status (default 30)")
    ap.add_argument("--quick", action="store_true", help="fewer samples, no 1000-process figures")
    ap.add_argument("--json-out", default=os.path.join(ROOT, "target", "bench-results.json"))
    ap.add_argument("--write-docs", action="store_true", help="write docs/BENCHMARKS.md")
    ap.add_argument("--baseline", default=None,
                    help="another process-guardian binary (an earlier build) measured beside ours: the cost of "
                         "its idle supervisors (the warden's), and its memory by mapping (before and after)")
    args = ap.parse_args()
    if args.quick:
        args.kills, args.runs = min(args.kills, 50), min(args.runs, 10)
    binary = args.bin or os.path.join(ROOT, "target", "release", "process-guardian")
    if not os.access(binary, os.X_OK):
        sys.exit(f"bench: no binary at {binary}; build it: cargo build --release")

    tmp = tempfile.mkdtemp(prefix="pg-bench-")
    results = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
               "command": " ".join(["scripts/bench.sh"] + sys.argv[1:]), "machine": machine(), "tools": {}}
    made = []  # each workspace of ours, stopped whatever happens

    def workspace(binary, where):
        made.append(Ours(binary, where))
        return made[-1]

    try:
        ours = workspace(binary, tmp)
        r = {"version": version_of([binary, "--version"]),
             "defaults": "restart_cooldown 0 for the restart figure (quick-crash backoff off); defaults otherwise"}
        print(f"[{ours.name}] restart after kill -9 x{args.kills}", file=sys.stderr)
        r["restart"] = ours.restart(args.kills)
        print(f"[{ours.name}] start/stop with 1 and with 1000 registered, in turn, x{args.runs}", file=sys.stderr)
        thousand = workspace(binary, os.path.join(tmp, "thousand"))
        (r["start_1000"], _, r["true_beside_start_1000"]), (r["start"], r["stop"], r["true_beside_start"]) = \
            thousand.start_stop(args.runs, registered=1000, beside=ours)
        sizes = [1, 100] if args.quick else [1, 100, 1000]
        print(f"[{ours.name}] status and healthcheck at {sizes}", file=sys.stderr)
        r["status_health"] = ours.status_health(sizes, args.runs)
        r["status_100"] = r["status_health"][100]["status"]
        r["true_beside_status_100"] = r["status_health"][100]["true"]
        print(f"[{ours.name}] memory at 10 and 100", file=sys.stderr)
        r["memory_10"] = ours.memory(10)
        r["memory_100"] = ours.memory(100, settle=MEMORY_SETTLE_S)
        if args.baseline:
            print(f"[{ours.name}] memory at 100 of the baseline {args.baseline}", file=sys.stderr)
            r["memory_100_baseline"] = workspace(args.baseline, os.path.join(tmp, "baseline-memory")).memory(
                100, settle=MEMORY_SETTLE_S)
            r["memory_100_baseline"]["binary"] = args.baseline
        print(f"[{ours.name}] 64 concurrent registry writers", file=sys.stderr)
        r["registry"] = ours.registry_writers(64, 3 if args.quick else 10)
        print(f"[{ours.name}] output throughput", file=sys.stderr)
        r["throughput"] = ours.throughput(100 if args.quick else 300, 3 if args.quick else 5)
        idle_s, kills = (10, 10) if args.quick else (60, 50)
        print(f"[{ours.name}] the warden: 100 idle supervisors for {idle_s} s, {kills} supervisor kills", file=sys.stderr)
        base = workspace(args.baseline, os.path.join(tmp, "baseline")) if args.baseline else None
        r["warden"] = ours.warden(100, idle_s, kills, base)
        results["tools"][ours.name] = r

        if args.peers:
            peers = [Supervisord(tmp), Pm2(tmp), Runit(tmp), S6(tmp)]
            versions = {"supervisord": ["supervisord", "--version"], "pm2": ["npm", "ls", "-g", "--depth=0", "pm2"],
                        "runit": ["dpkg-query", "-W", "-f=${Version}", "runit"],
                        "s6": ["dpkg-query", "-W", "-f=${Version}", "s6"]}
            for p in peers:
                if not p.available():
                    print(f"[{p.name}] not installed; skipped", file=sys.stderr)
                    continue
                r = {"version": version_of(versions[p.name]), "defaults": p.defaults}
                # The same number of samples for every tool, so that min, median
                # and p99 mean the same thing (runit and s6 need 1.1 s of uptime
                # before each kill: about two minutes each at 100).
                print(f"[{p.name}] restart after kill -9 x{args.kills}", file=sys.stderr)
                r["restart"] = p.restart(args.kills)
                runs = args.runs
                print(f"[{p.name}] start/stop x{runs}", file=sys.stderr)
                r["start"], r["stop"] = p.start_stop(runs)
                print(f"[{p.name}] status and memory at 100", file=sys.stderr)
                r["status_100"], r["memory_100"] = p.hundred(args.runs)
                results["tools"][p.name] = r
            loop = BashLoop()
            print(f"[{loop.name}] restart after kill -9 x{args.kills}", file=sys.stderr)
            results["tools"][loop.name] = {"version": version_of(["bash", "--version"]), "defaults": loop.defaults,
                                           "restart": loop.restart(args.kills)}
    finally:
        for w in made:
            w.close()
        shutil.rmtree(tmp, ignore_errors=True)

    table = markdown(results)
    print(table)
    os.makedirs(os.path.dirname(args.json_out), exist_ok=True)
    with open(args.json_out, "w") as f:
        json.dump(results, f, indent=2)
    print(f"\nJSON: {args.json_out}", file=sys.stderr)
    if args.write_docs:
        write_docs(table)


HOW = """## How each figure is taken

- restart: the benchmark finds the supervised `sleep` among the supervisor's
  children (`/proc/<pid>/task/<pid>/children`), sends it SIGKILL and polls
  until a different child exists, yielding the CPU between two looks (a
  poll that spun held one core of two, and made about one sample in ten
  wait 3-7 ms for a time slice, the bash loop's as much as any tool's); the
  same method and the same number of samples for every tool. Ours runs with `restart_cooldown` 0, the peers with
  their restart delay at its minimum (see their settings above).
- start and stop: wall time of the command (`process-guardian start`,
  `supervisorctl start`, `pm2 start`, `sv start`, `s6-svc -wu -u`; likewise
  stop), each returning with the command running (or gone). Every sample is
  kept; a command that exited non-zero is counted as failed and shown. Ours
  with 1000 registered is taken in a second workspace, sample by sample in
  turn with the one of a single name, so that the ratio of the two is the
  registry's cost and not the machine's speed moving between two phases
  (it did, by half, in one run).
- status of 100: wall time of `status --json`, `supervisorctl status`,
  `pm2 jlist`, `sv status` of 100 directories, with 100 supervised
  processes running; s6 has no status command for several services, so its
  figure is 100 runs of `s6-svstat`.
- `/bin/true`: spawned the same way, interleaved with the samples it is
  compared with, so that the machine's cost of running any process cancels
  out of the ratios.
- memory: proportional set size (`/proc/<pid>/smaps_rollup`) of all
  supervision processes, divided by the processes supervised (for supervisord
  and pm2, their one daemon). Taken after `sync`, 0.5 s after the last
  start; ours with 100 running again 35 s after it (past its first look at
  the registry and its second usage sample), which is the figure in the
  table and the target, with the breakdown by mapping from
  `/proc/<pid>/smaps`.
- percentiles: nearest rank, one function for every figure (at fewer than
  100 samples, p99 is the maximum).
- output throughput: a command writing 64-byte lines as fast as it can,
  timed from before its start until its last byte is in the file.
"""


def write_docs(table):
    path = os.path.join(ROOT, "docs", "BENCHMARKS.md")
    head = ("# Benchmarks\n\n"
            "Written by `scripts/bench.sh --peers --write-docs` (bench/bench.py); every figure and every "
            "verdict below is from that one run, on the machine it names, computed by the script. "
            "It reports and never fails on a slow machine.\n\n"
            "Install the peers first (Debian): `apt-get install -y supervisor runit s6` and `npm install -g pm2`.\n\n"
            "## Latest run\n\n")
    # The section written by hand (what moved each figure) is kept as it is.
    kept = ""
    try:
        with open(path) as f:
            old = f.read()
        if WHAT_MOVED in old:
            kept = "\n" + old[old.index(WHAT_MOVED):]
    except OSError:
        pass
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(head + table + "\n\n" + HOW + kept)
    print(f"wrote {path}", file=sys.stderr)


WHAT_MOVED = "## What moved each figure"


if __name__ == "__main__":
    main()
