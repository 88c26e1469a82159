#include "jamnet/protocol/toast_frame.hpp"

#include <algorithm>
#include <string>

#include "jamnet/core/crc32.hpp"
#include "jamnet/protocol/byte_order.hpp"

namespace jamnet::protocol {

std::string_view to_string(StreamType t) noexcept {
  switch (t) {
    case StreamType::kMidi:
      return "MIDI";
    case StreamType::kAudio:
      return "AUDIO";
    case StreamType::kVideo:
      return "VIDEO";
    case StreamType::kControl:
      return "CONTROL";
    case StreamType::kSync:
      return "SYNC";
    case StreamType::kDiscovery:
      return "DISCOVERY";
    case StreamType::kHeartbeat:
      return "HEARTBEAT";
  }
  return "UNKNOWN";
}

std::string_view to_string(FormatType f) noexcept {
  switch (f) {
    case FormatType::kStandardJson:
      return "STANDARD_JSON";
    case FormatType::kCompactJsonl:
      return "COMPACT_JSONL";
    case FormatType::kBinary:
      return "BINARY";
  }
  return "UNKNOWN";
}

std::string_view to_string(FrameError e) noexcept {
  switch (e) {
    case FrameError::kTruncated:
      return "truncated";
    case FrameError::kOversized:
      return "oversized";
    case FrameError::kCrcMismatch:
      return "crc_mismatch";
    case FrameError::kLengthMismatch:
      return "length_mismatch";
    case FrameError::kBadVersion:
      return "bad_version";
    case FrameError::kBadStreamType:
      return "bad_stream_type";
    case FrameError::kBadFormatType:
      return "bad_format_type";
    case FrameError::kPayloadTooLarge:
      return "payload_too_large";
    case FrameError::kBufferTooSmall:
      return "buffer_too_small";
  }
  return "unknown";
}

std::uint64_t FrameErrorCounts::total() const noexcept {
  std::uint64_t sum = 0;
  for (auto n : by_kind) sum += n;
  return sum;
}

namespace {
std::size_t effective_max(const CodecLimits& limits) noexcept {
  return std::clamp<std::size_t>(limits.max_datagram, kFrameOverhead, kAbsoluteMaxDatagram);
}
}  // namespace

void encode_header(const FrameHeader& h, std::size_t payload_size, std::uint8_t* p) noexcept {
  store_be32(p + 0, static_cast<std::uint32_t>(encoded_size(payload_size)));
  p[4] = static_cast<std::uint8_t>(kToastVersion << 4 |
                                   (static_cast<std::uint8_t>(h.stream_type) & 0x0F));
  p[5] = static_cast<std::uint8_t>(h.format_type);
  store_be32(p + 6, h.message_type());
  store_be64(p + 10, static_cast<std::uint64_t>(h.timestamp_ns));
  store_be32(p + 18, h.sequence);
  std::copy(h.session_id.bytes.begin(), h.session_id.bytes.end(), p + 22);
}

void finish_frame(std::uint8_t* p, std::size_t payload_size) noexcept {
  const std::uint32_t crc = crc32({p, kHeaderSize + payload_size});
  store_be32(p + kHeaderSize + payload_size, crc);
}

std::expected<std::size_t, FrameError> encode_frame(const FrameHeader& h,
                                                    std::span<const std::uint8_t> payload,
                                                    std::span<std::uint8_t> out,
                                                    const CodecLimits& limits) noexcept {
  const std::size_t total = encoded_size(payload.size());
  if (total > effective_max(limits)) return std::unexpected(FrameError::kPayloadTooLarge);
  if (out.size() < total) return std::unexpected(FrameError::kBufferTooSmall);
  std::uint8_t* p = out.data();
  encode_header(h, payload.size(), p);
  if (!payload.empty()) std::copy(payload.begin(), payload.end(), p + kHeaderSize);
  finish_frame(p, payload.size());
  return total;
}

Result<std::vector<std::uint8_t>> encode_frame(const FrameHeader& header,
                                               std::span<const std::uint8_t> payload,
                                               const CodecLimits& limits) {
  std::vector<std::uint8_t> out(encoded_size(payload.size()));
  auto written = encode_frame(header, payload, out, limits);
  if (!written) {
    return make_error(Errc::kTooLarge,
                      "TOAST frame of " + std::to_string(out.size()) + " bytes exceeds the " +
                          std::to_string(effective_max(limits)) +
                          "-byte datagram limit (payload at most " +
                          std::to_string(effective_max(limits) - kFrameOverhead) + " bytes)");
  }
  return out;
}

std::expected<FrameView, FrameError> decode_frame(std::span<const std::uint8_t> d,
                                                  const CodecLimits& limits) noexcept {
  if (d.size() < kFrameOverhead) return std::unexpected(FrameError::kTruncated);
  if (d.size() > effective_max(limits)) return std::unexpected(FrameError::kOversized);
  const std::uint8_t* p = d.data();
  const std::size_t body = d.size() - kCrcSize;
  if (crc32({p, body}) != load_be32(p + body)) return std::unexpected(FrameError::kCrcMismatch);
  if (load_be32(p) != d.size()) return std::unexpected(FrameError::kLengthMismatch);
  const std::uint8_t version = p[4] >> 4;
  const std::uint8_t stream = p[4] & 0x0F;
  if (version != kToastVersion) return std::unexpected(FrameError::kBadVersion);
  if (stream == 0 || stream > kMaxStreamType) return std::unexpected(FrameError::kBadStreamType);
  if (p[5] > kMaxFormatType) return std::unexpected(FrameError::kBadFormatType);

  FrameView v;
  v.header.version = version;
  v.header.stream_type = static_cast<StreamType>(stream);
  v.header.format_type = static_cast<FormatType>(p[5]);
  const std::uint32_t mt = load_be32(p + 6);
  v.header.message_kind = static_cast<std::uint16_t>(mt & 0xFFFF);
  v.header.stream_index = static_cast<std::uint16_t>(mt >> 16);
  v.header.timestamp_ns = static_cast<std::int64_t>(load_be64(p + 10));
  v.header.sequence = load_be32(p + 18);
  std::copy(p + 22, p + 38, v.header.session_id.bytes.begin());
  v.payload = d.subspan(kHeaderSize, body - kHeaderSize);
  return v;
}

}  // namespace jamnet::protocol
