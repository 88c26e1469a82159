#!/usr/bin/env python3
"""Baseline for the clock-sync benchmark: chrony (NTP) through the same bad network as JAMNet.

    ns srv (10.213.79.1) --veth--+
    ns cli (10.213.79.2) --veth--+-- br0 in ns br   (nothing in the root namespace)
    ns sim (10.213.79.10) -veth--+

    chronyd client (ns cli) --NTP--> jamnet netsim (ns sim, :11123) --NTP--> chronyd server (ns srv, :123)

The relay impairs both directions like the JAMNet benchmark's links: 1 ms
+- 0.5 ms (uniform) one-way delay and 10% loss, fixed seed. Both chronyds run
with -x (the system clock is never touched: chrony's "null" clock driver keeps
its corrections virtual) and -d (foreground); no UDP command port, no files
outside the work dir. The server serves its own clock (`local stratum 1`); the
client polls it every 2^--poll s (default -4: 16 Hz) without interleaved mode.

All namespaces share one kernel clock, so the true offset between client and
server is 0, and any difference between the client's time and the kernel clock
is the client's error. Two ways to read it:

  true (default, --key-from true): with -x the client's time is the kernel
      clock plus a virtual correction (chrony's null clock driver), and
      `chronyc tracking` "System time", read over the client's own Unix command
      socket in the work dir every --sample-ms, is exactly that correction,
      i.e. client time minus true time. This is the error of the time chrony
      would serve, sampled at a fixed rate like JAMNet's status lines.
      (Cross-checked once by SNTP-querying the client chronyd over loopback:
      correlation 0.93, same magnitude, ~15 us constant Python overhead.)
  tracking (--key-from tracking): the client's tracking.log, one line per clock
      update, column 7 "Offset". That is chrony's *estimate* of its offset just
      before it corrects it, relative to its own already corrected clock, so it
      is an increment of a smoothed estimate, not the error: it reads several
      times smaller than the true error on this set-up.

Both are always reported (chrony_true_err_*, chrony_tracking_offset_*); the
three main keys come from the one --key-from picks. Samples from the first
--warmup seconds are dropped; the rest give p50/p99 of the absolute value.

stdout, one JSON object:
    {"sync.offset_err_p99_us_chrony": p99, "chrony_offset_err_p50_us": p50,
     "chrony_samples": n, "chrony_poll": poll, "chrony_version": "4.3",
     "chrony_key_from": "true",
     "chrony_true_err_p99_us": ..., "chrony_true_err_p50_us": ..., "chrony_true_samples": n,
     "chrony_tracking_offset_p99_us": ..., "chrony_tracking_offset_p50_us": ...,
     "chrony_tracking_samples": n}
Progress on stderr. Exit 0 on success, 1 on any error (message on stderr).
Needs root (ip netns). Python stdlib only.

Usage: sudo python3 bench/sync_chrony.py --jamnet build/release/jamnet [--duration 90] [--warmup 30]
"""

import argparse
import atexit
import calendar
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from netns import NetnsError, build_star, delete_ns, end_processes, lab_run, percentile, run_main, sh  # noqa: E402

SUBNET = "10.213.79"
ADDR = {"srv": f"{SUBNET}.1", "cli": f"{SUBNET}.2", "sim": f"{SUBNET}.10"}
RELAY_PORT = 11123
PREFIX = "jnch"  # namespace names: jnch<pid>-<role> (pid of this script, for stale reaping)

DELAY_MS = 1.0
JITTER_MS = 0.5
LOSS_PCT = 10.0


BenchError = NetnsError  # sh() raises it too: one class, one `except`


def log(msg):
    print(f"sync_chrony: {msg}", file=sys.stderr, flush=True)


