#!/usr/bin/env python3
"""Baseline for the clock-sync benchmark: how closely two Ableton Link peers agree on the beat.

Two `link_beat` processes (bench/tools/link_beat.cpp) join one Link session
inside one network namespace that has only `lo` up (Link discovers peers by
multicast; on lo inside a fresh namespace nothing leaves it and nothing from
outside joins). Each prints, every --interval-ms, its Link clock (on Linux
CLOCK_MONOTONIC_RAW, one clock for both processes) and the beat it sees at that
instant. For each line of peer A, peer B's beat at A's t_us is interpolated
linearly between B's two neighbouring lines, and

    error_us = (beat_A - beat_B) * 60e6 / tempo

is the beat-time disagreement between the peers. The first --warmup seconds
after both peers see each other are dropped. Printed on stdout, one JSON object:

    {"sync.link_beat_err_us": p99 |error|, "link_beat_err_p50_us": p50 |error|,
     "link_samples": n, "link_version": "<ableton-link-dev version>"}

Progress goes to stderr. Exit status 0 on success, 1 on any error (message on
stderr). Needs root (ip netns). Python stdlib only.

Usage: sudo python3 bench/sync_link.py --link-beat build/release/bench/link_beat
"""

import argparse
import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from netns import NetnsError, delete_ns, end_processes, lab_run, percentile, run_main, sh  # noqa: E402

PREFIX = "jnlk"  # namespace name: jnlk<pid>-link (pid of this script, for stale reaping)


BenchError = NetnsError  # sh() raises it too: one class, one `except`


def log(msg):
    print(f"sync_link: {msg}", file=sys.stderr, flush=True)


class Lab:
    """The namespace and the processes in it; cleanup() is idempotent."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.ns = f"{PREFIX}{os.getpid()}-link"
        self.procs = []  # (label, Popen)
        self.files = []
        self.created = False
        self.cleaned = False

    def build(self):
        sh("ip", "netns", "add", self.ns)
        self.created = True
        sh("ip", "-n", self.ns, "link", "set", "lo", "up")

    def start(self, label, argv):
        out = open(os.path.join(self.workdir, f"{label}.jsonl"), "w")
        err = open(os.path.join(self.workdir, f"{label}.err"), "w")
        self.files += [out, err]
        p = subprocess.Popen(["ip", "netns", "exec", self.ns] + argv, stdout=out, stderr=err,
                             stdin=subprocess.DEVNULL)
        self.procs.append((label, p))
        return p

    def cleanup(self):
        if self.cleaned:
            return
        self.cleaned = True
        end_processes([p for _, p in self.procs], grace=5.0, terminate=False)
        for f in self.files:
            f.close()
        if self.created:
            delete_ns(self.ns)
            if self.ns in sh("ip", "netns", "list", check=False).stdout.split():
                log(f"WARNING: namespace {self.ns} could not be removed")


def tail(path, n=10):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:]).rstrip()
    except OSError:
        return ""


def read_lines(path):
    rows = []
    with open(path, errors="replace") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
                rows.append((int(obj["t_us"]), float(obj["beat"]), int(obj["peers"]), float(obj["tempo"])))
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short by a kill
    return rows


def link_version():
    r = sh("dpkg-query", "-W", "-f=${Version}", "ableton-link-dev", check=False)
    return r.stdout.strip() if r.returncode == 0 and r.stdout.strip() else "unknown"


def beat_errors(a_rows, b_rows, warmup_s, interval_ms):
    """|beat_A - beat_B| in microseconds at A's instants, B interpolated between its neighbours."""
    a_rows = [r for r in a_rows if r[2] >= 1]
    b_rows = [r for r in b_rows if r[2] >= 1]
    if not a_rows or not b_rows:
        raise BenchError(f"no lines with a peer: A {len(a_rows)}, B {len(b_rows)}")
    # Each tool prints only once it sees a peer: both see each other from the later first line.
    t_both = max(a_rows[0][0], b_rows[0][0])
    t_from = t_both + int(warmup_s * 1e6)
    max_gap = max(5 * interval_ms * 1e3, 200e3)  # a B gap longer than this is not interpolated
    errs = []
    j = 0
    for t, beat_a, _, tempo in a_rows:
        if t < t_from:
            continue
        while j + 1 < len(b_rows) and b_rows[j + 1][0] < t:
            j += 1
        if j + 1 >= len(b_rows) or b_rows[j][0] > t:
            continue  # outside B's span
        (t0, b0, _, _), (t1, b1, _, _) = b_rows[j], b_rows[j + 1]
        if t1 - t0 > max_gap or t1 == t0:
            continue
        beat_b = b0 + (b1 - b0) * (t - t0) / (t1 - t0)
        errs.append(abs(beat_a - beat_b) * 60e6 / tempo)
    return errs


