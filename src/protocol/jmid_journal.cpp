// JMID journal ("t":"j") and feedback ("t":"fb") lines, and parse_any.
#include "jamnet/protocol/jmid_journal.hpp"

#include <algorithm>
#include <array>
#include <bitset>
#include <charconv>
#include <cmath>
#include <cstring>
#include <optional>
#include <string>

#include "jmid_detail.hpp"

namespace jamnet::protocol::jmid {

namespace {

using detail::parse_error;

using detail::Writer;

// Writes into a buffer of at least kMaxJournalLineBytes. Out-of-range state is
// clamped so that whatever is written parses back.
std::size_t write_journal(const JournalLine& j, char* buf) noexcept {
  const ChannelState& s = j.state;
  Writer w{buf};
  w.lit("{\"t\":\"j\",\"c\":");
  w.num((j.channel & 0x0F) + 1);
  w.lit(",\"upto\":");
  w.num(j.upto_seq);
  w.lit(",\"ts\":");
  w.num(j.ts_ns);
  w.lit(",\"on\":[");
  bool first = true;
  for (int n = 0; n < 128; ++n) {
    if (!s.notes_on.test(static_cast<std::size_t>(n))) continue;
    if (!first) w.lit(",");
    first = false;
    w.num(n);
    w.lit(",");
    w.num(s.velocity[static_cast<std::size_t>(n)] & 0x7F);
  }
  w.lit("],\"cc\":[");
  first = true;
  for (int n = 0; n < 128; ++n) {
    const int v = s.cc[static_cast<std::size_t>(n)];
    if (v < 0) continue;
    if (!first) w.lit(",");
    first = false;
    w.num(n);
    w.lit(",");
    w.num(std::min(v, 127));
  }
  w.lit("],\"pc\":");
  w.num(std::clamp<int>(s.program, -1, 127));
  w.lit(",\"pb\":");
  w.num(std::clamp<int>(s.pitch_bend, -8192, 8191));
  w.lit(",\"cp\":");
  w.num(std::clamp<int>(s.pressure, -1, 127));
  w.lit("}");
  return static_cast<std::size_t>(w.p - buf);
}

std::string range_error(const char* what, std::int64_t lo, std::int64_t hi, std::int64_t got) {
  return std::string("jmid: ") + what + " must be " + std::to_string(lo) + ".." +
         std::to_string(hi) + ", got " + std::to_string(got);
}

Result<std::int64_t> get_ranged(simdjson::dom::element el, const char* key, const char* what,
                                std::int64_t lo, std::int64_t hi) {
  std::int64_t v = 0;
  if (el.get_int64().get(v))
    return parse_error(std::string("jmid: '") + key + "' must be an integer");
  if (v < lo || v > hi) return parse_error(range_error(what, lo, hi, v));
  return v;
}

// "on" / "cc": a flat array of (number, value) pairs; calls set(number, value).
template <class F>
std::optional<Error> read_pairs(simdjson::dom::element el, const char* key, const char* what_n,
                                const char* what_v, F&& set) {
  simdjson::dom::array arr;
  if (el.get_array().get(arr))
    return Error{Errc::kParse, std::string("jmid: '") + key + "' must be an array"};
  std::bitset<128> seen;
  std::int64_t pending = -1;
  std::size_t count = 0;
  for (auto item : arr) {
    std::int64_t v = 0;
    if (item.get_int64().get(v))
      return Error{Errc::kParse, std::string("jmid: '") + key + "' must hold integers only"};
    if (pending < 0) {
      if (v < 0 || v > 127) return Error{Errc::kParse, range_error(what_n, 0, 127, v)};
      if (seen.test(static_cast<std::size_t>(v)))
        return Error{Errc::kParse, std::string("jmid: '") + key + "' lists " + what_n + " " +
                                       std::to_string(v) + " twice"};
      seen.set(static_cast<std::size_t>(v));
      pending = v;
    } else {
      if (v < 0 || v > 127) return Error{Errc::kParse, range_error(what_v, 0, 127, v)};
      set(static_cast<std::size_t>(pending), static_cast<std::uint8_t>(v));
      pending = -1;
    }
    ++count;
  }
  if (count % 2 != 0)
    return Error{Errc::kParse, std::string("jmid: '") + key +
                                   "' must hold pairs (an even count), has " +
                                   std::to_string(count)};
  return std::nullopt;
}

Result<JournalLine> journal_from_object(simdjson::dom::object obj) {
  enum : unsigned {
    kC = 1,
    kUpto = 2,
    kTs = 4,
    kOn = 8,
    kCc = 16,
    kPc = 32,
    kPb = 64,
    kCp = 128,
    kT = 256
  };
  simdjson::dom::element c_el, upto_el, ts_el, on_el, cc_el, pc_el, pb_el, cp_el;
  const auto fields = detail::collect_fields(obj, {{"c", &c_el},
                                                   {"upto", &upto_el},
                                                   {"ts", &ts_el},
                                                   {"on", &on_el},
                                                   {"cc", &cc_el},
                                                   {"pc", &pc_el},
                                                   {"pb", &pb_el},
                                                   {"cp", &cp_el},
                                                   {"t", nullptr}});
  if (!fields) return std::unexpected(fields.error());
  const unsigned seen = *fields;
  JournalLine j;
  if (!(seen & kC)) return parse_error("jmid: missing key 'c' for j");
  if (!(seen & kUpto)) return parse_error("jmid: missing key 'upto' for j");
  auto c = get_ranged(c_el, "c", "channel", 1, 16);
  if (!c) return std::unexpected(c.error());
  j.channel = static_cast<std::uint8_t>(*c - 1);
  if (upto_el.get_uint64().get(j.upto_seq))
    return parse_error("jmid: 'upto' must be an unsigned 64-bit integer");
  if ((seen & kTs) && ts_el.get_int64().get(j.ts_ns))
    return parse_error("jmid: 'ts' must be a signed 64-bit integer");
  ChannelState& s = j.state;
  if (seen & kOn) {
    auto err = read_pairs(on_el, "on", "note", "velocity", [&](std::size_t n, std::uint8_t v) {
      s.notes_on.set(n);
      s.velocity[n] = v;
    });
    if (err) return std::unexpected(*err);
  }
  if (seen & kCc) {
    auto err =
        read_pairs(cc_el, "cc", "controller", "controller value",
                   [&](std::size_t n, std::uint8_t v) { s.cc[n] = static_cast<std::int16_t>(v); });
    if (err) return std::unexpected(*err);
  }
  if (seen & kPc) {
    auto v = get_ranged(pc_el, "pc", "program", -1, 127);
    if (!v) return std::unexpected(v.error());
    s.program = static_cast<std::int16_t>(*v);
  }
  if (seen & kPb) {
    auto v = get_ranged(pb_el, "pb", "pitch bend", -8192, 8191);
    if (!v) return std::unexpected(v.error());
    s.pitch_bend = static_cast<std::int16_t>(*v);
  }
  if (seen & kCp) {
    auto v = get_ranged(cp_el, "cp", "channel pressure", -1, 127);
    if (!v) return std::unexpected(v.error());
    s.pressure = static_cast<std::int16_t>(*v);
  }
  return j;
}

Result<Feedback> feedback_from_object(simdjson::dom::object obj) {
  enum : unsigned { kLoss = 1, kRx = 2, kLost = 4, kT = 8 };
  simdjson::dom::element loss_el, rx_el, lost_el;
  const auto fields = detail::collect_fields(
      obj, {{"loss", &loss_el}, {"rx", &rx_el}, {"lost", &lost_el}, {"t", nullptr}});
  if (!fields) return std::unexpected(fields.error());
  const unsigned seen = *fields;
  Feedback f;
  if (!(seen & kLoss)) return parse_error("jmid: missing key 'loss' for fb");
  if (loss_el.get_double().get(f.loss)) return parse_error("jmid: 'loss' must be a number");
  if (!(f.loss >= 0.0 && f.loss <= 1.0))
    return parse_error("jmid: loss must be 0..1, got " + std::to_string(f.loss));
  if ((seen & kRx) && rx_el.get_uint64().get(f.received))
    return parse_error("jmid: 'rx' must be an unsigned 64-bit integer");
  if ((seen & kLost) && lost_el.get_uint64().get(f.lost))
    return parse_error("jmid: 'lost' must be an unsigned 64-bit integer");
  return f;
}

}  // namespace

bool ChannelState::is_default() const noexcept {
  // Velocities of released notes are leftovers, not state.
  return notes_on.none() && program == -1 && pitch_bend == 0 && pressure == -1 &&
         std::all_of(cc.begin(), cc.end(), [](std::int16_t v) { return v < 0; });
}

std::size_t format_journal(const JournalLine& j, std::span<char> out) noexcept {
  return detail::format_bounded<kMaxJournalLineBytes>(j, out, write_journal);
}

std::string to_line(const JournalLine& j) {
  return detail::to_string_bounded<kMaxJournalLineBytes>(j, write_journal);
}

std::string to_line(const Feedback& f) {
  // Shortest text that reads back to the same double; NaN and out-of-range
  // values are clamped so the line always parses.
  const double loss = std::isnan(f.loss) ? 0.0 : std::clamp(f.loss, 0.0, 1.0);
  std::array<char, 128> tmp;
  Writer w{tmp.data()};
  w.lit("{\"t\":\"fb\",\"loss\":");
  w.p = std::to_chars(w.p, w.p + 32, loss).ptr;
  w.lit(",\"rx\":");
  w.num(f.received);
  w.lit(",\"lost\":");
  w.num(f.lost);
  w.lit("}");
  return std::string(tmp.data(), w.p);
}

Result<Line> parse_any(std::string_view line) {
  {
    Result<Line> r{std::in_place, std::in_place_type<Event>};
    if (detail::parse_canonical(line, std::get<Event>(*r))) return r;
  }
  auto obj = detail::parse_object(line);
  if (!obj) return std::unexpected(std::move(obj.error()));
  simdjson::dom::element t_el;
  if (obj->at_key("t").get(t_el)) return parse_error("jmid: missing key 't'");
  std::string_view type;
  if (t_el.get_string().get(type)) return parse_error("jmid: 't' must be a string");
  if (type == "j") {
    auto j = journal_from_object(*obj);
    if (!j) return std::unexpected(std::move(j.error()));
    return Line{std::move(*j)};
  }
  if (type == "fb") {
    auto f = feedback_from_object(*obj);
    if (!f) return std::unexpected(std::move(f.error()));
    return Line{*f};
  }
  auto e = detail::event_from_object(*obj);
  if (!e) return std::unexpected(std::move(e.error()));
  return Line{*e};
}

}  // namespace jamnet::protocol::jmid
