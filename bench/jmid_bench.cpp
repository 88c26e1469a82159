// JMID line parsing: our parse_line (hand-written fast path for the canonical
// form) against simdjson ondemand and nlohmann::json filling the same Event,
// over the same lines in the same run.
//
// The "file" is 1M generated JMID lines (100k with --quick) held in memory as
// one '\n'-separated buffer, the way a JSONL file would be read in one go, with
// simdjson's padding after the last line so simdjson can parse each line in
// place without copying. Every parser sees the same lines through the same
// string_views; a checksum over the decoded fields proves they all decoded the
// same thing. Each figure is the median of several passes over all lines, the
// passes of the parsers interleaved so a slow stretch of the VM hits all.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <simdjson.h>
#include <nlohmann/json.hpp>

#include "bench_common.hpp"
#include "jamnet/protocol/jmid.hpp"

namespace jamnet::bench {
namespace {

using protocol::jmid::Event;
using protocol::jmid::Kind;

struct LineFile {
  std::string text;  // all lines, '\n'-separated, then SIMDJSON_PADDING spare bytes
  std::vector<std::string_view> lines;  // views into text
};

// Realistic live-playing mix: mostly notes and controllers, some pitch bend
// and clock; random values; session-time stamps 13 digits long, burst ids 10.
LineFile make_lines(std::size_t count) {
  std::mt19937_64 rng(20240611);
  LineFile f;
  f.text.reserve(count * 60 + simdjson::SIMDJSON_PADDING);
  std::vector<std::size_t> ends;
  ends.reserve(count);
  std::int64_t ts = 3'600'000'000'000;  // an hour into the session
  std::uint64_t seq = 3'000'000'000 + rng() % 1'000'000'000;
  char buf[protocol::jmid::kMaxLineBytes];
  for (std::size_t i = 0; i < count; ++i) {
    Event e;
    const unsigned pick = static_cast<unsigned>(rng() % 100);
    e.kind = pick < 38   ? Kind::kNoteOn
             : pick < 74 ? Kind::kNoteOff
             : pick < 90 ? Kind::kControlChange
             : pick < 95 ? Kind::kPitchBend
                         : Kind::kClock;
    e.channel = static_cast<std::uint8_t>(rng() % 16);
    e.data1 = static_cast<std::uint8_t>(rng() % 128);
    e.data2 = static_cast<std::uint8_t>(rng() % 128);
    e.value14 = static_cast<std::int16_t>(static_cast<int>(rng() % 16384) - 8192);
    ts += static_cast<std::int64_t>(rng() % 2'000'000);
    e.ts_ns = ts;
    e.seq = seq++;
    const std::size_t n = protocol::jmid::format_line(e, buf);
    f.text.append(buf, n);
    ends.push_back(f.text.size());
    f.text.push_back('\n');
  }
  f.text.append(simdjson::SIMDJSON_PADDING, '\0');
  std::size_t start = 0;
  for (std::size_t end : ends) {
    f.lines.emplace_back(f.text.data() + start, end - start);
    start = end + 1;
  }
  return f;
}

// Folds the decoded fields so no parser's work can be optimised away, and so
// the parsers can be checked against each other.
inline std::uint64_t fold(std::uint64_t h, const Event& e) noexcept {
  h = h * 0x100000001B3ULL ^ static_cast<std::uint64_t>(e.kind);
  h = h * 0x100000001B3ULL ^ (static_cast<std::uint64_t>(e.channel) << 8 | e.data1);
  h = h * 0x100000001B3ULL ^
      (static_cast<std::uint64_t>(e.data2) << 16 | static_cast<std::uint16_t>(e.value14));
  h = h * 0x100000001B3ULL ^ static_cast<std::uint64_t>(e.ts_ns);
  return h * 0x100000001B3ULL ^ e.seq;
}

// Only the kinds the generated file holds; anything else counts as a failure.
bool kind_of(std::string_view t, Kind& k) noexcept {
  if (t == "n+")
    k = Kind::kNoteOn;
  else if (t == "n-")
    k = Kind::kNoteOff;
  else if (t == "cc")
    k = Kind::kControlChange;
  else if (t == "pb")
    k = Kind::kPitchBend;
  else if (t == "clk")
    k = Kind::kClock;
  else
    return false;
  return true;
}

// The same validation our parser does, so nobody skips work the others do.
bool finish(Event& e, std::int64_t c, std::int64_t n, std::int64_t v) noexcept {
  switch (e.kind) {
    case Kind::kNoteOn:
    case Kind::kNoteOff:
    case Kind::kControlChange:
      if (c < 1 || c > 16 || n < 0 || n > 127 || v < 0 || v > 127) return false;
      e.channel = static_cast<std::uint8_t>(c - 1);
      e.data1 = static_cast<std::uint8_t>(n);
      e.data2 = static_cast<std::uint8_t>(v);
      return true;
    case Kind::kPitchBend:
      if (c < 1 || c > 16 || v < -8192 || v > 8191) return false;
      e.channel = static_cast<std::uint8_t>(c - 1);
      e.value14 = static_cast<std::int16_t>(v);
      return true;
    default:
      return true;
  }
}

struct PassResult {
  double ns_per_line;
  std::uint64_t checksum;
  std::size_t failures;
};

template <class F>
PassResult timed_pass(const LineFile& f, F&& parse_one) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  std::size_t failures = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (const auto& line : f.lines) {
    if (!parse_one(line, h)) ++failures;
  }
  const auto t1 = std::chrono::steady_clock::now();
  const double ns =
      static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count());
  return {ns / static_cast<double>(f.lines.size()), h, failures};
}

