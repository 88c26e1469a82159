#!/usr/bin/env python3
"""Three JAMNet peers in three network namespaces, one link through netsim.

Acceptance (from the issue): three peers sit in three network namespaces joined
by a bridge; no traffic leaves them. One link goes through `jamnet netsim` at
10% loss. Pass when: all peers discover each other; of 10,000 frames sent, the
measured loss is within +-2 percentage points of the configured loss; no
duplicate reaches the application; a peer killed and restarted is discovered
again within 3 s.

Topology (every name carries this process's pid, so parallel runs never meet):

    ns p1 (10.213.77.1) --veth--+
    ns p2 (10.213.77.2) --veth--+-- br0 in ns br   (nothing in the root namespace)
    ns p3 (10.213.77.3) --veth--+

    p1 --connect--> netsim (in ns p2, 10.213.77.2:47900) --connect--> p3
    p2 reaches p1 and p3 directly (multicast discovery).

netsim runs --loss 10 --duplicate 5 with a fixed seed, so the transport's
dedupe is exercised too. p1 sends 10,000 probe frames to p3 at 1 kHz; p3's
count of probes received/lost gives the measured loss, cross-checked with
netsim's own --stats-file. Then p2 (fixed --id) is SIGKILLed and restarted
with the same --id/--bind, twice: at once (p1/p3 still list the old
incarnation) and after p1/p3 timed it out; each time p1 and p3 must list the
new incarnation within 3 s of the restart.

Usage: python3 test_three_peers_netns.py --jamnet build/debug/jamnet [--keep]
Needs root (ip netns); prints SKIPPED and exits 77 when that is not available
(fails instead under JAMNET_REQUIRE_ALL=1).
Python stdlib only.
"""

import argparse
import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))
from netns import build_star, delete_ns, end_processes, reap_stale, sh, skip  # noqa: E402

# ---------------------------------------------------------------- parameters

SUBNET = "10.213.77"
ADDR = {"p1": f"{SUBNET}.1", "p2": f"{SUBNET}.2", "p3": f"{SUBNET}.3"}
PORT = {"p1": 47801, "p2": 47802, "p3": 47803}
NETSIM_PORT = 47900
MCAST = "239.255.74.77:47700"
LOSS_PCT = 10.0
DUP_PCT = 5.0
SEED = 4242
PROBES = 10_000
PIN_LIMIT_S = 5.0       # for the relayed route to replace the multicast one
P1_RATE = 1000          # p1 -> each peer, frames/s
OTHER_RATE = 200        # p2, p3 -> each peer, frames/s (unlimited count)
STATUS_MS = 100
LOSS_TOL_PP = 2.0       # acceptance: +-2 percentage points
REVERSE_TOL_PP = 4.0    # reverse direction has fewer samples; looser, still > 6 sigma
DISCOVERY_LIMIT_S = 5.0
RESTART_LIMIT_S = 3.0
TAIL_ALLOWANCE = 10     # probes lost after the last received one are not yet counted

PREFIX = "jn3p"         # namespace prefix: jn3p<pid>-<role>


# ------------------------------------------------------------------ reporting

class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, ok, name, detail=""):
        if ok:
            self.passed += 1
            print(f"PASS  {name}: {detail}", flush=True)
        else:
            self.failed += 1
            print(f"FAIL  {name}: {detail}", flush=True)
        return ok


def info(msg):
    print(f"INFO  {msg}", flush=True)


# ------------------------------------------------------------------- plumbing

