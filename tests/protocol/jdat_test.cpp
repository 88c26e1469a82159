#include "jamnet/protocol/jdat.hpp"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace jamnet::protocol::jdat {
namespace {

constexpr SampleFormat kFormats[] = {SampleFormat::kFloat32, SampleFormat::kInt24,
                                     SampleFormat::kInt16};
constexpr StreamRole kJellieRoles[] = {StreamRole::kJellieEven, StreamRole::kJellieOdd,
                                       StreamRole::kJellieParityP, StreamRole::kJellieParityQ};

std::uint32_t mask_of(SampleFormat f) {
  return f == SampleFormat::kFloat32 ? 0xFFFFFFFFu : (1u << (8 * bytes_per_sample(f))) - 1u;
}

JdatHeader header(SampleFormat f, StreamRole r, int channels, int frames) {
  JdatHeader h;
  h.format = f;
  h.role = r;
  h.channels = static_cast<std::uint8_t>(channels);
  h.frames = static_cast<std::uint16_t>(frames);
  h.sample_rate = 44100;
  h.first_frame = 0xFEDCBA9876543210ull + static_cast<std::uint64_t>(frames);
  return h;
}

// Words as a stream of the role carries them: samples of a music-like signal
// (a few partials) for plain/E/O, arbitrary bit patterns for parity.
std::vector<std::uint32_t> words_for(const JdatHeader& h, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::uint32_t> w(h.word_count());
  const bool parity = h.role == StreamRole::kJellieParityP || h.role == StreamRole::kJellieParityQ;
  for (std::size_t i = 0; i < w.size(); ++i) {
    if (parity) {
      w[i] = static_cast<std::uint32_t>(rng()) & mask_of(h.format);
    } else {
      const double t = static_cast<double>(i) / h.sample_rate;
      const double x = 0.4 * std::sin(2 * 3.14159265358979 * 220 * t) +
                       0.2 * std::sin(2 * 3.14159265358979 * 659 * t + 1) +
                       0.05 * (static_cast<double>(rng()) / 4294967296.0 - 0.5);
      w[i] = to_word(h.format, static_cast<float>(x));
    }
  }
  return w;
}

void expect_same_header(const JdatHeader& a, const JdatHeader& b) {
  EXPECT_EQ(a.format, b.format);
  EXPECT_EQ(a.role, b.role);
  EXPECT_EQ(a.channels, b.channels);
  EXPECT_EQ(a.frames, b.frames);
  EXPECT_EQ(a.sample_rate, b.sample_rate);
  EXPECT_EQ(a.first_frame, b.first_frame);
}

std::vector<std::uint8_t> encode(const JdatHeader& h, const std::vector<std::uint32_t>& words) {
  std::vector<std::uint8_t> out(binary_size(h));
  auto n = encode_binary(h, words, out);
  EXPECT_TRUE(n.has_value()) << n.error().message;
  EXPECT_EQ(n.value_or(0), out.size());
  return out;
}

// --- names and conversions ----------------------------------------------

TEST(Jdat, FormatNamesRoundTrip) {
  for (auto f : kFormats) {
    auto back = parse_sample_format(to_string(f));
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(*back, f);
  }
  EXPECT_EQ(bytes_per_sample(SampleFormat::kFloat32), 4u);
  EXPECT_EQ(bytes_per_sample(SampleFormat::kInt24), 3u);
  EXPECT_EQ(bytes_per_sample(SampleFormat::kInt16), 2u);
  auto bad = parse_sample_format("f64");
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message.find("f64"), std::string::npos);
}

