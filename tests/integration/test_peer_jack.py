#!/usr/bin/env python3
"""`jamnet peer --jack` end to end, on real jackd dummy servers this test starts.

1. Ports: one peer with --jack --jack-midi on a private server has send_1,
   midi_in and midi_out, named after the peer; bad flag combinations and a
   missing server fail with a clear message and a non-zero exit.
2. Round trip: bench/latency_rt.py (two jackd dummy servers at 128 frames, two
   peers joined through jamnet netsim, B patched back into the link) sends an
   impulse train A -> B -> A. Impulses must come back, at a sane latency, with
   no loss and with 5% loss both ways (PNBTR conceals what is lost, so a lost
   impulse does not come back: most must).

Loose bounds: this runs in the ASan build on a shared 2-core VM. The tight
figures are measured by `make bench` (bench/REPORT.md). Loopback only; every
process started here is stopped.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
parser = argparse.ArgumentParser()
parser.add_argument("--jamnet", required=True)
args = parser.parse_args()
passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    passed += ok
    failed += not ok
    print(("PASS  " if ok else "FAIL  ") + name + ("" if ok else f": {detail}"), flush=True)


def jack_running(server):
    r = subprocess.run(["jack_wait", "-s", server, "-c"], capture_output=True, timeout=3)
    return r.stdout.decode(errors="replace").startswith("running")


def start_jackd(server):
    for rt in ("-R", "-r"):
        p = subprocess.Popen(["jackd", rt, "-n", server, "-d", "dummy", "-r", "48000", "-p", "128"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
        end = time.monotonic() + 5
        while time.monotonic() < end and p.poll() is None:
            if jack_running(server):
                return p
            time.sleep(0.01)
        stop(p)
    return None


def stop(p, sig=signal.SIGTERM):
    if p and p.poll() is None:
        try:
            os.killpg(p.pid, sig)
            p.wait(timeout=5)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()


def ports(server):
    env = dict(os.environ, JACK_DEFAULT_SERVER=server)
    r = subprocess.run(["jack_lsp"], capture_output=True, env=env, timeout=5)
    return r.stdout.decode(errors="replace").split()


server = f"jamnet-itest-{os.getpid()}"
jackd = start_jackd(server)
peer = None
try:
    check("jackd dummy started", jackd is not None)
    if jackd is None:
        sys.exit(1)
    # --- ports named after the peer, and the engine's telemetry
    tele = Path(tempfile.gettempdir()) / f"jamnet-itest-telemetry-{os.getpid()}.jsonl"
    tele.unlink(missing_ok=True)
    peer = subprocess.Popen([args.jamnet, "peer", "--name", "keys", "--session", f"it{os.getpid()}",
                             "--no-multicast", "--jack", "--jack-midi", "--jack-server", server, "-q",
                             "--telemetry-jsonl", str(tele)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    want = {"keys:send_1", "keys:midi_in", "keys:midi_out"}
    end = time.monotonic() + 10
    have = set()
    while time.monotonic() < end and peer.poll() is None:
        have = set(ports(server))
        if want <= have:
            break
        time.sleep(0.05)
    check("peer --jack --jack-midi registers send_1, midi_in, midi_out named after the peer",
          want <= have, f"have {sorted(have)}; rc {peer.poll()}")
    end = time.monotonic() + 6
    lines = []
    while time.monotonic() < end and len(lines) < 2:
        time.sleep(0.2)
        lines = tele.read_text().splitlines() if tele.exists() else []
    windows = [json.loads(x) for x in lines]
    check("--telemetry-jsonl writes one engine window a second",
          len(windows) >= 2 and all(w["cycles"] > 100 and w["period_ns"] == 2666666 for w in windows)
          and windows[1]["seq"] == windows[0]["seq"] + 1, f"{lines[:2]}")
    tele.unlink(missing_ok=True)
    stop(peer, signal.SIGINT)
    check("peer --jack stops cleanly on Ctrl-C", peer.returncode == 0, f"rc {peer.returncode}: "
          + peer.stderr.read().decode(errors="replace")[-300:])
    peer.stderr.close()
    peer = None

    # --- clear errors
    r = subprocess.run([args.jamnet, "peer", "--jack", "--jack-server", "no-such-server-here",
                        "--no-multicast", "-q", "--duration", "1"], capture_output=True, timeout=30)
    err = r.stderr.decode(errors="replace")
    check("no JACK server: exit 1 with a message naming --jack", r.returncode == 1 and "--jack" in err,
          f"rc {r.returncode}: {err[-200:]}")
    r = subprocess.run([args.jamnet, "peer", "--jack", "--jellie", "--channels", "2",
                        "--jack-server", server, "--no-multicast", "-q", "--duration", "1"],
                       capture_output=True, timeout=30)
    err = r.stderr.decode(errors="replace")
    check("--jellie with 2 channels is refused", r.returncode == 2 and "mono" in err,
          f"rc {r.returncode}: {err[-200:]}")
finally:
    stop(peer)
    stop(jackd)

# --- the round trip, through the latency benchmark's own script
with tempfile.TemporaryDirectory() as tmp:
    out = Path(tmp) / "latency.json"
    cmd = [sys.executable, str(REPO / "bench" / "latency_rt.py"), "--jamnet", args.jamnet,
           "--workdir", tmp, "--periods", "128", "--jacktrip-q", "", "--losses", "0,5",
           "--settle", "2", "--repeats", "1", "--out-json", str(out)]
    r = subprocess.run(cmd, capture_output=True, timeout=240)
    print(r.stderr.decode(errors="replace")[-1500:])
    res = json.loads(out.read_text()) if out.exists() else {}
    ms = res.get("latency.roundtrip_ms_jamnet_128")
    back = res.get("latency.roundtrip_impulses_back_jamnet_128", 0)
    check("round trip A -> B -> A measured (128 frames, no loss)", ms is not None,
          res.get("latency.note", "no output")[-400:])
    # Never faster than one JACK period (2.67 ms: B's loop alone costs one);
    # at most what a broken buffer would add.
    check("round-trip latency is plausible (2.67 .. 80 ms)", ms is not None and 2.66 <= ms <= 80,
          f"{ms} ms")
    check("every impulse comes back with no loss (>= 15 of 16)", back >= 15, f"{back}")
    ms5 = res.get("latency.roundtrip_ms_jamnet_128_loss5")
    back5 = res.get("latency.roundtrip_impulses_back_jamnet_128_loss5", 0)
    check("round trip at 5% loss both ways measured", ms5 is not None, res.get("latency.note", "")[-400:])
    check("at 5% loss most impulses come back (>= 10 of 16)", back5 >= 10, f"{back5}")

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
