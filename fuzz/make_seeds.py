#!/usr/bin/env python3
"""Writes seed inputs for the fuzzers: valid TOAST frames of every stream type
(built here independently of the C++ codec, from docs/protocol.md), valid
discovery payloads and CLI strings, JMID lines and MIDI bytes, and JDAT
payloads in BINARY and JSONL (docs/jdat.md)."""
import math
import os
import struct
import sys
import zlib

out = sys.argv[1] if len(sys.argv) > 1 else "build/fuzz/corpus"
session = bytes(range(16))


def frame(stream, fmt, kind, index, ts, seq, payload):
    header = struct.pack(">IBBIQI", 38 + len(payload) + 4, (2 << 4) | stream, fmt, (index << 16) | kind, ts, seq)
    body = header + session + payload
    return body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def write(target, name, data):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


for st in range(1, 8):
    for fmt in range(3):
        write("toast_frame_fuzz", f"s{st}f{fmt}", frame(st, fmt, 1, st, 123456789, 42, b'{"t":"n+","n":60}'[: st * 2]))
write("toast_frame_fuzz", "empty_payload", frame(7, 2, 1, 0, 0, 0, b""))

peer = bytes(range(100, 116))
name = b"keys"
announce = peer + struct.pack(">QB", 7, len(name)) + name + bytes(16)  # no cookie
# wire_messages_fuzz: first byte selects the parser (see wire_messages_fuzz.cpp).
write("wire_messages_fuzz", "announce", b"\x00" + announce)
write("wire_messages_fuzz", "bye", b"\x01" + peer + struct.pack(">Q", 7))
write("wire_messages_fuzz", "ping", b"\x02" + peer + struct.pack(">Iq", 1, 99) + bytes(16))
write("wire_messages_fuzz", "challenge", b"\x07" + peer + bytes(range(16)) + bytes(len(announce) - 32))
write("wire_messages_fuzz", "pong", b"\x03" + peer + struct.pack(">Iqqq", 1, 99, 100, 101))
write("wire_messages_fuzz", "endpoint", b"\x04127.0.0.1:47700")
write("wire_messages_fuzz", "uuid", b"\x0501234567-89ab-cdef-0123-456789abcdef")
write("wire_messages_fuzz", "topic", b"\x06audio://01234567-89ab-cdef-0123-456789abcdef/3")

# jmid_fuzz: JMID lines of every kind (canonical and not), journal and
# feedback lines, and raw MIDI streams (the same input feeds both parsers).
jmid_lines = [
    b'{"t":"n+","c":1,"n":60,"v":100,"ts":1234567,"seq":42}',
    b'{"t":"n-","c":16,"n":60,"v":0,"ts":-5,"seq":0}',
    b'{"t":"pp","c":2,"n":61,"v":5,"ts":1,"seq":2}',
    b'{"t":"cc","c":1,"n":7,"v":127,"ts":9223372036854775807,"seq":18446744073709551615}',
    b'{"t":"pc","c":3,"v":5,"ts":1,"seq":2}',
    b'{"t":"cp","c":3,"v":77,"ts":1,"seq":2}',
    b'{"t":"pb","c":1,"v":-8192,"ts":1,"seq":2}',
    b'{"t":"mtc","v":113,"ts":1,"seq":2}',
    b'{"t":"spp","v":16383,"ts":1,"seq":2}',
    b'{"t":"ss","v":3,"ts":1,"seq":2}',
    b'{"t":"tr","ts":1,"seq":2}',
    b'{"t":"clk","ts":1,"seq":2}',
    b'{"t":"start","ts":1,"seq":2}',
    b'{"t":"cont","ts":1,"seq":2}',
    b'{"t":"stop","ts":1,"seq":2}',
    b'{"t":"as","ts":1,"seq":2}',
    b'{"t":"rst","ts":1,"seq":2}',
    b'{"t":"sx","i":0,"l":1,"d":"7e7f0901","ts":1,"seq":2}',
    b'{"t":"sx","i":3,"l":0,"d":"' + b"01" * 256 + b'","ts":1,"seq":2}',
    b' { "seq" : 2 , "v" : 100 , "t" : "n+" , "n" : 60 , "c" : 1 , "x" : [1, {"y": null}] } ',
    b'{"t":"j","c":1,"upto":42,"ts":123,"on":[60,100,64,90],"cc":[7,100,64,127],"pc":5,"pb":0,"cp":-1}',
    b'{"t":"fb","loss":0.2031,"rx":812,"lost":207}',
]
for i, line in enumerate(jmid_lines):
    write("jmid_fuzz", f"line{i:02d}", line)
for i, line in enumerate(jmid_lines):
    write("jsonl_fuzz", f"line{i:02d}", line)