TEST(Jdat, Int16WordsRoundToNearestAndSaturate) {
  const auto f = SampleFormat::kInt16;
  EXPECT_EQ(to_word(f, 0.0f), 0u);
  EXPECT_EQ(to_word(f, 0.5f), 16384u);
  EXPECT_EQ(to_word(f, -0.5f), 0xC000u);
  EXPECT_EQ(to_word(f, 1.0f), 32767u);  // +1 is outside [-1, 1): saturates
  EXPECT_EQ(to_word(f, -1.0f), 0x8000u);
  EXPECT_EQ(to_word(f, 7.5f), 32767u);
  EXPECT_EQ(to_word(f, -7.5f), 0x8000u);
  EXPECT_EQ(to_word(f, std::numeric_limits<float>::infinity()), 32767u);
  EXPECT_EQ(to_word(f, -std::numeric_limits<float>::infinity()), 0x8000u);
  EXPECT_EQ(to_word(f, std::numeric_limits<float>::quiet_NaN()), 0u);
  EXPECT_EQ(to_word(f, 1.4f / 32768), 1u);
  EXPECT_EQ(to_word(f, 1.6f / 32768), 2u);
  EXPECT_EQ(to_word(f, -1.6f / 32768), 0xFFFEu);
  EXPECT_EQ(from_word(f, 0x8000u), -1.0f);
  EXPECT_EQ(from_word(f, 0x7FFFu), 32767.0f / 32768);
  EXPECT_EQ(from_word(f, 0xFFFFu), -1.0f / 32768);
  // Every word converts to a sample that converts back to the same word.
  for (std::uint32_t w = 0; w <= 0xFFFF; ++w) ASSERT_EQ(to_word(f, from_word(f, w)), w);
}

TEST(Jdat, Int24WordsRoundToNearestAndSaturate) {
  const auto f = SampleFormat::kInt24;
  EXPECT_EQ(to_word(f, 0.5f), 0x400000u);
  EXPECT_EQ(to_word(f, 1.0f), 0x7FFFFFu);
  EXPECT_EQ(to_word(f, -1.0f), 0x800000u);
  EXPECT_EQ(to_word(f, -2.0f), 0x800000u);
  EXPECT_EQ(to_word(f, -1.0f / 8388608), 0xFFFFFFu);  // two's complement in the low 24 bits
  EXPECT_EQ(to_word(f, std::numeric_limits<float>::quiet_NaN()), 0u);
  EXPECT_EQ(from_word(f, 0x800000u), -1.0f);
  EXPECT_EQ(from_word(f, 0xFFFFFFu), -1.0f / 8388608);
  std::mt19937 rng(3);
  for (int i = 0; i < 100000; ++i) {
    const std::uint32_t w = rng() & 0xFFFFFFu;
    ASSERT_EQ(to_word(f, from_word(f, w)), w);
    const float x = std::uniform_real_distribution<float>(-1.0f, 1.0f)(rng);
    ASSERT_LE(std::fabs(from_word(f, to_word(f, x)) - x), 0.5f / 8388608 + 1e-12f);
  }
}

TEST(Jdat, Float32WordsAreTheBitPattern) {
  const auto f = SampleFormat::kFloat32;
  for (std::uint32_t w : {0u, 0x80000000u, 0x3F800000u, 0x7F800000u, 0xFF800000u, 0x7FC00001u,
                          0xFFFFFFFFu, 0x00000001u}) {
    EXPECT_EQ(to_word(f, from_word(f, w)), w);
  }
  EXPECT_EQ(to_word(f, 0.25f), std::bit_cast<std::uint32_t>(0.25f));
  std::vector<float> s{0.1f, -0.2f, 1.5f};
  std::vector<std::uint32_t> w(3);
  std::vector<float> back(3);
  to_words(f, s, w);
  from_words(f, w, back);
  EXPECT_EQ(back, s);
}

// --- validation -------------------------------------------------------------