class Lab:
    """Namespaces, bridge and processes; cleanup() is idempotent."""

    def __init__(self, workdir):
        self.workdir = workdir
        tag = f"{PREFIX}{os.getpid()}"
        self.ns = {role: f"{tag}-{role}" for role in ("srv", "cli", "sim", "br")}
        self.procs = []  # (label, Popen, logpath)
        self.files = []
        self.created = []
        self.cleaned = False

    def build(self):
        build_star(self.ns, ("srv", "cli", "sim"), ADDR, self.created)

    def start(self, label, role, argv):
        path = os.path.join(self.workdir, f"{label}.log")
        out = open(path, "w")
        self.files.append(out)
        p = subprocess.Popen(["ip", "netns", "exec", self.ns[role]] + argv, stdout=out,
                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.procs.append((label, p, path))
        return p

    def cleanup(self):
        if self.cleaned:
            return
        self.cleaned = True
        end_processes([p for _, p, _ in self.procs])
        for f in self.files:
            f.close()
        for ns in reversed(self.created):
            delete_ns(ns)
        left = set(sh("ip", "netns", "list", check=False).stdout.split()) & set(self.created)
        if left:
            log(f"WARNING: namespaces could not be removed: {sorted(left)}")


def tail(path, n=15):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:]).rstrip()
    except OSError:
        return ""


def chrony_version(chronyd):
    r = sh(chronyd, "--version", check=False)
    m = re.search(r"version\s+(\S+)", r.stdout + r.stderr)
    if not m:
        raise BenchError(f"cannot tell chronyd's version: {(r.stdout + r.stderr).strip()!r}")
    return m.group(1)


def write_confs(workdir, poll):
    """chrony.conf for the server and the client, each with its own dir for pid, drift, logs, socket."""
    dirs = {}
    for role in ("srv", "cli"):
        d = os.path.join(workdir, role)
        os.makedirs(os.path.join(d, "log"), mode=0o700)
        os.makedirs(os.path.join(d, "run"), mode=0o700)  # Unix command socket: root-only dir
        dirs[role] = d
    s, c = dirs["srv"], dirs["cli"]
    server_conf = f"""# NTP server for sync_chrony.py: serves this namespace's clock (the shared kernel clock).
local stratum 1
allow all
port 123
bindaddress {ADDR['srv']}
cmdport 0
bindcmdaddress /
pidfile {s}/run/chronyd.pid
driftfile {s}/drift
logdir {s}/log
"""
    client_conf = f"""# NTP client for sync_chrony.py: the server reached through jamnet netsim.
server {ADDR['sim']} port {RELAY_PORT} iburst minpoll {poll} maxpoll {poll}
port 0
cmdport 0
bindcmdaddress {c}/run/chronyd.sock
pidfile {c}/run/chronyd.pid
driftfile {c}/drift
logdir {c}/log
logbanner 0
log measurements statistics tracking
"""
    paths = {}
    for role, text in (("srv", server_conf), ("cli", client_conf)):
        paths[role] = os.path.join(dirs[role], "chrony.conf")
        with open(paths[role], "w") as f:
            f.write(text)
    return dirs, paths


LOG_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}) ")


def log_rows(path):
    """(epoch seconds, fields) per data line of a chrony log; banners and headers skipped."""
    rows = []
    try:
        f = open(path, errors="replace")
    except FileNotFoundError:
        return rows
    with f:
        for line in f:
            m = LOG_TIME.match(line)
            if not m:
                continue
            t = calendar.timegm(time.strptime(f"{m.group(1)} {m.group(2)}", "%Y-%m-%d %H:%M:%S"))
            rows.append((t, line.split()))
    return rows


