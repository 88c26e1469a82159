#!/usr/bin/env python3
"""The jamnet CLI as a user meets it: --help everywhere, bad flags named with
exit code 2, Ctrl-C stops every long-running command cleanly, send/listen
round-trip a frame, and the demo prints its summary. Loopback only."""
import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

parser = argparse.ArgumentParser()
parser.add_argument("--jamnet", required=True)
args = parser.parse_args()
J = args.jamnet
passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"PASS  {name}")
    else:
        failed += 1
        print(f"FAIL  {name}: {detail}")


def run(argv, timeout=20):
    return subprocess.run([J] + argv, capture_output=True, text=True, timeout=timeout)


commands = ["peer", "peers", "send", "listen", "netsim", "demo"]
r = run(["--help"])
check("jamnet --help exits 0 and lists every command", r.returncode == 0 and all(c in r.stdout for c in commands), r.stdout)
for c in commands:
    r = run([c, "--help"])
    check(f"jamnet {c} --help", r.returncode == 0 and "--" in r.stdout, r.stderr)

bad = [
    (["peer", "--bogus"], "--bogus"),
    (["peer", "--bind", "nowhere"], "--bind"),
    (["peer", "--multicast", "127.0.0.1:5"], "--multicast"),
    (["peer", "--probe-rate", "-3"], "--probe-rate"),
    (["peers", "--wait-ms", "abc"], "--wait-ms"),
    (["send", "--connect", "1.2.3:4"], "--connect"),
    (["send", "--connect", "127.0.0.1:9", "--stream", "smell"], "--stream"),
    (["listen", "--bind", "127.0.0.1:70000"], "--bind"),
    (["netsim", "--bind", "127.0.0.1:0", "--connect", "127.0.0.1:9", "--loss", "150"], "--loss"),
    (["demo", "--loss", "x"], "--loss"),
    (["gpu", "info", "--profile", "fast"], "--profile"),
    (["frobnicate"], "frobnicate"),
    ([], "subcommand"),
]
for argv, flag in bad:
    r = run(argv)
    check(f"bad flag {' '.join(argv) or '(none)'} -> exit 2 naming {flag}",
          r.returncode == 2 and flag in r.stderr, f"rc={r.returncode} stderr={r.stderr.strip()}")