TEST(Jdat, ValidateChecksEveryRange) {
  EXPECT_TRUE(validate(header(SampleFormat::kInt16, StreamRole::kPlain, 64, 512)).has_value());
  EXPECT_TRUE(validate(header(SampleFormat::kInt16, StreamRole::kPlain, 2, 17)).has_value());
  auto bad = [](JdatHeader h, const char* what) {
    auto r = validate(h);
    ASSERT_FALSE(r.has_value()) << what;
    EXPECT_NE(r.error().message.find(what), std::string::npos) << r.error().message;
  };
  auto h = header(SampleFormat::kFloat32, StreamRole::kPlain, 1, 64);
  auto g = h;
  g.channels = 0;
  bad(g, "channels");
  g.channels = 65;
  bad(g, "channels");
  g = h;
  g.frames = 15;
  bad(g, "frames");
  g.frames = 513;
  bad(g, "frames");
  g = h;
  g.sample_rate = 7999;
  bad(g, "sample rate");
  g.sample_rate = 384001;
  bad(g, "sample rate");
  g = h;
  g.format = static_cast<SampleFormat>(3);
  bad(g, "format");
  g = h;
  g.role = static_cast<StreamRole>(5);
  bad(g, "role");
  g = header(SampleFormat::kInt16, StreamRole::kJellieOdd, 2, 64);
  bad(g, "mono");
  g = header(SampleFormat::kInt16, StreamRole::kJellieOdd, 1, 65);
  bad(g, "even");
}

TEST(Jdat, WordCountFollowsTheRole) {
  EXPECT_EQ(header(SampleFormat::kInt16, StreamRole::kPlain, 8, 512).word_count(), 4096);
  EXPECT_EQ(header(SampleFormat::kInt16, StreamRole::kPlain, 64, 512).word_count(), 32768);
  for (auto r : kJellieRoles) EXPECT_EQ(header(SampleFormat::kInt16, r, 1, 64).word_count(), 32);
}

// --- BINARY -----------------------------------------------------------------

TEST(JdatBinary, LayoutIsBigEndianAsDocumented) {
  JdatHeader h = header(SampleFormat::kInt24, StreamRole::kPlain, 1, 16);
  h.sample_rate = 48000;
  h.first_frame = 0x0102030405060708ull;
  std::vector<std::uint32_t> words(16, 0);
  words[0] = to_word(SampleFormat::kInt24, -1.0f);
  words[1] = to_word(SampleFormat::kInt24, -1.0f / 8388608);
  words[2] = 0x123456;
  const auto bytes = encode(h, words);
  ASSERT_EQ(bytes.size(), kBinaryHeaderSize + 16 * 3);
  const std::vector<std::uint8_t> head(bytes.begin(), bytes.begin() + 29);
  const std::vector<std::uint8_t> expected{
      1,    1,    0,    1,                          // version, format i24, role plain, channels
      0x00, 0x10, 0x00, 0x10,                       // frames 16, word_count 16
      0x00, 0x00, 0xBB, 0x80,                       // 48000
      1,    2,    3,    4,    5,    6,    7,    8,  // first_frame
      0x80, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0x12, 0x34, 0x56};
  EXPECT_EQ(head, expected);
}

TEST(JdatBinary, RoundTripsEveryFormatChannelCountAndBlockSize) {
  std::uint32_t seed = 1;
  for (auto f : kFormats) {
    for (int ch = 1; ch <= 8; ++ch) {
      for (int frames : {16, 17, 64, 100, 256, 512}) {
        const auto h = header(f, StreamRole::kPlain, ch, frames);
        const auto words = words_for(h, ++seed);
        const auto bytes = encode(h, words);
        ASSERT_EQ(bytes.size(), kBinaryHeaderSize + words.size() * bytes_per_sample(f));
        auto peek = peek_binary(bytes);
        ASSERT_TRUE(peek.has_value()) << peek.error().message;
        expect_same_header(*peek, h);
        std::vector<std::uint32_t> back(h.word_count());
        auto got = decode_binary(bytes, back);
        ASSERT_TRUE(got.has_value()) << got.error().message;
        expect_same_header(*got, h);
        ASSERT_EQ(back, words) << to_string(f) << " ch " << ch << " frames " << frames;
      }
    }
  }
}

