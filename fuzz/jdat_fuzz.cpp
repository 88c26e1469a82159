// JDAT: arbitrary bytes as a BINARY payload (decode_binary) and as a JSONL
// line (decode_jsonl).
//   - every rejection says why;
//   - an accepted BINARY payload re-encodes to exactly the same bytes (the
//     format has one spelling), and survives a trip through JSONL;
//   - an accepted JSONL line re-encodes to a canonical line that reads back
//     to the same header and words, and survives a trip through BINARY.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "jamnet/protocol/jdat.hpp"

using namespace jamnet::protocol::jdat;

namespace {

bool same_header(const JdatHeader& a, const JdatHeader& b) {
  return a.format == b.format && a.role == b.role && a.channels == b.channels &&
         a.frames == b.frames && a.sample_rate == b.sample_rate && a.first_frame == b.first_frame;
}

void check_jsonl_trip(const JdatHeader& h, std::span<const std::uint32_t> words) {
  const std::string line = encode_jsonl(h, words);
  auto back = decode_jsonl(line);
  if (!back || !same_header(back->header, h) || back->words.size() != words.size() ||
      !std::equal(words.begin(), words.end(), back->words.begin()))
    std::abort();
  if (encode_jsonl(back->header, back->words) != line) std::abort();
}

void check_binary_trip(const JdatHeader& h, std::span<const std::uint32_t> words,
                       std::vector<std::uint8_t>& bytes, std::vector<std::uint32_t>& scratch) {
  bytes.assign(binary_size(h), 0);
  auto n = encode_binary(h, words, bytes);
  if (!n || *n != bytes.size()) std::abort();
  auto back = decode_binary(bytes, scratch);
  if (!back || !same_header(*back, h) || !std::equal(words.begin(), words.end(), scratch.begin()))
    std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static std::vector<std::uint32_t> words(kMaxFrames * kMaxChannels);
  static std::vector<std::uint8_t> bytes;
  static std::vector<std::uint32_t> scratch(kMaxFrames * kMaxChannels);
  const std::span<const std::uint8_t> in(data, size);

  if (auto h = decode_binary(in, words)) {
    const auto w = std::span<const std::uint32_t>(words).first(h->word_count());
    check_binary_trip(*h, w, bytes, scratch);
    if (bytes.size() != size || std::memcmp(bytes.data(), data, size) != 0) std::abort();
    check_jsonl_trip(*h, w);
  } else if (h.error().message.empty()) {
    std::abort();
  }

  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto p = decode_jsonl(text)) {
    if (p->words.size() != p->header.word_count()) std::abort();
    check_jsonl_trip(p->header, p->words);
    check_binary_trip(p->header, p->words, bytes, scratch);
  } else if (p.error().message.empty()) {
    std::abort();
  }
  return 0;
}
