#include "jamnet/protocol/toast_frame.hpp"

#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "jamnet/core/crc32.hpp"
#include "jamnet/protocol/byte_order.hpp"

namespace jamnet::protocol {
namespace {

FrameHeader sample_header(StreamType st, FormatType ft) {
  FrameHeader h;
  h.stream_type = st;
  h.format_type = ft;
  h.message_kind = 0xBEEF;
  h.stream_index = 0x0102;
  h.timestamp_ns = 0x0123456789ABCDEFll;
  h.sequence = 0xDEADBEEF;
  h.session_id = Uuid::random();
  return h;
}

std::vector<std::uint8_t> payload_of(std::size_t n, std::uint32_t seed = 1) {
  std::mt19937 rng(seed);
  std::vector<std::uint8_t> p(n);
  for (auto& b : p) b = static_cast<std::uint8_t>(rng());
  return p;
}

TEST(ToastFrame, RoundTripsEveryStreamAndFormatType) {
  for (std::uint8_t st = 1; st <= kMaxStreamType; ++st) {
    for (std::uint8_t ft = 0; ft <= kMaxFormatType; ++ft) {
      const auto h = sample_header(static_cast<StreamType>(st), static_cast<FormatType>(ft));
      const auto payload = payload_of(st * 37u + ft);
      auto bytes = encode_frame(h, payload);
      ASSERT_TRUE(bytes.has_value()) << bytes.error().message;
      ASSERT_EQ(bytes->size(), payload.size() + kFrameOverhead);
      auto f = decode_frame(*bytes);
      ASSERT_TRUE(f.has_value()) << to_string(f.error());
      EXPECT_EQ(f->header.stream_type, h.stream_type);
      EXPECT_EQ(f->header.format_type, h.format_type);
      EXPECT_EQ(f->header.message_kind, h.message_kind);
      EXPECT_EQ(f->header.stream_index, h.stream_index);
      EXPECT_EQ(f->header.message_type(), 0x0102BEEFu);
      EXPECT_EQ(f->header.timestamp_ns, h.timestamp_ns);
      EXPECT_EQ(f->header.sequence, h.sequence);
      EXPECT_EQ(f->header.session_id, h.session_id);
      EXPECT_EQ(f->header.version, kToastVersion);
      EXPECT_EQ(std::vector<std::uint8_t>(f->payload.begin(), f->payload.end()), payload);
    }
  }
}

TEST(ToastFrame, WireLayoutIsBigEndianAsDocumented) {
  auto h = sample_header(StreamType::kAudio, FormatType::kBinary);
  const std::vector<std::uint8_t> payload{1, 2, 3};
  auto bytes = encode_frame(h, payload).value();
  const std::uint8_t* p = bytes.data();
  EXPECT_EQ(load_be32(p), bytes.size());
  EXPECT_EQ(p[4], 0x22);  // version 2, stream type AUDIO (2)
  EXPECT_EQ(p[5], 2);     // BINARY
  EXPECT_EQ(load_be32(p + 6), 0x0102BEEFu);
  EXPECT_EQ(load_be64(p + 10), 0x0123456789ABCDEFull);
  EXPECT_EQ(load_be32(p + 18), 0xDEADBEEFu);
  EXPECT_TRUE(std::equal(h.session_id.bytes.begin(), h.session_id.bytes.end(), p + 22));
  EXPECT_EQ(p[38], 1);
  EXPECT_EQ(load_be32(p + 41), crc32({p, 41}));
}

TEST(ToastFrame, EmptyPayloadRoundTrips) {
  auto bytes = encode_frame(sample_header(StreamType::kHeartbeat, FormatType::kBinary), {}).value();
  EXPECT_EQ(bytes.size(), kFrameOverhead);
  auto f = decode_frame(bytes);
  ASSERT_TRUE(f.has_value());
  EXPECT_TRUE(f->payload.empty());
}

TEST(ToastFrame, EverySingleBitFlipIsRejectedByCrc) {
  const auto h = sample_header(StreamType::kMidi, FormatType::kCompactJsonl);
  const auto good = encode_frame(h, payload_of(256)).value();
  for (std::size_t bit = 0; bit < good.size() * 8; ++bit) {
    auto bad = good;
    bad[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
    auto f = decode_frame(bad);
    ASSERT_FALSE(f.has_value()) << "bit " << bit;
    ASSERT_EQ(f.error(), FrameError::kCrcMismatch) << "bit " << bit;
  }
}

TEST(ToastFrame, TruncatedInputsGiveTruncatedOrCrcError) {
  const auto good =
      encode_frame(sample_header(StreamType::kAudio, FormatType::kBinary), payload_of(100)).value();
  for (std::size_t n = 0; n < good.size(); ++n) {
    auto f = decode_frame({good.data(), n});
    ASSERT_FALSE(f.has_value());
    if (n < kFrameOverhead) {
      EXPECT_EQ(f.error(), FrameError::kTruncated) << n;
    } else {
      EXPECT_EQ(f.error(), FrameError::kCrcMismatch) << n;
    }
  }
}

TEST(ToastFrame, OversizedPayloadFailsToEncodeWithClearError) {
  const auto h = sample_header(StreamType::kAudio, FormatType::kBinary);
  EXPECT_TRUE(encode_frame(h, payload_of(kDefaultMaxPayload)).has_value());
  auto r = encode_frame(h, payload_of(kDefaultMaxPayload + 1));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errc::kTooLarge);
  EXPECT_NE(r.error().message.find("1472"), std::string::npos) << r.error().message;

  std::vector<std::uint8_t> small(10);
  auto n = encode_frame(h, payload_of(16), small);
  ASSERT_FALSE(n.has_value());
  EXPECT_EQ(n.error(), FrameError::kBufferTooSmall);
}

TEST(ToastFrame, OversizedDatagramIsRejectedOnDecode) {
  const auto h = sample_header(StreamType::kAudio, FormatType::kBinary);
  CodecLimits big{9000};
  auto bytes = encode_frame(h, payload_of(4000), big).value();
  EXPECT_TRUE(decode_frame(bytes, big).has_value());
  auto f = decode_frame(bytes);
  ASSERT_FALSE(f.has_value());
  EXPECT_EQ(f.error(), FrameError::kOversized);
}

// Re-seals a modified frame with a valid CRC, to reach the checks behind it.
void reseal(std::vector<std::uint8_t>& b) {
  store_be32(b.data() + b.size() - 4, crc32({b.data(), b.size() - 4}));
}

TEST(ToastFrame, SemanticErrorsBehindAValidCrcAreTyped) {
  const auto good =
      encode_frame(sample_header(StreamType::kAudio, FormatType::kBinary), payload_of(8)).value();
  auto bad = good;
  store_be32(bad.data(), 999);
  reseal(bad);
  EXPECT_EQ(decode_frame(bad).error(), FrameError::kLengthMismatch);

  bad = good;
  bad[4] = 0x12;  // version 1
  reseal(bad);
  EXPECT_EQ(decode_frame(bad).error(), FrameError::kBadVersion);

  for (std::uint8_t st : {0, 8, 15}) {
    bad = good;
    bad[4] = static_cast<std::uint8_t>(0x20 | st);
    reseal(bad);
    EXPECT_EQ(decode_frame(bad).error(), FrameError::kBadStreamType) << int(st);
  }
  bad = good;
  bad[5] = 3;
  reseal(bad);
  EXPECT_EQ(decode_frame(bad).error(), FrameError::kBadFormatType);
}

TEST(ToastFrame, GarbageNeverDecodesAndErrorsAreCounted) {
  std::mt19937 rng(42);
  FrameErrorCounts counts;
  std::size_t decoded = 0;
  for (int i = 0; i < 20000; ++i) {
    std::vector<std::uint8_t> junk(rng() % 1600);
    for (auto& b : junk) b = static_cast<std::uint8_t>(rng());
    auto f = decode_frame(junk);
    if (f) {
      ++decoded;
    } else {
      counts.add(f.error());
    }
  }
  EXPECT_EQ(decoded, 0u);
  EXPECT_EQ(counts.total(), 20000u);
  EXPECT_GT(counts[FrameError::kTruncated], 0u);
  EXPECT_GT(counts[FrameError::kOversized], 0u);
  EXPECT_GT(counts[FrameError::kCrcMismatch], 0u);
}

}  // namespace
}  // namespace jamnet::protocol