TEST(JdatBinary, RoundTripsJellieStreams) {
  for (auto f : kFormats) {
    for (auto r : kJellieRoles) {
      for (int frames : {16, 64, 512}) {
        const auto h = header(f, r, 1, frames);
        const auto words = words_for(h, static_cast<std::uint32_t>(frames));
        const auto bytes = encode(h, words);
        std::vector<std::uint32_t> back(kMaxFrames * kMaxChannels);
        auto got = decode_binary(bytes, back);
        ASSERT_TRUE(got.has_value()) << got.error().message;
        expect_same_header(*got, h);
        back.resize(got->word_count());
        EXPECT_EQ(back, words);
      }
    }
  }
}

TEST(JdatBinary, EdgeValuesPassBitExactly) {
  const std::vector<std::uint32_t> specials{std::bit_cast<std::uint32_t>(1.0f),
                                            std::bit_cast<std::uint32_t>(-1.0f),
                                            std::bit_cast<std::uint32_t>(-0.0f),
                                            0x7F800000u /* +inf */,
                                            0xFF800000u /* -inf */,
                                            0x7FC00000u /* NaN */,
                                            0x7FA00001u /* signalling NaN, payload */,
                                            0xFFFFFFFFu,
                                            0x00000001u /* smallest denormal */,
                                            std::bit_cast<std::uint32_t>(3.4028235e38f)};
  JdatHeader h = header(SampleFormat::kFloat32, StreamRole::kPlain, 1, 16);
  std::vector<std::uint32_t> words(16);
  for (std::size_t i = 0; i < words.size(); ++i) words[i] = specials[i % specials.size()];
  std::vector<std::uint32_t> back(16);
  ASSERT_TRUE(decode_binary(encode(h, words), back).has_value());
  EXPECT_EQ(back, words);
  // Saturated int samples (+-1 and beyond) at the ends of each int range.
  for (auto f : {SampleFormat::kInt16, SampleFormat::kInt24}) {
    h = header(f, StreamRole::kPlain, 2, 16);
    std::vector<float> samples(32);
    for (std::size_t i = 0; i < samples.size(); ++i)
      samples[i] = (i % 4 == 0) ? 1.0f : (i % 4 == 1) ? -1.0f : (i % 4 == 2) ? 3.0f : -3.0f;
    words.assign(32, 0);
    to_words(f, samples, words);
    back.assign(32, 0);
    ASSERT_TRUE(decode_binary(encode(h, words), back).has_value());
    EXPECT_EQ(back, words);
    std::vector<float> out(32);
    from_words(f, back, out);
    const float top = f == SampleFormat::kInt16 ? 32767.0f / 32768 : 8388607.0f / 8388608;
    for (std::size_t i = 0; i < out.size(); ++i) EXPECT_EQ(out[i], i % 2 == 0 ? top : -1.0f);
  }
}

TEST(JdatBinary, EveryTruncationAndExtensionIsRejected) {
  for (auto f : kFormats) {
    const auto h = header(f, StreamRole::kPlain, 3, 16);
    const auto bytes = encode(h, words_for(h, 9));
    std::vector<std::uint32_t> back(kMaxFrames * kMaxChannels);
    for (std::size_t len = 0; len < bytes.size(); ++len) {
      const std::vector<std::uint8_t> cut(bytes.begin(), bytes.begin() + static_cast<long>(len));
      auto r = decode_binary(cut, back);
      ASSERT_FALSE(r.has_value()) << "length " << len;
      EXPECT_FALSE(r.error().message.empty());
      EXPECT_NE(r.error().message.find("truncated"), std::string::npos) << r.error().message;
      EXPECT_FALSE(peek_binary(cut).has_value());
    }
    auto longer = bytes;
    longer.push_back(0);
    auto r = decode_binary(longer, back);
    ASSERT_FALSE(r.has_value());
    EXPECT_NE(r.error().message.find("trailing"), std::string::npos) << r.error().message;
  }
}

