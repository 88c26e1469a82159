#!/usr/bin/env bash
# Installs every Debian 12 package that JAMNet's build, tests and benchmarks
# need. Idempotent: installs only what is missing; uses sudo when not root.
set -euo pipefail

packages=(
  # build
  build-essential cmake ninja-build pkg-config git
  zlib1g-dev libcli11-dev nlohmann-json3-dev libsimdjson-dev libsmf-dev
  # JACK audio/MIDI: the library to build against, the dummy-driver server for tests
  libjack-jackd2-dev jackd2
  # audio: resampling (jitter-buffer drift), WAV/FLAC files
  libsamplerate0-dev libsndfile1-dev
  # tests, fuzzing, benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev python3
  clang-16 libclang-rt-16-dev
  # integration tests: network namespaces, veth, bridge
  iproute2
  # audio quality benchmark and tests: signals rendered at test time, peers compared in the same run
  fluidsynth fluid-soundfont-gm espeak-ng libopus-dev jacktrip
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
