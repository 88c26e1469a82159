#include "jamnet/core/log.hpp"

#include <atomic>
#include <cstdio>

#include "jamnet/core/rt_scope.hpp"

namespace jamnet::log {

namespace {

void stderr_sink(Level, std::string_view line) {
  std::fprintf(stderr, "jamnet: %.*s\n", static_cast<int>(line.size()), line.data());
}

std::atomic<Sink> g_sink{stderr_sink};
std::atomic<Level> g_level{Level::kInfo};
std::atomic<std::uint64_t> g_suppressed{0};

}  // namespace

std::string_view to_string(Level l) noexcept {
  switch (l) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarn:
      return "warning";
    case Level::kError:
      return "error";
  }
  return "?";
}

void set_sink(Sink sink) noexcept {
  g_sink.store(sink != nullptr ? sink : stderr_sink, std::memory_order_release);
}

void set_level(Level level) noexcept {
  g_level.store(level, std::memory_order_relaxed);
}

void write(Level level, std::string_view line) noexcept {
  if (level < g_level.load(std::memory_order_relaxed)) return;
  if (rt::in_scope()) {
    g_suppressed.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  g_sink.load(std::memory_order_acquire)(level, line);
}

std::uint64_t suppressed() noexcept {
  return g_suppressed.load(std::memory_order_relaxed);
}

}  // namespace jamnet::log
