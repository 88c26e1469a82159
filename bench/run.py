#!/usr/bin/env python3
"""Runs the JAMNet benchmarks and writes bench/results.json and bench/REPORT.md.

    python3 bench/run.py [--quick] [--no-build] [--out-dir DIR] [BENCH_EXE]

results.json is one flat object, "metric.name": number, holding exactly the keys
this run produced: it is overwritten, never merged, so no figure from an older
run can survive in it. REPORT.md is for people: the machine, the commands, every
figure, our transport against a plain sendto/recvfrom program measured in the
same run, and the issue's targets.

Other areas add their executables to RUNNERS and their metric meanings to
METRICS; everything else (JSON, table, ratios) follows from those two tables.
Standard library only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_EXE = REPO / "build" / "release" / "bench" / "jamnet_bench"
BUILD_COMMANDS = [
    ["cmake", "--preset", "release", "-DJAMNET_BUILD_TESTS=ON", "-DJAMNET_BUILD_BENCH=ON"],
    ["cmake", "--build", "build/release", "-j2", "--target", "jamnet_bench", "jamnet", "link_beat",
     "integration_tests"],
]

# (name, function(exe, quick, json_path) -> argv). Each runner writes one flat
# JSON object to json_path; a key produced by two runners is an error.
RUNNERS = [
    ("jamnet_bench", lambda exe, quick, out: [str(exe), "--out-json", str(out)] + (["--quick"] if quick else [])),
    # JackTrip 1.7's Regulator PLC on the same music and loss rate: two jacktrip
    # processes on a jackd dummy server, loss from our netsim. Exits 0 with a
    # null figure and the reason when JackTrip cannot be measured reliably.
    ("jacktrip", lambda exe, quick, out: [
        sys.executable, str(REPO / "bench" / "jacktrip_plc.py"), "--jamnet-bench", str(exe),
        "--workdir", str(REPO / "build" / "bench-work" / "jacktrip"), "--loss", "10", "--seed", "1",
        "--seconds", "8" if quick else "20", "--period", "128", "--out-json", str(out)]),
    # Round-trip latency through two `jamnet peer --jack` on two jackd dummy
    # servers, against JackTrip 1.7 on the same set-up, with and without loss.
    ("latency", lambda exe, quick, out: [
        sys.executable, str(REPO / "bench" / "latency_rt.py"), "--jamnet", str(exe.parent.parent / "jamnet"),
        "--jamnet-bench", str(exe), "--workdir", str(REPO / "build" / "bench-work" / "latency"),
        "--out-json", str(out)] + (["--losses", "0", "--music-seconds", "3", "--repeats", "1"] if quick else [])),
    # Clock sync and transport: three peers in network namespaces through netsim
    # (1 ms +- 0.5 ms, 10% loss, test clocks -100/0/+100 ppm), a 10-minute steady
    # phase (the soak), then chrony and Ableton Link in the same run.
    ("sync", lambda exe, quick, out: [
        sys.executable, str(REPO / "bench" / "sync_bench.py"), "--jamnet", str(exe.parent.parent / "jamnet"),
        "--link-beat", str(exe.parent / "link_beat"), "--out-json", str(out)]
        + (["--steady", "20", "--rounds", "2", "--chrony-seconds", "40", "--link-seconds", "12"] if quick else [])),
    # Any period, channel count and rate through two jackd servers, and a
    # receiver that sees a sender come and go 200 times (issue 14).
    ("session", lambda exe, quick, out: [
        sys.executable, str(REPO / "bench" / "session_bench.py"),
        "--tests", str(exe.parent.parent / "tests" / "integration_tests"), "--out-json", str(out)]
        + (["--quick"] if quick else [])),
]

# key -> (unit, meaning). Keys missing here are still reported, marked as such.
METRICS = {
    "jdat.block_matrix_cells_ok": ("cells", "cells of the block matrix (periods 16..1024 frames x 1/2/8/16 channels x 44.1/48/96 kHz, plus 3 cross-rate cells) where every channel arrived through two jackd dummy servers with tone-fit segSNR >= 30 dB and no gap"),
    "jdat.block_matrix_cells": ("cells", "cells in the block matrix"),
    "session.churn_rss_growth_kb": ("KiB", "receiver RSS growth while a sender joined and left 200 times (goal <= 1024)"),
    "session.churn_cycles": ("cycles", "joins and leaves in the churn run"),
    "session.churn_heard_s_p50": ("s", "sender start to its audio heard on the receiver's same ports, median over the churn run"),
    "session.churn_heard_s_max": ("s", "the same, worst (goal <= 3)"),
    "toast.codec_ns_per_frame": ("ns", "encode + decode of a 256-byte payload (wall time, median of repetitions)"),
    "toast.codec_cpu_ns_per_frame": ("ns", "the same, CPU time of the thread (leaves out time preempted by other VM tenants)"),
    "toast.crc32_ns_per_256B": ("ns", "CRC-32 over 256 bytes, for context: every frame is checksummed once on encode and once on decode"),
    "toast.crc32_cpu_ns_per_256B": ("ns", "the same, CPU time"),
    "net.oneway_p50_us": ("µs", "loopback one-way latency through our transport (send call to receive handler), median"),
    "net.oneway_p90_us": ("µs", "loopback one-way latency through our transport, 90th percentile"),
    "net.baseline_oneway_p90_us": ("µs", "the same with a plain sendto/recvfrom program, 90th percentile"),
    "net.oneway_p99_us": ("µs", "loopback one-way latency through our transport, 99th percentile"),
    "net.baseline_oneway_p50_us": ("µs", "the same with a plain sendto/recvfrom program, median"),
    "net.baseline_oneway_p99_us": ("µs", "the same with a plain sendto/recvfrom program, 99th percentile"),
    "net.oneway_p50_ratio_vs_baseline": ("×", "ours / plain, median one-way latency"),
    "net.oneway_p99_ratio_vs_baseline": ("×", "ours / plain, p99 one-way latency"),
    "net.oneway_frames": ("frames", "frames sent per path for the latency figures (paced at 5 kHz, 256-byte payload)"),
    "net.oneway_lost": ("frames", "latency frames that never reached our handler"),
    "net.baseline_oneway_lost": ("frames", "latency frames that never reached the plain receiver"),
    "net.frames_per_s": ("frames/s", "throughput through our transport: 256-byte frames delivered to the handler per second, sender flooding"),
    "net.baseline_frames_per_s": ("frames/s", "the same with plain sendto/recvfrom"),
    "net.frames_per_s_ratio_vs_baseline": ("×", "ours / plain, delivered frames per second"),
    "net.frames_delivered_fraction": ("fraction", "share of flooded frames our receiver delivered (the rest overflowed the socket buffer)"),
    "net.baseline_frames_delivered_fraction": ("fraction", "the same for the plain receiver"),
    "discovery.ms_p50": ("ms", "time for peers to find each other (both list the other in peers()), median"),
    "discovery.ms_p99": ("ms", "time for peers to find each other, 99th percentile"),
    "discovery.usable_ms_p50": ("ms", "time until both have a first RTT sample (a pong came back): the link is usable, median"),
    "discovery.usable_ms_p99": ("ms", "time until the link is usable, 99th percentile"),
    "discovery.runs": ("runs", "discovery trials, each with two fresh peers, a fresh session and a fresh multicast port"),
    "discovery.failed_runs": ("runs", "trials that did not converge within 5 s (not in the percentiles)"),
    "jmid.parse_ns_per_line": ("ns", "our JMID parse_line (hand-written fast path for the canonical form) over a generated JMID file held in memory (1M lines, 100k with --quick; mostly n+/n-/cc, some pb/clk), per line, median of passes"),
    "jmid.parse_ns_per_line_simdjson": ("ns", "simdjson ondemand (its AVX2 kernel where the CPU has one) parsing the same lines in place into the same Event struct with the same range checks, same run"),
    "jmid.parse_ns_per_line_nlohmann": ("ns", "nlohmann::json::parse of the same lines into the same Event struct, same run"),
    "jmid.parse_ns_per_line_general": ("ns", "our general path alone (parse_line_general: simdjson DOM on a padded copy, any key order, duplicate-key checks), same lines"),
    "jmid.parse_ratio_vs_simdjson": ("×", "ours / simdjson ondemand, ns per line (below 1: ours is faster; the issue asks for at most 1)"),
    "jmid.parse_lines": ("lines", "lines in the generated JMID file the parse figures are taken over"),
    "jmid.delivered_rate_k3_loss20": ("fraction", "events delivered, k = 3 copies, 20% random loss both ways through netsim (theory 1 - 0.2^3 = 0.992)"),
    "jmid.delivered_rate_k5_loss50": ("fraction", "events delivered, k = 5, 50% random loss (theory 1 - 0.5^5 = 0.969)"),
    "jmid.delivered_rate_k3_bursty": ("fraction", "events delivered, k = 3, Gilbert-Elliott bursts (p 5%, r 30%: 14% loss in bursts of ~3 packets)"),
    "jmid.stuck_notes_bursty": ("notes", "notes still held at the receiver at the end of the bursty run (the journal must repair them: 0)"),
    "jmid.timing_err_p99_us": ("µs", "under full peer load (full_load: two Sessions on jackd dummy, 64 frames at 48 kHz, audio both ways, MIDI every 3 ms, 2 ms ± 1 ms jitter each way through netsim, the stress load): |play time - (sender timestamp + constant)|, 99th percentile over the peer windows; constant = median"),
    "jmid.timing_err_p50_us": ("µs", "the same, median"),
    "jmid.timing_err_p99_us_link": ("µs", "the MIDI link alone (two peers, no audio or JACK, no stress), 2 ms ± 1 ms uniform jitter through netsim: |play time - (sender timestamp + constant)|, 99th percentile"),
    "jmid.timing_err_p50_us_link": ("µs", "the same, median"),
    "jmid.arrival_jitter_p99_us": ("µs", "|arrival - median arrival| of the first copies on that link, 99th percentile: the jitter playout removes"),
    "jmid.note_latency_p50_us": ("µs", "loopback, no impairment: sender timestamp to first copy arriving at the receiver, median"),
    "jmid.note_latency_p99_us": ("µs", "the same, 99th percentile"),
    "jmid.bytes_per_event_k3": ("bytes", "TOAST bytes on the wire per event at k = 3, one event per packet, journal and feedback included"),
    "pnbtr.segsnr_db_loss10": ("dB", "PNBTR: segmental SNR of the concealed fluidsynth music (piano, bass, drums) at 10% random loss of 120-sample packets"),
    "pnbtr.segsnr_db_loss10_zero": ("dB", "zero-fill (silence for a lost packet), same signal and loss pattern"),
    "pnbtr.segsnr_db_loss10_repeat": ("dB", "repeat the last good packet, same signal and loss pattern"),
    "pnbtr.segsnr_db_loss10_opus": ("dB", "libopus PLC (CELT, RESTRICTED_LOWDELAY, 120-sample frames), against Opus's own loss-free decode, same loss pattern"),
    "pnbtr.segsnr_db_loss10_jacktrip": ("dB", "JackTrip 1.7 Regulator PLC (--bufstrategy 3) through two jackd dummy servers with 10% netsim loss; null when it could not be measured (reason in the report)"),
    "pnbtr.cpu_frac_of_period": ("fraction", "PNBTR cost per concealed 64-frame block (fit at the gap start included) over the 1.333 ms block period, one core"),
    "jdat.jitterbuffer_added_ms_p50": ("ms", "time a packet waits in the adaptive jitter buffer (arrival to playout of its first frame), real-time peers through netsim with 1 ms ± 0.5 ms jitter, median"),
    "jdat.jitterbuffer_added_ms_p95": ("ms", "the same, 95th percentile (of the run at the median p50)"),
    "jdat.jitterbuffer_added_ms_p50_min": ("ms", "lowest median over the runs (the run at the median of the runs is the one reported)"),
    "jdat.jitterbuffer_added_ms_p50_max": ("ms", "highest median over the runs: a VM stall raises the buffer's target for the rest of its run"),
    "jdat.link_runs": ("runs", "each real-time link figure is the run at the median of this many runs, so a VM stall in one run cannot set it"),
    "jdat.plain_link_segsnr_db_loss10_min": ("dB", "lowest of the runs"),
    "jdat.plain_link_segsnr_db_loss10_max": ("dB", "highest of the runs"),
    "jdat.jellie_link_segsnr_db_loss10_min": ("dB", "lowest of the runs (a stall that makes the buffer resync shifts the playout and reads as noise)"),
    "jdat.jellie_link_segsnr_db_loss10_max": ("dB", "highest of the runs"),
    "jdat.jitterbuffer_target_ms": ("ms", "the buffer's target depth at the end of that run"),
    "jdat.jitterbuffer_concealed_blocks": ("blocks", "blocks concealed in that run (no loss on the link: only VM stalls make any)"),
    "jdat.jsonl_to_binary_bytes_ratio": ("×", "JSONL bytes over BINARY bytes on the wire (TOAST frames) for the music signal in 64-frame float32 packets"),
    "jdat.jsonl_to_binary_bytes_ratio_f32": ("×", "the same, float32"),
    "jdat.jsonl_to_binary_bytes_ratio_i24": ("×", "the same, int24"),
    "jdat.jsonl_to_binary_bytes_ratio_i16": ("×", "the same, int16"),
    "jdat.binary_kbps_f32": ("kbit/s", "BINARY JDAT on the wire, one mono 48 kHz stream, 64-frame float32 packets (TOAST header and CRC included)"),
    "jdat.binary_kbps_i24": ("kbit/s", "the same, int24"),
    "jdat.binary_kbps_i16": ("kbit/s", "the same, int16"),
    "jdat.plain_link_segsnr_db_loss10": ("dB", "music through real-time peers and netsim (10% random loss, 1 ms ± 0.5 ms), plain JDAT with PNBTR concealment: segmental SNR of what was played (drift correction off: one clock on both ends)"),
    "rt.tick_jitter_p99_us": ("µs", "under full peer load (full_load, as jmid.timing_err_p99_us, the stress load's command bursts into rx's engine): both engines' |callback-to-callback time - period|, 99th percentile over the peer windows"),
    "rt.tick_jitter_max_us": ("µs", "the same, largest"),
    "rt.host_stall_p99_us": ("µs", "the host's floor, in windows interleaved with the peer windows (the peer stopped, the same stress load on): a probe thread at the audio thread's SCHED_FIFO priority sleeping to 64-frame deadlines, |wake-to-wake - period|, 99th percentile"),
    "rt.host_stall_max_us": ("µs", "the same, largest"),
    "rt.host_stall_late_by_a_period": ("wakes", "probe wakes more than a period late in the floor windows: what would have been xruns"),
    "full_load.xruns": ("xruns", "xruns the JACK server reported in the peer windows, counted by a no-op client that stays on the server through every window"),
    "full_load.floor_xruns": ("xruns", "xruns the JACK server reported in the floor windows (peer stopped, jackd with the no-op client and two more standing in for the engines, the stress load running): what jackd's dummy driver misses on this host by itself"),
    "full_load.engine_xruns": ("xruns", "xruns JACK reported to the two engines in the peer windows (each server xrun reaches both)"),
    "full_load.windows": ("windows", "peer windows measured (each followed by a floor window)"),
    "full_load.peer_seconds": ("s", "measured time in peer windows, after each window's warm-up"),
    "full_load.floor_seconds": ("s", "measured time in floor windows"),
    "full_load.audio_priority": ("priority", "SCHED_FIFO priority of the engine's audio thread (JACK's), which the floor probe takes"),
    "full_load.midi_notes_sent": ("events", "MIDI events sent in the peer windows"),
    "full_load.midi_notes_played": ("events", "MIDI events played (handed to the app) in the peer windows"),
    "rt.tick_jitter_p99_us_engine": ("µs", "the engine alone on jackd dummy (64 frames, 48 kHz) under the stress load (second core spinning, 10 bursts of 1000 normal and 1 burst of 1000 priority commands per second): |callback-to-callback time - period|, 99th percentile of the whole run"),
    "rt.tick_jitter_max_us_engine": ("µs", "the same, largest"),
    "rt.tick_jitter_p99_us_idle": ("µs", "the same engine with no command load and an idle second core, measured first in the same run"),
    "rt.priority_latency_p99_us": ("µs", "priority command (note, hit, live parameter) from push to the cycle that applies it, 99th percentile, under the stress load"),
    "rt.priority_latency_max_us": ("µs", "the same, largest"),
    "rt.xruns_stress": ("xruns", "xruns JACK reported during the stress run"),
    "rt.xruns_idle": ("xruns", "xruns JACK reported during the idle run"),
    "rt.load_max_stress": ("fraction", "largest share of a period spent in the engine's cycle (one telemetry window), stress run"),
    "rt.period_us": ("µs", "the JACK period of the stress run"),
    "rt.cycles_stress": ("cycles", "engine cycles in the stress run"),
    "rt.priority_applied_stress": ("commands", "priority commands applied in the stress run"),
    "rt.normal_applied_stress": ("commands", "normal commands applied after coalescing"),
    "rt.normal_coalesced_stress": ("commands", "normal commands dropped as superseded by a newer one for the same target in the same cycle"),
    "rt.commands_rejected_stress": ("commands", "commands refused because a queue was full"),
    "rt.seconds_stress": ("s", "length of the stress run"),
    "rt.attempts": ("attempts", "idle + stress pairs run: a pair whose idle baseline saw jackd xruns (the VM's host stalling the machine) is repeated, up to 3; the calmest is kept"),
    "jdat.jellie_link_segsnr_db_loss10": ("dB", "the same link and loss with JELLIE (4 streams, any 2 rebuild a block bit-exactly)"),
    "sync.offset_err_p99_us": ("us", "clock offset error p99 of the two followers (the worse one) after convergence, over the steady phase; 3 peers in netns, every link through netsim at 1 ms +- 0.5 ms and 10% loss, test clocks -100/0/+100 ppm and seconds apart; truth: CLOCK_MONOTONIC shared by all namespaces"),
    "sync.drift_err_ppm": ("ppm", "error of the followers' drift estimate (the worse one; median over the last 10 s of the steady phase) against the true rate ratio of the test clocks"),
    "sync.converge_ms": ("ms", "from the peers' start until a follower is locked and stays within 100 us for 2 s (the slower follower); includes the 2.5 s election listening time"),
    "sync.transport_spread_us": ("us", "largest spread across the 3 peers of the start sample of a PLAY or STOP, in true session time (each command sent by one peer via `jamnet transport`, 50 ms ahead)"),
    "sync.transport_spread_p50_us": ("us", "median of that spread over the commands"),
    "sync.transport_commands": ("commands", "PLAY/STOP commands measured for the spread"),
    "sync.handoff_err_max_us": ("us", "after the master leaves: largest difference of the survivors' session clocks from the old master's timeline, over 5 s"),
    "sync.late_joiner_position_err_us": ("us", "a peer that rejoins while playing: its transport position against the master's at the same instant, once locked"),
    "sync.soak_drift_us_10min": ("us", "soak: how far the followers' offset error wandered over the 10-minute steady phase (mean of the last minute minus mean of the first; the worse follower)"),
    "sync.soak_offset_err_max_us_10min": ("us", "soak: largest |offset error| of any follower over the 10 minutes"),
    "sync.soak_seconds": ("s", "length of the steady phase the soak figures cover"),
    "sync.offset_err_p99_us_chrony": ("us", "chrony 4.3 (chronyd -x, client and server in two namespaces) through netsim with the same delay, jitter and loss: p99 of its offset estimate, whose truth is 0 (one kernel clock)"),
    "sync.link_beat_err_us": ("us", "Ableton Link: p99 beat-alignment error between two Link peers (two processes, one namespace's loopback), in us at 120 bpm"),
    "sync.chrony_offset_err_p50_us": ("us", "chrony: median |offset error| (its true error, as for the p99)"),
    "sync.chrony_poll": ("log2 s", "chrony's poll interval (-4: 16 exchanges a second, the nearest to our 20 Hz)"),
    "sync.chrony_samples": ("samples", "chrony: error readings behind its p50/p99 (chronyc 'System time' every 100 ms after a 30 s warm-up)"),
    "sync.chrony_tracking_offset_p50_us": ("us", "chrony's own tracking.log 'Offset' (relative to its already-corrected clock, so not its error), median"),
    "sync.chrony_tracking_offset_p99_us": ("us", "the same, p99 (for reference: it understates chrony's true error)"),
    "sync.chrony_tracking_samples": ("samples", "clock updates in chrony's tracking.log after the warm-up"),
    "sync.chrony_true_err_p50_us": ("us", "chrony's true error (client time minus the shared kernel clock), median"),
    "sync.chrony_true_err_p99_us": ("us", "the same, p99 (the figure sync.offset_err_p99_us_chrony reports)"),
    "sync.chrony_true_samples": ("samples", "readings behind the true-error figures"),
    "sync.link_beat_err_p50_us": ("us", "Ableton Link: median beat-alignment error between its two peers"),
    "sync.link_samples": ("samples", "beat readings compared (every 20 ms, after a 5 s warm-up)"),
    "sync.schema_validate_ns": ("ns", "SchemaSet::validate of one typical transport command (JSON text to DOM, then valijson against transport.schema.json), median over batches"),
    "sync.control_parse_ns": ("ns", "control::parse of the same message: size, JSON, version, type, schema and extraction into TransportMsg, median over batches"),
    "sync.json_parse_ns": ("ns", "nlohmann::json::parse of the same text alone, for scale (both figures above include it)"),
    "sync.control_message_bytes": ("bytes", "size of the transport command those figures are taken on"),
    "sec.aead_ns_per_frame": ("ns", "sealing one 256-byte payload plus opening it (XChaCha20-Poly1305 with the 38-byte header and seal prefix as associated data, libsodium), mean over 200k seals and 4096 distinct opens"),
    "sec.seal_ns": ("ns", "the seal half (a fresh nonce each, the epoch key cached)"),
    "sec.open_ns": ("ns", "the open half (replay window, cached epoch key, decrypt and verify)"),
    "sec.oneway_p50_us_open": ("µs", "one-way latency p50 over loopback, open session: Transport::send_rt to the receive thread's handler, 256-byte payload, 10k frames interleaved with the keyed ones"),
    "sec.oneway_p50_us_keyed": ("µs", "the same for a keyed session (sealed, opened), same run"),
    "sec.oneway_p50_ratio_vs_open": ("×", "keyed / open one-way p50 (goal <= 1.10)"),
    "sec.oneway_received_fraction": ("fraction", "frames of both runs that arrived (loopback: 1)"),
    "sec.flood_ontime_fraction": ("fraction", "a keyed member's frames (750/s, 256 bytes: 64-frame audio) delivered within 5 ms of sending while 50,000 garbage datagrams/s hit the same port (goal >= 0.99)"),
    "sec.flood_late_fraction": ("fraction", "1 - sec.flood_ontime_fraction (goal <= 0.01)"),
    "sec.flood_datagrams_per_s": ("datagrams/s", "garbage rate the flooder reached"),
    "sec.flood_dropped_by_gate": ("datagrams", "garbage dropped unread by the flood gate (over its 20,000/s budget for unverified sources)"),
    "sec.flood_member_p99_us": ("µs", "the member's one-way latency p99 during the flood"),
    "sec.rss_growth_kb_1m_sources": ("KiB", "a whole peer's (discovery, sync, MIDI, audio) RSS growth over 1,000,000 datagrams at 50,000/s, each from its own source address: garbage, announces from new ids, frames of the session on any stream (goal <= 8192)"),
    "sec.rss_sources_fed": ("sources", "distinct sources fed (100k with --quick, scaled to 1M)"),
    "sec.rss_flood_dropped": ("datagrams", "of those, dropped unread by the flood gate"),
    "sec.rss_peers_after": ("peers", "peers the target knew afterwards (no spoofed announce can prove its address: 0)"),
}

# (ours, plain, what, higher_is_better) for the ratio table.
PAIRS = [
    ("latency.roundtrip_ms_jamnet_128", "latency.roundtrip_ms_jacktrip_q2_128", "round trip, 128 frames (JackTrip -q 2)", False),
    ("latency.roundtrip_ms_jamnet_128", "latency.roundtrip_ms_jacktrip_auto_128", "round trip, 128 frames (JackTrip -q auto)", False),
    ("latency.roundtrip_ms_jamnet_128", "latency.roundtrip_ms_jacktrip_q2classic_128", "round trip, 128 frames (JackTrip -q 2, default strategy)", False),
    ("latency.roundtrip_segsnr_db_jamnet_128", "latency.roundtrip_segsnr_db_jacktrip_auto_128", "round-trip music segSNR, no loss, 128 frames (JackTrip -q auto)", True),
    ("latency.roundtrip_segsnr_db_jamnet_128_loss5", "latency.roundtrip_segsnr_db_jacktrip_auto_128_loss5", "round-trip music segSNR at 5% loss, 128 frames (JackTrip -q auto)", True),
    ("latency.roundtrip_segsnr_db_jamnet_128_loss5", "latency.roundtrip_segsnr_db_jacktrip_q2classic_128_loss5", "round-trip music segSNR at 5% loss, 128 frames (JackTrip -q 2, default strategy)", True),
    ("sync.offset_err_p99_us", "sync.offset_err_p99_us_chrony", "clock offset error p99 through netsim (chrony)", False),
    ("net.oneway_p50_us", "net.baseline_oneway_p50_us", "one-way latency p50", False),
    ("net.oneway_p90_us", "net.baseline_oneway_p90_us", "one-way latency p90", False),
    ("net.oneway_p99_us", "net.baseline_oneway_p99_us", "one-way latency p99", False),
    ("net.frames_per_s", "net.baseline_frames_per_s", "throughput", True),
]

# (key, limit, what the issue asks). A target passes when the key is below limit.
# For FLOORED keys, where the host's own floor (rt.host_stall_p99_us, measured in
# the same run) is above the limit, at most 1.2 times the floor passes: the
# machine, not the code, set the figure.
TARGETS = [
    ("discovery.ms_p50", 1000.0, "peers find each other in under 1 s (median)"),
    ("discovery.ms_p99", 1000.0, "peers find each other in under 1 s (p99)"),
    ("discovery.usable_ms_p50", 2000.0, "a connection is usable within 2 s (median)"),
    ("discovery.usable_ms_p99", 2000.0, "a connection is usable within 2 s (p99)"),
    ("jmid.timing_err_p99_us", 500.0, "JMID timing error p99 at most 0.5 ms with 2 ms ± 1 ms jitter, under full peer load (or 1.2 × the host's floor)"),
    ("jmid.parse_ratio_vs_simdjson", 1.0, "our JMID parser at least as fast as simdjson on this schema"),
    ("jmid.stuck_notes_bursty", 0.5, "no stuck notes under bursty loss"),
    ("pnbtr.cpu_frac_of_period", 0.10, "PNBTR costs at most 10% of the block period on one core"),
    ("rt.tick_jitter_p99_us", 1000.0, "tick jitter p99 at most 1 ms under full peer load and the stress load (or 1.2 × the host's floor)"),
    ("rt.priority_latency_p99_us", 2000.0, "priority command latency p99 at most 2 ms under the stress load"),
    ("sync.offset_err_p99_us", 100.0, "clock offset error p99 at most 100 us (1 ms +- 0.5 ms, 10% loss, +-100 ppm)"),
    ("sync.drift_err_ppm", 1.0, "drift estimate within 1 ppm"),
    ("sync.transport_spread_us", 1000.0, "a scheduled PLAY starts on all 3 peers within 1 ms"),
    ("sync.soak_drift_us_10min", 100.0, "accumulated drift error over 10 minutes under 100 us"),
    ("sec.oneway_p50_ratio_vs_open", 1.10, "keyed sessions add at most 10% to one-way latency (p50)"),
    ("sec.flood_late_fraction", 0.01, "a member's audio keeps at least 99% of its blocks on time during a 50,000 datagram/s garbage flood"),
    ("sec.rss_growth_kb_1m_sources", 8192.0, "RSS grows at most 8 MiB over 1,000,000 distinct spoofed sources"),
]

FLOORED = {"jmid.timing_err_p99_us", "rt.tick_jitter_p99_us"}
FLOOR_KEY = "rt.host_stall_p99_us"


def target_limit(results: dict, key: str, limit: float) -> float:
    """The limit a key is judged against: the target, or 1.2 × the host's floor
    where that floor is above the target."""
    floor = num(results, FLOOR_KEY)
    if key in FLOORED and floor is not None and floor > limit:
        return 1.2 * floor
    return limit


PLC_SIGNALS = {"music": "fluidsynth music (piano, bass, drums)", "chords": "chord progression", "speech": "espeak-ng speech"}
PLC_LOSSES = {"1": "1% random", "5": "5% random", "10": "10% random", "20": "20% random", "burst": "bursty (Gilbert-Elliott)"}
PLC_METHODS = {
    "pnbtr": "PNBTR", "zero": "zero-fill", "repeat": "repeat last packet", "opus": "libopus PLC",
    "pnbtr64": "PNBTR, 64-sample packets", "zero64": "zero-fill, 64-sample packets", "repeat64": "repeat, 64-sample packets",
}
PLC_MEASURES = {
    "segsnr_db": "segmental SNR (20 ms segments clamped to [-10, 35] dB)",
    "snr_db": "SNR over the whole signal",
    "gap_snr_db": "SNR over the lost packets only (0 dB: no better than silence)",
}


def describe(key: str) -> tuple[str, str]:
    """Unit and meaning of a metric: registered ones, then the generated PLC grid."""
    if key in METRICS:
        return METRICS[key]
    parts = key.split(".")
    if len(parts) == 5 and parts[0] == "plc" and parts[1] in PLC_SIGNALS and parts[3] in PLC_METHODS:
        _, sig, loss, method, measure = parts
        return ("dB", f"{PLC_METHODS[method]}: {PLC_MEASURES.get(measure, measure)}, {PLC_SIGNALS[sig]}, "
                      f"{PLC_LOSSES.get(loss, loss)} loss (120-sample packets unless said)")
    if len(parts) == 4 and parts[:2] == ["plc", "loss"]:
        return ("%" if parts[3] == "actual_pct" else "blocks",
                f"loss pattern '{parts[2]}': " + ("share of packets actually lost" if parts[3] == "actual_pct" else "mean burst length"))
    if key.startswith("latency.roundtrip_"):
        import re
        m = re.match(r"latency\.roundtrip_(ms_min|ms_max|ms|frames|segsnr_db_global|segsnr_db|impulses_back|runs)_(jamnet|jacktrip_q2classic|jacktrip_q2|jacktrip_auto|jacktrip_q\w+?)_(\d+)(?:_loss(\d+))?$", key)
        if m:
            what, who, period, loss = m.groups()
            who_s = {"jamnet": "`jamnet peer --jack` (JDAT + adaptive jitter buffer + PNBTR)",
                     "jacktrip_q2": "JackTrip 1.7 `-q 2 --bufstrategy 3`",
                     "jacktrip_q2classic": "JackTrip 1.7 `-q 2`, its default buffer strategy",
                     "jacktrip_auto": "JackTrip 1.7 `-q auto --bufstrategy 3`"}.get(who, who)
            cond = f"{period} frames, " + (f"{loss}% loss both ways through netsim" if loss else "no loss")
            unit, meaning = {"ms": ("ms", "round-trip latency of an impulse (A -> B -> A, two jackd dummy servers), median over the impulse train; the run at the median of the runs (the servers' cycles meet at a random phase each run; runs during which jackd reported xruns are repeated and left out)"),
                             "ms_min": ("ms", "lowest round trip of the runs"),
                             "ms_max": ("ms", "highest round trip of the runs"),
                             "runs": ("runs", "runs the figure is taken from (3 unless the VM kept stalling)"),
                             "frames": ("frames", "the same round trip in frames at 48 kHz"),
                             "segsnr_db": ("dB", "segmental SNR of music after the round trip (quality), each 0.5 s chunk at its own lag within 10 ms of the latency"),
                             "segsnr_db_global": ("dB", "the same music with one lag for the whole clip (a buffer that re-times its playout loses here)"),
                             "impulses_back": ("impulses", "impulses of the 16 sent that came back (peak >= half height)")}[what]
            return unit, f"{who_s}: {meaning}; {cond}"
    if key.startswith("pnbtr.segsnr_db_loss"):
        rest = key[len("pnbtr.segsnr_db_loss"):]
        loss, _, variant = rest.partition("_")
        who = {"": "PNBTR", "zero": "zero-fill", "repeat": "repeat last packet", "opus": "libopus PLC",
               "b64": "PNBTR with 64-sample packets", "jacktrip": "JackTrip Regulator PLC"}.get(variant, variant)
        return ("dB", f"{who}: segmental SNR, fluidsynth music, {loss}% random loss")
    if key.startswith("pnbtr.cpu_frac_of_period_"):
        return ("fraction", "PNBTR cost over the 64-frame block period: " + key[len("pnbtr.cpu_frac_of_period_"):].replace("_", " "))
    if key.startswith("gpu."):
        import re
        who = {"cpu": "CPU backend (reference kernels, one thread)",
               "vulkan": "Vulkan backend (on this machine's Vulkan device; see gpu.vulkan_is_cpu_device)",
               "cuda": "CUDA backend"}
        m = re.match(r"gpu\.(mix|pnbtr)_(\d+)x(\d+)_us_(cpu|vulkan|cuda)$", key)
        if m:
            k, n, frames, b = m.groups()
            what = (f"mix of {n} streams x {frames} frames into 16 outputs" if k == "mix" else
                    f"PNBTR for {n} streams: Burg order-32 fit of 256 samples + {frames} predicted samples each")
            return ("µs", f"{who[b]}: {what}, one call with copies in and out, median")
        m = re.match(r"gpu\.jsonl_10k_us_(cpu|vulkan|cuda|parse_line)$", key)
        if m:
            b = m.group(1)
            if b == "parse_line":
                return ("µs", "10k JMID lines through jmid::parse_line one by one (the CPU path every peer runs), for scale")
            return ("µs", f"{who[b]}: field extraction of a batch of 10k JMID lines, median")
        m = re.match(r"gpu\.(vulkan|cuda)_dispatch_us_(p50|p99)$", key)
        if m:
            return ("µs", f"{who[m.group(1)]}: an empty dispatch, submitted and waited for ({m.group(2)})")
        m = re.match(r"gpu\.(mix|pnbtr)_crossover_n_(vulkan|cuda)$", key)
        if m:
            return ("streams", f"{who[m.group(2)]}: smallest N of 1/16/256/1024 at which it beats the CPU on {m.group(1)} (0: it never does)")
        if key.startswith("gpu.max_rel_err_vs_cpu"):
            b = key[len("gpu.max_rel_err_vs_cpu"):].lstrip("_") or "vulkan"
            return ("", f"{who.get(b, b)}: largest |result - CPU| / peak |CPU| over every mix and PNBTR output measured (0 = bit-exact)")
        if key == "gpu.vulkan_is_cpu_device":
            return ("", "1 when the Vulkan device is a CPU emulation (lavapipe): its figures then measure the CPU, not a GPU")
    if key.startswith("jacktrip."):
        unit = "dB" if "segsnr" in key or "snr_db" in key else ("ms" if key.endswith("_ms") else "")
        return (unit, "JackTrip run detail from bench/jacktrip_plc.py (p<period>_loss<percent>; 'retimed' undoes "
                      "its whole-packet time jumps before scoring, 'global' scores at one fixed lag): " + key[len("jacktrip."):])
    return ("", "(no description registered in bench/run.py)")


def plc_section(r: dict, notes: dict) -> list[str]:
    """The loss-concealment comparison: every method, same signals, same loss patterns."""
    if not any(k.startswith("plc.") for k in r):
        return []
    L = ["## Loss concealment: PNBTR against zero-fill, repeat, libopus PLC and JackTrip (same run)", ""]
    L.append("Every method gets the same signals and the same loss pattern (one flag per 120-sample packet, seeded). "
             "Zero-fill, repeat and PNBTR run through the same `pnbtr::Concealer` (same crossfade back into real "
             "audio, same fade over long gaps), so only the predictor differs. libopus runs CELT in "
             "RESTRICTED_LOWDELAY at 256 kbit/s with 120-sample frames and is told the loss rate; its figures are "
             "taken against its own loss-free decode, so its coding noise is not counted against it, only what "
             "its concealment does. Segmental SNR: 20 ms segments clamped to [-10, 35] dB, segments below -60 dBFS "
             "skipped.")
    L.append("")
    methods = ["zero", "repeat", "opus", "pnbtr", "zero64", "repeat64", "pnbtr64"]
    for sig, sig_name in PLC_SIGNALS.items():
        if not any(k.startswith(f"plc.{sig}.") for k in r):
            continue
        L.append(f"**{sig_name}**, segmental SNR in dB (higher is better):")
        L.append("")
        L.append("| loss | " + " | ".join(PLC_METHODS[m] for m in methods) + " | PNBTR best at 120? |")
        L.append("|---|" + "---:|" * len(methods) + "---|")
        for loss, loss_name in PLC_LOSSES.items():
            vals = {m: num(r, f"plc.{sig}.{loss}.{m}.segsnr_db") for m in methods}
            if all(v is None for v in vals.values()):
                continue
            rivals = [vals[m] for m in ("zero", "repeat", "opus") if vals[m] is not None]
            best = vals["pnbtr"] is not None and all(vals["pnbtr"] > v for v in rivals)
            L.append(f"| {loss_name} | " + " | ".join(fmt(vals[m]) for m in methods) + f" | {'yes' if best else '**no**'} |")
        L.append("")
    jt = r.get("pnbtr.segsnr_db_loss10_jacktrip")
    L.append("**JackTrip 1.7** (Regulator PLC, `--bufstrategy 3`), fluidsynth music at 10% netsim loss: "
             + (f"{fmt(jt)} dB segmental SNR against PNBTR's {fmt(num(r, 'pnbtr.segsnr_db_loss10'))} dB"
                f" (JackTrip with no loss on the same path: {fmt(num(r, 'jacktrip.segsnr_db_loss0'))} dB)." if isinstance(jt, (int, float)) else "not measured."))
    L.append("")
    if notes.get("jacktrip_reason"):
        L.append("How JackTrip was measured, and the caveats: " + notes["jacktrip_reason"])
        L.append("")
    if notes.get("jacktrip_command"):
        L.append("JackTrip commands: `" + notes["jacktrip_command"] + "`")
        L.append("")
    goal = []
    for loss in ("5", "10"):
        p = num(r, f"plc.music.{loss}.pnbtr.segsnr_db")
        for m in ("zero", "repeat", "opus"):
            v = num(r, f"plc.music.{loss}.{m}.segsnr_db")
            if p is not None and v is not None:
                goal.append((loss, m, p - v))
    if isinstance(jt, (int, float)) and num(r, "pnbtr.segsnr_db_loss10") is not None:
        goal.append(("10", "jacktrip", num(r, "pnbtr.segsnr_db_loss10") - jt))
    if goal:
        L.append("Goal of the issue, PNBTR beats every other method at 5 to 10% loss (music): "
                 + "; ".join(f"{loss}% vs {m}: {'+' if d >= 0 else ''}{d:.2f} dB" for loss, m, d in goal)
                 + (" — **met**." if all(d > 0 for _, _, d in goal) else " — **not met** where negative."))
        L.append("")
    return L


def sh(argv: list[str]) -> str:
    return " ".join(shlex.quote(a) for a in argv)


def rel(p: Path) -> str:
    try:
        return str(p.resolve().relative_to(REPO))
    except ValueError:
        return str(p)


def machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    u = platform.uname()
    info = {
        "nproc": str(len(os.sched_getaffinity(0))),
        "cpu": cpu,
        "kernel": f"{u.system} {u.release} {u.version} {u.machine}",
        "os": "unknown",
    }
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                info["os"] = line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
        info["git"] = head + (" (working tree has uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        info["git"] = "unknown"
    return info


def fmt(v: float | None) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "not measured"
    if float(v).is_integer() and abs(v) < 1e15:
        return f"{int(v)}"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def num(results: dict, key: str) -> float | None:
    v = results.get(key)
    return v if isinstance(v, (int, float)) and math.isfinite(v) else None


def gpu_interpretation(r: dict) -> list[str]:
    """The GPU compute figures: who won at which N, and what the Vulkan device really was."""
    out: list[str] = []
    if num(r, "gpu.mix_1024x128_us_cpu") is None:
        return out
    lava = num(r, "gpu.vulkan_is_cpu_device") == 1
    for b in ("vulkan", "cuda"):
        if num(r, f"gpu.mix_1024x128_us_{b}") is None:
            continue
        name = "Vulkan on lavapipe (a CPU emulation of a GPU, on the same 2 cores)" if b == "vulkan" and lava else \
            ("Vulkan" if b == "vulkan" else "CUDA")
        rows = []
        for k in ("mix", "pnbtr"):
            ratios = []
            for n in (1, 16, 256, 1024):
                c, g = num(r, f"gpu.{k}_{n}x128_us_cpu"), num(r, f"gpu.{k}_{n}x128_us_{b}")
                if c and g:
                    ratios.append(f"N={n}: {fmt(g / c)}×")
            cross = num(r, f"gpu.{k}_crossover_n_{b}")
            won = f"it beats the CPU from N = {int(cross)}" if cross else "it never beats the CPU up to N = 1024"
            rows.append(f"{k} time / CPU time {', '.join(ratios)}; {won}")
        j, jc = num(r, f"gpu.jsonl_10k_us_{b}"), num(r, "gpu.jsonl_10k_us_cpu")
        disp = num(r, f"gpu.{b}_dispatch_us_p50")
        err = num(r, "gpu.max_rel_err_vs_cpu" if b == "vulkan" else f"gpu.max_rel_err_vs_cpu_{b}")
        line = f"- **GPU compute, {name}**: " + "; ".join(rows) + "."
        if j and jc:
            line += f" 10k JMID lines: {fmt(j)} µs against {fmt(jc)} µs for the CPU reference ({fmt(j / jc)}×)."
        if disp is not None:
            line += f" An empty dispatch costs {fmt(disp)} µs (p50), the floor under every call."
        if err is not None:
            line += " Results are bit-exact with the CPU reference." if err == 0 else \
                f" Largest relative error against the CPU reference: {err:.3g}."
        out.append(line)
    if lava:
        out.append(
            "- **Where the GPU loses, honestly**: on this machine the only Vulkan device is lavapipe, which runs "
            "the shaders on the same two CPU cores through LLVM; it pays the dispatch and the copies and wins "
            "nothing, so `auto` never picks it. These figures prove the Vulkan path works and is exact, not "
            "that a GPU is faster. " + ("CUDA was measured in this run." if num(r, "gpu.mix_1024x128_us_cuda") is not None
                                        else "No CUDA device was available to this run, so the CUDA rows are missing."))
    pl = num(r, "gpu.jsonl_10k_us_parse_line")
    jc = num(r, "gpu.jsonl_10k_us_cpu")
    if pl and jc:
        out.append(
            f"- **JMID batches**: the project's own line parser reads the same 10k lines in {fmt(pl)} µs "
            f"({fmt(pl / 10)} ns a line) against {fmt(jc)} µs for the batch extractor's CPU reference: a batch "
            f"extractor pays off only on a device that runs thousands of lines at once, and a peer's CPU path "
            f"stays jmid::parse_line.")
    return out


def full_load_interpretation(r: dict) -> list[str]:
    """The peer under full load against the host's floor (full_load_bench.cpp)."""
    tick, midi, floor = num(r, "rt.tick_jitter_p99_us"), num(r, "jmid.timing_err_p99_us"), num(r, "rt.host_stall_p99_us")
    if None in (tick, midi, floor):
        return []
    out = [
        f"- **Under full peer load** (two Sessions on jackd dummy with audio both ways, MIDI through 2 ms ± 1 ms "
        f"jitter, sync, the stress load) the engines' tick jitter p99 is {fmt(tick)} µs and the JMID timing error "
        f"p99 {fmt(midi)} µs. In floor windows interleaved with them (the peer stopped), a bare SCHED_FIFO probe at "
        f"the audio thread's priority met a p99 stall of {fmt(floor)} µs: the host itself was "
        + ("quiet, so these figures are the peer's own." if floor < min(tick, midi) else "the larger part.")
    ]
    xr, ps = num(r, "full_load.xruns"), num(r, "full_load.peer_seconds")
    fxr, fs = num(r, "full_load.floor_xruns"), num(r, "full_load.floor_seconds")
    if None not in (xr, ps, fxr, fs) and ps > 0 and fs > 0:
        out.append(
            f"- **Xruns**: the JACK server reported {fmt(xr)} in {fmt(ps)} s of peer windows "
            f"({xr / ps:.2f}/s) and {fmt(fxr)} in {fmt(fs)} s of floor windows ({fxr / fs:.2f}/s), where jackd ran "
            f"the same graph with no-op clients: "
            + ("the peer adds none that the bare server does not also miss."
               if xr / ps <= 1.2 * fxr / fs else "the peer costs jackd periods it would not miss by itself.")
        )
    return out


