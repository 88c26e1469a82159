#!/usr/bin/env python3
"""A keyed session under attack, in network namespaces.

Acceptance (issue: secure sessions): two keyed peers play audio (JACK dummy
servers) and MIDI. A third namespace with no key and a fourth with the wrong
key send (a) garbage, (b) captured frames replayed (from their own address
and spoofed as the real sender), (c) well-formed frames from 100,000 spoofed
source addresses, (d) transport commands, hellos and forced clock-election
statuses (in the clear with the session's id, and, from the fourth, sealed
with the wrong key). Pass when nothing of theirs is accepted (the peers know
only each other, the MIDI and audio they play come from each other, no
transport command was taken, the clock master is one of them, and the
security counters show the attack was dropped), the keyed peers' audio
keeps at least 99% of its blocks on time through the attack, and each keyed
peer's RSS grows by at most 8 MiB over the 100,000 spoofed sources.

    ns p1 (10.213.79.1) --veth--+
    ns p2 (10.213.79.2) --veth--+-- br0 in ns br (the capture point)
    ns a3 (10.213.79.3) --veth--+     no key
    ns a4 (10.213.79.4) --veth--+     a wrong key

Usage: python3 test_security_netns.py --jamnet build/asan/jamnet [--keep]
Needs root (ip netns), jackd and libsodium; prints SKIPPED and exits 77 when
that is not available (fails instead under JAMNET_REQUIRE_ALL=1).
The attackers run as this script in --helper mode inside their namespaces.
Python stdlib only (libsodium through ctypes, to seal with the wrong key).
"""

import argparse
import ctypes
import ctypes.util
import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "bench"))
from netns import build_star, can_run, delete_ns, reap_stale, sh, skip  # noqa: E402

PREFIX = "jsec"
SUBNET = "10.213.79"
ADDR = {"p1": f"{SUBNET}.1", "p2": f"{SUBNET}.2", "a3": f"{SUBNET}.3", "a4": f"{SUBNET}.4"}
PORT = {"p1": 47811, "p2": 47812}
SPOOFED = 100_000
RSS_LIMIT_KB = 8 * 1024
ONTIME_MIN = 0.99

# ------------------------------------------------------------------ frames


def toast(stream, fmt, kind, index, seq, session, payload, ts=None):
    """A TOAST v2 frame (docs/protocol.md): header, payload, CRC-32."""
    ts = time.monotonic_ns() if ts is None else ts
    header = struct.pack(">IBBIQI", 38 + len(payload) + 4, (2 << 4) | stream, fmt,
                         (index << 16) | kind, ts & (2**64 - 1), seq & 0xFFFFFFFF) + session
    body = header + payload
    return body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


class Sodium:
    """XChaCha20-Poly1305 and the epoch-key derivation, as the peers seal."""

    def __init__(self):
        name = ctypes.util.find_library("sodium")
        if not name:
            raise OSError("libsodium not found")
        self.lib = ctypes.CDLL(name)
        if self.lib.sodium_init() < 0:
            raise OSError("sodium_init failed")

    def epoch_key(self, key, epoch):
        out = ctypes.create_string_buffer(32)
        self.lib.crypto_kdf_derive_from_key(out, ctypes.c_size_t(32), ctypes.c_uint64(epoch),
                                            b"JAMNETep", key)
        return out.raw

    def sealed_frame(self, key, stream, fmt, kind, index, seq, session, plain, counter):
        """A whole keyed frame sealed with `key` (a wrong one: it must not open)."""
        sealed_len = 8 + 24 + len(plain) + 16
        ts = time.monotonic_ns()
        header = struct.pack(">IBBIQI", 38 + sealed_len + 4, (2 << 4) | stream, fmt,
                             (index << 16) | kind, ts, seq & 0xFFFFFFFF) + session
        prefix = struct.pack(">II", 0, int(time.time()) & 0xFFFFFFFF)
        nonce = struct.pack(">QQQ", 0x4141414141414141, 7, counter)
        ad = header + prefix
        c = ctypes.create_string_buffer(len(plain))
        mac = ctypes.create_string_buffer(16)
        self.lib.crypto_aead_xchacha20poly1305_ietf_encrypt_detached(
            c, mac, None, plain, ctypes.c_ulonglong(len(plain)), ad, ctypes.c_ulonglong(len(ad)),
            None, nonce, self.epoch_key(key, 0))
        body = header + prefix + nonce + c.raw + mac.raw
        return body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def control_json(kind, peer):
    """The control-plane messages an attacker would use to take over."""
    if kind == "transport":
        return {"v": 1, "type": "transport", "command": "STOP", "timestamp": time.monotonic_ns() + 10**9,
                "position_ms": 0, "bpm": 90, "time_signature": [4, 4], "master_peer": peer,
                "origin": peer, "seq": 1}
    if kind == "hello":
        return {"v": 1, "type": "hello", "from": peer, "name": "mallory", "session": "",
                "capabilities": ["sync", "transport"]}
    return {"v": 1, "type": "sync_status", "from": peer, "priority": 1000, "forced": True,
            "master": True, "locked": True, "quality": 1.0, "master_peer": peer}