class Lab:
    """Namespaces, bridge and processes; cleanup() is idempotent."""

    def __init__(self, jamnet, workdir):
        self.jamnet = jamnet
        self.workdir = workdir
        tag = f"{PREFIX}{os.getpid()}"
        self.ns = {"p1": f"{tag}-p1", "p2": f"{tag}-p2", "p3": f"{tag}-p3", "br": f"{tag}-br"}
        self.procs = []      # (label, Popen, logfile)
        self.created = []
        self.cleaned = False

    # -- network
    def build(self):
        # No IGMP snooping (no querier here): multicast floods to every port.
        build_star(self.ns, ("p1", "p2", "p3"), ADDR, self.created, bridge_opts=("mcast_snooping", "0"))

    # -- processes
    def start(self, label, role, args):
        log = open(os.path.join(self.workdir, f"{label}.log"), "w")
        cmd = ["ip", "netns", "exec", self.ns[role], self.jamnet] + args
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.procs.append((label, p, log.name))
        return p

    def stop(self, p, sig=signal.SIGTERM, timeout=3.0):
        if p.poll() is None:
            try:
                p.send_signal(sig)
            except ProcessLookupError:
                pass
        try:
            return p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=5)
            return None

    def log_tail(self, label, n=15):
        for lab, _, path in self.procs:
            if lab == label:
                try:
                    with open(path, errors="replace") as f:
                        return "".join(f.readlines()[-n:])
                except OSError:
                    return ""
        return ""

    def cleanup(self):
        if self.cleaned:
            return
        self.cleaned = True
        end_processes([p for _, p, _ in self.procs], grace=5.0, terminate=False)
        for ns in reversed(self.created):
            delete_ns(ns)


class StatusTail:
    """Follows a --status-jsonl file; latest() is the newest complete line."""

    def __init__(self, path):
        self.path = path
        self.offset = 0
        self.partial = ""
        self.last = None
        self.lines = 0
        self.app_dup_max = 0
        self.bad_lines = 0

    def poll(self):
        try:
            with open(self.path, "r", errors="replace") as f:
                f.seek(self.offset)
                data = f.read()
                self.offset = f.tell()
        except FileNotFoundError:
            return self.last
        data = self.partial + data
        lines = data.split("\n")
        self.partial = lines.pop()
        for line in lines:
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                self.bad_lines += 1
                continue
            self.lines += 1
            self.last = obj
            for peer in obj.get("peers", []):
                self.app_dup_max = max(self.app_dup_max, int(peer.get("app_duplicates", 0) or 0))
        return self.last


def peer_entry(report, name):
    if not report:
        return None
    for peer in report.get("peers", []):
        if peer.get("name") == name:
            return peer
    return None


def wait_until(pred, timeout, step=0.02):
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(step)


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError):
        return None


# ------------------------------------------------------------------ preflight

MCAST_RX = r"""
import socket, struct, sys
grp, port, ifaddr = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", port))
s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
             socket.inet_aton(grp) + socket.inet_aton(ifaddr))
print("ready", flush=True)
s.settimeout(3.0)
try:
    data, src = s.recvfrom(100)
    print("got", data.decode(), src[0], flush=True)
except socket.timeout:
    print("timeout", flush=True)
"""

MCAST_TX = r"""
import socket, sys, time
grp, port, ifaddr = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(ifaddr))
for _ in range(20):
    s.sendto(b"hello", (grp, port))
    time.sleep(0.05)
"""


def preflight_multicast(lab):
    """Plain-Python multicast p1 -> p3 across the bridge: tells a broken lab from a broken jamnet."""
    grp, port = "239.255.74.99", 47999
    rx = subprocess.Popen(["ip", "netns", "exec", lab.ns["p3"], sys.executable, "-c", MCAST_RX,
                           grp, str(port), ADDR["p3"]], stdout=subprocess.PIPE, text=True)
    try:
        ready = rx.stdout.readline().strip()
        if ready != "ready":
            return False, f"receiver did not start ({ready!r})"
        sh("ip", "netns", "exec", lab.ns["p1"], sys.executable, "-c", MCAST_TX,
           grp, str(port), ADDR["p1"], timeout=10)
        out = rx.stdout.readline().strip()
        return out.startswith("got hello " + ADDR["p1"]), out
    finally:
        if rx.poll() is None:
            rx.kill()
        rx.wait(timeout=5)


# --------------------------------------------------------------------- phases

def peer_args(role, session, status, report, extra):
    return (["peer", "--name", role, "--session", session,
             "--bind", f"{ADDR[role]}:{PORT[role]}",
             "--multicast", MCAST, "--multicast-if", ADDR[role],
             "--status-jsonl", status, "--status-ms", str(STATUS_MS),
             "--report-json", report, "--quiet"] + extra)