def interpretation(r: dict) -> list[str]:
    """Plain-language reading of this run's figures; every number comes from r."""
    out: list[str] = full_load_interpretation(r)
    ours, base = num(r, "net.oneway_p50_us"), num(r, "net.baseline_oneway_p50_us")
    ours99, base99 = num(r, "net.oneway_p99_us"), num(r, "net.baseline_oneway_p99_us")
    if ours is not None and base is not None:
        out.append(
            f"- **Latency overhead of our transport**: the median one-way time is {fmt(ours)} µs through our "
            f"transport against {fmt(base)} µs for plain sendto/recvfrom, i.e. {fmt(ours - base)} µs "
            f"({fmt(ours / base)}×) added per frame by the TOAST encode/decode, sequence and per-source "
            f"accounting, registry dispatch and the epoll wake-up."
            + (" Most of the loopback time is the kernel path and the thread wake-up that both programs pay."
               if base > ours - base else " Our code, not the kernel, is the larger part of the loopback time.")
        )
    if ours99 is not None and base99 is not None:
        out.append(
            f"- **Tail**: p99 is {fmt(ours99)} µs against {fmt(base99)} µs ({fmt(ours99 / base99)}×). On this "
            f"shared VM the tail is dominated by scheduling (the hypervisor and other tenants can take the core "
            f"for whole milliseconds), so it moves from run to run more than the median does."
        )
    codec = num(r, "toast.codec_ns_per_frame")
    codec_cpu = num(r, "toast.codec_cpu_ns_per_frame")
    crc = num(r, "toast.crc32_ns_per_256B")
    if codec is not None and ours is not None and base is not None:
        share = codec / 1000.0 / (ours - base) if ours > base else float("nan")
        line = f"- **Codec**: encode + decode of a 256-byte frame costs {fmt(codec)} ns"
        if crc is not None:
            line += f"; a CRC-32 over 256 bytes alone is {fmt(crc)} ns and the codec computes one per direction"
        line += "."
        if math.isfinite(share):
            line += f" The codec is about {share * 100:.0f}% of the measured latency overhead."
        out.append(line)
    if codec is not None and codec_cpu is not None and codec_cpu > 0 and codec / codec_cpu > 1.2:
        out.append(
            f"- **The machine was busy**: the codec's wall time ({fmt(codec)} ns) is {fmt(codec / codec_cpu)}× its "
            f"CPU time ({fmt(codec_cpu)} ns), so the benchmark thread spent part of its time preempted. "
            f"Absolute figures are pessimistic; the ratios between paths measured in the same run are the "
            f"trustworthy part."
        )
    fps, bfps = num(r, "net.frames_per_s"), num(r, "net.baseline_frames_per_s")
    if fps is not None and bfps:
        out.append(
            f"- **Throughput**: flooding 256-byte frames, our receiver delivered {fmt(fps)} frames/s against "
            f"{fmt(bfps)} frames/s for the plain program ({fmt(fps / bfps)}×). With two cores, sender and receiver "
            f"each hold one, so this is the per-frame cost of the receive path; for scale, one audio stream at "
            f"48 kHz in 64-sample packets is {48000 // 64} frames/s."
        )
    d50, d99 = num(r, "discovery.ms_p50"), num(r, "discovery.ms_p99")
    u50 = num(r, "discovery.usable_ms_p50")
    if d50 is not None and u50 is not None:
        out.append(
            f"- **Discovery**: two fresh peers list each other after {fmt(d50)} ms (median, p99 {fmt(d99)} ms) and "
            f"have a first RTT sample after {fmt(u50)} ms; the usable time is governed by the heartbeat interval "
            f"(default 100 ms) rather than by the network. This is loopback multicast on one host; a LAN adds its "
            f"round trips but the announce/heartbeat intervals dominate."
        )
    out.extend(gpu_interpretation(r))
    out.append(
        "- **Noise**: the VM is shared and the hypervisor can steal whole milliseconds. Quote medians and the "
        "ours/plain ratios from one run; the two paths run in short alternating blocks (ABBA order) so a slow "
        "stretch lands on both. A single multi-millisecond stall of the receiving thread queues a run of paced "
        "frames, which is enough to move a p99, so compare p99s across runs with care (p90 is steadier)."
    )
    return out