def run(a):
    exe = os.path.abspath(a.link_beat)
    if not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
        raise BenchError(f"--link-beat {exe} is not an executable file")
    if a.duration <= a.warmup + 1:
        raise BenchError(f"--duration {a.duration} must exceed --warmup {a.warmup} by more than 1 s")

    workdir = tempfile.mkdtemp(prefix=f"jamnet-link-{os.getpid()}-")
    lab = Lab(workdir)
    atexit.register(lab.cleanup)
    with lab_run(lab, workdir, a.keep, log) as state:
        lab.build()
        common = ["--seconds", str(a.duration), "--bpm", str(a.bpm), "--quantum", str(a.quantum),
                  "--interval-ms", str(a.interval_ms), "--peer-timeout-s", str(a.peer_timeout)]
        log(f"namespace {lab.ns} (lo only); two link_beat peers for {a.duration} s, "
            f"B joins {a.start_delay_ms} ms after A; work dir {workdir}")
        pa = lab.start("A", [exe] + common)
        pb = lab.start("B", [exe] + common + ["--start-delay-ms", str(a.start_delay_ms)])
        deadline = time.monotonic() + a.duration + a.peer_timeout + a.start_delay_ms / 1e3 + 15
        t_last = time.monotonic()
        while (pa.poll() is None or pb.poll() is None) and time.monotonic() < deadline:
            if pa.poll() not in (None, 0) or pb.poll() not in (None, 0):
                break  # one failed: no need to wait for the other
            time.sleep(0.2)
            if time.monotonic() - t_last >= 10:
                t_last = time.monotonic()
                log("running ...")
        for label, p in sorted((("A", pa), ("B", pb)), key=lambda lp: lp[1].poll() in (None, 0)):
            if p.poll() is None:
                raise BenchError(f"link_beat {label} did not finish in time")
            if p.returncode != 0:
                why = "no peer found (exit 2)" if p.returncode == 2 else f"exit status {p.returncode}"
                raise BenchError(f"link_beat {label} failed: {why}\n"
                                 f"{tail(os.path.join(workdir, label + '.err'))}")
        a_rows = read_lines(os.path.join(workdir, "A.jsonl"))
        b_rows = read_lines(os.path.join(workdir, "B.jsonl"))
        tempos = {r[3] for r in a_rows + b_rows if r[2] >= 1}
        if any(abs(t - a.bpm) > 1e-6 for t in tempos):
            log(f"WARNING: session tempo moved: {sorted(tempos)}")
        errs = beat_errors(a_rows, b_rows, a.warmup, a.interval_ms)
        if len(errs) < 10:
            raise BenchError(f"only {len(errs)} samples after warm-up (A {len(a_rows)} lines, "
                             f"B {len(b_rows)} lines)")
        result = {
            "sync.link_beat_err_us": round(percentile(errs, 99), 3),
            "link_beat_err_p50_us": round(percentile(errs, 50), 3),
            "link_samples": len(errs),
            "link_version": link_version(),
        }
        log(f"{len(errs)} samples; |error| p50 {result['link_beat_err_p50_us']} us, "
            f"p99 {result['sync.link_beat_err_us']} us, max {max(errs):.3f} us")
        state["ok"] = True
        return result


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--link-beat", required=True, help="path to the link_beat tool")
    ap.add_argument("--duration", type=float, default=30.0, help="seconds each peer prints (default 30)")
    ap.add_argument("--warmup", type=float, default=5.0,
                    help="seconds dropped after both peers see each other (default 5)")
    ap.add_argument("--bpm", type=float, default=120.0)
    ap.add_argument("--quantum", type=float, default=4.0)
    ap.add_argument("--interval-ms", type=float, default=20.0)
    ap.add_argument("--start-delay-ms", type=float, default=500.0, help="peer B joins this much later")
    ap.add_argument("--peer-timeout", type=float, default=15.0, help="seconds to wait for the other peer")
    ap.add_argument("--keep", action="store_true", help="keep the work dir (raw lines of both peers)")
    a = ap.parse_args()
    return run_main(run, a, PREFIX, log)

if __name__ == "__main__":
    sys.exit(main())
