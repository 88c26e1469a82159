// JMID event lines: the canonical writer, the hand-written fast reader for the
// canonical form, and the general (simdjson) reader for everything else.
#include "jamnet/protocol/jmid.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "jmid_detail.hpp"
#include "padded_json.hpp"

namespace jamnet::protocol::jmid {

namespace {

constexpr std::array<std::string_view, kKindCount> kTypeNames = {
    "n+", "n-", "pp",  "cc",    "pc",   "cp",   "pb", "mtc", "spp",
    "ss", "tr", "clk", "start", "cont", "stop", "as", "rst", "sx"};

// Which data keys a kind carries, in canonical order.
enum class Shape : std::uint8_t {
  kChanNoteValue,  // c, n, v          n+ n- pp cc
  kChanValue,      // c, v (0..127)    pc cp
  kChanBend,       // c, v (-8192..8191) pb
  kValue7,         // v (0..127)       mtc ss
  kValue14,        // v (0..16383)     spp
  kNone,           //                  tr clk start cont stop as rst
  kSysEx,          // i, l, d          sx
};

constexpr Shape shape_of(Kind k) noexcept {
  switch (k) {
    case Kind::kNoteOn:
    case Kind::kNoteOff:
    case Kind::kPolyPressure:
    case Kind::kControlChange:
      return Shape::kChanNoteValue;
    case Kind::kProgramChange:
    case Kind::kChannelPressure:
      return Shape::kChanValue;
    case Kind::kPitchBend:
      return Shape::kChanBend;
    case Kind::kTimeCode:
    case Kind::kSongSelect:
      return Shape::kValue7;
    case Kind::kSongPosition:
      return Shape::kValue14;
    case Kind::kSysEx:
      return Shape::kSysEx;
    default:
      return Shape::kNone;
  }
}

// The type name packed little-endian into an integer, so the fast path can
// switch on it.
constexpr std::uint64_t tag(std::string_view s) noexcept {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < s.size(); ++i)
    v |= std::uint64_t{static_cast<unsigned char>(s[i])} << (8 * i);
  return v;
}

constexpr char kHexDigits[] = "0123456789abcdef";

// 0..15 for a hex digit, 0xFF otherwise.
constexpr std::array<std::uint8_t, 256> make_hex_table(bool upper_too) {
  std::array<std::uint8_t, 256> t{};
  for (auto& x : t) x = 0xFF;
  for (int i = 0; i < 10; ++i) t['0' + i] = static_cast<std::uint8_t>(i);
  for (int i = 0; i < 6; ++i) {
    t['a' + i] = static_cast<std::uint8_t>(10 + i);
    if (upper_too) t['A' + i] = static_cast<std::uint8_t>(10 + i);
  }
  return t;
}
constexpr auto kHexLower = make_hex_table(false);
constexpr auto kHexAny = make_hex_table(true);

// ---- writer -----------------------------------------------------------------

using detail::Writer;

template <class T>
T clamp_to(long long v, long long lo, long long hi) noexcept {
  return static_cast<T>(std::clamp(v, lo, hi));
}

// Writes into a buffer of at least kMaxLineBytes. Out-of-range fields are
// clamped (channel masked), so whatever is written parses back.
std::size_t write_line(const Event& e, char* buf) noexcept {
  Writer w{buf};
  w.lit("{\"t\":\"");
  const auto k = static_cast<std::size_t>(e.kind) < kKindCount ? e.kind : Kind::kNoteOn;
  w.lit(kTypeNames[static_cast<std::size_t>(k)]);
  w.lit("\"");
  switch (shape_of(k)) {
    case Shape::kChanNoteValue:
      w.lit(",\"c\":");
      w.num((e.channel & 0x0F) + 1);
      w.lit(",\"n\":");
      w.num(e.data1 & 0x7F);
      w.lit(",\"v\":");
      w.num(e.data2 & 0x7F);
      break;
    case Shape::kChanValue:
      w.lit(",\"c\":");
      w.num((e.channel & 0x0F) + 1);
      w.lit(",\"v\":");
      w.num(e.data1 & 0x7F);
      break;
    case Shape::kChanBend:
      w.lit(",\"c\":");
      w.num((e.channel & 0x0F) + 1);
      w.lit(",\"v\":");
      w.num(clamp_to<int>(e.value14, -8192, 8191));
      break;
    case Shape::kValue7:
      w.lit(",\"v\":");
      w.num(e.data1 & 0x7F);
      break;
    case Shape::kValue14:
      w.lit(",\"v\":");
      w.num(clamp_to<int>(e.value14, 0, 16383));
      break;
    case Shape::kNone:
      break;
    case Shape::kSysEx: {
      w.lit(",\"i\":");
      w.num(e.sysex_index);
      w.lit(e.sysex_last ? ",\"l\":1,\"d\":\"" : ",\"l\":0,\"d\":\"");
      const std::size_t n = std::min<std::size_t>(e.sysex_len, kMaxSysExChunk);
      for (std::size_t i = 0; i < n; ++i) {
        const std::uint8_t b = e.sysex[i] & 0x7F;
        w.p[0] = kHexDigits[b >> 4];
        w.p[1] = kHexDigits[b & 0x0F];
        w.p += 2;
      }
      w.lit("\"");
      break;
    }
  }
  w.lit(",\"ts\":");
  w.num(e.ts_ns);
  w.lit(",\"seq\":");
  w.num(e.seq);
  w.lit("}");
  return static_cast<std::size_t>(w.p - buf);
}

// ---- fast path ----------------------------------------------------------------
// Every helper returns false when the input is not exactly canonical or out of
// range; the caller then hands the line to the general path, which decides.

// A literal key that must come next, at most 8 bytes (every key of the
// format is). A template argument, so its bytes are a constant to compare one
// 8-byte load against: no memcmp call, no byte loop.
template <std::size_t N>
struct Lit {
  char s[N];
  consteval Lit(const char (&str)[N]) {
    for (std::size_t i = 0; i < N; ++i) s[i] = str[i];
  }
  static constexpr std::size_t size = N - 1;
  consteval std::uint64_t word() const {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < size; ++i)
      v |= std::uint64_t{static_cast<unsigned char>(s[i])} << (8 * i);
    return v;
  }
};

