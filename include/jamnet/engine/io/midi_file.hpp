// Standard MIDI Files (via libsmf) and the JSON-lines MIDI log.
//
// File I/O: control thread only, never the audio thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "jamnet/core/clock.hpp"
#include "jamnet/core/mpsc_queue.hpp"
#include "jamnet/core/result.hpp"
#include "jamnet/core/uuid.hpp"
#include "jamnet/protocol/jmid.hpp"

namespace jamnet::engine::io {

// Reads every channel message and SysEx of a type 0 or 1 SMF, all tracks
// merged in time order. The file's tempo map is honoured: ts_ns is the time
// from the start of the file in ns; seq is 0. SysEx longer than
// protocol::jmid::kMaxSysExChunk comes back as several chunk events with the
// same ts_ns. Meta events and escaped (F7) packets are skipped.
Result<std::vector<protocol::jmid::Event>> read_smf(const std::string& path);

// Writes a type 0 SMF (one track), 480 ppqn, a 120 bpm tempo event at 0;
// event times come from ts_ns, measured from 0 (negative ts_ns is clamped to
// 0), rounded to the nearest tick (1/960 s). Events need not be sorted. SysEx chunks are
// joined into one F0..F7 message per run of chunks ending with sysex_last.
// System common / realtime events have no place in an SMF and are skipped.
Result<void> write_smf(const std::string& path, std::span<const protocol::jmid::Event> events);

// One JSON object per line: the canonical JMID line of the event plus
// "scheduled_ns", "played_ns" and "from", e.g.
//   {"t":"n+","c":1,"n":60,"v":100,"ts":0,"seq":0,"scheduled_ns":5,"played_ns":7,"from":"alice"}
// The file is truncated on open. Writes are buffered (stdio, 64 KiB) and
// flushed by flush(), close() and the destructor. Not thread-safe: one writer.
class JsonlMidiLog {
 public:
  static Result<JsonlMidiLog> open(const std::string& path);

  JsonlMidiLog(JsonlMidiLog&& other) noexcept;
  JsonlMidiLog& operator=(JsonlMidiLog&& other) noexcept;
  JsonlMidiLog(const JsonlMidiLog&) = delete;
  JsonlMidiLog& operator=(const JsonlMidiLog&) = delete;
  ~JsonlMidiLog();

  void write(const protocol::jmid::Event& e, Nanos scheduled_ns, Nanos played_ns,
             std::string_view from);
  void flush();
  // Flushes and closes; later writes are ignored. False if a write failed.
  bool close();

  std::uint64_t lines_written() const noexcept { return lines_; }
  const std::string& path() const noexcept { return path_; }

 private:
  JsonlMidiLog(std::FILE* f, std::string path) : file_(f), path_(std::move(path)) {}
  std::FILE* file_ = nullptr;
  std::string path_;
  std::string line_;  // reused between writes
  std::uint64_t lines_ = 0;
  bool failed_ = false;
};

// One event waiting for QueuedMidiLog's writer.
struct MidiLogRecord {
  protocol::jmid::Event event;
  Nanos scheduled_ns = 0;
  Nanos played_ns = 0;
  Uuid from;
};

// A JsonlMidiLog fed from a real-time thread (the MIDI playout handler): push()
// copies the event into a bounded queue - no allocation, lock or file write -
// and a writer thread of its own formats and writes the lines. What does not
// fit the queue is counted in dropped(), never lost silently.
class QueuedMidiLog {
 public:
  static constexpr std::size_t kQueue = 8192;  // events (~2.5 s of a dense stream)
  static Result<std::unique_ptr<QueuedMidiLog>> open(const std::string& path);
  ~QueuedMidiLog();
  QueuedMidiLog(const QueuedMidiLog&) = delete;
  QueuedMidiLog& operator=(const QueuedMidiLog&) = delete;

  // Any thread, real-time ones included. False (and counted) when full or
  // closed.
  bool push(const protocol::jmid::Event& e, Nanos scheduled_ns, Nanos played_ns,
            const Uuid& from) noexcept;
  // Writes what is queued, stops the writer, flushes and closes. False if a
  // write failed.
  bool close();

  std::uint64_t dropped() const noexcept { return dropped_.load(std::memory_order_relaxed); }
  std::uint64_t lines_written() const noexcept { return lines_.load(std::memory_order_relaxed); }
  const std::string& path() const noexcept { return log_.path(); }

 private:
  explicit QueuedMidiLog(JsonlMidiLog log);
  void drain();

  JsonlMidiLog log_;
  MpscQueue<MidiLogRecord> queue_{kQueue};
  std::atomic<std::uint64_t> dropped_{0}, lines_{0};
  std::atomic<bool> running_{true};
  bool ok_ = true;
  std::thread writer_;
};

}  // namespace jamnet::engine::io
