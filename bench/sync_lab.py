#!/usr/bin/env python3
"""Three JAMNet peers syncing clocks and transport across a bad network.

The setup of the clock-sync issue, shared by the integration test
(tests/integration/test_sync_netns.py, short, loose bounds) and the benchmark
(bench/run.py, longer, the acceptance figures):

    ns p1 (.1) --veth--+
    ns p2 (.2) --veth--+-- br0 (ns br) --+-- ns sim (.10): three netsim relays
    ns p3 (.3) --veth--+

    p1 -> relay 12 -> p2     p1 -> relay 13 -> p3     p2 -> relay 23 -> p3

Every pair talks only through its relay (--no-multicast, --connect to the
relay), each direction 1 ms +- 0.5 ms (uniform) and 10% loss. Each peer runs a
test clock: offset by seconds and skewed by -100, 0 and +100 ppm. All
namespaces share one kernel clock, so CLOCK_MONOTONIC is the truth: every
status line a peer writes pairs a monotonic reading with its session clock,
the master's pairs give the true session timeline (a straight line), and a
follower's error is its session clock minus that line at the same instant.

Transport: `jamnet transport play|stop` is sent to one peer at a time; every
peer records the audio-clock sample it starts on with that sample's monotonic
time, which the master's line turns into true session time. The spread of
those across the three peers is the transport figure.

Python stdlib only. Needs root (ip netns).
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netns  # noqa: E402
from netns import delete_ns, percentile, sh  # noqa: E402  (percentile: used by sync_bench.py too)

SUBNET = "10.213.78"
ADDR = {"p1": f"{SUBNET}.1", "p2": f"{SUBNET}.2", "p3": f"{SUBNET}.3", "sim": f"{SUBNET}.10"}
PORT = {"p1": 47811, "p2": 47812, "p3": 47813}
RELAYS = {  # name: (client role, target role, relay port)
    "r12": ("p1", "p2", 48012),
    "r13": ("p1", "p3", 48013),
    "r23": ("p2", "p3", 48023),
}
IDS = {
    "p1": "00000000-0000-4000-8000-000000000001",
    "p2": "00000000-0000-4000-8000-000000000002",
    "p3": "00000000-0000-4000-8000-000000000003",
}
# offset (ms), skew (ppm): the issue's -100 / 0 / +100 ppm, offsets of seconds
CLOCKS = {"p1": (-2000.0, -100.0), "p2": (3000.0, 0.0), "p3": (7000.0, 100.0)}
SESSION = "synclab"
PREFIX = "jnsy"
STATUS_MS = 100


def can_run():
    """(ok, reason): root and ip netns available."""
    return netns.can_run(PREFIX)


class Lab:
    def __init__(self, jamnet, workdir, log=print, loss=10.0, delay_ms=1.0, jitter_ms=0.5,
                 seed=7, sync_hz=20):
        self.jamnet = jamnet
        self.workdir = workdir
        self.log = log
        self.loss, self.delay_ms, self.jitter_ms = loss, delay_ms, jitter_ms
        self.seed = seed
        self.sync_hz = sync_hz
        tag = f"{PREFIX}{os.getpid()}"
        self.ns = {r: f"{tag}-{r}" for r in ("p1", "p2", "p3", "sim", "br")}
        self.created = []
        self.procs = {}   # label -> Popen
        self.files = []
        self.status_path = {}
        self.cleaned = False

    # ------------------------------------------------------------ network
    def build(self):
        netns.reap_stale(PREFIX)
        netns.build_star(self.ns, ("p1", "p2", "p3", "sim"), ADDR, self.created)

    def _spawn(self, label, role, args, stdout_path=None):
        path = stdout_path or os.path.join(self.workdir, f"{label}.log")
        f = open(path, "a")
        self.files.append(f)
        p = subprocess.Popen(["ip", "netns", "exec", self.ns[role], self.jamnet] + args,
                             stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.procs[label] = p
        return p

    def start_relays(self):
        for name, (_client, target, port) in RELAYS.items():
            self._spawn(name, "sim", [
                "netsim", "--bind", f"{ADDR['sim']}:{port}",
                "--connect", f"{ADDR[target]}:{PORT[target]}",
                "--delay", str(self.delay_ms), "--jitter", str(self.jitter_ms),
                "--loss", str(self.loss), "--seed", str(self.seed + port), "--quiet",
                "--stats-file", os.path.join(self.workdir, f"{name}.json")])

    def start_peer(self, role, offset_ms=None, skew_ppm=None, tag=""):
        off, skew = CLOCKS[role]
        off = off if offset_ms is None else offset_ms
        skew = skew if skew_ppm is None else skew_ppm
        status = os.path.join(self.workdir, f"{role}{tag}.status.jsonl")
        self.status_path[role] = status
        args = ["peer", "--name", role, "--session", SESSION, "--id", IDS[role],
                "--bind", f"{ADDR[role]}:{PORT[role]}", "--no-multicast",
                "--status-jsonl", status, "--status-ms", str(STATUS_MS), "--quiet",
                "--sync-hz", str(self.sync_hz),
                "--test-clock-offset-ms", str(off), "--test-clock-skew-ppm", str(skew)]
        for _name, (client, _target, port) in RELAYS.items():
            if client == role:
                args += ["--connect", f"{ADDR['sim']}:{port}"]
        self._spawn(role + tag, role, args)
        return status

    def kill_peer(self, label, sig=signal.SIGKILL):
        p = self.procs.get(label)
        if p and p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)

    def transport(self, via, action, value=None, timeout=10):
        """Runs `jamnet transport` in `via`'s namespace against that peer."""
        args = ["ip", "netns", "exec", self.ns[via], self.jamnet, "transport", action]
        if value is not None:
            args.append(str(value))
        args += ["--peer", f"{ADDR[via]}:{PORT[via]}", "--session", SESSION, "--no-multicast",
                 "--bind", f"{ADDR[via]}:0", "--wait-ms", "3000", "--json"]
        return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def cleanup(self):
        if self.cleaned:
            return
        self.cleaned = True
        netns.end_processes(list(self.procs.values()))
        for f in self.files:
            f.close()
        for ns in reversed(self.created):
            delete_ns(ns)


