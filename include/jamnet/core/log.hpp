// The library's one voice: everything it has to tell a person goes through
// log::write (or warn/error/info), never straight to stderr. The app decides
// where lines go (set_sink: the CLI's stderr, a plugin host's console, a GUI);
// the default sink writes one line to stderr.
//
// Real-time work never waits for it: inside an rt::Scope (an audio cycle, a
// received datagram, a MIDI wake) a line is not written but counted
// (suppressed()), since real-time code reports through counters that a
// control thread shows. Outside, the sink runs on the caller's thread.
#pragma once

#include <cstdint>
#include <string_view>

namespace jamnet::log {

enum class Level : std::uint8_t { kDebug, kInfo, kWarn, kError };
std::string_view to_string(Level l) noexcept;

using Sink = void (*)(Level level, std::string_view line);
// nullptr restores the default (stderr). Set it before the threads that log
// start, or at any time: the switch is atomic.
void set_sink(Sink sink) noexcept;
// Lines below this level are dropped (default kInfo).
void set_level(Level level) noexcept;

void write(Level level, std::string_view line) noexcept;
inline void info(std::string_view line) noexcept {
  write(Level::kInfo, line);
}
inline void warn(std::string_view line) noexcept {
  write(Level::kWarn, line);
}
inline void error(std::string_view line) noexcept {
  write(Level::kError, line);
}

// Lines dropped because they came from inside real-time work.
std::uint64_t suppressed() noexcept;

}  // namespace jamnet::log