// Each parser folds the Event it produced into h; each builds exactly one Event.
bool parse_ours(std::string_view line, std::uint64_t& h) {
  auto r = protocol::jmid::parse_line(line);
  if (!r) return false;
  h = fold(h, *r);
  return true;
}

bool parse_ours_general(std::string_view line, std::uint64_t& h) {
  auto r = protocol::jmid::parse_line_general(line);
  if (!r) return false;
  h = fold(h, *r);
  return true;
}

class SimdjsonParser {
 public:
  explicit SimdjsonParser(const LineFile& f) : buffer_end_(f.text.data() + f.text.size()) {}

  bool operator()(std::string_view line, std::uint64_t& h) {
    Event e;
    if (!parse(line, e)) return false;
    h = fold(h, e);
    return true;
  }

 private:
  bool parse(std::string_view line, Event& e) {
    namespace od = simdjson::ondemand;
    // In place: the bytes after each line (the next lines, then the padding)
    // are the padding simdjson needs.
    const auto capacity = static_cast<std::size_t>(buffer_end_ - line.data());
    od::document doc;
    if (parser_.iterate(line.data(), line.size(), capacity).get(doc)) return false;
    od::object obj;
    if (doc.get_object().get(obj)) return false;
    std::int64_t c = 0, n = 0, v = 0;
    bool have_t = false;
    for (auto field : obj) {
      od::raw_json_string key;
      if (field.key().get(key)) return false;
      od::value val = field.value();
      if (key == "t") {
        std::string_view t;
        if (val.get_string().get(t) || !kind_of(t, e.kind)) return false;
        have_t = true;
      } else if (key == "c") {
        if (val.get_int64().get(c)) return false;
      } else if (key == "n") {
        if (val.get_int64().get(n)) return false;
      } else if (key == "v") {
        if (val.get_int64().get(v)) return false;
      } else if (key == "ts") {
        if (val.get_int64().get(e.ts_ns)) return false;
      } else if (key == "seq") {
        if (val.get_uint64().get(e.seq)) return false;
      }
    }
    return have_t && finish(e, c, n, v);
  }

  const char* buffer_end_;
  simdjson::ondemand::parser parser_;
};