# ------------------------------------------------------------------ analysis

def read_status(path):
    out = []
    try:
        with open(path, errors="replace") as f:
            for line in f:
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if "sync" in obj:
                    out.append(obj["sync"])
    except FileNotFoundError:
        pass
    return out


def fit_line(xs, ys):
    """Least squares y = a + b (x - x0); returns (x0, a, b)."""
    n = len(xs)
    x0 = xs[0]
    mx = sum(x - x0 for x in xs) / n
    my = sum(ys) / n
    sxx = sum((x - x0 - mx) ** 2 for x in xs)
    sxy = sum((x - x0 - mx) * (y - my) for x, y in zip(xs, ys))
    b = sxy / sxx if sxx > 0 else 1.0
    a = my - b * mx
    return x0, a, b


class Truth:
    """The master's session timeline against CLOCK_MONOTONIC."""

    def __init__(self, master_samples):
        xs = [s["mono_ns"] for s in master_samples]
        ys = [s["session_ns"] for s in master_samples]
        self.x0, self.a, self.b = fit_line(xs, ys)
        self.residual_ns = max(abs(self(x) - y) for x, y in zip(xs, ys)) if xs else 0

    def __call__(self, mono):
        return self.a + self.b * (mono - self.x0)


def follower_errors(samples, truth):
    """[(mono_ns, error_ns, locked, drift_ppm)] for a follower's status lines."""
    return [(s["mono_ns"], s["session_ns"] - truth(s["mono_ns"]), s["locked"], s["drift_ppm"])
            for s in samples if not s["is_master"] and s["master"]]


def convergence(errs, start_mono, bound_ns=100_000, hold_ns=2_000_000_000):
    """Seconds from start until the follower is locked and within bound for hold_ns."""
    for i, (t, e, locked, _d) in enumerate(errs):
        if not locked or abs(e) > bound_ns:
            continue
        ok = True
        for t2, e2, l2, _ in errs[i:]:
            if t2 - t > hold_ns:
                break
            if not l2 or abs(e2) > bound_ns:
                ok = False
                break
        if ok and errs[-1][0] - t >= hold_ns:
            return (t - start_mono) / 1e9
    return None


def true_drift_ppm(master_role, follower_role, skews):
    sm = skews[master_role] * 1e-6
    sf = skews[follower_role] * 1e-6
    return ((1 + sm) / (1 + sf) - 1) * 1e6


def wait_until(pred, timeout, step=0.1):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()


# ------------------------------------------------------------------ scenario

def interp(samples, key, mono):
    """Linear interpolation of samples[key] at mono (samples sorted by mono_ns)."""
    for a, b in zip(samples, samples[1:]):
        if a["mono_ns"] <= mono <= b["mono_ns"]:
            f = (mono - a["mono_ns"]) / max(1, b["mono_ns"] - a["mono_ns"])
            return a[key] + f * (b[key] - a[key])
    return None