TEST(JdatBinary, InconsistentHeadersAreRejected) {
  const auto h = header(SampleFormat::kInt16, StreamRole::kPlain, 2, 32);
  const auto good = encode(h, words_for(h, 4));
  std::vector<std::uint32_t> back(kMaxFrames * kMaxChannels);
  auto expect_error = [&](std::size_t at, std::uint8_t value, const char* what,
                          Errc code = Errc::kParse) {
    auto bytes = good;
    bytes[at] = value;
    auto r = decode_binary(bytes, back);
    ASSERT_FALSE(r.has_value()) << what;
    EXPECT_EQ(r.error().code, code) << r.error().message;
    EXPECT_NE(r.error().message.find(what), std::string::npos) << r.error().message;
  };
  expect_error(0, 2, "version", Errc::kUnsupported);
  expect_error(0, 0, "version", Errc::kUnsupported);
  expect_error(1, 3, "format");
  expect_error(1, 255, "format");
  expect_error(2, 5, "role");
  expect_error(2, 1, "mono");  // a JELLIE role with 2 channels
  expect_error(3, 0, "channels");
  expect_error(3, 65, "channels");
  expect_error(3, 3, "word count");  // 3 channels: 96 words, the field says 64
  expect_error(5, 15, "frames");
  expect_error(4, 2, "frames");  // 544
  expect_error(7, 63, "word count");
  expect_error(6, 1, "word count");
  expect_error(8, 0xFF, "sample rate");
  expect_error(10, 0, "sample rate");  // 44100 -> 68
  // Same header, words for a different format: the length no longer fits.
  auto as_f32 = good;
  as_f32[1] = 0;
  auto r = decode_binary(as_f32, back);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("truncated"), std::string::npos);
}

TEST(JdatBinary, EncoderAndDecoderCheckTheirBuffers) {
  const auto h = header(SampleFormat::kInt16, StreamRole::kPlain, 1, 16);
  auto words = words_for(h, 5);
  std::vector<std::uint8_t> out(binary_size(h));
  auto r = encode_binary(h, std::span(words).first(15), out);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errc::kInvalidArgument);
  r = encode_binary(h, words, std::span(out).first(out.size() - 1));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errc::kTooLarge);
  words[3] = 0x10000;  // does not fit in 2 bytes
  r = encode_binary(h, words, out);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("word 3"), std::string::npos);
  auto bad = h;
  bad.frames = 8;
  EXPECT_FALSE(encode_binary(bad, std::span(words).first(8), out).has_value());

  words[3] = 0;
  const auto bytes = encode(h, words);
  std::vector<std::uint32_t> small(15);
  auto d = decode_binary(bytes, small);
  ASSERT_FALSE(d.has_value());
  EXPECT_EQ(d.error().code, Errc::kTooLarge);
}

TEST(JdatBinary, RandomGarbageIsRejectedCleanly) {
  std::mt19937 rng(42);
  std::vector<std::uint32_t> back(kMaxFrames * kMaxChannels);
  int accepted = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    std::vector<std::uint8_t> bytes(rng() % 300);
    for (auto& b : bytes) b = static_cast<std::uint8_t>(rng());
    if (iter % 2 == 1 && bytes.size() >= kBinaryHeaderSize) {
      // A plausible header with random fields nearby, so the checks past
      // the version byte get exercised too.
      bytes[0] = 1;
      bytes[1] %= 4;
      bytes[2] %= 6;
      bytes[3] %= 4;
      bytes[4] = 0;
      bytes[5] = static_cast<std::uint8_t>(16 + rng() % 4);
      bytes[6] = 0;
      bytes[7] = static_cast<std::uint8_t>(bytes[5] * (bytes[3] == 0 ? 1 : bytes[3]));
    }
    auto r = decode_binary(bytes, back);
    if (!r) {
      ASSERT_FALSE(r.error().message.empty());
      continue;
    }
    ++accepted;  // then it re-encodes to exactly the same bytes
    std::vector<std::uint8_t> again(binary_size(*r));
    ASSERT_TRUE(encode_binary(*r, std::span(back).first(r->word_count()), again).has_value());
    ASSERT_EQ(again, bytes);
  }
  EXPECT_LT(accepted, 20000);
}