def announce(peer_id, name=b"mallory"):
    return peer_id + struct.pack(">QB", 1, len(name)) + name + bytes(16)


def udp_raw(src, sport, dst, dport, payload):
    """An IPv4/UDP packet with any source (IP_HDRINCL; the kernel fills in the checksum)."""
    udp = struct.pack(">HHHH", sport, dport, 8 + len(payload), 0) + payload
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, socket.IPPROTO_UDP, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    return ip + udp


# ------------------------------------------------------------------ helpers (in namespaces)


def helper_capture(out, seconds, port):
    """In ns br: the UDP payloads to `port` on p2's bridge port (vp2), for
    `seconds`, as a JSON list of hex strings."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(0x0003))
    s.bind(("vp2", 0))
    s.settimeout(0.2)
    got = []
    end = time.monotonic() + seconds
    while time.monotonic() < end and len(got) < 2000:
        try:
            frame = s.recv(65535)
        except socket.timeout:
            continue
        if len(frame) < 42 or frame[12:14] != b"\x08\x00" or frame[23] != socket.IPPROTO_UDP:
            continue
        ihl = (frame[14] & 0x0F) * 4
        udp = frame[14 + ihl:]
        if struct.unpack(">H", udp[2:4])[0] == port:
            got.append(udp[8:].hex())
    with open(out, "w") as f:
        json.dump(got, f)
    return 0


def helper_attack(args):
    """In ns a3 or a4: everything but the spoofed-source flood (that is helper_spoof)."""
    wrong = bytes(random.Random(4).getrandbits(8) for _ in range(32)) if args.wrong_key else None
    sodium = Sodium() if wrong else None
    session = bytes.fromhex(args.session)
    open_id = bytes.fromhex(args.open_session)
    targets = [(ADDR["p1"], PORT["p1"]), (ADDR["p2"], PORT["p2"])]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    rng = random.Random(args.seed)
    mallory = bytes(rng.getrandbits(8) for _ in range(16))
    mallory_text = str(uuid.UUID(bytes=mallory))
    sent = 0
    # (a) garbage
    for i in range(20_000):
        s.sendto(rng.randbytes(rng.randint(1, 1400)), targets[i % 2])
        sent += 1
        if i % 200 == 0:
            time.sleep(0.002)
    # (b) captured frames, replayed: from our address and spoofed as p1 (to p2)
    frames = [bytes.fromhex(h) for h in json.load(open(args.captured))]
    for _ in range(3):
        for f in frames:
            s.sendto(f, (ADDR["p2"], PORT["p2"]))
            raw.sendto(udp_raw(ADDR["p1"], PORT["p1"], ADDR["p2"], PORT["p2"], f), (ADDR["p2"], 0))
            sent += 2
        time.sleep(0.2)
    # (d) take-over attempts: commands, hellos, forced statuses; announces
    seq = 1
    for rnd in range(20):
        for kind in ("transport", "hello", "status"):
            text = json.dumps(control_json(kind, mallory_text)).encode()
            stream, index = (4, 0) if kind == "status" else (6, 1)  # SYNC / CONTROL
            for sid in (session, open_id):
                for t in targets:
                    s.sendto(toast(stream, 2, 1, index, seq, sid, text), t)
                    if wrong:
                        s.sendto(sodium.sealed_frame(wrong, stream, 2, 1, index, seq, session, text,
                                                     seq), t)
                    seq += 1
                    sent += 2
        for t in targets:
            s.sendto(toast(1, 0, 1, 0, seq, session, announce(mallory)), t)
            if wrong:
                s.sendto(sodium.sealed_frame(wrong, 1, 0, 1, 0, seq, session, announce(mallory), seq), t)
            seq += 1
        time.sleep(0.05)
    print(json.dumps({"sent": sent}), flush=True)
    return 0


def helper_spoof(args):
    """In ns a3: well-formed frames of the session (announces, hellos, audio-sized
    payloads; unsealed) from `count` distinct spoofed source addresses and ports."""
    session = bytes.fromhex(args.session)
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    rng = random.Random(args.seed)
    target = ADDR[args.target]
    port = PORT[args.target]
    sent = 0
    start = time.monotonic()
    for i in range(args.count):
        src = f"{SUBNET}.{10 + i % 240}"
        sport = 1024 + (i // 240) % 60000
        kind = i % 3
        if kind == 0:
            payload = toast(1, 0, 1, 0, i, session, announce(rng.randbytes(16)))
        elif kind == 1:
            payload = toast(6, 2, 1, 1, i, session, b'{"v":1,"type":"hello","from":"x"}')
        else:
            payload = toast(3, 0, 1, rng.randint(0, 3), i, session, rng.randbytes(200))
        raw.sendto(udp_raw(src, sport, target, port, payload), (target, 0))
        sent += 1
        if i % 500 == 499:
            # About 50,000 a second at most.
            ahead = start + (i + 1) / 50_000 - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
    print(json.dumps({"sent": sent, "seconds": time.monotonic() - start}), flush=True)
    return 0


# ------------------------------------------------------------------ the test

results = []


def check(what, ok, detail=""):
    results.append(ok)
    print(f"{'PASS' if ok else 'FAIL'}  {what}{': ' + detail if detail else ''}", flush=True)


def info(what):
    print(f"INFO  {what}", flush=True)


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def last_status(path):
    """The newest complete status line (the peer may be writing the next one)."""
    try:
        with open(path) as f:
            lines = [l for l in f if l.strip()]
    except OSError:
        return None
    for line in reversed(lines):
        try:
            return json.loads(line)
        except json.JSONDecodeError:
            continue
    return None


def audio_counts(st):
    """(blocks received, blocks concealed) over the report's audio receivers."""
    if not st or "audio" not in st:
        return 0, 0
    rs = st["audio"].get("from", [])
    return sum(r["blocks"] for r in rs), sum(r["concealed_blocks"] for r in rs)