def run(args, checks):
    jamnet = os.path.abspath(args.jamnet)
    if not os.access(jamnet, os.X_OK):
        checks.check(False, "binary", f"{jamnet} is not an executable file")
        return
    help_text = sh(jamnet, "peer", "--help", check=False)
    help_all = help_text.stdout + help_text.stderr
    if "--probe-rate" not in help_all:
        checks.check(False, "binary", f"`jamnet peer --help` does not list --probe-rate:\n{help_all[-800:]}")
        return
    nhelp = sh(jamnet, "netsim", "--help", check=False)
    if "--stats-file" not in nhelp.stdout + nhelp.stderr:
        checks.check(False, "binary", "`jamnet netsim --help` does not list --stats-file")
        return

    workdir = tempfile.mkdtemp(prefix=f"jamnet-3p-{os.getpid()}-")
    info(f"work dir {workdir}")
    root_links_before = sh("ip", "-o", "link", "show").stdout.count("\n")
    lab = Lab(jamnet, workdir)
    atexit.register(lab.cleanup)
    ok = False
    try:
        lab.build()
        good, detail = preflight_multicast(lab)
        if not checks.check(good, "lab multicast (python, p1 -> p3 over the bridge)", detail):
            return
        root_links_after = sh("ip", "-o", "link", "show").stdout.count("\n")
        checks.check(root_links_after == root_links_before, "root namespace untouched",
                     f"{root_links_before} links before, {root_links_after} after building the lab")

        ok = phases(lab, workdir, checks)
    finally:
        lab.cleanup()
        remaining = [ns for ns in lab.created if ns in sh("ip", "netns", "list", check=False).stdout]
        checks.check(not remaining, "cleanup", "namespaces removed" if not remaining else f"left: {remaining}")
        if ok and checks.failed == 0 and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            info(f"logs and reports kept in {workdir}")