inline std::uint64_t load64(const char* p) noexcept {
  std::uint64_t v;
  std::memcpy(&v, p, 8);
  if constexpr (std::endian::native == std::endian::big) v = std::byteswap(v);
  return v;
}

template <Lit L>
inline bool expect(const char*& p, const char* end) noexcept {
  constexpr std::size_t n = L.size;
  static_assert(n >= 1 && n <= 8);
  constexpr std::uint64_t want = L.word();
  constexpr std::uint64_t mask = n == 8 ? ~std::uint64_t{0} : (std::uint64_t{1} << (8 * n)) - 1;
  const auto left = static_cast<std::size_t>(end - p);
  if (left >= 8) {
    if ((load64(p) & mask) != want) return false;
  } else {  // near the end of the line: byte by byte
    if (left < n) return false;
    for (std::size_t i = 0; i < n; ++i)
      if (p[i] != L.s[i]) return false;
  }
  p += n;
  return true;
}

inline bool is_digit(char c) noexcept {
  return static_cast<unsigned>(static_cast<unsigned char>(c) - '0') <= 9;
}

// How many of the 8 bytes of x, from the lowest, are ASCII digits before the
// first that is not. A carry out of a byte only ever comes from a non-digit,
// so it can only disturb bytes after the first non-digit, which do not count.
inline unsigned leading_digits(std::uint64_t x) noexcept {
  const std::uint64_t y =
      ((x & 0xF0F0F0F0F0F0F0F0) | (((x + 0x0606060606060606) & 0xF0F0F0F0F0F0F0F0) >> 4)) ^
      0x3333333333333333;
  return y == 0 ? 8 : static_cast<unsigned>(std::countr_zero(y)) / 8;
}

// The value of 8 ASCII digits, the first in the lowest byte (Lemire's SWAR).
inline std::uint64_t parse_eight(std::uint64_t x) noexcept {
  constexpr std::uint64_t kMask = 0x000000FF000000FF;
  constexpr std::uint64_t kMul1 = 100 + (1000000ULL << 32);
  constexpr std::uint64_t kMul2 = 1 + (10000ULL << 32);
  x -= 0x3030303030303030;
  x = x * 10 + (x >> 8);
  return (((x & kMask) * kMul1) + (((x >> 16) & kMask) * kMul2)) >> 32;
}