bool parse_nlohmann_into(std::string_view line, Event& e) {
  const auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return false;
  std::int64_t c = 0, n = 0, v = 0;
  bool have_t = false;
  for (const auto& [key, val] : j.items()) {
    if (key == "t") {
      if (!val.is_string() || !kind_of(val.get_ref<const std::string&>(), e.kind)) return false;
      have_t = true;
    } else if (key == "c" || key == "n" || key == "v" || key == "ts") {
      if (!val.is_number_integer()) return false;
      const auto x = val.get<std::int64_t>();
      if (key == "c")
        c = x;
      else if (key == "n")
        n = x;
      else if (key == "v")
        v = x;
      else
        e.ts_ns = x;
    } else if (key == "seq") {
      if (!val.is_number_unsigned()) return false;
      e.seq = val.get<std::uint64_t>();
    }
  }
  return have_t && finish(e, c, n, v);
}

bool parse_nlohmann(std::string_view line, std::uint64_t& h) {
  Event e;
  if (!parse_nlohmann_into(line, e)) return false;
  h = fold(h, e);
  return true;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

}  // namespace

void run_jmid_bench(const BenchOptions& opts, Metrics& out) {
  const std::size_t count = opts.quick ? 100'000 : 1'000'000;
  const LineFile file = make_lines(count);
  const int passes = opts.quick ? 5 : 9;
  const int slow_passes =
      3;  // nlohmann and our general path: ten times slower, fewer passes keep the run short

  SimdjsonParser simd(file);
  std::vector<double> ours, simdjson_ns, general, nlohmann_ns;
  std::uint64_t reference = 0;
  auto check = [&](const PassResult& r, const char* who) {
    if (r.failures != 0)
      throw std::runtime_error(std::string("jmid bench: ") + who + " rejected generated lines");
    if (reference == 0) reference = r.checksum;
    if (r.checksum != reference)
      throw std::runtime_error(std::string("jmid bench: ") + who + " decoded different events");
  };
  // One warm-up pass each (page faults, caches, simdjson's buffers), then
  // measured passes in alternating order.
  check(timed_pass(file, parse_ours), "parse_line");
  check(timed_pass(file, simd), "simdjson");
  for (int p = 0; p < passes; ++p) {
    PassResult a{}, b{};
    if (p % 2 == 0) {
      a = timed_pass(file, parse_ours);
      b = timed_pass(file, simd);
    } else {
      b = timed_pass(file, simd);
      a = timed_pass(file, parse_ours);
    }
    check(a, "parse_line");
    check(b, "simdjson");
    ours.push_back(a.ns_per_line);
    simdjson_ns.push_back(b.ns_per_line);
    if (p < slow_passes) {
      const PassResult g = timed_pass(file, parse_ours_general);
      check(g, "parse_line_general");
      general.push_back(g.ns_per_line);
      const PassResult nl = timed_pass(file, parse_nlohmann);
      check(nl, "nlohmann");
      nlohmann_ns.push_back(nl.ns_per_line);
    }
  }
  out["jmid.parse_ns_per_line"] = median(ours);
  out["jmid.parse_ns_per_line_simdjson"] = median(simdjson_ns);
  out["jmid.parse_ns_per_line_nlohmann"] = median(nlohmann_ns);
  out["jmid.parse_ns_per_line_general"] = median(general);
  out["jmid.parse_ratio_vs_simdjson"] = median(ours) / median(simdjson_ns);
  out["jmid.parse_lines"] = static_cast<double>(count);
  std::fprintf(
      stderr,
      "jmid: %zu lines (%.1f MB), ours %.1f ns/line, simdjson %.1f, general %.1f, nlohmann %.1f\n",
      count, static_cast<double>(file.text.size()) / 1e6, median(ours), median(simdjson_ns),
      median(general), median(nlohmann_ns));
}

}  // namespace jamnet::bench
