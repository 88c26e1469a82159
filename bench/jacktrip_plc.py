#!/usr/bin/env python3
"""JackTrip's packet-loss concealment, measured on our benchmark's signal and loss rate.

Plays the music reference signal of our concealment benchmark
(`jamnet_bench --make-signal music`) through a real JackTrip 1.7 link
(peer-to-peer UDP mode; the receiving server uses `--bufstrategy 3`, the
Regulator with its Burg-predictor PLC) whose client->server UDP path runs
through `jamnet netsim` with seeded independent random loss, records what the
JackTrip server hands to JACK, and scores the recording against the reference
with `jamnet_bench --segsnr`. The same path with 0% loss is the baseline: it
shows what the path itself (16-bit transport, JACK timing) costs.

    jack_io play -> jtcli:send_1  jacktrip -c --UDP--> jamnet netsim --UDP--> jacktrip -s
    jack_io rec  <- jtsrv:receive_1 <----------------------------------------------'
    (jackd -d dummy: one server for both ends by default, --servers 2 for one per end)

Two scores per run, both computed by jamnet_bench --segsnr:
  global   the recording at JackTrip's dominant latency (one lag for everything);
  retimed  the recording after undoing JackTrip's whole-packet time jumps (see
           retime()); packets JackTrip never played stay silent and count.
--headline picks which one fills the headline keys (default: retimed).

Everything runs on loopback; every process started here is stopped again
(process groups, try/finally, SIGTERM and a hard alarm), and the script exits 0
even when JackTrip cannot be measured (the figure is then null, with the reason).
The JACK play/record client is bench/tools/jack_io.c, compiled here with gcc
against libjack and cached in the workdir.

Usage:
    python3 bench/jacktrip_plc.py --jamnet-bench build/release/bench/jamnet_bench \
        --workdir /tmp/jtplc --loss 10 --seed 1 --seconds 20 --period 128 \
        --out-json /tmp/jtplc/jacktrip.json
    (--period 128,64 measures both; about 35 s per run, 2 runs per period)

Python 3.11 standard library only.
"""
from __future__ import annotations

import argparse
import array
import hashlib
import json
import math
import os
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

RATE = 48000
HERE = Path(__file__).resolve().parent
JACK_IO_SRC = HERE / "tools" / "jack_io.c"
TOTAL_BUDGET_S = 170.0  # default --budget: never run much longer than ~3 minutes in all


class Unmeasurable(Exception):
    """JackTrip could not be measured; the message says why."""


class Interrupted(BaseException):
    """SIGTERM or the hard time limit: unwind (stopping every child), then report."""


# ---------------------------------------------------------------- WAV files


