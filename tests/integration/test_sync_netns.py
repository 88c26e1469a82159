#!/usr/bin/env python3
"""Clock sync and transport across three peers in network namespaces.

The acceptance setup of the clock-sync issue (bench/sync_lab.py has the
details): three peers, every link through `jamnet netsim` at 1 ms +- 0.5 ms
and 10% loss, test clocks at -100 / 0 / +100 ppm and seconds apart. This test
runs it short and asserts bounds that a loaded CI machine still meets; the
benchmark (bench/run.py, keys sync.*) runs it longer and reports the figures.

Checks: both followers lock; offset error p99 after convergence < 1 ms and
drift error < 20 ppm (the benchmark's targets, after minutes,
are 100 us and 1 ppm); no step
once locked; PLAY/STOP commands start within 1 ms of each other on all three
peers (in true session time); two tempo changes at once end the same
everywhere; a peer that rejoins while playing gets the state and plays in
time; when the master leaves, a survivor takes over without a jump.

Usage: python3 test_sync_netns.py --jamnet build/debug/jamnet [--keep]
Needs root (ip netns); prints SKIPPED and exits 77 when that is not available
(fails instead under JAMNET_REQUIRE_ALL=1).
"""

import argparse
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))
import netns  # noqa: E402
import sync_lab  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jamnet", required=True)
    ap.add_argument("--keep", action="store_true", help="keep the logs")
    # Seconds measured after both lock: convergence is judged in them, and
    # under ASan on a loaded CI machine it has taken up to ~10 s.
    ap.add_argument("--steady", type=float, default=20.0)
    args = ap.parse_args()
    ok, why = sync_lab.can_run()
    if not ok:
        return netns.skip(why)
    workdir = tempfile.mkdtemp(prefix="jamnet-sync-")
    try:
        res, checks = sync_lab.run_scenario(os.path.abspath(args.jamnet), workdir,
                                            steady_s=args.steady, rounds=3,
                                            converge_limit_s=90.0)
        conv = res.get("converge_s", {})
        p99 = res.get("offset_err_p99_us", {})
        drift = res.get("drift_err_ppm", {})
        steps = res.get("steps_while_locked", {})
        if conv:
            checks.append((all(v is not None and v < 90 for v in conv.values()),
                           "convergence", f"{conv} s (limit 90 s)"))
            checks.append((all(v < 1000 for v in p99.values()), "offset error p99",
                           f"{p99} us (limit 1000 us; benchmark target 100 us)"))
            checks.append((all(v < 20 for v in drift.values()), "drift estimate",
                           f"error {drift} ppm (limit 20 ppm: 20 s after lock the 60 s fit is young; benchmark target 1 ppm)"))
            checks.append((all(v == 0 for v in steps.values()), "no step once locked",
                           f"steps while locked {steps}"))
        failed = [c for c in checks if not c[0]]
        for ok_, name, detail in checks[-4:]:
            print(f"{'PASS' if ok_ else 'FAIL'}  {name}: {detail}")
        print(f"{len(checks) - len(failed)} passed, {len(failed)} failed")
        if failed and not args.keep:
            print(f"logs kept in {workdir}")
            args.keep = True
        return 1 if failed or not checks else 0
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