def render_report(results: dict, info: dict, commands: list[tuple[str, float]], started: str,
                  load_before: tuple, load_after: tuple, quick: bool, wall_s: float,
                  notes: dict | None = None) -> str:
    L: list[str] = []
    L.append("# JAMNet benchmark report")
    L.append("")
    L.append("Generated by `bench/run.py` from one run; every figure below was measured in that run "
             "(`bench/results.json` holds the same numbers for tools).")
    L.append("")
    L.append("## Machine")
    L.append("")
    L.append(f"- date (UTC): {started}")
    L.append(f"- CPUs available (nproc): {info['nproc']}")
    L.append(f"- CPU model: {info['cpu']}")
    L.append(f"- kernel: {info['kernel']}")
    L.append(f"- OS: {info['os']}")
    L.append(f"- source: git {info['git']}")
    L.append(f"- load average (1/5/15 min) before: {load_before[0]:.2f} / {load_before[1]:.2f} / {load_before[2]:.2f}, "
             f"after: {load_after[0]:.2f} / {load_after[1]:.2f} / {load_after[2]:.2f}")
    L.append(f"- mode: {'quick (smoke test lengths)' if quick else 'full'}; bench wall time {wall_s:.1f} s")
    L.append("")
    L.append("## Commands")
    L.append("")
    L.append("```sh")
    for i, (cmd, secs) in enumerate(commands):
        note = "; runs the commands below" if i == 0 else ""
        L.append(f"{cmd}    # {secs:.1f} s{note}")
    L.append("```")
    L.append("")
    L.append("## Figures")
    L.append("")
    L.append("| metric | value | unit | meaning |")
    L.append("|---|---:|---|---|")
    grid = 0
    for key in sorted(results):
        if key.startswith("plc.") and key.count(".") == 4:
            grid += 1  # the concealment grid has its own tables below
            continue
        unit, meaning = describe(key)
        L.append(f"| `{key}` | {fmt(results[key])} | {unit} | {meaning} |")
    if grid:
        L.append("")
        L.append(f"The {grid} `plc.<signal>.<loss>.<method>.<measure>` figures of the concealment grid are in "
                 f"`results.json`; their segmental SNRs are tabulated under *Loss concealment*.")
    L.append("")
    L.append("## Ours against the plain baseline (same run)")
    L.append("")
    L.append("The baseline is a plain program: two POSIX UDP sockets on 127.0.0.1, `sendto` and a thread in "
             "blocking `recvfrom`, the same 256-byte payload (ours adds the 42-byte TOAST header and CRC on the "
             "wire), the same 5 kHz pacing and frame count for latency, and the same flood length for throughput.")
    L.append("")
    L.append("| measure | ours | plain | ours / plain | better is |")
    L.append("|---|---:|---:|---:|---|")
    for ok, pk, what, higher in PAIRS:
        o, p = num(results, ok), num(results, pk)
        ratio = fmt(o / p) + "×" if o is not None and p else "not measured"
        L.append(f"| {what} | {fmt(o)} | {fmt(p)} | {ratio} | {'higher' if higher else 'lower'} |")
    L.append("")
    L.append("## Targets from the issue")
    L.append("")
    L.append("| target | metric | measured | limit | result |")
    L.append("|---|---|---:|---:|---|")
    failed_runs = num(results, "discovery.failed_runs") or 0
    for key, target, what in TARGETS:
        v = num(results, key)
        limit = target_limit(results, key, target)
        ok = v is not None and v < limit and (failed_runs == 0 or not key.startswith("discovery."))
        verdict = "not measured" if v is None else ("**pass**" if ok else "**FAIL**")
        unit = describe(key)[0]
        shown = fmt(limit) if limit == target else f"{fmt(limit)} (1.2 × floor {fmt(num(results, FLOOR_KEY))})"
        L.append(f"| {what} | `{key}` | {fmt(v)} {unit} | {shown} {unit} | {verdict} |")
    xr, fxr = num(results, "full_load.xruns"), num(results, "full_load.floor_xruns")
    ps, fs = num(results, "full_load.peer_seconds"), num(results, "full_load.floor_seconds")
    if None not in (xr, fxr, ps, fs) and ps > 0 and fs > 0:
        # The windows are disjoint, so xruns are compared as rates: under
        # full load no more often than jackd alone (a no-op client, the
        # stress load) missed a period, within the same 1.2 as the floors.
        rate, floor_rate = xr / ps, fxr / fs
        ok = rate <= 1.2 * floor_rate
        L.append(f"| no xrun under full peer load that the floor windows did not also see (as rates) | "
                 f"`full_load.xruns` | {fmt(xr)} in {fmt(ps)} s = {rate:.2f}/s | "
                 f"1.2 × floor: {fmt(fxr)} in {fmt(fs)} s = {floor_rate:.2f}/s (`full_load.floor_xruns`) | "
                 f"{'**pass**' if ok else '**FAIL**'} |")
    if failed_runs:
        L.append("")
        L.append(f"{int(failed_runs)} discovery trial(s) did not converge within 5 s: the targets are marked FAIL.")
    L.append("")
    L.append("Measured on loopback (one host, multicast on `lo`), not on a physical LAN.")
    L.append("")
    L.extend(plc_section(results, notes or {}))
    L.append("## Interpretation")
    L.append("")
    L.extend(interpretation(results))
    L.append("")
    L.append("## How the figures are taken")
    L.append("")
    L.append("- `toast.*`: Google Benchmark, median of repetitions; the frame is encoded into a stack buffer and "
             "decoded from it each iteration, with a fresh sequence number so nothing is hoisted.")
    L.append("- `net.oneway_*`: the sender reads `monotonic_ns()` right before `Transport::send` and carries it "
             "big-endian in the first 8 payload bytes; the receiver's `SessionRegistry` handler reads "
             "`monotonic_ns()` on entry. Paced at 5 kHz with absolute-deadline sleeps, so queues stay empty; "
             "ours and the plain program alternate in short blocks (ABBA order).")
    L.append("- `net.frames_per_s`: the sender calls send in a loop for the flood time; the rate is frames "
             "delivered to the handler divided by the time from the first send to the last delivery.")
    L.append("- `discovery.*`: two `jamnet::Peer`s with default intervals, a fresh random session UUID and "
             "multicast port (40000–60000) per trial, bound to 127.0.0.1:0; the clock starts when both "
             "`Peer::start` calls have returned and `peers()` is polled every millisecond.")
    L.append("")
    return "\n".join(L)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("exe", nargs="?", type=Path, default=DEFAULT_EXE, help="jamnet_bench executable")
    ap.add_argument("--quick", action="store_true", help="short runs for smoke tests")
    ap.add_argument("--no-build", action="store_true", help="use the executable as it is")
    ap.add_argument("--out-dir", type=Path, default=REPO / "bench", help="where results.json and REPORT.md go")
    args = ap.parse_args()
    t_start = time.monotonic()

    commands: list[tuple[str, float]] = []
    if not args.no_build:
        for argv in BUILD_COMMANDS:
            t = time.monotonic()
            if subprocess.run(argv, cwd=REPO).returncode != 0:
                print(f"run.py: build failed: {sh(argv)}", file=sys.stderr)
                return 1
            commands.append((sh(argv), time.monotonic() - t))
    if not args.exe.exists():
        print(f"run.py: {args.exe} not found (build it, or pass its path)", file=sys.stderr)
        return 1

    info = machine()
    started = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    load_before = os.getloadavg()
    results: dict[str, float] = {}
    notes: dict[str, str] = {}
    t_all = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        for name, make_argv in RUNNERS:
            out = Path(tmp) / f"{name}.json"
            argv = make_argv(args.exe, args.quick, out)
            print(f"run.py: {sh(argv)}", file=sys.stderr)
            t = time.monotonic()
            # The executable's own console output (benchmark tables) goes to our stderr.
            rc = subprocess.run(argv, cwd=REPO, stdout=sys.stderr).returncode
            secs = time.monotonic() - t
            if rc != 0 or not out.exists():
                print(f"run.py: {name} failed (exit {rc}); results.json and REPORT.md left untouched", file=sys.stderr)
                return 1
            raw = json.loads(out.read_text())
            # Figures are numbers (or null: not measured); text goes to the report's notes.
            produced = {k: v for k, v in raw.items() if v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))}
            notes.update({k: v for k, v in raw.items() if isinstance(v, str)})
            clash = set(produced) & set(results)
            if clash:
                print(f"run.py: {name} produced keys another runner already did: {sorted(clash)}", file=sys.stderr)
                return 1
            results.update(produced)
            shown = [a if a != str(out) else "<tmp>.json" for a in argv]
            shown[0] = rel(Path(argv[0]))
            commands.append((sh(shown), secs))
    wall_s = time.monotonic() - t_all
    load_after = os.getloadavg()

    args.out_dir.mkdir(parents=True, exist_ok=True)
    # Overwritten, never merged: only this run's figures are ever reported.
    (args.out_dir / "results.json").write_text(json.dumps(dict(sorted(results.items())), indent=2) + "\n")
    run_cmd = ["python3", "bench/run.py"] + (["--quick"] if args.quick else []) + (["--no-build"] if args.no_build else [])
    commands.insert(0, (sh(run_cmd), time.monotonic() - t_start))
    report = render_report(results, info, commands, started, load_before, load_after, args.quick, wall_s, notes)
    (args.out_dir / "REPORT.md").write_text(report)
    print(f"run.py: wrote {rel(args.out_dir / 'results.json')} and {rel(args.out_dir / 'REPORT.md')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
