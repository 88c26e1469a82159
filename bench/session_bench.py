#!/usr/bin/env python3
"""Session figures for `make bench` (issue 14), from the release build's
integration tests run at full size:

- the block matrix: two jackd dummy servers, `jamnet peer --jack` at periods
  16..1024 frames, 1, 2, 8 and 16 channels, 44.1/48/96 kHz (and three
  cross-rate cells); a cell is ok when every channel's tones arrive with a
  tone-fit segSNR >= 30 dB and no gap (jack_audio_blocks_test.cpp);
- churn: a sender joins and leaves a --jack receiver 200 times; the
  receiver's RSS growth from the first return to the end (jack_churn_test.cpp).

    python3 bench/session_bench.py --tests build/release/tests/integration_tests --out-json out.json

Writes one flat JSON object; a figure that could not be measured is null with a
note. Standard library only.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path


def run(tests: Path, gtest_filter: str, env: dict[str, str], limit: int) -> str:
    r = subprocess.run([str(tests), f"--gtest_filter={gtest_filter}"], capture_output=True,
                       env=dict(os.environ, **env), timeout=limit)
    out = r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
    # Every cell's verdict, then the tail (gtest's own failure lines).
    for line in out.splitlines():
        if " frames x " in line or line.startswith("churn"):
            sys.stderr.write(line[:300] + "\n")
    sys.stderr.write(out[-2000:])
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tests", type=Path, required=True, help="integration_tests executable")
    ap.add_argument("--out-json", type=Path, required=True)
    ap.add_argument("--quick", action="store_true", help="the small matrix and 20 churn cycles")
    a = ap.parse_args()
    res: dict[str, object] = {}
    if not a.tests.exists():
        res.update({"jdat.block_matrix_cells_ok": None, "jdat.block_matrix_cells": None,
                    "session.churn_rss_growth_kb": None,
                    "session.note": f"{a.tests} not built: no session figures"})
        a.out_json.write_text(json.dumps(res))
        return 0
    env = {} if a.quick else {"JAMNET_BLOCKS_FULL": "1"}
    out = run(a.tests, "JackAudioBlocks.*", env, 3600)
    m = re.search(r"block matrix: (\d+) of (\d+) cells", out)
    res["jdat.block_matrix_cells_ok"] = int(m.group(1)) if m else None
    res["jdat.block_matrix_cells"] = int(m.group(2)) if m else None
    if not m:
        res["jdat.block_matrix_note"] = "the block matrix did not run (jackd missing?)"
    cycles = 20 if a.quick else 200
    out = run(a.tests, "JackChurn.*", {"JAMNET_CHURN_CYCLES": str(cycles)}, 3600)
    m = re.search(r"churn rss: (-?\d+) KiB after the first return, (-?\d+) KiB at the end, growth (-?\d+) KiB over (\d+)", out)
    res["session.churn_rss_growth_kb"] = int(m.group(3)) if m else None
    res["session.churn_cycles"] = int(m.group(4)) if m else None
    m = re.search(r"heard after median ([\d.]+) s, worst ([\d.]+) s", out)
    res["session.churn_heard_s_p50"] = float(m.group(1)) if m else None
    res["session.churn_heard_s_max"] = float(m.group(2)) if m else None
    a.out_json.write_text(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