write("jsonl_fuzz", "batch", b"\n".join(l if isinstance(l, bytes) else l.encode() for l in jmid_lines))
write("jmid_fuzz", "midi_running_status", bytes([0x90, 60, 100, 62, 100, 0xB0, 7, 100, 10, 64, 0xC1, 5]))
write("jmid_fuzz", "midi_realtime", bytes([0x90, 0xF8, 60, 0xFA, 100, 0xF2, 0xFE, 1, 2, 0xF6]))
write("jmid_fuzz", "midi_sysex", bytes([0xF0, 0x7E, 0xF8, 0x7F]) + bytes(range(0, 128)) * 3 + bytes([0xF7, 0xF4, 0xF9, 1]))

# jdat_fuzz: JDAT payloads, BINARY (header layout from docs/jdat.md, built
# here independently of the C++ codec) and JSONL lines (the same input feeds
# both decoders).
JDAT_FORMATS = [("f32", 4), ("i24", 3), ("i16", 2)]
JDAT_ROLES = ["plain", "E", "O", "P", "Q"]


def jdat_binary(fmt, role, channels, frames, rate, first_frame, words):
    bps = JDAT_FORMATS[fmt][1]
    head = struct.pack(">BBBBHHIQ", 1, fmt, role, channels, frames, len(words), rate, first_frame)
    return head + b"".join(w.to_bytes(4, "big")[4 - bps:] for w in words)


def jdat_words(fmt, parity, n, seed):
    bps = JDAT_FORMATS[fmt][1]
    out = []
    for i in range(n):
        x = 0.5 * math.sin(2 * math.pi * 440 * (i + seed) / 48000)
        if parity:
            out.append((i * 2654435761 + seed) & ((1 << (8 * bps)) - 1))
        elif fmt == 0:
            out.append(struct.unpack(">I", struct.pack(">f", x))[0])
        else:
            scale = 1 << (8 * bps - 1)
            out.append(int(round(x * scale)) & ((1 << (8 * bps)) - 1))
    return out


def jdat_jsonl(fmt, role, channels, frames, rate, first_frame, words):
    bps = JDAT_FORMATS[fmt][1]
    items = []
    for w in words:
        if role >= 3:
            items.append(str(w))
        elif fmt == 0:
            items.append(repr(struct.unpack(">f", struct.pack(">I", w))[0]))
        else:
            items.append(str(w - (1 << (8 * bps)) if w >> (8 * bps - 1) else w))
    return ('{"t":"jdat","v":1,"fmt":"%s","role":"%s","ch":%d,"n":%d,"rate":%d,"ff":%d,"d":[%s]}' % (
        JDAT_FORMATS[fmt][0], JDAT_ROLES[role], channels, frames, rate, first_frame, ",".join(items))).encode()


seed_no = 0
for fmt in range(3):
    for role in range(5):
        for channels, frames in ([(1, 16), (2, 17), (1, 64)] if role == 0 else [(1, 16), (1, 64)]):
            n = frames * channels if role == 0 else frames // 2
            words = jdat_words(fmt, role >= 3, n, seed_no)
            args = (fmt, role, channels, frames, 48000, 1000 + seed_no, words)
            write("jdat_fuzz", f"bin_{fmt}_{role}_{channels}x{frames}", jdat_binary(*args))
            write("jdat_fuzz", f"jsonl_{fmt}_{role}_{channels}x{frames}", jdat_jsonl(*args))
            seed_no += 1
write("jdat_fuzz", "jsonl_nonfinite",
      b'{"t":"jdat","v":1,"fmt":"f32","role":"plain","ch":1,"n":16,"rate":44100,"ff":18446744073709551615,'
      b'"d":["0x7f800000","0xffc00001",-0,1e-45,3.4028235e+38,0.1,0,0,0,0,0,0,0,0,0,0]}')
write("jdat_fuzz", "jsonl_unordered_unknown",
      b' { "d" : [1,-2,3,4,5,6,7,8,9,10,11,12,13,14,15,16], "x":{"y":[null,true]}, "ff":5, "rate":8000,'
      b' "n":16, "ch":1, "role":"plain", "fmt":"i24", "v":1, "t":"jdat" } ')

# control_fuzz: JSON control messages (docs/control.md), valid ones of every
# type (built here from the spec, independently of the C++ serializer) and
# broken ones for each reject reason.