def jack_running(server):
    r = subprocess.run(["jack_wait", "-s", server, "-c"], capture_output=True, timeout=3)
    return r.stdout.decode(errors="replace").startswith("running")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jamnet")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--helper", choices=["capture", "attack", "spoof"])
    ap.add_argument("--out")
    ap.add_argument("--captured")
    ap.add_argument("--session")
    ap.add_argument("--open-session")
    ap.add_argument("--wrong-key", action="store_true")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--target", default="p2")
    ap.add_argument("--count", type=int, default=SPOOFED)
    ap.add_argument("--seconds", type=float, default=1.5)
    args = ap.parse_args()
    if args.helper == "capture":
        return helper_capture(args.out, args.seconds, PORT["p2"])
    if args.helper == "attack":
        return helper_attack(args)
    if args.helper == "spoof":
        return helper_spoof(args)

    ok, why = can_run(PREFIX)
    if not ok:
        return skip(why)
    for tool in ("jackd", "jack_wait"):
        if shutil.which(tool) is None:
            return skip(f"{tool} not installed")
    try:
        Sodium()
    except OSError as e:
        return skip(str(e))
    reap_stale(PREFIX)
    pid = os.getpid()
    names = {r: f"{PREFIX}{pid}-{r}" for r in ("p1", "p2", "a3", "a4", "br")}
    created, procs = [], []
    work = tempfile.mkdtemp(prefix=f"jamnet-sec-{pid}-")
    servers = {r: f"jsec{pid}{r}" for r in ("p1", "p2")}

    def ns_popen(role, argv, **kw):
        p = subprocess.Popen(["ip", "netns", "exec", names[role]] + argv, start_new_session=True, **kw)
        procs.append(p)
        return p

    def cleanup():
        for p in procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for ns in created:
            delete_ns(ns)

    try:
        build_star(names, ["p1", "p2", "a3", "a4"], ADDR, created)
        # Real-time JACK where the machine allows it (as a musician runs it):
        # the attackers are ordinary processes on the same two cores.
        for rt in ("-R", "-r"):
            jackds = [ns_popen(r, ["jackd", rt, "-n", servers[r], "-d", "dummy", "-r", "48000", "-p", "128"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for r in ("p1", "p2")]
            end = time.monotonic() + 5
            while time.monotonic() < end and not all(jack_running(s) for s in servers.values()):
                if any(j.poll() is not None for j in jackds):
                    break
                time.sleep(0.05)
            if all(jack_running(s) for s in servers.values()):
                info(f"jackd {rt}")
                break
            for j in jackds:
                if j.poll() is None:
                    os.killpg(j.pid, signal.SIGKILL)
                    j.wait()
        check("two jackd dummy servers run", all(jack_running(s) for s in servers.values()))

        key = os.path.join(work, "band.key")
        r = subprocess.run([args.jamnet, "keygen", key], capture_output=True, text=True)
        check("jamnet keygen writes a key", r.returncode == 0, r.stderr.strip())
        # A short song, looped: p1 plays MIDI to p2.
        track = b"\x00\xFF\x51\x03" + (500000).to_bytes(3, "big")
        for i in range(16):
            track += bytes([0x00, 0x90, 60 + i % 12, 100, 0x30, 0x80, 60 + i % 12, 0])
        track += b"\x00\xFF\x2F\x00"
        song = os.path.join(work, "song.mid")
        with open(song, "wb") as f:
            f.write(b"MThd" + struct.pack(">IHHH", 6, 0, 1, 96) + b"MTrk" + struct.pack(">I", len(track)) + track)
        status = {r: os.path.join(work, f"{r}.status.jsonl") for r in ("p1", "p2")}
        other = {"p1": "p2", "p2": "p1"}
        peer = {}
        for r in ("p1", "p2"):
            argv = [args.jamnet, "peer", "--name", r, "--session", f"secband{pid}", "--key-file", key,
                    "--bind", f"{ADDR[r]}:{PORT[r]}", "--no-multicast",
                    "--connect", f"{ADDR[other[r]]}:{PORT[other[r]]}", "--jack", "--jack-server",
                    servers[r], "--status-jsonl", status[r], "--status-ms", "200", "--quiet"]
            argv += ["--midi-in", song, "--midi-loop"] if r == "p1" else ["--midi"]
            # An ASan build keeps freed memory in quarantine (up to 256 MiB), which
            # would count as growth: none here, so RSS shows what the peer holds.
            env = dict(os.environ, ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=0")
            peer[r] = ns_popen(r, argv, stdout=subprocess.DEVNULL, env=env,
                               stderr=open(os.path.join(work, f"{r}.err"), "w"))
        # Both list each other and hear each other's audio.
        end = time.monotonic() + 15
        ready = False
        while time.monotonic() < end and not ready:
            time.sleep(0.2)
            sts = {r: last_status(status[r]) for r in ("p1", "p2")}
            ready = all(st and len(st.get("peers", [])) == 1 and audio_counts(st)[0] > 200
                        for st in sts.values())
        check("the keyed peers find each other and play audio", ready)
        if not ready:
            return 1
        ids = {r: last_status(status[r])["id"] for r in ("p1", "p2")}
        time.sleep(1.0)  # past the jitter buffers' start

        # Capture p1 -> p2 frames on the bridge.
        cap = os.path.join(work, "captured.json")
        r = subprocess.run(["ip", "netns", "exec", names["br"], sys.executable, __file__, "--helper", "capture",
                            "--out", cap, "--seconds", "1.5"], timeout=30)
        frames = json.load(open(cap)) if os.path.exists(cap) else []
        check("frames captured on the path (p1 -> p2)", len(frames) > 100, f"{len(frames)} frames")
        session_hex = bytes.fromhex(frames[0])[22:38].hex() if frames else "00" * 16
        open_hex = "00" * 16
        before = {r: last_status(status[r]) for r in ("p1", "p2")}
        t_attack = time.monotonic()

        # The attack: a3 without a key, a4 with a wrong one; then the spoofed flood.
        common = ["--captured", cap, "--session", session_hex, "--open-session", open_hex]
        attackers = [ns_popen("a3", [sys.executable, __file__, "--helper", "attack", "--seed", "3"] + common,
                              stdout=subprocess.PIPE, text=True),
                     ns_popen("a4", [sys.executable, __file__, "--helper", "attack", "--seed", "4",
                                     "--wrong-key"] + common, stdout=subprocess.PIPE, text=True)]
        for a in attackers:
            out, _ = a.communicate(timeout=120)
            check("attacker finished", a.returncode == 0, out.strip())
        rss0 = {r: rss_kb(peer[r].pid) for r in ("p1", "p2")}
        # ip netns exec execs the peer: its pid is the peer's.
        for target in ("p1", "p2"):
            sp = ns_popen("a3", [sys.executable, __file__, "--helper", "spoof", "--session", session_hex,
                                 "--target", target, "--count", str(SPOOFED), "--seed", "9"],
                          stdout=subprocess.PIPE, text=True)
            out, _ = sp.communicate(timeout=120)
            check(f"{SPOOFED} spoofed sources sent to {target}", sp.returncode == 0, out.strip())
        time.sleep(1.0)
        rss1 = {r: rss_kb(peer[r].pid) for r in ("p1", "p2")}
        after = {r: last_status(status[r]) for r in ("p1", "p2")}
        info(f"attack took {time.monotonic() - t_attack:.1f} s")

        for r in ("p1", "p2"):
            st = after[r]
            other_id = ids[other[r]]
            check(f"{r} knows only its bandmate", [p["id"] for p in st["peers"]] == [other_id],
                  str([(p["name"], p["id"]) for p in st["peers"]]))
            rx = [a["id"] for a in st.get("audio", {}).get("from", [])]
            check(f"{r} plays audio from its bandmate only", rx == [other_id], str(rx))
            sec = st["security"]
            info(f"{r} security {sec}; bounds {st.get('bounds')}")
            check(f"{r} dropped the attack at the seal", sec["keyed"] and sec["failed"] > 1000,
                  f"failed={sec['failed']} replayed={sec['replayed']} stale={sec['stale']}")
            sync = st.get("sync", {})
            check(f"{r} took no transport command", sync.get("transport", {}).get("commands", 0) == 0,
                  f"commands={sync.get('transport', {}).get('commands')}")
            master = sync.get("master")
            check(f"{r}'s clock master is a bandmate", master in (ids["p1"], ids["p2"]), str(master))
            b0, c0 = audio_counts(before[r])
            b1, c1 = audio_counts(st)
            blocks, concealed = b1 - b0, c1 - c0
            ontime = 1 - concealed / blocks if blocks > 0 else 0
            check(f"{r}'s audio kept >= 99% of its blocks on time through the attack", ontime >= ONTIME_MIN,
                  f"{blocks} blocks, {concealed} concealed: {100 * ontime:.2f}%")
            grew = rss1[r] - rss0[r]
            check(f"{r}'s RSS grew at most 8 MiB over {SPOOFED} spoofed sources", 0 <= rss0[r] and grew <= RSS_LIMIT_KB,
                  f"{rss0[r]} -> {rss1[r]} KiB ({grew:+d})")
        p2 = after["p2"]
        midi_from = [m["id"] for m in p2.get("midi", {}).get("from", [])]
        check("p2 plays MIDI from p1 only", midi_from == [ids["p1"]], str(midi_from))
        sec2 = p2["security"]
        check("p2 dropped the replayed frames", sec2["replayed"] + sec2["stale"] > 0,
              f"replayed={sec2['replayed']} stale={sec2['stale']}")
    finally:
        cleanup()
        if all(results) and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            info(f"files kept in {work}")
    print(f"{sum(results)} passed, {len(results) - sum(results)} failed", flush=True)
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