// The value of the first n (1..8) digits of x: moved to the top, '0's below.
inline std::uint64_t parse_digits(std::uint64_t x, unsigned n) noexcept {
  const unsigned shift = 8 * (8 - n);
  if (shift != 0) x = x << shift | (0x3030303030303030 >> (64 - shift));
  return parse_eight(x);
}

constexpr std::uint64_t kPow10[] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000};

// Canonical unsigned integer no larger than `max` (at most 5 digits).
inline bool small_uint(const char*& p, const char* end, unsigned max, unsigned& out) noexcept {
  if (end - p >= 8) {  // always, inside a canonical line: ts and seq follow
    const std::uint64_t x = load64(p);
    const unsigned n = leading_digits(x);
    if (n == 0 || n > 5 || ((x & 0xFF) == '0' && n > 1)) return false;  // "05" is not JSON
    const auto v = static_cast<unsigned>(parse_digits(x, n));
    if (v > max) return false;
    p += n;
    out = v;
    return true;
  }
  if (p == end || !is_digit(*p)) return false;
  unsigned v = static_cast<unsigned char>(*p++) - unsigned{'0'};
  if (v == 0) {
    if (p != end && is_digit(*p)) return false;
    out = 0;
    return true;
  }
  for (; p != end && is_digit(*p); ++p) {
    v = v * 10 + (static_cast<unsigned char>(*p) - unsigned{'0'});
    if (v > max) return false;
  }
  if (v > max) return false;
  out = v;
  return true;
}

// Canonical unsigned 64-bit integer (up to 20 digits, overflow checked).
inline bool u64(const char*& p, const char* end, std::uint64_t& out) noexcept {
  const char* const start = p;
  std::uint64_t v = 0;
  if (end - p >= 8) {
    std::uint64_t x = load64(p);
    unsigned n = leading_digits(x);
    if (n == 0) return false;
    if ((x & 0xFF) == '0') {  // "0" alone; "05" is not JSON
      if (n > 1) return false;
      ++p;
      out = 0;
      return true;
    }
    if (n < 8) {
      p += n;
      out = parse_digits(x, n);
      return true;
    }
    v = parse_eight(x);
    p += 8;
    if (end - p >= 8) {
      x = load64(p);
      n = leading_digits(x);
      if (n < 8) {
        if (n != 0) v = v * kPow10[n] + parse_digits(x, n);
        p += n;
        out = v;
        return true;
      }
      v = v * 100000000 + parse_eight(x);
      p += 8;
    }
  } else {
    if (p == end || !is_digit(*p)) return false;
    if (*p == '0') {
      ++p;
      if (p != end && is_digit(*p)) return false;
      out = 0;
      return true;
    }
  }
  // The rest digit by digit: 19 digits never overflow, a 20th is checked.
  const char* const safe_end = end - start > 19 ? start + 19 : end;
  for (; p < safe_end; ++p) {
    const unsigned d = static_cast<unsigned char>(*p) - unsigned{'0'};
    if (d > 9) {
      out = v;
      return true;
    }
    v = v * 10 + d;
  }
  if (p != end && is_digit(*p)) {
    const unsigned d = static_cast<unsigned char>(*p) - unsigned{'0'};
    if (v > (std::numeric_limits<std::uint64_t>::max() - d) / 10) return false;
    v = v * 10 + d;
    ++p;
    if (p != end && is_digit(*p)) return false;
  }
  out = v;
  return true;
}

