#!/usr/bin/env python3
"""Writes seed inputs for the fuzzers: valid TOAST frames of every stream type
(built here independently of the C++ codec, from docs/protocol.md) and valid
discovery payloads and CLI strings."""
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
announce = peer + struct.pack(">QB", 7, len(name)) + name
# wire_messages_fuzz: first byte selects the parser (see wire_messages_fuzz.cpp).
write("wire_messages_fuzz", "announce", b"\x00" + announce)
write("wire_messages_fuzz", "bye", b"\x01" + peer + struct.pack(">Q", 7))
write("wire_messages_fuzz", "ping", b"\x02" + peer + struct.pack(">Iq", 1, 99))
write("wire_messages_fuzz", "pong", b"\x03" + peer + struct.pack(">Iqqq", 1, 99, 100, 101))
write("wire_messages_fuzz", "endpoint", b"\x04127.0.0.1:47700")
write("wire_messages_fuzz", "uuid", b"\x0501234567-89ab-cdef-0123-456789abcdef")
write("wire_messages_fuzz", "topic", b"\x06audio://01234567-89ab-cdef-0123-456789abcdef/3")
