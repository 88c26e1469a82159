#!/usr/bin/env python3
"""Network-namespace plumbing shared by the namespace benchmarks and tests.

Used by bench/sync_lab.py, bench/sync_chrony.py, bench/sync_link.py and
tests/integration/test_three_peers_netns.py. Every namespace those create is
named <PREFIX><pid>-<role>, <pid> being the creating process, so a run that was
SIGKILLed leaves names that reap_stale() can recognise and remove later.

Python stdlib only. Most of it needs root (ip netns).
"""

import contextlib
import math
import os
import shutil
import signal
import subprocess


class NetnsError(Exception):
    """A command run with sh(check=True) failed."""


def sh(*args, check=True, **kw):
    """Runs a command, stdout and stderr captured as text; raises NetnsError when check and it fails."""
    r = subprocess.run(list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    if check and r.returncode != 0:
        raise NetnsError(f"`{' '.join(args)}` failed ({r.returncode}): {r.stderr.strip()}")
    return r


def pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def ns_pids(ns):
    r = sh("ip", "netns", "pids", ns, check=False)
    return [int(p) for p in r.stdout.split() if p.isdigit()]


def delete_ns(ns):
    """SIGKILLs the processes in namespace ns, then deletes it; never raises."""
    # Only processes the caller started live in its namespaces; end them by id.
    try:
        pids = ns_pids(ns)
    except OSError:
        pids = []
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    try:
        sh("ip", "netns", "del", ns, check=False)
    except OSError:
        pass


def reap_stale(prefix, log=None):
    """Namespaces <prefix><pid>-<role> left by an earlier run that was SIGKILLed (its pid is gone)."""
    r = sh("ip", "netns", "list", check=False)
    for line in r.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        if not name.startswith(prefix) or "-" not in name:
            continue
        pid_text = name[len(prefix):].split("-", 1)[0]
        if pid_text.isdigit() and int(pid_text) != os.getpid() and not pid_alive(int(pid_text)):
            if log is not None:
                log(f"removing stale namespace {name}")
            delete_ns(name)


SKIP_STATUS = 77  # ctest's SKIP_RETURN_CODE for the integration scripts


def skip(why):
    """A test that cannot run here: prints SKIPPED and returns SKIP_STATUS, or
    under JAMNET_REQUIRE_ALL=1 (make test, whose install step provides root
    namespaces, jackd and the rest) prints FAILED and returns 1."""
    if os.environ.get("JAMNET_REQUIRE_ALL") == "1":
        print(f"FAILED: {why} (JAMNET_REQUIRE_ALL=1: this machine should be able to run it)",
              flush=True)
        return 1
    print(f"SKIPPED: {why}", flush=True)
    return SKIP_STATUS


def can_run(prefix):
    """(ok, reason): root and ip netns available."""
    if os.geteuid() != 0:
        return False, "needs root for ip netns"
    probe = f"{prefix}{os.getpid()}-probe"
    r = sh("ip", "netns", "add", probe, check=False)
    if r.returncode != 0:
        return False, "ip netns add failed: " + r.stderr.strip()
    sh("ip", "netns", "del", probe, check=False)
    return True, ""


def build_star(names, ends, addr, created, bridge="br", bridge_opts=()):
    """A star network: every namespace in names (role -> name) with lo up, a
    bridge br0 in names[bridge] (no STP delay, plus bridge_opts), and for each
    role in ends a veth whose eth0 end carries addr[role]/24 and whose other end
    v<role> is a bridge port. Each veth is created inside its end namespace and
    its peer moved straight into the bridge namespace, so nothing ever appears
    in the root namespace. Namespaces go into `created` as they are made, so
    the caller's cleanup removes them even when this raises half-way."""
    for ns in names.values():
        sh("ip", "netns", "add", ns)
        created.append(ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
    br = names[bridge]
    sh("ip", "-n", br, "link", "add", "br0", "type", "bridge")
    sh("ip", "-n", br, "link", "set", "br0", "type", "bridge", "stp_state", "0", "forward_delay", "0",
       *bridge_opts)
    sh("ip", "-n", br, "link", "set", "br0", "up")
    for role in ends:
        ns = names[role]
        sh("ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", f"v{role}", "netns", br)
        sh("ip", "-n", br, "link", "set", f"v{role}", "master", "br0", "up")
        sh("ip", "-n", ns, "addr", "add", f"{addr[role]}/24", "dev", "eth0")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")


def end_processes(procs, grace=3.0, terminate=True):
    """Ends Popen objects: SIGTERM (or SIGKILL at once when not terminate), up
    to `grace` seconds for each to exit, then SIGKILL; never raises."""
    for p in procs:
        if p.poll() is None:
            try:
                p.terminate() if terminate else p.kill()
            except ProcessLookupError:
                pass
    for p in procs:
        try:
            p.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            try:
                p.kill()
                p.wait(timeout=5)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass


@contextlib.contextmanager
def lab_run(lab, workdir, keep, log):
    """The body of a namespace benchmark's run(): lab.cleanup() however it
    ends; the work dir removed when the body set state["ok"] (or was
    interrupted) and not keep, else kept and its path logged."""
    state = {"ok": False}
    interrupted = False
    try:
        yield state
    except SystemExit:
        interrupted = True
        raise
    finally:
        lab.cleanup()
        if (state["ok"] or interrupted) and not keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            log(f"files kept in {workdir}")


def percentile(values, q):
    """Linear interpolation between closest ranks (numpy's default); nan for no values."""
    if not values:
        return float("nan")
    v = sorted(values)
    k = (len(v) - 1) * q / 100.0
    lo = math.floor(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def run_main(run, args, prefix, log):
    """The common main() of a namespace benchmark script: checks root and `ip`,
    turns SIGTERM/SIGINT/SIGHUP into an unwind through run()'s cleanup, reaps
    namespaces a killed earlier run left, and prints run(args)'s result as one
    JSON line. Returns the exit status."""
    import json
    import shutil
    import signal as _signal

    if os.geteuid() != 0:
        log("error: needs root (ip netns)")
        return 1
    if shutil.which("ip") is None:
        log("error: `ip` (iproute2) not found")
        return 1

    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)
    for s in (_signal.SIGTERM, _signal.SIGINT, _signal.SIGHUP):
        _signal.signal(s, on_signal)

    try:
        reap_stale(prefix, log=log)
        result = run(args)
    except NetnsError as exc:
        log(f"error: {exc}")
        return 1
    except SystemExit as exc:
        log(f"interrupted (status {exc.code}); cleaned up")
        return exc.code if isinstance(exc.code, int) else 1
    print(json.dumps(result), flush=True)
    return 0
