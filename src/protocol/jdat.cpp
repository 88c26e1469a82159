// JDAT audio frames: BINARY and JSONL codecs and the sample <-> word
// conversions (docs/jdat.md, "JDAT wire format").
#include "jamnet/protocol/jdat.hpp"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <string>

#include <simdjson.h>

#include "jamnet/protocol/byte_order.hpp"
#include "padded_json.hpp"

namespace jamnet::protocol::jdat {

namespace {

constexpr std::uint8_t kVersion = 1;
constexpr std::uint32_t kMinRate = 8000;
constexpr std::uint32_t kMaxRate = 384000;
// A JSONL payload is one line; the largest valid one (64 channels x 512
// frames of float32, ~16 bytes each) is about 540 KB. Anything longer is
// refused before simdjson sees it.
constexpr std::size_t kMaxJsonlBytes = 1u << 20;

std::unexpected<Error> parse_error(std::string message) {
  return make_error(Errc::kParse, std::move(message));
}

bool is_jellie(StreamRole r) noexcept {
  return r != StreamRole::kPlain;
}
bool is_parity(StreamRole r) noexcept {
  return r == StreamRole::kJellieParityP || r == StreamRole::kJellieParityQ;
}

// Words of an int format hold a two's-complement sample in the low bits;
// parity words (and float32) may use every bit of bytes_per_sample bytes.
std::uint32_t word_mask(SampleFormat f) noexcept {
  const std::size_t bytes = bytes_per_sample(f);
  return bytes >= 4 ? 0xFFFFFFFFu : (1u << (8 * bytes)) - 1u;
}

std::int32_t sign_extend(std::uint32_t word, int bits) noexcept {
  const std::uint32_t m = 1u << (bits - 1);
  const std::uint32_t v = word & ((1u << bits) - 1u);
  return static_cast<std::int32_t>(v ^ m) - static_cast<std::int32_t>(m);
}

std::string_view role_name(StreamRole r) noexcept {
  switch (r) {
    case StreamRole::kPlain:
      return "plain";
    case StreamRole::kJellieEven:
      return "E";
    case StreamRole::kJellieOdd:
      return "O";
    case StreamRole::kJellieParityP:
      return "P";
    case StreamRole::kJellieParityQ:
      return "Q";
  }
  return "?";
}

Result<StreamRole> parse_role(std::string_view s) {
  for (std::uint8_t r = 0; r <= kMaxStreamRole; ++r)
    if (role_name(static_cast<StreamRole>(r)) == s) return static_cast<StreamRole>(r);
  return parse_error("jdat: unknown role '" + std::string(s.substr(0, 16)) +
                     "' (plain, E, O, P or Q)");
}

}  // namespace

std::string_view to_string(SampleFormat f) noexcept {
  switch (f) {
    case SampleFormat::kFloat32:
      return "f32";
    case SampleFormat::kInt24:
      return "i24";
    case SampleFormat::kInt16:
      return "i16";
  }
  return "?";
}

Result<SampleFormat> parse_sample_format(std::string_view s) {
  for (std::uint8_t f = 0; f <= kMaxSampleFormat; ++f)
    if (to_string(static_cast<SampleFormat>(f)) == s) return static_cast<SampleFormat>(f);
  return parse_error("jdat: unknown sample format '" + std::string(s.substr(0, 16)) +
                     "' (f32, i24 or i16)");
}

std::size_t bytes_per_sample(SampleFormat f) noexcept {
  switch (f) {
    case SampleFormat::kFloat32:
      return 4;
    case SampleFormat::kInt24:
      return 3;
    case SampleFormat::kInt16:
      return 2;
  }
  return 0;
}

std::uint16_t JdatHeader::word_count() const noexcept {
  if (role == StreamRole::kPlain) return static_cast<std::uint16_t>(frames * channels);
  return static_cast<std::uint16_t>(frames / 2);
}

Result<void> validate(const JdatHeader& h) {
  if (static_cast<std::uint8_t>(h.format) > kMaxSampleFormat)
    return parse_error("jdat: unknown sample format " +
                       std::to_string(static_cast<unsigned>(h.format)));
  if (static_cast<std::uint8_t>(h.role) > kMaxStreamRole)
    return parse_error("jdat: unknown stream role " +
                       std::to_string(static_cast<unsigned>(h.role)));
  if (h.channels < 1 || h.channels > kMaxChannels)
    return parse_error("jdat: channels must be 1.." + std::to_string(kMaxChannels) + ", got " +
                       std::to_string(h.channels));
  if (h.frames < kMinFrames || h.frames > kMaxFrames)
    return parse_error("jdat: frames must be " + std::to_string(kMinFrames) + ".." +
                       std::to_string(kMaxFrames) + ", got " + std::to_string(h.frames));
  if (h.sample_rate < kMinRate || h.sample_rate > kMaxRate)
    return parse_error("jdat: sample rate must be " + std::to_string(kMinRate) + ".." +
                       std::to_string(kMaxRate) + ", got " + std::to_string(h.sample_rate));
  if (is_jellie(h.role)) {
    if (h.channels != 1)
      return parse_error("jdat: a JELLIE stream is mono, got " + std::to_string(h.channels) +
                         " channels");
    if (h.frames % 2 != 0)
      return parse_error("jdat: a JELLIE block needs an even frame count, got " +
                         std::to_string(h.frames));
  }
  return {};
}

int max_packet_frames(SampleFormat format, int channels, bool jellie,
                      std::size_t max_payload) noexcept {
  const std::size_t bytes = bytes_per_sample(format);
  if (bytes == 0 || channels < 1 || max_payload <= kBinaryHeaderSize) return 0;
  const std::size_t words = (max_payload - kBinaryHeaderSize) / bytes;
  std::size_t frames = jellie ? 2 * words : words / static_cast<std::size_t>(channels);
  frames = std::min<std::size_t>(frames, kMaxFrames);
  if (jellie) frames &= ~std::size_t{1};
  return frames < static_cast<std::size_t>(kMinFrames) ? 0 : static_cast<int>(frames);
}

int choose_packet_frames(int period, int max_frames, bool even) noexcept {
  if (max_frames < kMinFrames) return 0;
  if (even) max_frames &= ~1;
  auto ok = [&](int f) { return f >= kMinFrames && f <= max_frames && (!even || f % 2 == 0); };
  if (period <= 0) return std::min(kDefaultFrames, max_frames);
  if (period < kMinFrames) {
    for (int f = period; f <= max_frames; f += period)
      if (ok(f)) return f;
    return std::min(kDefaultFrames, max_frames);
  }
  if (ok(period)) return period;
  for (int f = std::min(period, max_frames); f >= kMinFrames; --f)
    if (period % f == 0 && ok(f)) return f;
  return max_frames;
}

// --- BINARY -----------------------------------------------------------------
//  0 u8  version (1)       1 u8  format        2 u8 role     3 u8 channels
//  4 u16 frames            6 u16 word_count    8 u32 sample_rate
// 12 u64 first_frame       20.. words, bytes_per_sample bytes each, big-endian

std::size_t binary_size(const JdatHeader& h) noexcept {
  return kBinaryHeaderSize + std::size_t{h.word_count()} * bytes_per_sample(h.format);
}

Result<std::size_t> encode_binary(const JdatHeader& h, std::span<const std::uint32_t> words,
                                  std::span<std::uint8_t> out) {
  if (auto ok = validate(h); !ok) return std::unexpected(std::move(ok.error()));
  const std::size_t count = h.word_count();
  if (words.size() != count)
    return make_error(Errc::kInvalidArgument, "jdat: header needs " + std::to_string(count) +
                                                  " words, got " + std::to_string(words.size()));
  const std::size_t size = binary_size(h);
  if (out.size() < size)
    return make_error(Errc::kTooLarge, "jdat: payload needs " + std::to_string(size) +
                                           " bytes, buffer holds " + std::to_string(out.size()));
  const std::uint32_t mask = word_mask(h.format);
  for (std::size_t i = 0; i < count; ++i) {
    if ((words[i] & ~mask) != 0)
      return make_error(Errc::kInvalidArgument,
                        "jdat: word " + std::to_string(i) + " does not fit in " +
                            std::to_string(bytes_per_sample(h.format)) + " bytes");
  }
  std::uint8_t* p = out.data();
  p[0] = kVersion;
  p[1] = static_cast<std::uint8_t>(h.format);
  p[2] = static_cast<std::uint8_t>(h.role);
  p[3] = h.channels;
  store_be16(p + 4, h.frames);
  store_be16(p + 6, static_cast<std::uint16_t>(count));
  store_be32(p + 8, h.sample_rate);
  store_be64(p + 12, h.first_frame);
  p += kBinaryHeaderSize;
  switch (bytes_per_sample(h.format)) {
    case 4:
      for (std::uint32_t w : words) store_be32(p, w), p += 4;
      break;
    case 3:
      for (std::uint32_t w : words) {
        p[0] = static_cast<std::uint8_t>(w >> 16);
        p[1] = static_cast<std::uint8_t>(w >> 8);
        p[2] = static_cast<std::uint8_t>(w);
        p += 3;
      }
      break;
    default:
      for (std::uint32_t w : words) store_be16(p, static_cast<std::uint16_t>(w)), p += 2;
      break;
  }
  return size;
}

Result<JdatHeader> peek_binary(std::span<const std::uint8_t> in) {
  if (in.size() < kBinaryHeaderSize)
    return parse_error("jdat: truncated header (" + std::to_string(in.size()) + " of " +
                       std::to_string(kBinaryHeaderSize) + " bytes)");
  const std::uint8_t* p = in.data();
  if (p[0] != kVersion)
    return make_error(Errc::kUnsupported,
                      "jdat: unsupported version " + std::to_string(p[0]) + " (expected 1)");
  if (p[1] > kMaxSampleFormat)
    return parse_error("jdat: unknown sample format " + std::to_string(p[1]));
  if (p[2] > kMaxStreamRole)
    return parse_error("jdat: unknown stream role " + std::to_string(p[2]));
  JdatHeader h;
  h.format = static_cast<SampleFormat>(p[1]);
  h.role = static_cast<StreamRole>(p[2]);
  h.channels = p[3];
  h.frames = load_be16(p + 4);
  const std::uint16_t count = load_be16(p + 6);
  h.sample_rate = load_be32(p + 8);
  h.first_frame = load_be64(p + 12);
  if (auto ok = validate(h); !ok) return std::unexpected(std::move(ok.error()));
  if (count != h.word_count())
    return parse_error("jdat: word count " + std::to_string(count) +
                       " does not match the header (" + std::to_string(h.word_count()) + " for " +
                       std::to_string(h.frames) + " frames, " + std::to_string(h.channels) +
                       " channels, role " + std::string(role_name(h.role)) + ")");
  const std::size_t size = binary_size(h);
  if (in.size() != size)
    return parse_error("jdat: payload is " + std::to_string(in.size()) + " bytes, header says " +
                       std::to_string(size) +
                       (in.size() < size ? " (truncated)" : " (trailing bytes)"));
  return h;
}

Result<JdatHeader> decode_binary(std::span<const std::uint8_t> in,
                                 std::span<std::uint32_t> words_out) {
  auto h = peek_binary(in);
  if (!h) return h;
  const std::size_t count = h->word_count();
  if (words_out.size() < count)
    return make_error(Errc::kTooLarge, "jdat: " + std::to_string(count) +
                                           " words do not fit in a buffer of " +
                                           std::to_string(words_out.size()));
  const std::uint8_t* p = in.data() + kBinaryHeaderSize;
  switch (bytes_per_sample(h->format)) {
    case 4:
      for (std::size_t i = 0; i < count; ++i, p += 4) words_out[i] = load_be32(p);
      break;
    case 3:
      for (std::size_t i = 0; i < count; ++i, p += 3)
        words_out[i] = std::uint32_t{p[0]} << 16 | std::uint32_t{p[1]} << 8 | p[2];
      break;
    default:
      for (std::size_t i = 0; i < count; ++i, p += 2) words_out[i] = load_be16(p);
      break;
  }
  return h;
}

// --- JSONL ------------------------------------------------------------------
// {"t":"jdat","v":1,"fmt":"f32","role":"plain","ch":1,"n":64,"rate":48000,"ff":7,"d":[...]}
// Samples of plain/E/O streams: float32 as the shortest round-tripping decimal
// (non-finite values, which JSON cannot spell, as a "0x%08x" bit-pattern
// string), int formats as signed integers. Parity words as unsigned integers.

std::string encode_jsonl(const JdatHeader& h, std::span<const std::uint32_t> words) {
  std::string s;
  encode_jsonl(h, words, s);
  return s;
}

void encode_jsonl(const JdatHeader& h, std::span<const std::uint32_t> words, std::string& s) {
  s.resize(160 + words.size() * 16);  // 16 >= the longest element plus comma ("-1.1754942e-38,")
  char* const begin = s.data();
  char* p = begin;
  auto lit = [&](std::string_view t) {
    std::memcpy(p, t.data(), t.size());
    p += t.size();
  };
  auto num = [&](auto v) { p = std::to_chars(p, p + 24, v).ptr; };
  lit(R"({"t":"jdat","v":1,"fmt":")");
  lit(to_string(h.format));
  lit(R"(","role":")");
  lit(role_name(h.role));
  lit(R"(","ch":)");
  num(unsigned{h.channels});
  lit(R"(,"n":)");
  num(unsigned{h.frames});
  lit(R"(,"rate":)");
  num(h.sample_rate);
  lit(R"(,"ff":)");
  num(h.first_frame);
  lit(R"(,"d":[)");
  const std::uint32_t mask = word_mask(h.format);
  const bool parity = is_parity(h.role);
  for (std::size_t i = 0; i < words.size(); ++i) {
    if (i != 0) *p++ = ',';
    const std::uint32_t w = words[i] & mask;
    if (parity) {
      num(w);
    } else if (h.format == SampleFormat::kFloat32) {
      const float f = std::bit_cast<float>(w);
      if (std::isfinite(f)) {
        num(f);
      } else {
        constexpr char kHex[] = "0123456789abcdef";
        lit("\"0x");
        for (int k = 28; k >= 0; k -= 4) *p++ = kHex[(w >> k) & 15];
        *p++ = '"';
      }
    } else {
      num(sign_extend(w, h.format == SampleFormat::kInt24 ? 24 : 16));
    }
  }
  lit("]}");
  s.resize(static_cast<std::size_t>(p - begin));
}

namespace {

// JSON number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
bool is_json_number(std::string_view t) noexcept {
  std::size_t i = 0;
  const std::size_t n = t.size();
  auto digits = [&] {
    const std::size_t start = i;
    while (i < n && t[i] >= '0' && t[i] <= '9') ++i;
    return i > start;
  };
  if (i < n && t[i] == '-') ++i;
  if (i < n && t[i] == '0') {
    ++i;
  } else if (!digits()) {
    return false;
  }
  if (i < n && t[i] == '.') {
    ++i;
    if (!digits()) return false;
  }
  if (i < n && (t[i] == 'e' || t[i] == 'E')) {
    ++i;
    if (i < n && (t[i] == '+' || t[i] == '-')) ++i;
    if (!digits()) return false;
  }
  return i == n;
}

std::string_view trim_right(std::string_view t) noexcept {
  while (!t.empty() &&
         (t.back() == ' ' || t.back() == '\t' || t.back() == '\n' || t.back() == '\r'))
    t.remove_suffix(1);
  return t;
}

// One element of "d" as a word, per the stream's format and role.
Result<std::uint32_t> word_from_json(simdjson::ondemand::value v, SampleFormat format, bool parity,
                                     std::size_t index) {
  auto where = [&] { return "jdat: d[" + std::to_string(index) + "] "; };
  const std::string_view token = trim_right(v.raw_json_token());
  const std::uint32_t mask = word_mask(format);
  if (parity) {
    std::uint64_t u = 0;
    if (v.get_uint64().get(u)) return parse_error(where() + "must be an unsigned integer");
    if (u > mask)
      return parse_error(where() + "= " + std::to_string(u) + " does not fit in " +
                         std::to_string(bytes_per_sample(format)) + " bytes");
    return static_cast<std::uint32_t>(u);
  }
  if (format == SampleFormat::kFloat32) {
    if (!token.empty() && token.front() == '"') {
      std::string_view s;
      if (v.get_string().get(s)) return parse_error(where() + "is not a valid string");
      std::uint32_t bits = 0;
      if (s.size() != 10 || s[0] != '0' || s[1] != 'x' ||
          std::from_chars(s.data() + 2, s.data() + 10, bits, 16).ptr != s.data() + 10)
        return parse_error(where() + "must be a number or a \"0x\" + 8 hex digit bit pattern");
      return bits;
    }
    // The text itself, not simdjson's double: parsing to double first and
    // then narrowing could round twice, and the shortest decimal of a
    // float32 must come back as exactly that float32.
    if (!is_json_number(token)) return parse_error(where() + "must be a number");
    float f = 0.0f;
    const auto [ptr, ec] =
        std::from_chars(token.data(), token.data() + token.size(), f, std::chars_format::general);
    if (ec != std::errc{} || ptr != token.data() + token.size())
      return parse_error(where() + "is outside the float32 range");
    return std::bit_cast<std::uint32_t>(f);
  }
  std::int64_t i = 0;
  if (v.get_int64().get(i)) return parse_error(where() + "must be an integer");
  const int bits = format == SampleFormat::kInt24 ? 24 : 16;
  const std::int64_t lo = -(std::int64_t{1} << (bits - 1)), hi = -lo - 1;
  if (i < lo || i > hi)
    return parse_error(where() + "= " + std::to_string(i) + " is outside " + std::to_string(lo) +
                       ".." + std::to_string(hi));
  return static_cast<std::uint32_t>(i) & mask;
}

enum Key : unsigned { kT, kV, kFmt, kRole, kCh, kN, kRate, kFf, kD, kKeyCount };
constexpr std::string_view kKeys[kKeyCount] = {"t", "v",    "fmt", "role", "ch",
                                               "n", "rate", "ff",  "d"};

}  // namespace

Result<JdatPacket> decode_jsonl(std::string_view line) {
  JdatPacket packet;
  auto h = decode_jsonl(line, packet.words);
  if (!h) return std::unexpected(std::move(h.error()));
  packet.header = *h;
  return packet;
}

Result<JdatHeader> decode_jsonl(std::string_view line, std::vector<std::uint32_t>& words) {
  words.clear();
  if (line.size() > kMaxJsonlBytes)
    return make_error(Errc::kTooLarge, "jdat: line too long (" + std::to_string(line.size()) +
                                           " bytes, at most " + std::to_string(kMaxJsonlBytes) +
                                           ")");
  thread_local simdjson::ondemand::parser parser;
  const auto padded = protocol::detail::padded_copy(line);
  auto json_error = [](simdjson::error_code err) {
    return parse_error(std::string("jdat: not valid JSON (") + simdjson::error_message(err) + ")");
  };
  simdjson::ondemand::document doc;
  if (auto err = parser.iterate(padded.data, padded.size, padded.capacity).get(doc); err)
    return json_error(err);

  // Pass 1: the header fields, in any order; "d" is only noted (its
  // elements can only be read once the format and role are known).
  std::int64_t version = 0, channels = 0, frames = 0;
  std::uint64_t rate = 0, first_frame = 0;
  std::string_view type, fmt_name, role_name_text;
  std::string fmt_copy, role_copy;
  unsigned seen = 0;
  {
    simdjson::ondemand::object obj;
    if (doc.get_object().get(obj)) return parse_error("jdat: a line must be a JSON object");
    for (auto field : obj) {
      std::string_view key;
      if (auto err = field.unescaped_key().get(key); err) return json_error(err);
      unsigned k = 0;
      while (k < kKeyCount && kKeys[k] != key) ++k;
      if (k == kKeyCount) continue;  // unknown keys: newer senders may add some
      if (seen & (1u << k)) return parse_error("jdat: duplicate key '" + std::string(key) + "'");
      seen |= 1u << k;
      simdjson::ondemand::value v;
      if (auto err = field.value().get(v); err) return json_error(err);
      auto need_int = [&](std::int64_t& out) -> bool { return !v.get_int64().get(out); };
      switch (k) {
        case kT:
          if (v.get_string().get(type)) return parse_error("jdat: 't' must be a string");
          if (type != "jdat")
            return parse_error("jdat: 't' must be \"jdat\", got \"" +
                               std::string(type.substr(0, 16)) + "\"");
          break;
        case kV:
          if (!need_int(version)) return parse_error("jdat: 'v' must be an integer");
          if (version != kVersion)
            return make_error(Errc::kUnsupported, "jdat: unsupported version " +
                                                      std::to_string(version) + " (expected 1)");
          break;
        case kFmt:
          if (v.get_string().get(fmt_name)) return parse_error("jdat: 'fmt' must be a string");
          fmt_copy.assign(fmt_name);  // string views die with the next string read
          break;
        case kRole:
          if (v.get_string().get(role_name_text))
            return parse_error("jdat: 'role' must be a string");
          role_copy.assign(role_name_text);
          break;
        case kCh:
          if (!need_int(channels)) return parse_error("jdat: 'ch' must be an integer");
          break;
        case kN:
          if (!need_int(frames)) return parse_error("jdat: 'n' must be an integer");
          break;
        case kRate:
          if (v.get_uint64().get(rate))
            return parse_error("jdat: 'rate' must be an unsigned integer");
          break;
        case kFf:
          if (v.get_uint64().get(first_frame))
            return parse_error("jdat: 'ff' must be an unsigned 64-bit integer");
          break;
        case kD:
          break;  // read in pass 2
      }
    }
  }
  // Past the object's end the document must be exhausted: current_location()
  // is then out of bounds.
  if (doc.current_location().error() != simdjson::OUT_OF_BOUNDS)
    return parse_error("jdat: trailing content after the JSON object");
  for (unsigned k = 0; k < kKeyCount; ++k)
    if (!(seen & (1u << k)))
      return parse_error("jdat: missing key '" + std::string(kKeys[k]) + "'");

  auto format = parse_sample_format(fmt_copy);
  if (!format) return std::unexpected(std::move(format.error()));
  auto role = parse_role(role_copy);
  if (!role) return std::unexpected(std::move(role.error()));
  if (channels < 1 || channels > kMaxChannels)
    return parse_error("jdat: channels must be 1.." + std::to_string(kMaxChannels) + ", got " +
                       std::to_string(channels));
  if (frames < kMinFrames || frames > kMaxFrames)
    return parse_error("jdat: frames must be " + std::to_string(kMinFrames) + ".." +
                       std::to_string(kMaxFrames) + ", got " + std::to_string(frames));
  if (rate > kMaxRate)
    return parse_error("jdat: sample rate must be " + std::to_string(kMinRate) + ".." +
                       std::to_string(kMaxRate) + ", got " + std::to_string(rate));
  JdatHeader h;
  h.format = *format;
  h.role = *role;
  h.channels = static_cast<std::uint8_t>(channels);
  h.frames = static_cast<std::uint16_t>(frames);
  h.sample_rate = static_cast<std::uint32_t>(rate);
  h.first_frame = first_frame;
  if (auto ok = validate(h); !ok) return std::unexpected(std::move(ok.error()));

  // Pass 2: the words.
  const std::size_t count = h.word_count();
  words.reserve(count);
  doc.rewind();
  simdjson::ondemand::object obj;
  if (doc.get_object().get(obj)) return parse_error("jdat: a line must be a JSON object");
  for (auto field : obj) {
    std::string_view key;
    if (auto err = field.unescaped_key().get(key); err) return json_error(err);
    if (key != "d") continue;
    simdjson::ondemand::array arr;
    if (field.value().get_array().get(arr)) return parse_error("jdat: 'd' must be an array");
    const bool parity = is_parity(h.role);
    for (auto el : arr) {
      simdjson::ondemand::value v;
      if (auto err = el.get(v); err) return json_error(err);
      if (words.size() == count)
        return parse_error("jdat: 'd' holds more than the " + std::to_string(count) +
                           " words the header needs");
      auto w = word_from_json(v, h.format, parity, words.size());
      if (!w) return std::unexpected(std::move(w.error()));
      words.push_back(*w);
    }
    break;
  }
  if (words.size() != count)
    return parse_error("jdat: 'd' holds " + std::to_string(words.size()) +
                       " words, the header needs " + std::to_string(count));
  return h;
}

// --- Sample <-> word --------------------------------------------------------
// int16: scale 32768, range -32768..32767 (so +1.0 saturates to 32767);
// int24: scale 8388608, range -8388608..8388607. Round to nearest, ties to
// even; NaN becomes 0.

namespace {

template <int Bits>
std::uint32_t int_word(float sample) noexcept {
  constexpr double kScale = double(1 << (Bits - 1));
  constexpr std::int32_t kMax = (1 << (Bits - 1)) - 1;
  constexpr std::int32_t kMin = -(1 << (Bits - 1));
  const double y = static_cast<double>(sample) * kScale;
  std::int32_t v = 0;
  if (y >= kMax)  // also +inf
    v = kMax;
  else if (y <= kMin)  // also -inf
    v = kMin;
  else if (y == y)  // NaN stays 0
    v = static_cast<std::int32_t>(std::nearbyint(y));
  return static_cast<std::uint32_t>(v) & ((1u << Bits) - 1u);
}

}  // namespace

std::uint32_t to_word(SampleFormat f, float sample) noexcept {
  switch (f) {
    case SampleFormat::kFloat32:
      return std::bit_cast<std::uint32_t>(sample);
    case SampleFormat::kInt24:
      return int_word<24>(sample);
    case SampleFormat::kInt16:
      return int_word<16>(sample);
  }
  return 0;
}

float from_word(SampleFormat f, std::uint32_t word) noexcept {
  switch (f) {
    case SampleFormat::kFloat32:
      return std::bit_cast<float>(word);
    case SampleFormat::kInt24:
      return static_cast<float>(sign_extend(word, 24)) * (1.0f / 8388608.0f);
    case SampleFormat::kInt16:
      return static_cast<float>(sign_extend(word, 16)) * (1.0f / 32768.0f);
  }
  return 0.0f;
}

void to_words(SampleFormat f, std::span<const float> samples,
              std::span<std::uint32_t> words) noexcept {
  const std::size_t n = std::min(samples.size(), words.size());
  for (std::size_t i = 0; i < n; ++i) words[i] = to_word(f, samples[i]);
}

void from_words(SampleFormat f, std::span<const std::uint32_t> words,
                std::span<float> samples) noexcept {
  const std::size_t n = std::min(samples.size(), words.size());
  for (std::size_t i = 0; i < n; ++i) samples[i] = from_word(f, words[i]);
}

}  // namespace jamnet::protocol::jdat