def run_scenario(jamnet, workdir, steady_s=10.0, rounds=3, log=print, converge_limit_s=60.0,
                 **lab_kw):
    """Runs every phase; returns (results, checks): checks is [(ok, name, detail)]."""
    lab = Lab(jamnet, workdir, log=log, **lab_kw)
    checks = []
    res = {}

    def check(ok, name, detail):
        checks.append((bool(ok), name, detail))
        log(f"{'PASS' if ok else 'FAIL'}  {name}: {detail}")

    try:
        lab.build()
        lab.start_relays()
        time.sleep(0.3)
        start_mono = time.monotonic_ns()
        for role in ("p1", "p2", "p3"):
            lab.start_peer(role)

        def latest(role):
            s = read_status(lab.status_path[role])
            return s[-1] if s else None

        def followers_locked():
            a, b = latest("p2"), latest("p3")
            return bool(a and b and a["locked"] and b["locked"] and not a["is_master"]
                        and not b["is_master"])

        ok = wait_until(followers_locked, converge_limit_s, 0.25)
        check(ok, "followers lock", f"p2 and p3 locked to a master within {converge_limit_s:.0f} s")
        if not ok:
            for r in ("p1", "p2", "p3"):
                log(f"INFO  {r}: {json.dumps(latest(r))[:400]}")
            return res, checks
        # Keep measuring: convergence is judged afterwards from the error
        # series (locked is not the same as accurate).
        time.sleep(steady_s)
        steady_end = time.monotonic_ns()

        # -- transport: PLAY then STOP, from a different peer each round
        issued = []
        order = ["p2", "p3", "p1"]
        for i in range(rounds):
            for action in ("play", "stop"):
                via = order[(i + (action == "stop")) % 3]
                p = lab.transport(via, action)
                out, err = p.communicate(timeout=15)
                try:
                    reply = json.loads(out.strip().splitlines()[-1])
                except (json.JSONDecodeError, IndexError):
                    reply = {"ok": False, "detail": err.strip()}
                if not reply.get("ok"):
                    check(False, f"transport {action} via {via}", str(reply)[:300])
                    continue
                issued.append((action.upper(), reply["at_session_ns"], via))
                time.sleep(0.5)
        time.sleep(0.5)

        # -- collision: two tempo changes at once from two peers
        pa = lab.transport("p1", "tempo", 100)
        pb = lab.transport("p3", "tempo", 140)
        pa.communicate(timeout=15)
        pb.communicate(timeout=15)
        time.sleep(1.5)
        bpms = {r: latest(r)["transport"]["bpm"] for r in ("p1", "p2", "p3")}
        check(len(set(bpms.values())) == 1 and set(bpms.values()) <= {100, 140},
              "collision resolution", f"tempo 100 (p1) and 140 (p3) sent at once; bpm now {bpms}")

        # -- late joiner: p3 leaves while playing and comes back on a new clock
        pp = lab.transport("p2", "play")
        pp.communicate(timeout=15)
        time.sleep(1.0)
        lab.kill_peer("p3")
        time.sleep(0.5)
        rejoin_mono = time.monotonic_ns()
        lab.start_peer("p3", offset_ms=11000.0, skew_ppm=100.0, tag="b")

        def p3_knows():
            s = latest("p3")
            return bool(s and s["transport"]["state"] == "playing")

        ok = wait_until(p3_knows, 5.0)
        late_s = (time.monotonic_ns() - rejoin_mono) / 1e9
        s3, s1 = latest("p3"), latest("p1")
        check(ok and s3["transport"]["bpm"] == s1["transport"]["bpm"], "late joiner gets the state",
              f"p3 restarted while playing: state {s3 and s3['transport']['state']} "
              f"bpm {s3 and s3['transport']['bpm']} (p1 {s1['transport']['bpm']}) after {late_s:.1f} s")
        ok = wait_until(lambda: bool(latest("p3") and latest("p3")["locked"]
                                     and not latest("p3")["is_master"]), converge_limit_s, 0.25)
        time.sleep(2.0)
        p3b = read_status(lab.status_path["p3"])
        p1s = read_status(lab.status_path["p1"])
        diffs = []
        for s in p3b[-10:]:
            b1 = interp(p1s, "session_ns", s["mono_ns"])
            pos1 = interp([dict(mono_ns=x["mono_ns"], beats=x["transport"]["beats"]) for x in p1s],
                          "beats", s["mono_ns"])
            if pos1 is not None and b1 is not None:
                diffs.append(abs(s["transport"]["beats"] - pos1) * 60000.0 / s["transport"]["bpm"])
        res["late_joiner_position_err_ms"] = max(diffs) if diffs else None
        check(ok and diffs and max(diffs) < 1.0, "late joiner plays in time",
              f"p3's position vs p1's at the same instant: max {max(diffs) if diffs else 'n/a'} ms "
              f"(limit 1 ms) after it locked")

        # -- analysis of the steady phase (first incarnation of every peer)
        samples = {r: [s for s in read_status(os.path.join(workdir, f"{r}.status.jsonl"))
                       if s["mono_ns"] <= steady_end] for r in ("p1", "p2", "p3")}
        masters = {r: sum(1 for s in samples[r] if s["is_master"]) for r in samples}
        master = max(masters, key=masters.get)
        res["master"] = master
        msamp = [s for s in read_status(lab.status_path["p1"] if master == "p1" else
                                        os.path.join(workdir, f"{master}.status.jsonl"))
                 if s["is_master"]]
        truth = Truth(msamp)
        res["truth_residual_us"] = truth.residual_ns / 1e3
        skews = {r: CLOCKS[r][1] for r in CLOCKS}
        conv, p99s, drift_errs, steps = {}, {}, {}, {}
        for r in ("p1", "p2", "p3"):
            if r == master:
                continue
            errs = follower_errors(samples[r], truth)
            c = convergence(errs, start_mono)
            conv[r] = c
            after = [abs(e) for t, e, locked, _ in errs
                     if c is not None and t >= start_mono + c * 1e9]
            p99s[r] = percentile(after, 99) / 1e3 if after else float("nan")
            tail = [d for t, e, l, d in errs if t >= steady_end - 10e9]
            want = true_drift_ppm(master, r, skews)
            drift_errs[r] = abs(percentile(tail, 50) - want) if tail else float("nan")
            steps[r] = samples[r][-1]["steps_locked"] if samples[r] else None
            res.setdefault("error_series", {})[r] = [
                ((t - start_mono) / 1e9, e / 1e3) for t, e, locked, _ in errs
                if c is not None and t >= start_mono + c * 1e9]
        res["converge_s"] = conv
        res["offset_err_p99_us"] = p99s
        res["drift_err_ppm"] = drift_errs
        res["steps_while_locked"] = steps
        log(f"INFO  master {master}; convergence {conv} s; p99 |offset error| {p99s} us; "
            f"drift error {drift_errs} ppm; truth residual {truth.residual_ns / 1e3:.2f} us")

        # -- transport spread
        spreads = []
        all_status = {r: read_status(os.path.join(workdir, f"{r}.status.jsonl"))
                      for r in ("p1", "p2", "p3")}
        for cmd, at, via in issued:
            starts = {}
            for r, ss in all_status.items():
                for s in reversed(ss):
                    ev = [e for e in s["transport"]["events"]
                          if e["at_session_ns"] == at and e["command"] == cmd]
                    if ev:
                        starts[r] = (truth(ev[0]["sample_mono_ns"]), ev[0]["late"])
                        break
            if len(starts) == 3:
                vals = [v for v, _ in starts.values()]
                spreads.append((max(vals) - min(vals)) / 1e3)
            else:
                check(False, f"transport {cmd} at {at} reached every peer",
                      f"seen by {sorted(starts)}")
        res["transport_spread_us"] = spreads
        if spreads:
            check(max(spreads) < 1000.0, "transport lands together",
                  f"{len(spreads)} PLAY/STOP commands; spread of start samples across peers "
                  f"in true session time: max {max(spreads):.1f} us, "
                  f"median {percentile(spreads, 50):.1f} us (limit 1000 us)")

        # -- handoff: the master leaves
        before = {r: latest(r) for r in ("p2", "p3")}
        lab.kill_peer(master, signal.SIGTERM)
        handoff_mono = time.monotonic_ns()
        survivors = [r for r in ("p1", "p2", "p3") if r != master]

        def new_master():
            a, b = latest(survivors[0]), latest(survivors[1])
            return bool(a and b and a["mono_ns"] > handoff_mono + 2e9
                        and b["mono_ns"] > handoff_mono + 2e9
                        and (a["is_master"] != b["is_master"]))

        ok = wait_until(new_master, 15.0)
        time.sleep(3.0)
        herr, hsteps = [], {}
        for r in survivors:
            ss = [s for s in read_status(lab.status_path[r]) if s["mono_ns"] > handoff_mono]
            herr += [abs(s["session_ns"] - truth(s["mono_ns"])) for s in ss]
            hsteps[r] = (ss[-1]["steps_locked"] if ss else None,
                         before[r]["steps_locked"] if before[r] else None)
        res["handoff_err_max_us"] = max(herr) / 1e3 if herr else None
        check(ok and herr and max(herr) < 1_000_000 and all(a == b for a, b in hsteps.values()),
              "master handoff without a jump",
              f"{master} left; one survivor took over; max |session - old timeline| "
              f"{max(herr) / 1e3 if herr else float('nan'):.1f} us over 5 s (limit 1000 us); "
              f"steps while locked before/after {hsteps}")
        return res, checks
    finally:
        lab.cleanup()