# Ctrl-C stops long-running commands cleanly (exit 0, promptly).
port = random.randint(40000, 60000)
sigint_audio_dir = tempfile.mkdtemp(prefix="jamnet-demo-sigint-")
long_running = [
    ["peer", "--session", f"cli-{os.getpid()}", "--multicast", f"239.255.74.77:{port}", "--quiet"],
    ["listen", "--bind", "127.0.0.1:0"],
    ["netsim", "--bind", "127.0.0.1:0", "--connect", "127.0.0.1:9", "--quiet"],
    ["send", "--connect", "127.0.0.1:9", "--count", "100000", "--interval-ms", "10"],
    ["demo", "--duration", "30", "--multicast", f"239.255.74.77:{port + 1}", "--audio-out", sigint_audio_dir],
]
def catches_sigint(pid):
    """True once the process has installed its SIGINT handler (SigCgt in
    /proc): before that, on a loaded machine still starting an ASan binary,
    the signal's default action would kill it and test nothing."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("SigCgt:"):
                    return (int(line.split()[1], 16) >> (signal.SIGINT - 1)) & 1 == 1
    except OSError:
        pass
    return False


for argv in long_running:
    p = subprocess.Popen([J] + argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 10
    while not catches_sigint(p.pid) and time.monotonic() < deadline and p.poll() is None:
        time.sleep(0.01)
    time.sleep(0.7)  # and let it get going
    t0 = time.monotonic()
    p.send_signal(signal.SIGINT)
    try:
        out, err = p.communicate(timeout=5)
        took = time.monotonic() - t0
        ok = p.returncode in (0, 1) if argv[0] == "send" else p.returncode == 0
        check(f"SIGINT stops `jamnet {argv[0]}` cleanly ({took:.2f} s)", ok and took < 2, f"rc={p.returncode} err={err[-300:]}")
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        check(f"SIGINT stops `jamnet {argv[0]}`", False, "still running 5 s after SIGINT")

# send -> listen --json round trip, plus a garbage datagram reported as an error.
lport = random.randint(40000, 60000)
lp = subprocess.Popen([J, "listen", "--bind", f"127.0.0.1:{lport}", "--json", "--count", "2", "--duration", "10"],
                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
time.sleep(0.5)
run(["send", "--connect", f"127.0.0.1:{lport}", "--stream", "midi", "--format", "jsonl", "--payload", '{"t":"n+","n":60}', "--seq", "77"])
run(["send", "--connect", f"127.0.0.1:{lport}", "--raw-hex", "00010203"])
out, err = lp.communicate(timeout=15)
lines = [json.loads(l) for l in out.splitlines() if l.strip()]
check("listen --json decodes a frame from send", len(lines) >= 1 and lines[0].get("stream") == "MIDI" and lines[0].get("seq") == 77
      and lines[0].get("payload_text") == '{"t":"n+","n":60}' and lines[0].get("format") == "COMPACT_JSONL", out)
check("listen --json reports garbage as a typed error", len(lines) == 2 and lines[1].get("error") == "truncated", out)

# The demo, short: three peers discover each other and a summary table is printed.
audio_dir = tempfile.mkdtemp(prefix="jamnet-demo-audio-")
r = run(["demo", "--duration", "3", "--multicast", f"239.255.74.77:{port + 2}", "--audio-out", audio_dir], timeout=30)
joined = r.stdout.count(" joined")
check("demo: every peer finds the other two", r.returncode == 0 and joined == 6, r.stdout[-800:])
check("demo: prints the summary table with RTT", "summary" in r.stdout and "rtt p50" in r.stdout and "pinned" in r.stdout, r.stdout[-800:])
check("demo: prints the audio summary", "audio from keys" in r.stdout and "segSNR" in r.stdout, r.stdout[-800:])
wavs = sorted(os.listdir(audio_dir))
check("demo: writes what keys sent and what each listener played as WAV files",
      wavs == ["bass_from_keys.wav", "drums_from_keys.wav", "keys_sent.wav"]
      and all(os.path.getsize(os.path.join(audio_dir, w)) > 100_000 for w in wavs), wavs)
# --json with a loss-free netsim link and a lossy one: the audio figures are
# there, the clean link plays the signal back faithfully, the lossy link
# conceals what it lost.
r = run(["demo", "--duration", "3", "--json", "--loss", "10", "--multicast", f"239.255.74.77:{port + 3}",
         "--audio-out", audio_dir], timeout=30)
try:
    d = json.loads(r.stdout.strip().splitlines()[-1])
    links = [l for p in d["peers"] for l in p["peers"]]
    check("demo --json: 3 peers x 2 links, no app duplicates",
          len(d["peers"]) == 3 and len(links) == 6 and all(l["app_duplicates"] == 0 for l in links), r.stdout[-500:])
    audio = {a["link"].split()[0]: a for a in d["audio"]}
    lossy, clean = audio.get("keys->drums"), audio.get("keys->bass")
    check("demo --json: audio for both listeners", lossy is not None and clean is not None, d.get("audio"))
    if lossy and clean:
        check("demo: the direct link plays the signal back (segSNR > 20 dB)",
              clean["segsnr_db"] is not None and clean["segsnr_db"] > 20, clean)
        check("demo: the 10%-loss link loses packets and PNBTR conceals them",
              lossy["missing"] > 0 and lossy["concealed_blocks"] >= lossy["missing"] and 3 < lossy["loss_pct"] < 25, lossy)
        check("demo: the lossy link still sounds like the signal (segSNR > 5 dB)",
              lossy["segsnr_db"] is not None and lossy["segsnr_db"] > 5, lossy)
except Exception as e:  # noqa: BLE001
    check("demo --json parses", False, f"{e}: {r.stdout[-500:]}")
shutil.rmtree(audio_dir, ignore_errors=True)
shutil.rmtree(sigint_audio_dir, ignore_errors=True)

# gpu info: always exits 0 (CPU fallback when there is no GPU), --json parses.
r = run(["gpu", "info"])
check("gpu info exits 0 and prints the configuration", r.returncode == 0 and "Vulkan:" in r.stdout and "CUDA:" in r.stdout
      and "tier:" in r.stdout, r.stdout + r.stderr)
r = run(["gpu", "info", "--json"])
try:
    g = json.loads(r.stdout)
    check("gpu info --json has the detection and the configuration",
          r.returncode == 0 and all(k in g for k in ("vulkan_status", "cuda_status", "devices", "config"))
          and all(not d["is_cpu"] or d["tier"] == "cpu_only" for d in g["devices"]), r.stdout[-500:])
except Exception as e:  # noqa: BLE001
    check("gpu info --json parses", False, f"{e}: {r.stdout[-500:]}")
r = subprocess.run([J, "gpu", "info", "--json"], capture_output=True, text=True, timeout=20,
                   env={**os.environ, "JAMNET_VULKAN_LOADER": "/nonexistent/libvulkan.so.1"})
try:
    g = json.loads(r.stdout)
    check("gpu info without a Vulkan loader falls back to the CPU",
          r.returncode == 0 and "loader" in g["vulkan_status"] and g["config"]["backend"] in ("cpu", "cuda")
          and not any(d["backend"] == "vulkan" for d in g["devices"]), r.stdout[-500:])
except Exception as e:  # noqa: BLE001
    check("gpu info (no loader) --json parses", False, f"{e}: {r.stdout[-500:]}")
r = subprocess.run([J, "gpu", "info"], capture_output=True, text=True, timeout=20,
                   env={**os.environ, "JAMNET_GPU_UTILIZATION": "2"})
check("gpu info: a bad JAMNET_GPU_UTILIZATION -> exit 2 naming it",
      r.returncode == 2 and "JAMNET_GPU_UTILIZATION" in r.stderr, f"rc={r.returncode} stderr={r.stderr}")

# gpu check: the kernels on lavapipe (installed by install-deps) match the CPU
# reference bit for bit; without a loader, an explicit Vulkan request is exit 2
# and "auto" still runs (on the CPU).
r = subprocess.run([J, "gpu", "check", "--backend", "vulkan", "--cpu-device", "--streams", "16", "--json"],
                   capture_output=True, text=True, timeout=120)
try:
    g = json.loads(r.stdout)
    check("gpu check on the Vulkan CPU device: every kernel bit-exact, a calibrated clock",
          r.returncode == 0 and g["ok"] and g["backend"] == "vulkan"
          and all(k["bit_exact"] for k in g["kernels"].values()) and g["clock"] is not None,
          r.stdout[-800:] + r.stderr[-300:])
except Exception as e:  # noqa: BLE001
    check("gpu check --json parses", False, f"{e}: {r.stdout[-500:]} {r.stderr[-300:]}")
no_vk = {**os.environ, "JAMNET_VULKAN_LOADER": "/nonexistent/libvulkan.so.1", "JAMNET_DISABLE_CUDA": "1"}
r = subprocess.run([J, "gpu", "check", "--backend", "vulkan", "--cpu-device"], capture_output=True, text=True,
                   timeout=60, env=no_vk)
check("gpu check --backend vulkan without a loader -> exit 2 saying why",
      r.returncode == 2 and "no Vulkan loader" in r.stderr, f"rc={r.returncode} stderr={r.stderr}")
r = subprocess.run([J, "gpu", "check", "--streams", "4"], capture_output=True, text=True, timeout=60, env=no_vk)
check("gpu check (auto) without Vulkan or CUDA runs on the CPU and says why",
      r.returncode == 0 and "Backend: cpu" in r.stdout and "no Vulkan loader" in r.stdout and "OK" in r.stdout,
      r.stdout + r.stderr)
r = run(["gpu", "check", "--backend", "metal"])
check("gpu check --backend metal -> usage error", r.returncode != 0 and "metal" in (r.stderr + r.stdout), r.stderr)

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