def read_wav_mono(path: Path) -> tuple[array.array, int]:
    """Mono samples as floats (array 'f') and the sample rate. PCM 16/24/32 or float32/64."""
    data = path.read_bytes()
    if len(data) < 12 or data[0:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise Unmeasurable(f"{path}: not a RIFF/WAVE file")
    pos, fmt, pcm = 12, None, None
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        body = data[pos + 8:pos + 8 + size]
        if cid == b"fmt ":
            fmt = body
        elif cid == b"data":
            pcm = body
        pos += 8 + size + (size & 1)
    if fmt is None or pcm is None:
        raise Unmeasurable(f"{path}: no fmt or data chunk")
    tag, channels, rate = struct.unpack_from("<HHI", fmt, 0)
    bits = struct.unpack_from("<H", fmt, 14)[0]
    if tag == 0xFFFE and len(fmt) >= 26:  # WAVE_FORMAT_EXTENSIBLE: the sub-format's first 2 bytes
        tag = struct.unpack_from("<H", fmt, 24)[0]
    out = array.array("f")
    if tag == 3 and bits == 32:
        out.frombytes(pcm[: len(pcm) // 4 * 4])
    elif tag == 3 and bits == 64:
        d = array.array("d")
        d.frombytes(pcm[: len(pcm) // 8 * 8])
        out = array.array("f", d)
    elif tag == 1 and bits == 16:
        s = array.array("h")
        s.frombytes(pcm[: len(pcm) // 2 * 2])
        out = array.array("f", (v / 32768.0 for v in s))
    elif tag == 1 and bits == 32:
        s = array.array("i")
        s.frombytes(pcm[: len(pcm) // 4 * 4])
        out = array.array("f", (v / 2147483648.0 for v in s))
    elif tag == 1 and bits == 24:
        n = len(pcm) // 3
        out = array.array(
            "f", (int.from_bytes(pcm[3 * i:3 * i + 3], "little", signed=True) / 8388608.0
                  for i in range(n)))
    else:
        raise Unmeasurable(f"{path}: unsupported WAV format tag {tag}, {bits} bits")
    if sys.byteorder != "little":
        out.byteswap()
    if channels > 1:  # mix down
        out = array.array("f", (sum(out[i:i + channels]) / channels
                                for i in range(0, len(out) - channels + 1, channels)))
    return out, rate


def write_wav_float(path: Path, samples: array.array, rate: int = RATE) -> None:
    """48 kHz mono IEEE float WAV (format tag 3, with the 'fact' chunk)."""
    body = array.array("f", samples)
    if sys.byteorder != "little":
        body.byteswap()
    raw = body.tobytes()
    fmt = struct.pack("<HHIIHHH", 3, 1, rate, rate * 4, 4, 32, 0)
    fact = struct.pack("<I", len(body))
    riff = (b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"fact" +
            struct.pack("<I", 4) + fact + b"data" + struct.pack("<I", len(raw)) + raw)
    path.write_bytes(b"RIFF" + struct.pack("<I", len(riff)) + riff)


# ---------------------------------------------------------------- processes


class Procs:
    """Every process started here, each in its own process group, all stopped in stop_all()."""

    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, cmd: list[str], log: Path | None, env: dict | None = None,
              stdout_pipe: bool = False) -> subprocess.Popen:
        if stdout_pipe:
            out = subprocess.PIPE
            err = open(log.with_suffix(".err"), "wb") if log else subprocess.DEVNULL
        else:
            out = open(log, "wb") if log else subprocess.DEVNULL
            err = subprocess.STDOUT if log else subprocess.DEVNULL
        files = [f for f in (out, err) if hasattr(f, "close")]
        try:
            p = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                 env=env, start_new_session=True)
        finally:
            for f in files:  # the child has its own copies
                f.close()
        self.procs.append((name, p))
        return p

    def stop(self, p: subprocess.Popen, sig: int = signal.SIGTERM, grace: float = 3.0) -> None:
        if p.poll() is None:
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                try:
                    p.wait(timeout=2)
                except subprocess.TimeoutExpired:
                    pass
        for f in (p.stdout, p.stderr):
            if f:
                f.close()

    def stop_all(self) -> None:
        for _, p in reversed(self.procs):  # clients first, servers last
            self.stop(p)
        self.procs.clear()


def free_udp_ports(n: int) -> list[int]:
    socks, ports = [], []
    try:
        while len(ports) < n:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            port = s.getsockname()[1]
            if port not in ports:
                ports.append(port)
    finally:
        for s in socks:
            s.close()
    return ports


def jack_running(server: str) -> bool:
    try:
        r = subprocess.run(["jack_wait", "-s", server, "-c"], capture_output=True, timeout=2)
    except subprocess.TimeoutExpired:
        return False
    return r.stdout.decode(errors="replace").startswith("running")


def jack_ports(server: str) -> list[str]:
    try:
        r = subprocess.run(["jack_lsp", "-s", server], capture_output=True, timeout=3)
    except subprocess.TimeoutExpired:
        return []
    return r.stdout.decode(errors="replace").split()


def start_jackd(procs: Procs, name: str, period: int, log: Path) -> tuple[subprocess.Popen, Path, str]:
    """`jackd -n NAME -d dummy`, real-time first (root can), polled with `jack_wait -c` every 10 ms."""
    why = ""
    for rt in ("-R", "-r"):
        p = procs.start(name, ["jackd", rt, "-n", name, "-d", "dummy", "-r", str(RATE), "-p",
                               str(period)], log)
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            if p.poll() is not None:
                why = f"jackd {rt} exited early: " + log.read_text(errors="replace")[-400:]
                break
            if jack_running(name):
                return p, log, rt
            time.sleep(0.01)
        else:
            why = "jackd did not come up within 5 s"
        procs.stop(p)
    raise Unmeasurable(why)


def build_jack_io(workdir: Path) -> Path:
    """Compile bench/tools/jack_io.c with gcc against libjack, cached in workdir by source hash."""
    if not JACK_IO_SRC.exists():
        raise Unmeasurable(f"missing {JACK_IO_SRC}")
    digest = hashlib.sha256(JACK_IO_SRC.read_bytes()).hexdigest()[:16]
    exe = workdir / f"jack_io-{digest}"
    if exe.exists():
        return exe
    gcc = shutil.which("gcc") or shutil.which("cc")
    if not gcc:
        raise Unmeasurable("no C compiler for the JACK play/record client")
    r = subprocess.run([gcc, "-O2", "-std=c11", "-o", str(exe), str(JACK_IO_SRC), "-ljack"],
                       capture_output=True, timeout=60)
    if r.returncode != 0:
        raise Unmeasurable("cannot build jack_io: " + r.stderr.decode(errors="replace")[-400:])
    return exe


def parse_kv(text: str) -> dict[str, int]:
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            out[parts[0]] = int(parts[1])
    return out


def read_line(p: subprocess.Popen, timeout: float) -> str:
    """One stdout line from p, or '' after timeout (select on the pipe)."""
    import select
    deadline = time.monotonic() + timeout
    buf = b""
    while time.monotonic() < deadline:
        r, _, _ = select.select([p.stdout], [], [], 0.05)
        if r:
            ch = os.read(p.stdout.fileno(), 1)
            if not ch:
                break
            if ch == b"\n":
                return buf.decode(errors="replace")
            buf += ch
        elif p.poll() is not None:
            break
    return buf.decode(errors="replace")


def play_and_record(procs: "Procs", jack_io: Path, wd: Path, play: tuple[str, str],
                    rec: tuple[str, str], samples: array.array, n_rec: int,
                    limit: float) -> tuple[dict[str, int], dict[str, int], array.array, list[str]]:
    """Plays `samples` into play = (server, port) while recording n_rec frames
    from rec = (server, port), with jack_io (give-up time `limit` s). Returns
    the player's and recorder's key/values (first_usecs, frames), the
    recording, and the two commands."""
    raw_in, raw_out = wd / "ref.f32", wd / "rec.f32"
    raw_in.write_bytes(samples.tobytes())
    rec_cmd = [str(jack_io), "rec", rec[0], rec[1], str(raw_out), str(n_rec), f"{limit:.0f}"]
    play_cmd = [str(jack_io), "play", play[0], play[1], str(raw_in), f"{limit:.0f}"]
    rec_p = procs.start("jack_io-rec", rec_cmd, wd / "rec.log", stdout_pipe=True)
    if read_line(rec_p, 5) != "ready":
        raise Unmeasurable("recorder did not start: "
                           + (wd / "rec.err").read_text(errors="replace")[-300:])
    play_p = procs.start("jack_io-play", play_cmd, wd / "play.log", stdout_pipe=True)
    try:
        play_out, _ = play_p.communicate(timeout=limit + 5)
        rec_out, _ = rec_p.communicate(timeout=limit + 5)
    except subprocess.TimeoutExpired:
        raise Unmeasurable("play/record did not finish in time")
    pk, rk = parse_kv(play_out.decode(errors="replace")), parse_kv(rec_out.decode(errors="replace"))
    if play_p.returncode != 0 or rec_p.returncode != 0 or "first_usecs" not in pk \
            or "first_usecs" not in rk:
        raise Unmeasurable(f"play/record failed (rc {play_p.returncode}/{rec_p.returncode}): "
                           + (wd / "play.err").read_text(errors="replace")[-200:]
                           + (wd / "rec.err").read_text(errors="replace")[-200:])
    recording = array.array("f")
    recording.frombytes(raw_out.read_bytes())
    raw_out.unlink()
    raw_in.unlink()
    return pk, rk, recording, [shlex.join(rec_cmd), shlex.join(play_cmd)]


def count_xruns(log: Path, start: int) -> int:
    try:
        text = log.read_bytes()[start:].decode(errors="replace")
    except OSError:
        return -1
    return sum(1 for line in text.splitlines() if "XRun" in line)


# ---------------------------------------------------------------- scoring


def segsnr_bench(bench: Path, ref: Path, rec: Path, max_lag: int) -> dict:
    cmd = [str(bench), "--segsnr", str(ref), str(rec), "--max-lag", str(max_lag)]
    r = subprocess.run(cmd, capture_output=True, timeout=60)
    text = r.stdout.decode(errors="replace")
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                j = json.loads(line)
            except json.JSONDecodeError:
                continue
            if "segsnr_db" in j:
                j["scored_by"] = "jamnet_bench --segsnr"
                return j
    try:  # multi-line JSON
        j = json.loads(text)
        if isinstance(j, dict) and "segsnr_db" in j:
            j["scored_by"] = "jamnet_bench --segsnr"
            return j
    except json.JSONDecodeError:
        pass
    raise Unmeasurable(f"`{shlex.join(cmd)}` gave no segsnr JSON (rc {r.returncode}): "
                       + r.stderr.decode(errors="replace")[-300:])


def grid_lag(ref: array.array, rec: array.array, period: int, start_offset: int,
             max_lag: int) -> tuple[int | None, int]:
    """JackTrip's dominant latency, in frames, and how many sampled cycles it explains.

    Each recorded JACK cycle is one whole JackTrip packet, so the latency sits on a
    grid: lag = -start_offset (mod period) (the start offset between player and
    recorder is known from their cycle times). Among those lags, the one at which
    the most recorded cycles equal the reference (within 30 dB) wins. A global
    cross-correlation is not used here: when JackTrip shifts by whole packets after
    losses, music's own repetitions can make a wrong lag correlate best."""
    first = (-start_offset) % period
    cands = list(range(first, max_lag + 1, period))
    phase = first
    n = len(ref)
    blocks = (len(rec) - phase) // period
    step = max(1, blocks // 400)
    counts = dict.fromkeys(cands, 0)
    for j in range(0, blocks, step):
        s = phase + j * period
        y = rec[s:s + period]
        ey = sum(v * v for v in y)
        if ey < 1e-6:
            continue
        for lag in cands:
            t0 = s - lag
            if t0 < 0 or t0 + period > n:
                continue
            x = ref[t0:t0 + period]
            es = sum(v * v for v in x)
            if es < 1e-8 or abs(es - ey) > 0.1 * es:  # energies must match to be equal
                continue
            if sum((a - b) * (a - b) for a, b in zip(x, y)) <= es * 1e-3:
                counts[lag] += 1
    best = max(cands, key=lambda l: counts[l]) if cands else None
    if best is None or counts[best] == 0:
        return None, 0
    return best, counts[best]


def retime(ref: array.array, rec: array.array, period: int, lag: int, max_lag: int,
           max_shift: int = 8) -> tuple[array.array, dict]:
    """Undo JackTrip's whole-packet re-timing, keep everything else.

    The Regulator plays one whole packet per JACK cycle, and after a loss it may
    jump ahead or fall back by whole packets, so stretches of the recording are
    the reference, bit for bit but for 16-bit rounding, at lag + k * period for
    small k. A single global lag scores such a stretch as noise although it is
    the right audio a few ms early or late. Here every recorded cycle is put
    back where its audio came from: a cycle that equals the reference to within
    30 dB at some k ("exact") goes there; any other cycle (concealment, cross-fade)
    takes the k of the exact cycle before or after it, whichever fits better. k is
    searched within max_shift packets of the current one, and after 8 cycles in a
    row without a match (a long stall) over every latency up to max_lag.
    Reference packets that JackTrip never played stay zero, and counted; a
    cycle JackTrip inserted is overwritten by the audio played after it."""
    n = len(ref)
    phase = lag % period
    blocks = (len(rec) - phase) // period
    exact_k: list[int | None] = [None] * blocks
    # Searched around the current shift, nearest first: two free-running JACK servers
    # drift apart by whole cycles at every xrun, so the shift can wander far in total.
    steps = sorted(range(-max_shift, max_shift + 1), key=abs)

    def err(j: int, k: int) -> tuple[float, float]:
        s = phase + j * period
        t0 = s - lag - k * period
        if t0 < 0 or t0 + period > n:
            return math.inf, 0.0
        x = ref[t0:t0 + period]
        y = rec[s:s + period]
        return sum((a - b) * (a - b) for a, b in zip(x, y)), sum(a * a for a in x)

    cum = [0.0]  # prefix energies of ref, for the wide search's quick rejection
    for v in ref:
        cum.append(cum[-1] + v * v)
    wide = [k for k in range(-(lag // period), (max_lag - lag) // period + 1)]

    def wide_search(j: int) -> int | None:
        s = phase + j * period
        ey = sum(v * v for v in rec[s:s + period])
        for k in wide:
            t0 = s - lag - k * period
            if t0 < 0 or t0 + period > n:
                continue
            es = cum[t0 + period] - cum[t0]
            if es < 1e-8 or abs(es - ey) > 0.1 * es:
                continue
            e, _ = err(j, k)
            if e <= es * 1e-3:
                return k
        return None

    silent_ref = 0
    prev = 0
    misses = 0
    for j in range(blocks):
        for k in (prev + d for d in steps):
            e, es = err(j, k)
            if e == math.inf:
                continue
            if es < 1e-8:  # silent reference cycle: proves nothing, keep the current k
                if e < 1e-8:
                    silent_ref += 1
                break
            if e <= es * 1e-3:
                exact_k[j] = prev = k
                break
        if exact_k[j] is not None:
            misses = 0
            continue
        misses += 1
        if misses >= 8:
            misses = 0
            k = wide_search(j)
            if k is not None:
                exact_k[j] = prev = k
    nxt: list[int | None] = [None] * blocks
    following = None
    for j in range(blocks - 1, -1, -1):
        if exact_k[j] is not None:
            following = exact_k[j]
        nxt[j] = following
    out = array.array("f", bytes(4 * n))
    written = bytearray(n // period + 1)
    ks: list[int] = []
    prev = 0
    for j in range(blocks):
        k = exact_k[j]
        if k is None:
            cands = list(dict.fromkeys(c for c in (prev, nxt[j]) if c is not None))
            k = min(cands, key=lambda c: err(j, c)[0]) if len(cands) > 1 else cands[0]
        else:
            prev = k
        ks.append(k)
        s = phase + j * period
        t0 = s - lag - k * period
        if t0 < 0 or t0 + period > n:
            continue
        out[t0:t0 + period] = rec[s:s + period]
        written[t0 // period] = 1
    longest = run = 0
    for k in exact_k:
        run = run + 1 if k is None else 0
        longest = max(longest, run)
    changes = sum(1 for a, b in zip(ks, ks[1:]) if a != b)
    exact = sum(1 for k in exact_k if k is not None)
    counted = sum(1 for k in ks if k != 0)
    stats = {"cycles": blocks, "cycles_exact": exact, "cycles_not_exact": blocks - exact,
             "cycles_off_main_lag": counted, "shift_events": changes,
             "packets_never_played": sum(1 for i in range(n // period) if not written[i]),
             "silent_ref_cycles": silent_ref,
             "longest_not_exact_s": round(longest * period / RATE, 3)}
    return out, stats


def score(a: argparse.Namespace, ref_wav: Path, test_wav: Path, max_lag: int) -> dict:
    # One scorer for every method in the report: jamnet_bench's, or no figure.
    try:
        return segsnr_bench(a.jamnet_bench, ref_wav, test_wav, max_lag)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise Unmeasurable(f"jamnet_bench --segsnr failed: {e}") from e


# ---------------------------------------------------------------- one run


def run_once(a: argparse.Namespace, jamnet: Path, jack_io: Path, ref_wav: Path,
             ref: array.array, loss: float, period: int, tag: str, deadline: float) -> dict:
    """One JackTrip link at one loss rate and period; returns scores and what happened."""
    wd = a.workdir / tag
    if wd.is_dir():  # an earlier run's files
        shutil.rmtree(wd)
    wd.mkdir(parents=True)
    procs = Procs()
    info: dict = {"loss_pct": loss, "period": period}
    uniq = f"{os.getpid()}_{tag}".replace(".", "")
    srv_a = f"jtplcA{uniq}"
    srv_b = f"jtplcB{uniq}" if a.servers == 2 else srv_a
    try:
        _, ja_log, rt_a = start_jackd(procs, srv_a, period, wd / "jackd_A.log")
        jb_log, rt_b = ja_log, rt_a
        if a.servers == 2:
            _, jb_log, rt_b = start_jackd(procs, srv_b, period, wd / "jackd_B.log")
        port_srv, port_relay, port_cli = free_udp_ports(3)
        stats = wd / "netsim.json"
        netsim_cmd = [str(jamnet), "netsim", "--bind", f"127.0.0.1:{port_relay}", "--connect",
                      f"127.0.0.1:{port_srv}", "--fwd-loss", f"{loss:g}", "--rev-loss", "0",
                      "--seed", str(a.seed), "--stats-file", str(stats), "--quiet", "--json"]
        ns = procs.start("netsim", netsim_cmd, wd / "netsim.out")
        common = ["-n", "1", "-D", "-b", str(a.bits)] + (["--udprt"] if a.udprt else [])
        pre = ["chrt", "-f", str(a.chrt)] if a.chrt > 0 else []
        srv_cmd = pre + ["jacktrip", "-s", "-B", str(port_srv), "-J", "jtsrv", "--bufstrategy",
                         "3", "-q", a.queue] + common
        # The client only receives the server's silence: its jitter buffer does not matter.
        cli_buf = (["--bufstrategy", "3", "-q", a.queue] if a.client_bufstrategy == 3 else
                   ["--bufstrategy", str(a.client_bufstrategy)] if a.client_bufstrategy >= 0
                   else [])
        cli_cmd = pre + ["jacktrip", "-c", "127.0.0.1", "-B", str(port_cli), "-P",
                         str(port_relay), "-J", "jtcli"] + cli_buf + common
        env_a = dict(os.environ, JACK_DEFAULT_SERVER=srv_a)
        env_b = dict(os.environ, JACK_DEFAULT_SERVER=srv_b)
        info["commands"] = [f"jackd {rt} -n {s} -d dummy -r {RATE} -p {period}"
                            for s, rt in dict(((srv_a, rt_a), (srv_b, rt_b))).items()] + [
            shlex.join(netsim_cmd),
            f"JACK_DEFAULT_SERVER={srv_a} " + shlex.join(srv_cmd),
            f"JACK_DEFAULT_SERVER={srv_b} " + shlex.join(cli_cmd),
        ]
        time.sleep(0.1)
        if ns.poll() is not None:
            raise Unmeasurable("netsim exited: " + (wd / "netsim.out").read_text(errors="replace")[-300:])
        srv = procs.start("jacktrip-server", srv_cmd, wd / "jacktrip_server.log", env_a)
        time.sleep(0.3)
        cli = procs.start("jacktrip-client", cli_cmd, wd / "jacktrip_client.log", env_b)
        # Connected when the server says so and both JACK ports exist.
        t_end = min(deadline, time.monotonic() + 15)
        while True:
            for name, p in (("server", srv), ("client", cli)):
                if p.poll() is not None:
                    log = wd / f"jacktrip_{name}.log"
                    raise Unmeasurable(f"jacktrip {name} exited (rc {p.returncode}): "
                                       + log.read_text(errors="replace")[-400:])
            up = "Received Connection from Peer" in (wd / "jacktrip_server.log").read_text(
                errors="replace")
            if up and "jtsrv:receive_1" in jack_ports(srv_a) and "jtcli:send_1" in jack_ports(srv_b):
                break
            if time.monotonic() > t_end:
                raise Unmeasurable("jacktrip did not connect within 15 s")
            time.sleep(0.05)
        time.sleep(a.settle)  # let the Regulator settle on the steady packet stream
        logs = {"server_A": ja_log, "server_B": jb_log} if a.servers == 2 else {"server": ja_log}
        info["xruns_before_recording"] = {k: count_xruns(v, 0) for k, v in logs.items()}
        log_sizes = {k: (v.stat().st_size if v.exists() else 0) for k, v in logs.items()}

        n_rec = len(ref) + int(a.margin_s * RATE)
        limit = len(ref) / RATE + a.margin_s + 15  # jack_io's own give-up time
        if time.monotonic() + len(ref) / RATE + a.margin_s + 3 > deadline:
            raise Unmeasurable("out of time budget before recording")
        pk, rk, rec, cmds = play_and_record(procs, jack_io, wd, (srv_b, "jtcli:send_1"),
                                            (srv_a, "jtsrv:receive_1"), ref, n_rec, limit)
        info["commands"] += cmds
        info["xruns_during_recording"] = {k: count_xruns(v, log_sizes[k])
                                          for k, v in logs.items()}

        # Stop the link; netsim prints its final JSON report at exit.
        for p in (cli, srv):
            procs.stop(p)
        procs.stop(ns, signal.SIGINT)
        try:
            rep = json.loads((wd / "netsim.out").read_text(errors="replace").strip().splitlines()[-1])
        except (json.JSONDecodeError, IndexError, OSError):
            try:
                rep = json.loads(stats.read_text())
            except (json.JSONDecodeError, OSError):
                rep = {}
        recv, lost = rep.get("forward.received"), rep.get("forward.dropped_loss")
        info["netsim"] = {k: rep.get(k) for k in ("forward.received", "forward.forwarded",
                                                  "forward.dropped_loss", "reverse.received",
                                                  "reverse.dropped_loss")}
        info["netsim_loss_observed"] = (lost / recv) if recv else None
        info["packet_bytes"] = (rep["forward.bytes_in"] // recv) if recv else None

        # Cut the recording where the first reference frame would appear with zero latency:
        # both cycle times are CLOCK_MONOTONIC microseconds, so what remains is JackTrip's latency.
        d0 = round((pk["first_usecs"] - rk["first_usecs"]) * RATE / 1e6)
        info["start_offset_frames"] = d0
        if d0 < 0 or d0 >= len(rec):
            raise Unmeasurable(f"recording started after playback (offset {d0} frames)")
        rec_cut = rec[d0:d0 + len(ref) + a.max_lag]
        rec_wav = wd / "rec.wav"
        write_wav_float(rec_wav, rec_cut)
        info["rec_wav"] = str(rec_wav)
        lag, hits = grid_lag(ref, rec_cut, period, d0, a.max_lag)
        info["grid_lag"], info["grid_lag_hits"] = lag, hits
        if lag is None:
            # Nothing in the recording equals the reference: let jamnet_bench search the lag.
            glob = score(a, ref_wav, rec_wav, a.max_lag)
            glob["lag_from"] = "jamnet_bench search (no exact packet found)"
        else:
            # Global: the whole recording at JackTrip's dominant latency, one lag.
            g_rec = rec_cut[lag:lag + len(ref)]
            g_wav = wd / "rec_global.wav"
            write_wav_float(g_wav, g_rec)
            glob = score(a, ref_wav, g_wav, 0)
            glob["lag"] = lag + (glob.get("lag") or 0)
            glob["lag_from"] = "packet grid"
        info["global"] = glob
        info["latency_ms"] = glob["lag"] / RATE * 1000 if glob.get("lag") is not None else None
        # Retimed: JackTrip's whole-packet jumps undone (see retime()).
        if glob.get("lag") is not None and glob["lag"] >= 0:
            aligned, rst = retime(ref, rec_cut, period, int(glob["lag"]), a.max_lag)
            info["retime"] = rst
            al_wav = wd / "rec_retimed.wav"
            write_wav_float(al_wav, aligned)
            info["retimed"] = score(a, ref_wav, al_wav, 0)
        head = info.get(a.headline) or {}
        for k in ("segsnr_db", "snr_db", "lag", "corr"):
            info[k] = head.get(k)
        return info
    finally:
        procs.stop_all()


# ---------------------------------------------------------------- main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jamnet-bench", type=Path, required=True, help="jamnet_bench binary")
    ap.add_argument("--jamnet", type=Path, help="jamnet binary (netsim); default: next to "
                    "jamnet_bench's folder, then PATH")
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--loss", type=float, default=10.0, help="percent, client->server")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--period", default="128", help="JACK period(s), comma-separated: 128,64; "
                    "the first one gives the headline figures")
    ap.add_argument("--queue", default="20", help="jacktrip -q for the Regulator: a "
                    "tolerance in ms, or 'auto' (adapts after 6 s, so its latency moves)")
    ap.add_argument("--bits", type=int, default=16, choices=(8, 16, 24, 32),
                    help="jacktrip -b (16 is JackTrip's default)")
    ap.add_argument("--servers", type=int, default=1, choices=(1, 2),
                    help="jackd dummy servers: 1 (both JackTrip ends on one clock; default) or "
                    "2 (one per end: every xrun of either slips the two ends apart by a cycle, "
                    "which JackTrip then has to skip or conceal)")
    ap.add_argument("--client-bufstrategy", type=int, default=-1,
                    help="the client's --bufstrategy (-1: JackTrip's default); it only "
                    "receives silence")
    ap.add_argument("--no-udprt", dest="udprt", action="store_false",
                    help="leave out jacktrip --udprt (RT priority for its network threads)")
    ap.add_argument("--chrt", type=int, default=3,
                    help="run jacktrip under chrt -f PRIO so its Regulator worker thread is "
                    "real-time too (0: no)")
    ap.add_argument("--settle", type=float, default=1.0, help="s of link before playing")
    ap.add_argument("--margin-s", type=float, default=1.5, help="extra s recorded")
    ap.add_argument("--max-lag", type=int, default=4800, help="alignment search, frames")
    ap.add_argument("--headline", choices=("retimed", "global"), default="retimed",
                    help="which score gives the headline figures (both are written)")
    ap.add_argument("--budget", type=float, default=TOTAL_BUDGET_S,
                    help="s for everything; runs that would not fit are skipped")
    ap.add_argument("--retries", type=int, default=2,
                    help="extra tries, time permitting, of runs with xruns or a bad baseline")
    ap.add_argument("--xrun-retry", type=int, default=20,
                    help="retry a run with more JACK xruns than this while recording")
    ap.add_argument("--out-json", type=Path, required=True)
    a = ap.parse_args()
    t0 = time.monotonic()
    deadline = t0 + a.budget

    def on_signal(signum, _frame):  # stop the children (finally blocks) and still report
        raise Interrupted(f"stopped by signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGALRM, on_signal)
    signal.alarm(int(a.budget + 20))  # hard stop, whatever hangs
    a.workdir = a.workdir.resolve()
    a.workdir.mkdir(parents=True, exist_ok=True)
    periods = [int(p) for p in str(a.period).split(",") if p.strip()]
    lk = f"{a.loss:g}"
    out: dict = {f"pnbtr.segsnr_db_loss{lk}_jacktrip": None, "jacktrip.segsnr_db_loss0": None,
                 "jacktrip_reason": "", "jacktrip_command": "", "netsim_loss_observed": None}
    caveats = [
        f"JackTrip {jacktrip_version()} peer-to-peer, server --bufstrategy 3 (Regulator with "
        f"its Burg PLC) -q {a.queue} (ms tolerance), -b {a.bits}, mono, "
        + ("both ends on one jackd dummy server" if a.servers == 1 else
           "one jackd dummy server per end") + "; loss: jamnet netsim --fwd-loss "
        f"{lk} --seed {a.seed} (independent random loss per UDP packet) on the client->server "
        "path only, loopback. Each JackTrip packet carries one JACK period (128 or 64 frames), "
        "so the loss rate matches our benchmark's but the pattern differs: netsim's seeded "
        "draw per JackTrip packet vs our seeded draw per our own block.",
        f"headline = '{a.headline}' score. global: jamnet_bench --segsnr on the recording at "
        "JackTrip's dominant latency (one lag). retimed: the same, after undoing JackTrip's "
        "whole-packet time jumps (the Regulator skips ahead / falls back by whole packets "
        "around losses; exact audio a packet early or late would otherwise count as noise); "
        "packets it never played stay silent and count as errors.",
    ]
    runs: dict = {}
    attempts: dict = {}
    jamnet = jack_io = ref_wav = ref = None

    def attempt(period: int, loss: float, n: int) -> dict:
        tag = f"p{period}_loss{loss:g}"
        try:
            r = run_once(a, jamnet, jack_io, ref_wav, ref, loss, period, f"{tag}_try{n}",
                         deadline)
        except Unmeasurable as e:
            r = {"error": str(e)}
        except (OSError, subprocess.SubprocessError, ValueError, KeyError, IndexError) as e:
            r = {"error": f"{type(e).__name__}: {e}"}
        r["attempt"] = n
        attempts.setdefault(tag, []).append(r)
        print(f"[jacktrip_plc] {tag} try {n}: global {(r.get('global') or {}).get('segsnr_db')} "
              f"retimed {(r.get('retimed') or {}).get('segsnr_db')} dB; "
              + json.dumps({k: r.get(k) for k in ("latency_ms", "netsim_loss_observed",
                                                  "xruns_during_recording", "retime", "error")}),
              file=sys.stderr)
        return r

    def broken(r: dict, loss: float) -> str:
        """Why a run does not measure concealment (the harness failed), or ''."""
        if "error" in r or r.get("segsnr_db") is None:
            return "no result"
        if loss == 0 and r["segsnr_db"] < 30.0:
            return f"0% loss baseline only {r['segsnr_db']:.1f} dB"
        rt = r.get("retime") or {}
        if rt.get("cycles"):
            frac = rt["cycles_not_exact"] / rt["cycles"]
            if frac > 0.05 + 4.5 * loss / 100:
                return (f"{100 * frac:.0f}% of cycles not the reference's audio at "
                        f"{loss:g}% loss (longest stretch {rt.get('longest_not_exact_s')} s): "
                        "JackTrip stuck concealing after a stall")
        return ""

    def xruns(r: dict) -> int:
        return sum((r.get("xruns_during_recording") or {}).values())

    def badness(r: dict, loss: float) -> tuple:
        return (bool(broken(r, loss)), xruns(r))

    def run_needs_retry(r: dict, loss: float) -> bool:
        return bool(broken(r, loss)) or xruns(r) > a.xrun_retry

    try:
        jamnet = find_jamnet(a)
        for tool in ("jackd", "jack_wait", "jack_lsp", "jacktrip", "chrt"):
            if not shutil.which(tool):
                raise Unmeasurable(f"`{tool}` not found")
        jack_io = build_jack_io(a.workdir)
        ref_wav = a.workdir / "ref.wav"
        ref = make_reference(a, ref_wav)
        plan = [(p, l) for p in periods for l in (0.0, a.loss)]
        per_run = a.seconds + a.margin_s + a.settle + 12  # start-up, scoring, shutdown
        for period, loss in plan:  # everything once, then retries of unclean runs
            tag = f"p{period}_loss{loss:g}"
            if time.monotonic() + per_run > deadline:
                runs[tag] = {"error": f"skipped: out of the {a.budget:.0f} s time budget"}
                continue
            runs[tag] = attempt(period, loss, 1)
        for n in range(2, 2 + a.retries):
            for period, loss in plan:
                tag = f"p{period}_loss{loss:g}"
                if tag not in attempts or not run_needs_retry(runs[tag], loss):
                    continue
                if time.monotonic() + per_run > deadline:
                    continue
                r = attempt(period, loss, n)
                if badness(r, loss) <= badness(runs[tag], loss):
                    runs[tag] = r
    except Unmeasurable as e:
        caveats.insert(0, "not measured: " + str(e))
    except Interrupted as e:
        caveats.insert(0, f"interrupted: {e}")
    except Exception as e:  # never fail the caller: report instead
        caveats.insert(0, f"not measured: {type(e).__name__}: {e}")
    finally:
        signal.alarm(0)

    first = periods[0] if periods else 128
    head_loss = runs.get(f"p{first}_loss{lk}", {})
    head_0 = runs.get(f"p{first}_loss0", {})
    out[f"pnbtr.segsnr_db_loss{lk}_jacktrip"] = head_loss.get("segsnr_db")
    out["jacktrip.segsnr_db_loss0"] = head_0.get("segsnr_db")
    out["netsim_loss_observed"] = head_loss.get("netsim_loss_observed")
    out["jacktrip.period"] = first
    out["jacktrip.headline"] = a.headline
    for tag, r in runs.items():
        for k in ("segsnr_db", "netsim_loss_observed", "latency_ms", "attempt"):
            if r.get(k) is not None:
                out[f"jacktrip.{tag}.{k}"] = r[k]
        for which in ("global", "retimed"):
            for k in ("segsnr_db", "snr_db"):
                if (r.get(which) or {}).get(k) is not None:
                    out[f"jacktrip.{tag}.{which}.{k}"] = r[which][k]
        for k, v in (r.get("retime") or {}).items():
            out[f"jacktrip.{tag}.retime.{k}"] = v
        xr = r.get("xruns_during_recording") or {}
        out[f"jacktrip.{tag}.xruns"] = sum(xr.values()) if xr else None
        if "error" in r:
            caveats.append(f"{tag}: {r['error']}")
        if any(v > 0 for v in xr.values()):
            caveats.append(f"{tag}: {sum(xr.values())} JACK xruns while recording (this "
                           "machine's scheduling; they count against JackTrip)")
        why = broken(r, r.get("loss_pct", 0.0)) if "error" not in r else ""
        if why:
            caveats.append(f"{tag}: UNRELIABLE: {why}")
        tries = attempts.get(tag, [])
        if len(tries) > 1:
            out[f"jacktrip.{tag}.tries_segsnr_db"] = [t.get("segsnr_db") for t in tries]
            out[f"jacktrip.{tag}.tries_xruns"] = [xruns(t) for t in tries]
            caveats.append(f"{tag}: {len(tries)} tries (segSNR "
                           + ", ".join("-" if t.get("segsnr_db") is None else
                                       f"{t['segsnr_db']:.1f}" for t in tries)
                           + f" dB), kept try {r.get('attempt')} (not broken, fewest xruns)")
    if head_loss and head_loss.get("commands"):
        out["jacktrip_command"] = " ; ".join(head_loss["commands"])
    elif head_0.get("commands"):
        out["jacktrip_command"] = " ; ".join(head_0["commands"])
    out["jacktrip_reason"] = " | ".join(caveats)
    out["jacktrip.runs"] = runs
    out["jacktrip.attempts"] = {t: len(v) for t, v in attempts.items()}
    out["jacktrip.elapsed_s"] = round(time.monotonic() - t0, 1)
    try:
        a.out_json.parent.mkdir(parents=True, exist_ok=True)
        a.out_json.write_text(json.dumps(out, indent=2) + "\n")
    except OSError as e:
        print(f"[jacktrip_plc] cannot write {a.out_json}: {e}", file=sys.stderr)
    print(json.dumps({k: v for k, v in out.items() if k != "jacktrip.runs"}, indent=2))
    return 0


def jacktrip_version() -> str:
    try:
        r = subprocess.run(["jacktrip", "-v"], capture_output=True, timeout=5)
        for line in r.stdout.decode(errors="replace").splitlines():
            if "VERSION" in line.upper():
                return line.split(":")[-1].strip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    return "(version unknown)"


def find_jamnet(a: argparse.Namespace) -> Path:
    cands = [a.jamnet] if a.jamnet else []
    bench = a.jamnet_bench.resolve()
    cands += [bench.parent.parent / "jamnet", bench.parent / "jamnet",
              bench.parent.parent / "apps" / "jamnet" / "jamnet"]
    which = shutil.which("jamnet")
    if which:
        cands.append(Path(which))
    for c in cands:
        if c and c.is_file() and os.access(c, os.X_OK):
            return c
    raise Unmeasurable("jamnet binary (for `jamnet netsim`) not found; pass --jamnet")


def make_reference(a: argparse.Namespace, ref_wav: Path) -> array.array:
    """Our benchmark's music signal, from jamnet_bench --make-signal; without it
    there is nothing comparable to measure."""
    cmd = [str(a.jamnet_bench), "--make-signal", "music", str(ref_wav), "--seconds",
           f"{a.seconds:g}", "--workdir", str(a.workdir)]
    try:
        r = subprocess.run(cmd, capture_output=True, timeout=90)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise Unmeasurable(f"`{shlex.join(cmd)}` failed: {e}") from e
    if r.returncode != 0 or not ref_wav.exists():
        raise Unmeasurable(f"`{shlex.join(cmd)}` failed (rc {r.returncode}): "
                           + r.stderr.decode(errors="replace").strip()[-200:])
    ref, rate = read_wav_mono(ref_wav)
    if rate != RATE:
        raise Unmeasurable(f"reference is {rate} Hz, need {RATE}")
    if len(ref) < RATE:
        raise Unmeasurable("reference shorter than 1 s")
    return ref


if __name__ == "__main__":
    sys.exit(main())