def control_seeds():
    import json
    a = "01234567-89ab-cdef-0123-456789abcdef"
    b = "fedcba98-7654-3210-fedc-ba9876543210"
    s = "00112233-4455-6677-8899-aabbccddeeff"

    def msg(type_, **fields):
        return dict({"v": 1, "type": type_}, **fields)

    valid = {
        "transport_play": msg("transport", command="PLAY", timestamp=1500000000, position_ms=0.0, bpm=120.0,
                              time_signature=[4, 4], master_peer=b, origin=a, seq=1),
        "transport_seek": msg("transport", command="SEEK", timestamp=-5, position_ms=12345.5, origin=a, seq=2),
        "transport_tempo": msg("transport", command="TEMPO", timestamp=9223372036854775807, bpm=98.25,
                               time_signature=[7, 8], master_peer="", origin=a, seq=9223372036854775807),
        "transport_min": msg("transport", command="STOP", timestamp=-9223372036854775808, origin=b, seq=0),
        "transport_state": msg("transport_state", state="playing", anchor_session_ns=123456789,
                               anchor_position_ms=1000.25, bpm=90, time_signature=[3, 4], last_origin=a,
                               last_seq=3, last_timestamp=99, master_peer=b),
        "transport_state_min": msg("transport_state", state="stopped", anchor_session_ns=0, anchor_position_ms=0,
                                   bpm=120, time_signature=[4, 4]),
        "sync_ping": msg("sync_ping", **{"from": a, "id": 5, "t1": 123}),
        "sync_pong": msg("sync_pong", **{"from": b, "id": 5, "t1": 123, "t2": 200, "t3": 210, "master": True}),
        "sync_status": msg("sync_status", **{"from": a, "priority": 10, "forced": False, "master": True,
                                             "locked": True, "quality": 0.875, "master_peer": a}),
        "hello": msg("hello", **{"from": a, "name": "keys \u00fc", "session": s,
                                 "capabilities": ["midi", "audio", "sync", "transport"]}),
        "request_seek": msg("request", id=17, action="seek", bbt="5.2.480", lead_ns=200000000),
        "request_tempo": msg("request", id=18, action="tempo", bpm=140.5),
        "request_status": msg("request", id=19, action="status"),
        "reply": msg("reply", id=17, ok=True, detail="ok", at_session_ns=123,
                     status_json=json.dumps({"state": "playing", "peers": [{"id": a}]})),
        "error": msg("error", code="schema", detail="/bpm: too low", ref_type="transport"),
        "unknown_fields": msg("hello", **{"from": a, "session": s, "future": {"x": [1, None, True]}}),
    }
    for name, m in valid.items():
        write("control_fuzz", "ok_" + name, json.dumps(m, ensure_ascii=False).encode())
    write("control_fuzz", "ok_spaced", json.dumps(valid["sync_ping"], indent=2).encode())

    broken = {
        "not_json": b'{"v":1,"type":',
        "array": b'[{"v":1,"type":"hello"}]',
        "no_v": json.dumps({"type": "sync_ping", "from": a, "id": 1, "t1": 1}).encode(),
        "v2": json.dumps(dict(valid["sync_ping"], v=2)).encode(),
        "v_string": json.dumps(dict(valid["sync_ping"], v="1")).encode(),
        "unknown_type": json.dumps(dict(valid["sync_ping"], type="teleport")).encode(),
        "bpm0": json.dumps(dict(valid["transport_play"], bpm=0)).encode(),
        "bad_command": json.dumps(dict(valid["transport_play"], command="JUMP")).encode(),
        "neg_seq": json.dumps(dict(valid["transport_play"], seq=-1)).encode(),
        "huge_seq": json.dumps(dict(valid["transport_play"], seq=18446744073709551615)).encode(),
        "ts_string": json.dumps(dict(valid["transport_play"], timestamp="1")).encode(),
        "bad_den": json.dumps(dict(valid["transport_play"], time_signature=[4, 3])).encode(),
        "seek_no_pos": json.dumps(msg("transport", command="SEEK", timestamp=1, origin=a, seq=1)).encode(),
        "inf_bpm": json.dumps(valid["request_tempo"]).replace("140.5", "1e400").encode(),
        "bad_uuid": json.dumps(dict(valid["hello"], session="xyz")).encode(),
        "too_large": json.dumps(dict(valid["error"], detail="x" * 9000)).encode(),
        "deep": b'{"v":1,"type":"error","code":"x","n":' + b"[" * 500 + b"]" * 500 + b"}",
    }
    for name, data in broken.items():
        write("control_fuzz", "bad_" + name, data)


control_seeds()

# session_fuzz: first byte open (0) or keyed (1), then records
# source | op | length | bytes (see session_fuzz.cpp). A seed that walks one
# fake peer through every stage: announce, clock status, transport command,
# MIDI notes, audio packets; and one with three peers and a forced master.
def rec(source, op, body):
    return bytes([source, op, len(body)]) + bytes(body)


def near_now():
    return [1] + [0] * 8  # time_from: "near now", offset 0


def stages(p):
    out = rec(p, 1, [0])                                   # announce
    out += rec(p, 4, [1, 5, 2, 200, 0])                    # sync status: master
    out += rec(p, 6, [0] + near_now() + [0, 33, 1, 1])     # transport: PLAY now
    for n in range(4):
        out += rec(p, 10, [1, 0, 60 + n, 100, 1 + n] + near_now() + [0, 0])  # note on
    for f in range(1, 6):
        out += rec(p, 12, [0, 2, 1, f, 1, 0])              # mono 64-frame audio
    return out


for keyed in (0, 1):
    write("session_fuzz", f"stages_{keyed}", bytes([keyed]) + stages(1) + rec(0, 14, [9]))
    crowd = bytes([keyed])
    for p in (2, 3, 4):
        crowd += rec(p, 1, [0]) + rec(p, 4, [1, p, 1 if p == 3 else 0, 100, 2])
    write("session_fuzz", f"crowd_{keyed}", crowd + stages(5))
