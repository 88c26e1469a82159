// TOAST v2 frame codec. Pure functions, no I/O, no allocation on decode.
// Wire layout (docs/protocol.md is the specification), all big-endian:
//
//   off size field
//     0    4 frame_length      whole frame, header + payload + CRC
//     4    1 version:4 | stream_type:4
//     5    1 format_type
//     6    4 message_type      kind:16 (low) | stream_index:16 (high)
//    10    8 timestamp_ns      master timestamp on the session timeline
//    18    4 sequence          per topic (session, stream type, stream index)
//    22   16 session_id        UUID
//    38    n payload
//  38+n    4 crc32             IEEE CRC-32 over bytes [0, 38+n)
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <span>
#include <string_view>
#include <vector>

#include "jamnet/core/result.hpp"
#include "jamnet/core/uuid.hpp"

namespace jamnet::protocol {

inline constexpr std::uint8_t kToastVersion = 2;
inline constexpr std::size_t kHeaderSize = 38;
inline constexpr std::size_t kCrcSize = 4;
inline constexpr std::size_t kFrameOverhead = kHeaderSize + kCrcSize;
// 1500-byte Ethernet MTU minus 20 (IPv4) and 8 (UDP): a frame never fragments.
inline constexpr std::size_t kDefaultMaxDatagram = 1472;
inline constexpr std::size_t kDefaultMaxPayload = kDefaultMaxDatagram - kFrameOverhead;
// Hard ceiling a configuration may raise the limit to (max UDP payload over IPv4).
inline constexpr std::size_t kAbsoluteMaxDatagram = 65507;

enum class StreamType : std::uint8_t {
  kMidi = 1,
  kAudio = 2,
  kVideo = 3,
  kControl = 4,
  kSync = 5,
  kDiscovery = 6,
  kHeartbeat = 7,
};
inline constexpr std::uint8_t kMaxStreamType = 7;

enum class FormatType : std::uint8_t {
  kStandardJson = 0,
  kCompactJsonl = 1,
  kBinary = 2,
};
inline constexpr std::uint8_t kMaxFormatType = 2;

std::string_view to_string(StreamType t) noexcept;
std::string_view to_string(FormatType f) noexcept;

struct FrameHeader {
  StreamType stream_type = StreamType::kControl;
  FormatType format_type = FormatType::kBinary;
  std::uint16_t message_kind = 0;  // meaning depends on stream_type
  std::uint16_t stream_index = 0;  // which stream of that type (audio://S/<index>)
  std::int64_t timestamp_ns = 0;
  std::uint32_t sequence = 0;
  Uuid session_id;
  std::uint8_t version = kToastVersion;  // filled in by decode; encode always writes v2

  std::uint32_t message_type() const noexcept {
    return static_cast<std::uint32_t>(stream_index) << 16 | message_kind;
  }
};

// A decoded frame: the header plus a view into the caller's buffer.
struct FrameView {
  FrameHeader header;
  std::span<const std::uint8_t> payload;
};

// Every way a byte string can fail to be a frame. Each is counted by the receiver.
enum class FrameError : std::uint8_t {
  kTruncated,       // shorter than header + CRC
  kOversized,       // longer than the configured datagram limit
  kCrcMismatch,     // CRC-32 does not match: corrupted in flight
  kLengthMismatch,  // frame_length field disagrees with the datagram size
  kBadVersion,      // protocol version this build does not speak
  kBadStreamType,
  kBadFormatType,
  kPayloadTooLarge,  // encode only: payload would exceed the datagram limit
  kBufferTooSmall,   // encode only: output buffer too small
};
inline constexpr std::size_t kFrameErrorCount = 9;

std::string_view to_string(FrameError e) noexcept;

struct CodecLimits {
  std::size_t max_datagram = kDefaultMaxDatagram;
};

// Bytes a frame with this payload occupies on the wire.
constexpr std::size_t encoded_size(std::size_t payload_size) noexcept {
  return payload_size + kFrameOverhead;
}

// Encodes into `out`; returns the number of bytes written. Never allocates.
std::expected<std::size_t, FrameError> encode_frame(const FrameHeader& header,
                                                    std::span<const std::uint8_t> payload,
                                                    std::span<std::uint8_t> out,
                                                    const CodecLimits& limits = {}) noexcept;

// The two halves of encode_frame, for encoders that write the payload in
// place (a sealed payload authenticates the header bytes): the 38 header
// bytes of a frame whose payload is `payload_size` bytes, and the CRC after
// a payload already in place. The caller has checked the sizes.
void encode_header(const FrameHeader& header, std::size_t payload_size, std::uint8_t* out) noexcept;
void finish_frame(std::uint8_t* frame, std::size_t payload_size) noexcept;

// Convenience for non-realtime callers; wraps FrameError into a readable Error.
Result<std::vector<std::uint8_t>> encode_frame(const FrameHeader& header,
                                               std::span<const std::uint8_t> payload,
                                               const CodecLimits& limits = {});

// Decodes one datagram. Never reads outside `datagram`, never allocates.
// The CRC is checked before any field is trusted, so any corruption of the
// header (the length field included) reads as kCrcMismatch.
std::expected<FrameView, FrameError> decode_frame(std::span<const std::uint8_t> datagram,
                                                  const CodecLimits& limits = {}) noexcept;

// Per-kind error counters for decoders (plain integers: one owner thread).
struct FrameErrorCounts {
  std::array<std::uint64_t, kFrameErrorCount> by_kind{};
  void add(FrameError e) noexcept { ++by_kind[static_cast<std::size_t>(e)]; }
  std::uint64_t operator[](FrameError e) const noexcept {
    return by_kind[static_cast<std::size_t>(e)];
  }
  std::uint64_t total() const noexcept;
};

}  // namespace jamnet::protocol