// --- JSONL ----------------------------------------------------------------

TEST(JdatJsonl, WritesTheDocumentedLine) {
  JdatHeader h = header(SampleFormat::kInt16, StreamRole::kPlain, 1, 16);
  h.sample_rate = 48000;
  h.first_frame = 123;
  std::vector<std::uint32_t> words(16, 0);
  words[0] = to_word(SampleFormat::kInt16, 0.5f);
  words[1] = to_word(SampleFormat::kInt16, -1.0f);
  EXPECT_EQ(encode_jsonl(h, words),
            R"({"t":"jdat","v":1,"fmt":"i16","role":"plain","ch":1,"n":16,"rate":48000,"ff":123,)"
            R"("d":[16384,-32768,0,0,0,0,0,0,0,0,0,0,0,0,0,0]})");
  h.format = SampleFormat::kFloat32;
  words.assign(16, 0);
  words[0] = std::bit_cast<std::uint32_t>(0.1f);
  words[1] = std::bit_cast<std::uint32_t>(-0.0f);
  words[2] = 0x7F800000u;
  words[3] = std::bit_cast<std::uint32_t>(1e-30f);
  const std::string line = encode_jsonl(h, words);
  EXPECT_NE(line.find(R"("d":[0.1,-0,"0x7f800000",1e-30,0,)"), std::string::npos) << line;
  h.role = StreamRole::kJellieParityQ;
  h.frames = 32;
  words.assign(16, 0);
  words[0] = 0xFFFFFFFFu;
  EXPECT_NE(encode_jsonl(h, words).find(R"("role":"Q",)"), std::string::npos);
  EXPECT_NE(encode_jsonl(h, words).find(R"("d":[4294967295,0,)"), std::string::npos);
}

TEST(JdatJsonl, RoundTripsEveryFormatRoleChannelCountAndBlockSize) {
  std::uint32_t seed = 100;
  auto round_trip = [&](const JdatHeader& h) {
    const auto words = words_for(h, ++seed);
    const std::string line = encode_jsonl(h, words);
    EXPECT_EQ(line.find('\n'), std::string::npos);
    auto p = decode_jsonl(line);
    ASSERT_TRUE(p.has_value()) << p.error().message << "\n" << line.substr(0, 200);
    expect_same_header(p->header, h);
    ASSERT_EQ(p->words, words) << line.substr(0, 200);
  };
  for (auto f : kFormats) {
    for (int ch = 1; ch <= 8; ++ch)
      for (int frames : {16, 33, 64, 512}) round_trip(header(f, StreamRole::kPlain, ch, frames));
    for (auto r : kJellieRoles)
      for (int frames : {16, 64, 512}) round_trip(header(f, r, 1, frames));
  }
}

TEST(JdatJsonl, Float32SamplesRoundTripBitExactlyIncludingNonFinite) {
  JdatHeader h = header(SampleFormat::kFloat32, StreamRole::kPlain, 4, 128);
  std::mt19937 rng(7);
  std::vector<std::uint32_t> words(h.word_count());
  for (auto& w : words) w = static_cast<std::uint32_t>(rng());  // any bits: NaNs, denormals, huge
  words[0] = 0x7F800000u;
  words[1] = 0xFFC00000u;
  words[2] = 0x00000001u;
  words[3] = 0x80000000u;
  words[4] = 0x7F7FFFFFu;
  auto p = decode_jsonl(encode_jsonl(h, words));
  ASSERT_TRUE(p.has_value()) << p.error().message;
  EXPECT_EQ(p->words, words);
}