inline bool i64(const char*& p, const char* end, std::int64_t& out) noexcept {
  bool neg = false;
  if (p != end && *p == '-') {
    neg = true;
    ++p;
  }
  std::uint64_t m = 0;
  if (!u64(p, end, m)) return false;
  if (neg) {
    if (m == 0 || m > std::uint64_t{1} << 63) return false;  // "-0" is not canonical
    out = static_cast<std::int64_t>(0 - m);
  } else {
    if (m > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return false;
    out = static_cast<std::int64_t>(m);
  }
  return true;
}

inline bool bend(const char*& p, const char* end, std::int16_t& out) noexcept {
  bool neg = false;
  if (p != end && *p == '-') {
    neg = true;
    ++p;
  }
  unsigned m = 0;
  if (!small_uint(p, end, neg ? 8192 : 8191, m)) return false;
  if (neg && m == 0) return false;
  out = static_cast<std::int16_t>(neg ? -static_cast<int>(m) : static_cast<int>(m));
  return true;
}

inline bool channel(const char*& p, const char* end, std::uint8_t& out) noexcept {
  unsigned c = 0;
  if (!expect<",\"c\":">(p, end) || !small_uint(p, end, 16, c) || c == 0) return false;
  out = static_cast<std::uint8_t>(c - 1);
  return true;
}

template <Lit Key>
inline bool value7(const char*& p, const char* end, std::uint8_t& out) noexcept {
  unsigned v = 0;
  if (!expect<Key>(p, end) || !small_uint(p, end, 127, v)) return false;
  out = static_cast<std::uint8_t>(v);
  return true;
}

}  // namespace

std::string_view type_name(Kind k) noexcept {
  const auto i = static_cast<std::size_t>(k);
  return i < kKindCount ? kTypeNames[i] : std::string_view("?");
}

bool is_channel_message(Kind k) noexcept {
  return static_cast<std::uint8_t>(k) <= static_cast<std::uint8_t>(Kind::kPitchBend);
}

bool operator==(const Event& a, const Event& b) noexcept {
  if (a.kind != b.kind || a.ts_ns != b.ts_ns || a.seq != b.seq) return false;
  switch (shape_of(a.kind)) {
    case Shape::kChanNoteValue:
      return a.channel == b.channel && a.data1 == b.data1 && a.data2 == b.data2;
    case Shape::kChanValue:
      return a.channel == b.channel && a.data1 == b.data1;
    case Shape::kChanBend:
      return a.channel == b.channel && a.value14 == b.value14;
    case Shape::kValue7:
      return a.data1 == b.data1;
    case Shape::kValue14:
      return a.value14 == b.value14;
    case Shape::kNone:
      return true;
    case Shape::kSysEx: {
      if (a.sysex_index != b.sysex_index || a.sysex_last != b.sysex_last ||
          a.sysex_len != b.sysex_len)
        return false;
      const std::size_t n = std::min<std::size_t>(a.sysex_len, kMaxSysExChunk);
      return std::memcmp(a.sysex.data(), b.sysex.data(), n) == 0;
    }
  }
  return false;
}

std::size_t format_line(const Event& e, std::span<char> out) noexcept {
  return detail::format_bounded<kMaxLineBytes>(e, out, write_line);
}

std::string to_line(const Event& e) {
  return detail::to_string_bounded<kMaxLineBytes>(e, write_line);
}

