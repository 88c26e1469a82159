#!/usr/bin/env bash
# Installs every Debian 12 package that JAMNet's build, tests and benchmarks
# need. Idempotent: installs only what is missing; uses sudo when not root.
#   scripts/install-deps.sh          everything (make test, make bench)
#   scripts/install-deps.sh --demo   only what building `jamnet` needs (make demo)
set -euo pipefail

demo_packages=(
  build-essential cmake ninja-build pkg-config
  zlib1g-dev libcli11-dev nlohmann-json3-dev libsimdjson-dev libsmf-dev libvalijson-dev
  libvulkan-dev glslang-tools libjack-jackd2-dev libsamplerate0-dev libsndfile1-dev
  libsodium-dev libssl-dev
)

packages=(
  # build
  build-essential cmake ninja-build pkg-config git
  zlib1g-dev libcli11-dev nlohmann-json3-dev libsimdjson-dev libsmf-dev
  # keyed sessions: libsodium (XChaCha20-Poly1305, Argon2id), libcrypto (SHA-1 for UUID v5)
  libsodium-dev libssl-dev
  # JSON Schema validation of control messages (header-only)
  libvalijson-dev
  # GPU: Vulkan headers and loader; lavapipe (Vulkan on the CPU) so the Vulkan
  # path runs in CI without a GPU; glslangValidator compiles the compute
  # shaders to SPIR-V at build time
  libvulkan-dev mesa-vulkan-drivers glslang-tools
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
  # clock-sync benchmark: the peers we compare with, measured in the same run
  chrony ableton-link-dev
)

case "${1:-}" in
  --demo) packages=("${demo_packages[@]}") ;;
  "") ;;
  *) echo "usage: $0 [--demo]" >&2; exit 2 ;;
esac

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
# chrony is only a benchmark baseline (run with -x, never touching the clock):
# keep its package from starting the system's chronyd service, which would
# take over this machine's time keeping.
policy_added=0
if [[ " ${missing[*]} " == *" chrony "* ]] && [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  policy_added=1
fi
cleanup_policy() { if [ "$policy_added" = 1 ]; then $SUDO rm -f /usr/sbin/policy-rc.d; fi; }
trap cleanup_policy EXIT
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