TEST(JdatJsonl, AcceptsAnyKeyOrderWhitespaceAndUnknownKeys) {
  const std::string line =
      R"( { "d" : [ 1 , -2 ,3,4,5,6,7,8,9,10,11,12,13,14,15,16 ], "future" : {"x":[1,{"y":null}]},)"
      R"( "ff":5, "rate":48000, "n":16, "ch":1, "role":"plain", "fmt":"i24", "v":1,)"
      R"( "extra":"ignored", "t":"jdat" } )";
  auto p = decode_jsonl(line);
  ASSERT_TRUE(p.has_value()) << p.error().message;
  EXPECT_EQ(p->header.format, SampleFormat::kInt24);
  EXPECT_EQ(p->header.first_frame, 5u);
  ASSERT_EQ(p->words.size(), 16u);
  EXPECT_EQ(p->words[1], 0xFFFFFEu);
  EXPECT_EQ(p->words[15], 16u);
  // Float text other than the shortest form reads as the nearest float32.
  auto q = decode_jsonl(
      R"({"t":"jdat","v":1,"fmt":"f32","role":"plain","ch":1,"n":16,"rate":8000,"ff":0,)"
      R"("d":[0.10000000000000000001,1E0,-2.5e-1,0,0,0,0,0,0,0,0,0,0,0,0,"0x7fc00000"]})");
  ASSERT_TRUE(q.has_value()) << q.error().message;
  EXPECT_EQ(q->words[0], std::bit_cast<std::uint32_t>(0.1f));
  EXPECT_EQ(q->words[1], std::bit_cast<std::uint32_t>(1.0f));
  EXPECT_EQ(q->words[2], std::bit_cast<std::uint32_t>(-0.25f));
  EXPECT_EQ(q->words[15], 0x7FC00000u);
}

TEST(JdatJsonl, MissingKeysAreNamed) {
  const std::string keys[] = {"t", "v", "fmt", "role", "ch", "n", "rate", "ff", "d"};
  const std::string values[] = {R"("jdat")",  "1", R"("i16")",
                                R"("plain")", "1", "16",
                                "48000",      "0", "[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]"};
  for (std::size_t skip = 0; skip < 9; ++skip) {
    std::string line = "{";
    for (std::size_t k = 0; k < 9; ++k) {
      if (k == skip) continue;
      if (line.size() > 1) line += ",";
      line += "\"" + keys[k] + "\":" + values[k];
    }
    line += "}";
    auto p = decode_jsonl(line);
    ASSERT_FALSE(p.has_value()) << line;
    EXPECT_EQ(p.error().message, "jdat: missing key '" + keys[skip] + "'");
  }
}