namespace detail {

bool parse_canonical(std::string_view line, Event& e) noexcept {
  const char* p = line.data();
  const char* const end = p + line.size();
  if (!expect<"{\"t\":\"">(p, end)) return false;

  // The type: 1..5 characters before its closing quote.
  std::uint64_t t = 0;
  if (end - p >= 8) {
    // Find the quote in one 8-byte load (the lowest zero byte of x ^ '""..."'
    // is exact), and keep the bytes before it as the tag.
    const std::uint64_t x = load64(p);
    const std::uint64_t q = x ^ 0x2222222222222222;
    const std::uint64_t zero = (q - 0x0101010101010101) & ~q & 0x8080808080808080;
    if (zero == 0) return false;
    const auto len = static_cast<unsigned>(std::countr_zero(zero)) / 8;
    if (len == 0 || len > 5) return false;
    t = x & ((std::uint64_t{1} << (8 * len)) - 1);
    p += len + 1;
  } else {
    return false;  // too short to be an event line
  }

  // The common kinds first, by plain compares; the rest through a switch.
  if (t == tag("n+"))
    e.kind = Kind::kNoteOn;
  else if (t == tag("n-"))
    e.kind = Kind::kNoteOff;
  else if (t == tag("cc"))
    e.kind = Kind::kControlChange;
  else
    switch (t) {
      case tag("n+"):
        e.kind = Kind::kNoteOn;
        break;
      case tag("n-"):
        e.kind = Kind::kNoteOff;
        break;
      case tag("cc"):
        e.kind = Kind::kControlChange;
        break;
      case tag("pb"):
        e.kind = Kind::kPitchBend;
        break;
      case tag("clk"):
        e.kind = Kind::kClock;
        break;
      case tag("pp"):
        e.kind = Kind::kPolyPressure;
        break;
      case tag("pc"):
        e.kind = Kind::kProgramChange;
        break;
      case tag("cp"):
        e.kind = Kind::kChannelPressure;
        break;
      case tag("mtc"):
        e.kind = Kind::kTimeCode;
        break;
      case tag("spp"):
        e.kind = Kind::kSongPosition;
        break;
      case tag("ss"):
        e.kind = Kind::kSongSelect;
        break;
      case tag("tr"):
        e.kind = Kind::kTuneRequest;
        break;
      case tag("start"):
        e.kind = Kind::kStart;
        break;
      case tag("cont"):
        e.kind = Kind::kContinue;
        break;
      case tag("stop"):
        e.kind = Kind::kStop;
        break;
      case tag("as"):
        e.kind = Kind::kActiveSensing;
        break;
      case tag("rst"):
        e.kind = Kind::kReset;
        break;
      case tag("sx"):
        e.kind = Kind::kSysEx;
        break;
      default:
        return false;
    }

  switch (shape_of(e.kind)) {
    case Shape::kChanNoteValue:
      if (!channel(p, end, e.channel) || !value7<",\"n\":">(p, end, e.data1) ||
          !value7<",\"v\":">(p, end, e.data2))
        return false;
      break;
    case Shape::kChanValue:
      if (!channel(p, end, e.channel) || !value7<",\"v\":">(p, end, e.data1)) return false;
      break;
    case Shape::kChanBend:
      if (!channel(p, end, e.channel) || !expect<",\"v\":">(p, end) || !bend(p, end, e.value14))
        return false;
      break;
    case Shape::kValue7:
      if (!value7<",\"v\":">(p, end, e.data1)) return false;
      break;
    case Shape::kValue14: {
      unsigned v = 0;
      if (!expect<",\"v\":">(p, end) || !small_uint(p, end, 16383, v)) return false;
      e.value14 = static_cast<std::int16_t>(v);
      break;
    }
    case Shape::kNone:
      break;
    case Shape::kSysEx: {
      unsigned index = 0;
      unsigned last = 0;
      if (!expect<",\"i\":">(p, end) || !small_uint(p, end, 65535, index) ||
          !expect<",\"l\":">(p, end) || !small_uint(p, end, 1, last) ||
          !expect<",\"d\":\"">(p, end))
        return false;
      const char* q =
          static_cast<const char*>(std::memchr(p, '"', static_cast<std::size_t>(end - p)));
      if (q == nullptr) return false;
      const auto digits = static_cast<std::size_t>(q - p);
      if (digits % 2 != 0 || digits > 2 * kMaxSysExChunk) return false;
      for (std::size_t i = 0; i < digits / 2; ++i) {
        const std::uint8_t hi = kHexLower[static_cast<unsigned char>(p[2 * i])];
        const std::uint8_t lo = kHexLower[static_cast<unsigned char>(p[2 * i + 1])];
        if ((hi | lo) == 0xFF || hi > 7) return false;  // not hex, or not a 7-bit data byte
        e.sysex[i] = static_cast<std::uint8_t>(hi << 4 | lo);
      }
      e.sysex_index = static_cast<std::uint16_t>(index);
      e.sysex_last = last == 1;
      e.sysex_len = static_cast<std::uint16_t>(digits / 2);
      p = q + 1;
      break;
    }
  }

  if (!expect<",\"ts\":">(p, end) || !i64(p, end, e.ts_ns) || !expect<",\"seq\":">(p, end) ||
      !u64(p, end, e.seq) || p == end || *p != '}' || p + 1 != end)
    return false;
  return true;
}

Result<simdjson::dom::object> parse_object(std::string_view line) {
  if (line.size() > kMaxGeneralLineBytes)
    return parse_error("jmid: line too long (" + std::to_string(line.size()) + " bytes, at most " +
                       std::to_string(kMaxGeneralLineBytes) + ")");
  thread_local simdjson::dom::parser parser;
  const auto padded = protocol::detail::padded_copy(line);
  simdjson::dom::element doc;
  if (auto err = parser.parse(padded.data, padded.size, false).get(doc); err)
    return parse_error(std::string("jmid: not valid JSON (") + simdjson::error_message(err) + ")");
  simdjson::dom::object obj;
  if (doc.get_object().get(obj)) return parse_error("jmid: a line must be a JSON object");
  return obj;
}

namespace {

enum KeyBit : unsigned {
  kT = 1,
  kC = 2,
  kN = 4,
  kV = 8,
  kI = 16,
  kL = 32,
  kD = 64,
  kTs = 128,
  kSeq = 256
};

struct Labels {
  const char* n;  // what 'n' means for the kind
  const char* v;  // what 'v' means
};

Labels labels_of(Kind k) noexcept {
  switch (k) {
    case Kind::kNoteOn:
    case Kind::kNoteOff:
      return {"note", "velocity"};
    case Kind::kPolyPressure:
      return {"note", "pressure"};
    case Kind::kControlChange:
      return {"controller", "value"};
    case Kind::kProgramChange:
      return {"", "program"};
    case Kind::kChannelPressure:
      return {"", "pressure"};
    case Kind::kPitchBend:
      return {"", "pitch bend"};
    case Kind::kTimeCode:
      return {"", "MTC quarter-frame byte"};
    case Kind::kSongPosition:
      return {"", "song position"};
    case Kind::kSongSelect:
      return {"", "song number"};
    default:
      return {"", ""};
  }
}

Result<std::int64_t> get_int(simdjson::dom::element el, const char* key) {
  std::int64_t v = 0;
  if (el.get_int64().get(v))
    return detail::parse_error(std::string("jmid: '") + key + "' must be an integer");
  return v;
}

Result<std::int64_t> get_ranged(simdjson::dom::element el, const char* key, const char* what,
                                std::int64_t lo, std::int64_t hi) {
  auto v = get_int(el, key);
  if (!v) return v;
  if (*v < lo || *v > hi)
    return detail::parse_error(std::string("jmid: ") + what + " must be " + std::to_string(lo) +
                               ".." + std::to_string(hi) + ", got " + std::to_string(*v));
  return v;
}

}  // namespace

Result<Event> event_from_object(simdjson::dom::object obj) {
  simdjson::dom::element t_el, c_el, n_el, v_el, i_el, l_el, d_el, ts_el, seq_el;
  const auto fields = detail::collect_fields(obj, {{"t", &t_el},
                                                   {"c", &c_el},
                                                   {"n", &n_el},
                                                   {"v", &v_el},
                                                   {"i", &i_el},
                                                   {"l", &l_el},
                                                   {"d", &d_el},
                                                   {"ts", &ts_el},
                                                   {"seq", &seq_el}});
  if (!fields) return std::unexpected(fields.error());
  const unsigned seen = *fields;
  if (!(seen & kT)) return parse_error("jmid: missing key 't'");
  std::string_view type;
  if (t_el.get_string().get(type)) return parse_error("jmid: 't' must be a string");
  const auto it = std::find(kTypeNames.begin(), kTypeNames.end(), type);
  if (it == kTypeNames.end()) {
    if (type == "j" || type == "fb")
      return parse_error("jmid: a '" + std::string(type) +
                         "' line is not an event (parse_any reads it)");
    std::string shown(type.substr(0, 32));
    return parse_error("jmid: unknown type '" + shown + (type.size() > 32 ? "...'" : "'"));
  }
  Event e;
  e.kind = static_cast<Kind>(it - kTypeNames.begin());
  const Labels lab = labels_of(e.kind);
  auto need = [&](unsigned bit, const char* key) -> std::optional<Error> {
    if (seen & bit) return std::nullopt;
    return Error{Errc::kParse,
                 std::string("jmid: missing key '") + key + "' for " + std::string(type)};
  };
  const Shape shape = shape_of(e.kind);
  if (shape == Shape::kChanNoteValue || shape == Shape::kChanValue || shape == Shape::kChanBend) {
    if (auto m = need(kC, "c")) return std::unexpected(*m);
    auto c = get_ranged(c_el, "c", "channel", 1, 16);
    if (!c) return std::unexpected(c.error());
    e.channel = static_cast<std::uint8_t>(*c - 1);
  }
  if (shape == Shape::kChanNoteValue) {
    if (auto m = need(kN, "n")) return std::unexpected(*m);
    auto n = get_ranged(n_el, "n", lab.n, 0, 127);
    if (!n) return std::unexpected(n.error());
    e.data1 = static_cast<std::uint8_t>(*n);
  }
  if (shape != Shape::kNone && shape != Shape::kSysEx) {
    if (auto m = need(kV, "v")) return std::unexpected(*m);
    std::int64_t lo = 0, hi = 127;
    if (shape == Shape::kChanBend) lo = -8192, hi = 8191;
    if (shape == Shape::kValue14) hi = 16383;
    auto v = get_ranged(v_el, "v", lab.v, lo, hi);
    if (!v) return std::unexpected(v.error());
    if (shape == Shape::kChanNoteValue)
      e.data2 = static_cast<std::uint8_t>(*v);
    else if (shape == Shape::kChanBend || shape == Shape::kValue14)
      e.value14 = static_cast<std::int16_t>(*v);
    else
      e.data1 = static_cast<std::uint8_t>(*v);
  }
  if (shape == Shape::kSysEx) {
    if (auto m = need(kI, "i")) return std::unexpected(*m);
    if (auto m = need(kL, "l")) return std::unexpected(*m);
    if (auto m = need(kD, "d")) return std::unexpected(*m);
    auto i = get_ranged(i_el, "i", "SysEx chunk index 'i'", 0, 65535);
    if (!i) return std::unexpected(i.error());
    auto l = get_ranged(l_el, "l", "SysEx last-chunk flag 'l'", 0, 1);
    if (!l) return std::unexpected(l.error());
    std::string_view d;
    if (d_el.get_string().get(d)) return parse_error("jmid: 'd' must be a string of hex digits");
    if (d.size() % 2 != 0)
      return parse_error("jmid: 'd' has an odd number of hex digits (" + std::to_string(d.size()) +
                         ")");
    if (d.size() > 2 * kMaxSysExChunk)
      return parse_error("jmid: 'd' holds " + std::to_string(d.size() / 2) + " bytes, more than " +
                         std::to_string(kMaxSysExChunk) + " per chunk");
    for (std::size_t k = 0; k < d.size() / 2; ++k) {
      const std::uint8_t hi = kHexAny[static_cast<unsigned char>(d[2 * k])];
      const std::uint8_t lo = kHexAny[static_cast<unsigned char>(d[2 * k + 1])];
      if ((hi | lo) == 0xFF)
        return parse_error("jmid: 'd' has a character that is not a hex digit at " +
                           std::to_string(2 * k));
      const auto b = static_cast<std::uint8_t>(hi << 4 | lo);
      if (b > 0x7F)
        return parse_error("jmid: SysEx byte " + std::to_string(k) + " is 0x" +
                           std::string{kHexDigits[b >> 4], kHexDigits[b & 15]} +
                           ", not a 7-bit data byte");
      e.sysex[k] = b;
    }
    e.sysex_index = static_cast<std::uint16_t>(*i);
    e.sysex_last = *l == 1;
    e.sysex_len = static_cast<std::uint16_t>(d.size() / 2);
  }
  if (seen & kTs) {
    if (ts_el.get_int64().get(e.ts_ns))
      return parse_error("jmid: 'ts' must be a signed 64-bit integer");
  }
  if (seen & kSeq) {
    if (seq_el.get_uint64().get(e.seq))
      return parse_error("jmid: 'seq' must be an unsigned 64-bit integer");
  }
  return e;
}

}  // namespace detail

Result<Event> parse_line_general(std::string_view line) {
  auto obj = detail::parse_object(line);
  if (!obj) return std::unexpected(std::move(obj.error()));
  return detail::event_from_object(*obj);
}

Result<Event> parse_line(std::string_view line) {
  // One Event, built in place in the result: the fast path must not pay for
  // copies of its 256-byte SysEx buffer.
  Result<Event> r;
  if (!detail::parse_canonical(line, *r)) r = parse_line_general(line);
  return r;
}

}  // namespace jamnet::protocol::jmid