def phases(lab, workdir, checks):
    f = lambda name: os.path.join(workdir, name)
    session = f"three-peers-{os.getpid()}"
    p2_id = str(uuid.uuid4())
    netsim_addr = f"{ADDR['p2']}:{NETSIM_PORT}"
    netsim_stats = f("netsim.stats.json")

    # netsim in p2's namespace: the middle box between p1 and p3.
    netsim = lab.start("netsim", "p2", [
        "netsim", "--bind", netsim_addr, "--connect", f"{ADDR['p3']}:{PORT['p3']}",
        "--loss", str(LOSS_PCT), "--duplicate", str(DUP_PCT), "--seed", str(SEED),
        "--stats-file", netsim_stats, "--duration", "0"])
    time.sleep(0.2)
    if netsim.poll() is not None:
        info(f"netsim exited at once:\n{lab.log_tail('netsim')}")

    common_p1 = ["--connect", netsim_addr, "--probe-rate", str(P1_RATE), "--probe-count", str(PROBES)]
    common_other = ["--probe-rate", str(OTHER_RATE), "--probe-count", "0"]
    procs = {}
    tails = {}
    for role, extra in (("p3", common_other), ("p2", common_other + ["--id", p2_id]), ("p1", common_p1)):
        tails[role] = StatusTail(f(f"{role}.status.jsonl"))
        procs[role] = lab.start(role, role, peer_args(role, session, tails[role].path,
                                                     f(f"{role}.report.json"), extra))
    t_started = time.monotonic()

    def dead():
        gone = [(lab_name, p.returncode) for lab_name, p in
                list(procs.items()) + [("netsim", netsim)] if p.poll() is not None]
        return gone

    # ---- 1. discovery: every peer lists the other two.
    roles = ("p1", "p2", "p3")

    def all_discovered():
        if dead():
            return "dead"
        for role in roles:
            rep = tails[role].poll()
            for other in roles:
                if other != role and peer_entry(rep, other) is None:
                    return None
        return "ok"

    res = wait_until(all_discovered, DISCOVERY_LIMIT_S)
    t_disc = time.monotonic() - t_started
    if res != "ok":
        for role in roles:
            rep = tails[role].last
            info(f"{role} sees {[p.get('name') for p in rep.get('peers', [])] if rep else 'no status line'}")
        for lab_name in list(procs) + ["netsim"]:
            info(f"{lab_name} log tail:\n{lab.log_tail(lab_name)}")
        checks.check(False, "discovery", f"not all peers discovered each other within {DISCOVERY_LIMIT_S} s"
                     + (f"; exited: {dead()}" if dead() else ""))
        return False
    checks.check(True, "discovery", f"all 3 peers list the other two after {t_disc:.2f} s "
                 f"(from start of the last peer; limit {DISCOVERY_LIMIT_S} s)")
    for role in roles:
        rep = tails[role].last
        info(f"{role} id={rep.get('id')} incarnation={rep.get('incarnation')} local={rep.get('local')} peers: "
             + ", ".join(f"{p['name']}@{p.get('address')} ({p.get('path')})" for p in rep["peers"]))

    # The relayed link really goes through netsim.
    # Multicast usually finds a peer first; the route through netsim replaces
    # it when the first hello crosses netsim (10% loss), which can take a few
    # hello intervals: wait for it rather than judge the first instant.
    def relayed():
        a = peer_entry(tails["p1"].poll(), "p3") or {}
        b = peer_entry(tails["p3"].poll(), "p1") or {}
        return a.get("path") == "pinned" and b.get("path") == "unicast"

    wait_until(relayed, PIN_LIMIT_S)
    p1_p3 = peer_entry(tails["p1"].last, "p3")
    p3_p1 = peer_entry(tails["p3"].last, "p1")
    checks.check(p1_p3.get("path") == "pinned" and p1_p3.get("address") == netsim_addr,
                 "p1 -> p3 path is pinned to netsim",
                 f"path={p1_p3.get('path')} address={p1_p3.get('address')} (netsim {netsim_addr})")
    checks.check(p3_p1.get("path") == "unicast" and str(p3_p1.get("address", "")).startswith(ADDR["p2"] + ":"),
                 "p3 -> p1 path is unicast via netsim's upstream socket",
                 f"path={p3_p1.get('path')} address={p3_p1.get('address')} (netsim host {ADDR['p2']})")

    # ---- 2. 10,000 probes p1 -> p3 through 10% loss + 5% duplication.
    # Wait until p1 reports all of them sent, or its count has stopped moving
    # (then the shortfall is reported, and the loss is measured on what was sent).
    t_probe = time.monotonic()
    hard_deadline = t_probe + PROBES / P1_RATE * 2.5 + 5  # 10 s at 1 kHz + slack for a loaded VM
    last_sent, moved_at, state = -1, time.monotonic(), None
    while time.monotonic() < hard_deadline:
        if procs["p1"].poll() is not None or procs["p3"].poll() is not None:
            state = "dead"
            break
        e = peer_entry(tails["p1"].poll(), "p3") or {}
        tails["p3"].poll()
        sent_now = int(e.get("probes_sent", 0) or 0)
        if sent_now >= PROBES:
            state = "ok"
            break
        if sent_now != last_sent:
            last_sent, moved_at = sent_now, time.monotonic()
        elif sent_now > 0 and time.monotonic() - moved_at >= (2.0 if sent_now >= 0.9 * PROBES else 5.0):
            state = "stalled"
            break
        time.sleep(0.05)
    e = peer_entry(tails["p1"].last, "p3") or {}
    sent = int(e.get("probes_sent", 0) or 0)
    other = peer_entry(tails["p1"].last, "p2") or {}
    checks.check(sent == PROBES, "p1 sent --probe-count probes to p3",
                 f"probes_sent={sent} (wanted {PROBES}; to p2: {other.get('probes_sent')}) "
                 f"after {time.monotonic() - t_probe:.1f} s, {state or 'timed out'}"
                 + (f"; exited: {dead()}" if dead() else ""))
    if sent < PROBES // 2 or state == "dead":
        return False

    # Drain: wait until p3's count has not moved for 1 s (max 5 s).
    last, stable_since = None, time.monotonic()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        e3 = peer_entry(tails["p3"].poll(), "p1") or {}
        now_val = (e3.get("probes_received"), e3.get("probes_lost"))
        if now_val != last:
            last, stable_since = now_val, time.monotonic()
        elif time.monotonic() - stable_since >= 1.0:
            break
        time.sleep(0.05)
    p3_rep = tails["p3"].last
    e3 = peer_entry(p3_rep, "p1") or {}
    recv = int(e3.get("probes_received", 0))
    lost = int(e3.get("probes_lost", 0))
    dups_dropped = int(e3.get("duplicates_dropped", 0))
    app_dups = int(e3.get("app_duplicates", 0))
    seen = recv + lost
    loss = 100.0 * lost / seen if seen else float("nan")
    info(f"p3 <- p1: probes_received={recv} probes_lost={lost} probe_loss={e3.get('probe_loss')} "
         f"reordered={e3.get('reordered')} duplicates_dropped={dups_dropped} app_duplicates={app_dups} "
         f"corrupt={e3.get('corrupt')} rtt_p50={e3.get('rtt_ms_p50')} ms")
    checks.check(sent - TAIL_ALLOWANCE <= seen <= sent, "p3 accounted for the probe stream",
                 f"received+lost={seen} of {sent} sent (up to {TAIL_ALLOWANCE} missing at the tail allowed)")
    checks.check(abs(loss - LOSS_PCT) <= LOSS_TOL_PP, "measured loss within +-2 pp of configured",
                 f"measured {loss:.2f}% = {lost}/{seen}, configured {LOSS_PCT:.0f}%")
    reported = e3.get("probe_loss")
    if isinstance(reported, (int, float)) and seen:
        # probe_loss may be a fraction or a percent; either way it must match the counts.
        frac = lost / seen
        checks.check(abs(reported - frac) < 0.005 or abs(reported - 100 * frac) < 0.5,
                     "p3's probe_loss field matches its counts", f"probe_loss={reported}, counts give {frac:.4f}")
    checks.check(app_dups == 0, "no duplicate reached p3's application", f"app_duplicates={app_dups}")
    checks.check(dups_dropped > 0, "transport dropped netsim's duplicates", f"duplicates_dropped={dups_dropped}")

    # Reverse direction (p3 -> p1 through netsim) for information, looser tolerance.
    e1 = peer_entry(tails["p1"].poll(), "p3") or {}
    r_recv, r_lost = int(e1.get("probes_received", 0)), int(e1.get("probes_lost", 0))
    if r_recv + r_lost >= 1000:
        r_loss = 100.0 * r_lost / (r_recv + r_lost)
        checks.check(abs(r_loss - LOSS_PCT) <= REVERSE_TOL_PP, "reverse loss p3 -> p1 (+-4 pp)",
                     f"measured {r_loss:.2f}% = {r_lost}/{r_recv + r_lost}, duplicates_dropped="
                     f"{e1.get('duplicates_dropped')}")
    else:
        info(f"reverse p3 -> p1: only {r_recv + r_lost} probes counted, not checked")

    # Direct links (no netsim): probes flow both ways, none duplicated; loss for information.
    for role in roles:
        tails[role].poll()
    for a, b in (("p1", "p2"), ("p2", "p1"), ("p2", "p3"), ("p3", "p2")):
        d = peer_entry(tails[a].last, b) or {}
        d_recv, d_lost = int(d.get("probes_received", 0) or 0), int(d.get("probes_lost", 0) or 0)
        checks.check(d_recv > 0 and int(d.get("app_duplicates", 0) or 0) == 0, f"direct link {b} -> {a}",
                     f"path={d.get('path')} probes_received={d_recv} probes_lost={d_lost} "
                     f"duplicates_dropped={d.get('duplicates_dropped')} app_duplicates={d.get('app_duplicates')} "
                     f"rtt_p50={d.get('rtt_ms_p50')} ms")

    # Cross-check with netsim's own counts.
    time.sleep(1.1)  # the stats file is rewritten every second
    ns_stats = read_json(netsim_stats)
    if not checks.check(ns_stats is not None, "netsim stats file", netsim_stats):
        return False
    g = lambda k: int(ns_stats.get(k, 0) or 0)
    f_rx, f_fwd, f_loss, f_dup = (g("forward.received"), g("forward.forwarded"),
                                  g("forward.dropped_loss"), g("forward.duplicated"))
    f_other_drop = g("forward.dropped_queue") + g("forward.dropped_send")
    info("netsim forward (p1 -> p3): " + ", ".join(
        f"{k.split('.', 1)[1]}={v}" for k, v in ns_stats.items() if k.startswith("forward.")))
    info("netsim reverse (p3 -> p1): " + ", ".join(
        f"{k.split('.', 1)[1]}={v}" for k, v in ns_stats.items() if k.startswith("reverse.")))
    ns_loss = 100.0 * f_loss / f_rx if f_rx else float("nan")
    checks.check(f_rx >= sent and abs(ns_loss - LOSS_PCT) <= LOSS_TOL_PP,
                 "netsim dropped ~10% of what p1 sent",
                 f"forward received={f_rx} dropped_loss={f_loss} ({ns_loss:.2f}%)")
    # Everything netsim forwarded once, and only that, can have reached p3.
    checks.check(recv <= f_fwd - f_dup, "p3's probes received <= netsim's unique forwards",
                 f"{recv} <= {f_fwd - f_dup}")
    # Probes are most of the forward traffic (the rest: announces, pings);
    # netsim's drops scaled to the probe share should match p3's lost count.
    share = sent / f_rx if f_rx else 0
    exp_lost = (f_loss + f_other_drop) * share
    checks.check(abs(lost - exp_lost) <= max(40, 0.1 * exp_lost) and lost <= f_loss + f_other_drop,
                 "p3's lost count agrees with netsim's drops",
                 f"p3 lost {lost}; netsim dropped {f_loss + f_other_drop} of {f_rx}, "
                 f"probe share {share:.3f} -> ~{exp_lost:.0f}")
    exp_dups = f_dup * share
    checks.check(dups_dropped <= f_dup and abs(dups_dropped - exp_dups) <= max(30, 0.2 * exp_dups),
                 "p3's dropped duplicates agree with netsim's duplicated",
                 f"p3 duplicates_dropped {dups_dropped}; netsim duplicated {f_dup}, probe share -> ~{exp_dups:.0f}")

    # ---- 3. kill -9 p2 and restart it with the same --id and --bind, twice:
    # (a) at once, while p1 and p3 still list the old incarnation (a restart);
    # (b) after p1 and p3 timed the dead one out (a fresh join of a known id).
    p2_rep = tails["p2"].poll()
    checks.check(p2_rep is not None and p2_rep.get("id") == p2_id, "p2 runs with the fixed --id",
                 f"reported id={p2_rep.get('id') if p2_rep else None}, wanted {p2_id}")

    def kill_and_restart(old, new, after_timeout):
        old_rep = tails[old].poll() or {}
        old_self_inc = old_rep.get("incarnation")
        old_inc, old_restarts = {}, {}
        for role in ("p1", "p3"):
            e = peer_entry(tails[role].poll(), "p2") or {}
            old_inc[role] = e.get("incarnation")
            old_restarts[role] = int(e.get("restarts", 0) or 0)
        procs[old].send_signal(signal.SIGKILL)
        procs[old].wait(timeout=5)
        t_kill = time.monotonic()
        info(f"{old} SIGKILLed (incarnation {old_self_inc}); p1 saw {old_inc['p1']}, p3 saw {old_inc['p3']}")
        if after_timeout:
            # Default --timeout-ms is 1500; allow one more second for ticks and status lines.
            gone = wait_until(lambda: all(peer_entry(tails[r].poll(), "p2") is None for r in ("p1", "p3")), 2.5)
            checks.check(bool(gone), f"p1 and p3 drop the killed p2 ({old}) after the peer timeout",
                         f"gone after {time.monotonic() - t_kill:.2f} s (--timeout-ms default 1500)")
        else:
            time.sleep(0.3)  # a crashed peer does not come back in the same instant

        tails[new] = StatusTail(f(f"{new}.status.jsonl"))
        t_restart = time.monotonic()
        procs[new] = lab.start(new, "p2", peer_args("p2", session, tails[new].path,
                                                    f(f"{new}.report.json"), common_other + ["--id", p2_id]))
        seen_at = {}

        def rediscovered():
            if procs[new].poll() is not None:
                return "dead"
            me = tails[new].poll()
            new_inc = me.get("incarnation") if me else None
            now = time.monotonic()
            for role in ("p1", "p3"):
                e = peer_entry(tails[role].poll(), "p2")
                if (role not in seen_at and e and new_inc is not None and e.get("incarnation") == new_inc
                        and e.get("incarnation") != old_self_inc):
                    seen_at[role] = now - t_restart
            if "self" not in seen_at and me and peer_entry(me, "p1") and peer_entry(me, "p3"):
                seen_at["self"] = now - t_restart
            return "ok" if len(seen_at) == 3 else None

        res = wait_until(rediscovered, RESTART_LIMIT_S + 5)
        new_rep = tails[new].last or {}
        what = "after timeout" if after_timeout else "immediate"
        checks.check(new_rep.get("id") == p2_id and new_rep.get("incarnation") not in (None, old_self_inc),
                     f"restarted p2 ({new}, {what}) keeps its id with a new incarnation",
                     f"id={new_rep.get('id')} incarnation {old_self_inc} -> {new_rep.get('incarnation')}")
        worst = max(seen_at.get(r, float("inf")) for r in ("p1", "p3"))
        fmt = lambda k: f"{seen_at[k]:.2f} s" if k in seen_at else "never"
        checks.check(res == "ok" and worst <= RESTART_LIMIT_S,
                     f"restarted p2 ({new}, {what}) rediscovered within 3 s",
                     f"p1 after {fmt('p1')}, p3 after {fmt('p3')}, p2 sees both after {fmt('self')} "
                     f"(from process start; status every {STATUS_MS} ms; limit {RESTART_LIMIT_S} s)"
                     + ("; restarted p2 exited" if res == "dead" else ""))
        if not after_timeout:
            for role in ("p1", "p3"):
                e = peer_entry(tails[role].poll(), "p2") or {}
                restarts = int(e.get("restarts", 0) or 0)
                checks.check(restarts == old_restarts[role] + 1, f"{role} counted p2's restart",
                             f"restarts {old_restarts[role]} -> {restarts}")
        return worst

    kill_and_restart("p2", "p2b", after_timeout=False)
    kill_and_restart("p2b", "p2c", after_timeout=True)

    # ---- 4. clean stop: SIGTERM, exit 0, final report written, no app duplicate anywhere.
    for role in ("p1", "p2c", "p3"):
        tails[role].poll()
    # p3 first: its final report still lists p1 (the relayed link) before goodbyes empty it.
    for role in ("p3", "p1", "p2c"):
        rc = lab.stop(procs[role])
        checks.check(rc == 0, f"{role} stops cleanly on SIGTERM", f"exit status {rc}")
    lab.stop(netsim)
    for role, report in (("p1", "p1.report.json"), ("p2c", "p2c.report.json"), ("p3", "p3.report.json")):
        rep = read_json(f(report))
        if not checks.check(rep is not None, f"{role} final report", f(report)):
            continue
        dups = {p.get("name"): p.get("app_duplicates") for p in rep.get("peers", [])}
        tail_max = tails[role].app_dup_max
        checks.check(all(v == 0 for v in dups.values()) and tail_max == 0,
                     f"{role}: no duplicate reached the application",
                     f"final app_duplicates {dups}; max over {tails[role].lines} status lines {tail_max}; "
                     f"frames_delivered={rep.get('frames_delivered')} decode_errors={rep.get('decode_errors')}")
    for killed in ("p2", "p2b"):
        tails[killed].poll()
        checks.check(tails[killed].app_dup_max == 0, f"{killed} (killed): no duplicate reached the application",
                     f"max app_duplicates over {tails[killed].lines} status lines: {tails[killed].app_dup_max}")
    bad = {r: t.bad_lines for r, t in tails.items() if t.bad_lines}
    checks.check(not bad, "status lines are valid JSON", f"unparsable lines: {bad}" if bad else "all parsed")
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jamnet", required=True, help="path to the jamnet binary")
    ap.add_argument("--keep", action="store_true", help="keep the work dir (logs, status, reports)")
    args = ap.parse_args()

    if os.geteuid() != 0:
        return skip("needs root for `ip netns` (network namespaces)")
    if shutil.which("ip") is None:
        return skip("`ip` (iproute2) not found")
    reap_stale(PREFIX, log=info)
    trial = f"{PREFIX}{os.getpid()}-try"
    r = sh("ip", "netns", "add", trial, check=False)
    if r.returncode != 0:
        return skip(f"`ip netns add` does not work here: {r.stderr.strip()}")
    sh("ip", "netns", "del", trial, check=False)

    # Any stop request (ctest timeout, Ctrl-C) unwinds through the finally blocks.
    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, on_signal)

    checks = Checks()
    t0 = time.monotonic()
    try:
        run(args, checks)
    except SystemExit:
        checks.check(False, "interrupted", "stopped by a signal")
        raise
    except Exception as exc:  # report, clean up (finally in run), and fail
        import traceback
        traceback.print_exc()
        checks.check(False, "unexpected error", repr(exc))
    finally:
        print(f"total {time.monotonic() - t0:.1f} s", flush=True)
        print(f"{checks.passed} passed, {checks.failed} failed", flush=True)
    return 1 if checks.failed or checks.passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