def chronyc_system_time(chronyc, sock):
    """Client time minus true time, seconds (`chronyc -c tracking` field 5, "System time"), or None."""
    try:
        r = subprocess.run([chronyc, "-n", "-c", "-h", sock, "tracking"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=2)
    except subprocess.TimeoutExpired:
        return None
    if r.returncode != 0:
        return None
    fields = r.stdout.strip().split(",")
    if len(fields) < 14:
        return None
    try:
        ref_id, system_time = fields[0], float(fields[4])
    except ValueError:
        return None
    if ref_id in ("00000000", "7F7F0101"):  # not synchronised (yet), or to itself
        return None
    return system_time


def run(a):
    jamnet = os.path.abspath(a.jamnet)
    if not (os.path.isfile(jamnet) and os.access(jamnet, os.X_OK)):
        raise BenchError(f"--jamnet {jamnet} is not an executable file")
    nhelp = sh(jamnet, "netsim", "--help", check=False)
    if "--jitter" not in nhelp.stdout + nhelp.stderr:
        raise BenchError(f"`{jamnet} netsim --help` does not list --jitter")
    chronyd = shutil.which("chronyd") or "/usr/sbin/chronyd"
    chronyc = shutil.which("chronyc") or "/usr/bin/chronyc"
    for exe in (chronyd, chronyc):
        if not os.access(exe, os.X_OK):
            raise BenchError(f"{exe} not found (Debian package chrony)")
    version = chrony_version(chronyd)
    if not -7 <= a.poll <= 24:
        raise BenchError(f"--poll {a.poll}: chrony allows -7 .. 24")
    if a.duration <= a.warmup + 5:
        raise BenchError(f"--duration {a.duration} must exceed --warmup {a.warmup} by more than 5 s")

    workdir = tempfile.mkdtemp(prefix=f"jamnet-chrony-{os.getpid()}-")
    lab = Lab(workdir)
    atexit.register(lab.cleanup)
    with lab_run(lab, workdir, a.keep, log) as state:
        dirs, confs = write_confs(workdir, a.poll)
        lab.build()
        log(f"chrony {version}; namespaces {PREFIX}{os.getpid()}-*; work dir {workdir}")
        relay = lab.start("netsim", "sim", [
            jamnet, "netsim", "--bind", f"{ADDR['sim']}:{RELAY_PORT}", "--connect", f"{ADDR['srv']}:123",
            "--delay", str(DELAY_MS), "--jitter", str(JITTER_MS), "--loss", str(LOSS_PCT),
            "--seed", str(a.seed), "--quiet", "--stats-file", os.path.join(workdir, "netsim.stats.json")])
        # -u root: no privilege drop, so the work dir (root-only) stays usable; -x: clock never touched.
        server = lab.start("chronyd-srv", "srv", [chronyd, "-x", "-d", "-u", "root", "-f", confs["srv"]])
        time.sleep(0.5)
        for label, p in (("netsim", relay), ("chronyd-srv", server)):
            if p.poll() is not None:
                raise BenchError(f"{label} exited at once ({p.returncode}):\n"
                                 f"{tail(os.path.join(workdir, label + '.log'))}")
        t_start_wall = time.time()
        t_start = time.monotonic()
        client = lab.start("chronyd-cli", "cli", [chronyd, "-x", "-d", "-u", "root", "-f", confs["cli"]])
        log(f"client polls {ADDR['sim']}:{RELAY_PORT} (netsim: {DELAY_MS} ms +- {JITTER_MS} ms, "
            f"{LOSS_PCT}% loss, seed {a.seed}) every 2^{a.poll} s; running {a.duration} s, "
            f"warm-up {a.warmup} s")

        sock = os.path.join(dirs["cli"], "run", "chronyd.sock")
        true_err = []  # (seconds since start, client time - true time)
        next_sample = t_start
        next_note = t_start + 10
        t_end = t_start + a.duration
        while True:
            now = time.monotonic()
            if now >= t_end:
                break
            for label, p in (("netsim", relay), ("chronyd-srv", server), ("chronyd-cli", client)):
                if p.poll() is not None:
                    raise BenchError(f"{label} exited ({p.returncode}) after {now - t_start:.1f} s:\n"
                                     f"{tail(os.path.join(workdir, label + '.log'))}")
            if now >= next_sample:
                t_s = time.monotonic() - t_start
                v = chronyc_system_time(chronyc, sock)
                if v is not None:
                    true_err.append((t_s, v))
                next_sample += a.sample_ms / 1e3
                if next_sample < time.monotonic():
                    next_sample = time.monotonic()
            if now >= next_note:
                n = len(log_rows(os.path.join(dirs["cli"], "log", "tracking.log")))
                log(f"{now - t_start:.0f} s: {n} clock updates so far")
                next_note += 10
            time.sleep(max(0.0, min(next_sample, t_end) - time.monotonic()))

        # Stop cleanly (SIGTERM) so chronyd flushes its logs, then read them.
        lab.cleanup()
        tracking = log_rows(os.path.join(dirs["cli"], "log", "tracking.log"))
        measurements = log_rows(os.path.join(dirs["cli"], "log", "measurements.log"))
        t_from = t_start_wall + a.warmup
        # tracking.log: date time ip stratum freq freq_err OFFSET leap combined sd rem_corr root_delay root_disp max_err
        # (lines with leap status "?" are from before the first synchronisation)
        offsets = [abs(float(f[6])) * 1e6 for t, f in tracking
                   if t >= t_from and len(f) >= 8 and f[7] != "?" and f[2] != "0.0.0.0"]
        if len(offsets) < 10:
            raise BenchError(f"only {len(offsets)} clock updates after the warm-up "
                             f"({len(tracking)} in all); client log:\n"
                             f"{tail(os.path.join(workdir, 'chronyd-cli.log'))}")
        polls = sorted({int(f[8]) for t, f in measurements if t >= t_from and len(f) >= 9})
        if polls != [a.poll]:
            log(f"WARNING: local poll seen in measurements.log after warm-up: {polls} (asked {a.poll})")
        true_abs = [abs(v) * 1e6 for t, v in true_err if t >= a.warmup]
        with open(os.path.join(workdir, "true_err.csv"), "w") as f:
            f.write("t_s,client_minus_true_us\n")
            f.writelines(f"{t:.3f},{v * 1e6:.3f}\n" for t, v in true_err)
        stats = {}
        try:
            with open(os.path.join(workdir, "netsim.stats.json")) as f:
                stats = json.load(f)
        except (OSError, json.JSONDecodeError):
            pass
        if stats:
            log("netsim: forward received {} lost {}, reverse received {} lost {}".format(
                stats.get("forward.received"), stats.get("forward.dropped_loss"),
                stats.get("reverse.received"), stats.get("reverse.dropped_loss")))
        if a.key_from == "true" and len(true_abs) < 10:
            raise BenchError(f"only {len(true_abs)} chronyc samples after the warm-up")
        key_values = offsets if a.key_from == "tracking" else true_abs
        p = lambda values, q: round(percentile(values, q), 3) if values else None
        result = {
            "sync.offset_err_p99_us_chrony": p(key_values, 99),
            "chrony_offset_err_p50_us": p(key_values, 50),
            "chrony_samples": len(key_values),
            "chrony_poll": a.poll,
            "chrony_version": version,
            "chrony_key_from": a.key_from,
            "chrony_true_err_p99_us": p(true_abs, 99),
            "chrony_true_err_p50_us": p(true_abs, 50),
            "chrony_true_samples": len(true_abs),
            "chrony_tracking_offset_p99_us": p(offsets, 99),
            "chrony_tracking_offset_p50_us": p(offsets, 50),
            "chrony_tracking_samples": len(offsets),
        }
        log(f"tracking.log Offset: {len(offsets)} updates after warm-up; |offset| p50 "
            f"{result['chrony_tracking_offset_p50_us']} us, p99 {result['chrony_tracking_offset_p99_us']} us, "
            f"max {max(offsets):.3f} us")
        if true_abs:
            log(f"chronyc System time (true error): {len(true_abs)} samples; p50 "
                f"{result['chrony_true_err_p50_us']} us, p99 {result['chrony_true_err_p99_us']} us, "
                f"max {max(true_abs):.3f} us")
        state["ok"] = True
        return result


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jamnet", required=True, help="path to the jamnet binary (for `jamnet netsim`)")
    ap.add_argument("--duration", type=float, default=90.0, help="seconds the client runs (default 90)")
    ap.add_argument("--warmup", type=float, default=30.0, help="first seconds not counted (default 30)")
    ap.add_argument("--poll", type=int, default=-4,
                    help="client minpoll = maxpoll, log2 seconds (default -4: 16 Hz; chrony 4.3 allows >= -7)")
    ap.add_argument("--seed", type=int, default=1, help="netsim seed (default 1)")
    ap.add_argument("--sample-ms", type=float, default=100.0,
                    help="how often the client's true error is read with chronyc (default 100)")
    ap.add_argument("--key-from", choices=("true", "tracking"), default="true",
                    help="source of the sync.offset_err_p99_us_chrony / chrony_offset_err_p50_us / "
                         "chrony_samples keys: true = chronyc System time samples, client time minus "
                         "true time (default); tracking = tracking.log Offset per clock update")
    ap.add_argument("--keep", action="store_true", help="keep the work dir (confs, chrony logs, netsim stats)")
    a = ap.parse_args()
    return run_main(run, a, PREFIX, log)

if __name__ == "__main__":
    sys.exit(main())
