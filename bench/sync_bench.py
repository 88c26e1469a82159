#!/usr/bin/env python3
"""Clock-sync benchmark: the sync.* keys of bench/results.json.

Runs bench/sync_lab.py's scenario (three peers in network namespaces, every
link through netsim at 1 ms +- 0.5 ms and 10% loss, test clocks at -100 / 0 /
+100 ppm and seconds apart), with a steady phase of --steady seconds (default
600: the 10-minute soak), then the two peers measured in the same run on
comparable set-ups: chrony (bench/sync_chrony.py, NTP through the same relay
settings) and Ableton Link (bench/sync_link.py, two Link peers on one
namespace's loopback).

    python3 bench/sync_bench.py --jamnet build/release/jamnet \\
        [--link-beat build/release/bench/link_beat] [--steady 600] --out-json OUT

Writes one flat JSON object to OUT. Needs root (ip netns).
"""

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sync_lab  # noqa: E402


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def run_json(argv):
    log("sync_bench: " + " ".join(argv))
    r = subprocess.run(argv, stdout=subprocess.PIPE, text=True)
    if r.returncode != 0:
        return None, f"exit {r.returncode}"
    try:
        return json.loads(r.stdout.strip().splitlines()[-1]), ""
    except (json.JSONDecodeError, IndexError):
        return None, "no JSON output"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jamnet", required=True)
    ap.add_argument("--link-beat", default="")
    ap.add_argument("--steady", type=float, default=600.0)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--chrony-seconds", type=float, default=90.0)
    ap.add_argument("--link-seconds", type=float, default=30.0)
    ap.add_argument("--out-json", required=True)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    out = {}
    ok, why = sync_lab.can_run()
    if not ok:
        log(f"sync_bench: cannot run: {why}")
        return 1
    workdir = tempfile.mkdtemp(prefix="jamnet-syncbench-")
    try:
        res, checks = sync_lab.run_scenario(os.path.abspath(args.jamnet), workdir,
                                            steady_s=args.steady, rounds=args.rounds,
                                            log=log)
        for ok_, name, detail in checks:
            if not ok_:
                out[f"sync.note_{len(out)}"] = f"check failed: {name}: {detail}"
        conv = res.get("converge_s", {})
        if conv and all(v is not None for v in conv.values()):
            out["sync.converge_ms"] = max(conv.values()) * 1000.0
        p99 = res.get("offset_err_p99_us", {})
        if p99:
            out["sync.offset_err_p99_us"] = max(p99.values())
        drift = res.get("drift_err_ppm", {})
        if drift:
            out["sync.drift_err_ppm"] = max(drift.values())
        spreads = res.get("transport_spread_us", [])
        if spreads:
            out["sync.transport_spread_us"] = max(spreads)
            out["sync.transport_spread_p50_us"] = sync_lab.percentile(spreads, 50)
            out["sync.transport_commands"] = len(spreads)
        if res.get("handoff_err_max_us") is not None:
            out["sync.handoff_err_max_us"] = res["handoff_err_max_us"]
        if res.get("late_joiner_position_err_ms") is not None:
            out["sync.late_joiner_position_err_us"] = res["late_joiner_position_err_ms"] * 1000.0
        # Soak: over the whole steady phase (10 minutes by default), the worst
        # error and how far the error's one-minute mean wandered.
        series = res.get("error_series", {})
        worst, wander = [], []
        for _r, pts in series.items():
            if not pts:
                continue
            t0 = pts[0][0]
            span = pts[-1][0] - t0
            worst.append(max(abs(e) for _, e in pts))
            first = [e for t, e in pts if t - t0 < 60]
            last = [e for t, e in pts if pts[-1][0] - t < 60]
            if first and last:
                wander.append(abs(sum(last) / len(last) - sum(first) / len(first)))
        soak_span = min((pts[-1][0] - pts[0][0]) for pts in series.values() if pts) if series else 0
        out["sync.soak_seconds"] = soak_span
        if worst and soak_span >= 590:
            out["sync.soak_drift_us_10min"] = max(wander)
            out["sync.soak_offset_err_max_us_10min"] = max(worst)
        elif worst:
            out["sync.soak_drift_us_10min"] = None
            out["sync.note_soak"] = f"steady phase was {soak_span:.0f} s, not 10 minutes (--steady)"
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            log(f"sync_bench: logs in {workdir}")

    here = os.path.dirname(os.path.abspath(__file__))
    chrony, why = run_json([sys.executable, os.path.join(here, "sync_chrony.py"), "--jamnet",
                            os.path.abspath(args.jamnet), "--duration", str(args.chrony_seconds)])
    if chrony:
        out.update({k if k.startswith("sync.") else "sync." + k: v for k, v in chrony.items()})
    else:
        out["sync.offset_err_p99_us_chrony"] = None
        out["sync.note_chrony"] = "chrony not measured: " + why
    if args.link_beat and os.path.exists(args.link_beat):
        link, why = run_json([sys.executable, os.path.join(here, "sync_link.py"), "--link-beat",
                              os.path.abspath(args.link_beat), "--duration", str(args.link_seconds)])
    else:
        link, why = None, "link_beat not built (ableton-link-dev missing?)"
    if link:
        out.update({k if k.startswith("sync.") else "sync." + k: v for k, v in link.items()})
    else:
        out["sync.link_beat_err_us"] = None
        out["sync.note_link"] = "Ableton Link not measured: " + why
    with open(args.out_json, "w") as f:
        json.dump(out, f, indent=1)
    log(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