TEST(JdatJsonl, MistypedAndOutOfRangeValuesAreRejected) {
  const std::string pre = R"({"t":"jdat","v":1,)";
  auto line = [&](const std::string& fmt, const std::string& role, const std::string& ch,
                  const std::string& n, const std::string& d) {
    return pre + R"("fmt":)" + fmt + R"(,"role":)" + role + R"(,"ch":)" + ch + R"(,"n":)" + n +
           R"(,"rate":48000,"ff":1,"d":)" + d + "}";
  };
  const std::string z16 = "[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]";
  const std::string z8 = "[0,0,0,0,0,0,0,0]";
  auto reject = [](const std::string& text, const std::string& what) {
    auto p = decode_jsonl(text);
    ASSERT_FALSE(p.has_value()) << text;
    EXPECT_NE(p.error().message.find(what), std::string::npos)
        << "'" << p.error().message << "' lacks '" << what << "'";
  };
  ASSERT_TRUE(decode_jsonl(line(R"("i16")", R"("plain")", "1", "16", z16)).has_value());
  reject(line("16", R"("plain")", "1", "16", z16), "'fmt' must be a string");
  reject(line(R"("i8")", R"("plain")", "1", "16", z16), "unknown sample format 'i8'");
  reject(line(R"("i16")", R"("R")", "1", "16", z16), "unknown role 'R'");
  reject(line(R"("i16")", R"("plain")", "\"1\"", "16", z16), "'ch' must be an integer");
  reject(line(R"("i16")", R"("plain")", "0", "16", z16), "channels");
  reject(line(R"("i16")", R"("plain")", "1", "16.0", z16), "'n' must be an integer");
  reject(line(R"("i16")", R"("plain")", "1", "99999999999", z16), "frames");
  reject(line(R"("i16")", R"("plain")", "1", "16", "{}"), "'d' must be an array");
  reject(line(R"("i16")", R"("plain")", "1", "16", z8), "holds 8 words, the header needs 16");
  reject(line(R"("i16")", R"("plain")", "1", "16", "[0," + z16.substr(1)), "more than the 16");
  reject(line(R"("i16")", R"("plain")", "1", "16", "[32768,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]"),
         "d[0] = 32768 is outside -32768..32767");
  reject(line(R"("i16")", R"("plain")", "1", "16", "[0.5,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]"),
         "d[0] must be an integer");
  reject(line(R"("f32")", R"("plain")", "1", "16", "[1e39,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]"),
         "d[0] is outside the float32 range");
  reject(line(R"("f32")", R"("plain")", "1", "16", "[0,true,0,0,0,0,0,0,0,0,0,0,0,0,0,0]"),
         "d[1] must be a number");
  reject(line(R"("f32")", R"("plain")", "1", "16", R"([0,"inf",0,0,0,0,0,0,0,0,0,0,0,0,0,0])"),
         "d[1] must be a number or");
  reject(line(R"("i16")", R"("P")", "1", "32", "[65536,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]"),
         "does not fit in 2 bytes");
  reject(line(R"("i16")", R"("P")", "1", "32", "[-1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]"),
         "must be an unsigned integer");
  reject(line(R"("i16")", R"("E")", "2", "32", z16), "mono");
  reject(line(R"("i16")", R"("E")", "1", "33", z16), "even");
  reject(pre + R"("t":"jdat"})", "duplicate key 't'");
  reject(R"({"t":"jmid","v":1})", "'t' must be \"jdat\"");
  reject(R"({"t":"jdat","v":2})", "unsupported version 2");
  reject("[1,2,3]", "must be a JSON object");
  reject("", "not valid JSON");
  reject(R"({"t":"jdat")", "");
  reject(line(R"("i16")", R"("plain")", "1", "16", z16) + " {}", "trailing content");
  reject(std::string((1u << 20) + 1, ' '), "too long");
  EXPECT_EQ(decode_jsonl(R"({"t":"jdat","v":2})").error().code, Errc::kUnsupported);
}

TEST(JdatJsonl, RandomGarbageNeverCrashes) {
  std::mt19937 rng(11);
  const auto h = header(SampleFormat::kInt16, StreamRole::kPlain, 1, 16);
  const std::string good = encode_jsonl(h, words_for(h, 1));
  for (int iter = 0; iter < 5000; ++iter) {
    std::string text = good;
    // Flip, insert or delete a few characters of a valid line, or pure noise.
    if (iter % 5 == 0) {
      text.assign(rng() % 200, ' ');
      for (auto& c : text) c = static_cast<char>(rng());
    } else {
      for (int k = 0, edits = 1 + static_cast<int>(rng() % 4); k < edits; ++k) {
        const std::size_t at = rng() % (text.size() + 1);
        const char c = "{}[],:\"0123456789-.eE \\xtfn"[rng() % 27];
        switch (rng() % 3) {
          case 0:
            if (at < text.size()) text[at] = c;
            break;
          case 1:
            text.insert(text.begin() + static_cast<long>(at), c);
            break;
          default:
            if (at < text.size()) text.erase(at, 1);
        }
      }
    }
    auto p = decode_jsonl(text);
    if (!p) {
      ASSERT_FALSE(p.error().message.empty());
      continue;
    }
    // Whatever is accepted re-encodes to a line that reads back the same.
    auto again = decode_jsonl(encode_jsonl(p->header, p->words));
    ASSERT_TRUE(again.has_value()) << text;
    ASSERT_EQ(again->words, p->words);
  }
}

}  // namespace
}  // namespace jamnet::protocol::jdat
