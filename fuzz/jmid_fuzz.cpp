// JMID: arbitrary bytes as a line (parse_any: the fast path, then simdjson)
// and as a raw MIDI stream (MidiParser).
//   - whatever parses as an Event re-formats and re-parses to an equal Event,
//     and the fast path agrees with the general one on the canonical text;
//   - journal and feedback lines re-format to lines that parse to the same;
//   - MidiParser never crashes, every event it produces fits in to_midi's
//     largest output and survives a trip through a JSON line.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>
#include <variant>

#include "jamnet/protocol/jmid.hpp"
#include "jamnet/protocol/jmid_journal.hpp"

using namespace jamnet::protocol::jmid;

namespace {

void check_event(const Event& e) {
  const std::string line = to_line(e);
  if (line.size() > kMaxLineBytes) std::abort();
  auto fast = parse_line(line);
  auto general = parse_line_general(line);
  if (!fast || !general) std::abort();
  if (!(*fast == e) || !(*general == e)) std::abort();
  if (to_line(*fast) != line) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto line = parse_any(text)) {
    if (const auto* e = std::get_if<Event>(&*line)) {
      check_event(*e);
    } else if (const auto* j = std::get_if<JournalLine>(&*line)) {
      const std::string again = to_line(*j);
      auto back = parse_any(again);
      if (!back || !std::holds_alternative<JournalLine>(*back)) std::abort();
      const auto& k = std::get<JournalLine>(*back);
      if (k.channel != j->channel || k.upto_seq != j->upto_seq || k.ts_ns != j->ts_ns) std::abort();
      if (to_line(k) != again) std::abort();
    } else {
      const auto& f = std::get<Feedback>(*line);
      auto back = parse_any(to_line(f));
      if (!back || !std::holds_alternative<Feedback>(*back)) std::abort();
      const auto& g = std::get<Feedback>(*back);
      if (g.loss != f.loss || g.received != f.received || g.lost != f.lost) std::abort();
    }
  } else if (line.error().message.empty()) {
    std::abort();  // every rejection says why
  }

  MidiParser parser;
  std::uint8_t midi[kMaxSysExChunk + 2];
  parser.feed(std::span<const std::uint8_t>(data, size), [&](const Event& e) {
    const std::size_t n = to_midi(e, midi);
    if (n == 0 || n > sizeof midi) std::abort();
    check_event(e);
  });
  (void)from_midi(std::span<const std::uint8_t>(data, size));
  return 0;
}
