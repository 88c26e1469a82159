#!/usr/bin/env bash
# Builds the libFuzzer targets (clang-16) and runs each for a fixed time.
# Usage: scripts/run-fuzz.sh [SECONDS_FOR_FRAME_DECODER] [SECONDS_FOR_OTHERS]
# Any crash, leak, sanitizer report or timeout fails the run; the failing input
# is left in build/fuzz/findings/.
set -euo pipefail
cd "$(dirname "$0")/.."
frame_s=${1:-60}
other_s=${2:-15}

cmake --preset fuzz >/dev/null
cmake --build build/fuzz -j"$(nproc)" --target fuzzers

work=build/fuzz/corpus
findings=build/fuzz/findings
mkdir -p "$findings"
python3 fuzz/make_seeds.py "$work"

run() {
  local target=$1 seconds=$2 rc=0
  mkdir -p "$work/$target"
  echo "fuzz: $target for ${seconds}s"
  build/fuzz/fuzz/"$target" -max_total_time="$seconds" -timeout=5 -rss_limit_mb=2048 \
    -artifact_prefix="$findings/$target-" -print_final_stats=1 "$work/$target" \
    >"$findings/$target.log" 2>&1 || rc=$?
  grep -E '^Done|number_of_executed_units|ERROR|SUMMARY' "$findings/$target.log" || true
  if [ $rc -ne 0 ]; then tail -n 40 "$findings/$target.log"; fi
  return $rc
}

status=0
run toast_frame_fuzz "$frame_s" || status=1
run wire_messages_fuzz "$other_s" || status=1
run jmid_fuzz 15 || status=1
run jsonl_fuzz 15 || status=1
run jdat_fuzz 15 || status=1
run control_fuzz "$other_s" || status=1
run seal_fuzz "$other_s" || status=1
# The whole session, stateful: also fails if it never reached the clock
# election, the transport log, a jitter buffer and the JMID playout.
run session_fuzz "$other_s" || status=1
if [ $status -ne 0 ]; then
  echo "fuzz: FINDINGS in $findings" >&2
  ls -l "$findings" >&2
  exit 1
fi
echo "fuzz: no findings"
