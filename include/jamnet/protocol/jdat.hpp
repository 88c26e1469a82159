// JDAT: audio frames. The payload of a TOAST AUDIO frame (docs/jdat.md,
// "JDAT wire format"). BINARY is the default wire format; JSONL is for debugging and
// interop. Pure functions, no I/O: fuzzed like every other parser.
//
// Samples travel as "words": the raw bits of one sample in the stream's
// format (float32 bits, or a two's-complement int24/int16 in the low bits).
// Plain JDAT streams convert floats to words (to_word / from_word); JELLIE
// parity streams carry words that are not samples at all, which is why the
// codec works on words and never interprets them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "jamnet/core/result.hpp"

namespace jamnet::protocol::jdat {

enum class SampleFormat : std::uint8_t { kFloat32 = 0, kInt24 = 1, kInt16 = 2 };
inline constexpr std::uint8_t kMaxSampleFormat = 2;

std::string_view to_string(SampleFormat f) noexcept;           // "f32", "i24", "i16"
Result<SampleFormat> parse_sample_format(std::string_view s);  // inverse of to_string
std::size_t bytes_per_sample(SampleFormat f) noexcept;         // 4, 3, 2

inline constexpr int kMinFrames = 16;
inline constexpr int kMaxFrames = 512;
inline constexpr int kDefaultFrames = 64;
inline constexpr int kMaxChannels = 64;

// What a JELLIE stream of a block carries (media/jdat/jellie.hpp); kPlain for
// ordinary JDAT.
enum class StreamRole : std::uint8_t {
  kPlain = 0,
  kJellieEven = 1,     // even samples of the block
  kJellieOdd = 2,      // odd samples
  kJellieParityP = 3,  // first redundancy stream
  kJellieParityQ = 4,  // second redundancy stream
};
inline constexpr std::uint8_t kMaxStreamRole = 4;

struct JdatHeader {
  SampleFormat format = SampleFormat::kFloat32;
  StreamRole role = StreamRole::kPlain;
  std::uint8_t channels = 1;
  std::uint16_t frames =
      kDefaultFrames;  // frames (per channel) of the block this packet belongs to
  std::uint32_t sample_rate = 48000;
  // Sender's frame counter at the first frame of the block. Counts from a
  // random start, wraps at 2^64; the jitter buffer orders packets by it.
  std::uint64_t first_frame = 0;
  // Number of words in this packet: frames * channels for plain JDAT,
  // frames / 2 for each JELLIE stream.
  std::uint16_t word_count() const noexcept;
};

// Checks ranges: format, role, channels 1..kMaxChannels, frames kMinFrames..kMaxFrames,
// sample_rate 8000..384000, JELLIE roles need channels == 1 and even frames.
Result<void> validate(const JdatHeader& h);

// --- BINARY ---------------------------------------------------------------
inline constexpr std::size_t kBinaryHeaderSize = 20;
std::size_t binary_size(const JdatHeader& h) noexcept;  // header + words

// Writes header + words (big-endian, bytes_per_sample each); returns bytes written.
// words.size() must equal h.word_count(); out must hold binary_size(h).
// Does not allocate.
Result<std::size_t> encode_binary(const JdatHeader& h, std::span<const std::uint32_t> words,
                                  std::span<std::uint8_t> out);
// Reads a payload. words_out must hold h.word_count() words (use peek_binary
// first, or a kMaxFrames * kMaxChannels buffer). Does not allocate on success.
Result<JdatHeader> decode_binary(std::span<const std::uint8_t> in,
                                 std::span<std::uint32_t> words_out);
Result<JdatHeader> peek_binary(std::span<const std::uint8_t> in);

// --- Packet sizing ----------------------------------------------------------
// The most frames of `channels` x `format` one packet can carry within
// max_payload bytes (a TOAST payload: 1430 for the default 1472-byte
// datagram), capped at kMaxFrames; for JELLIE (mono, 4 streams of half a
// block) the most frames of the block, even. 0 when not even kMinFrames fit.
int max_packet_frames(SampleFormat format, int channels, bool jellie,
                      std::size_t max_payload) noexcept;
// Frames per packet for an audio period of `period` frames, when at most
// `max_frames` fit in a packet: the period itself when it fits; else its
// largest divisor that fits, so each period leaves as whole, equal
// sub-blocks with nothing held back; else max_frames (sub-blocks then
// straddle periods). Periods below kMinFrames (a host that calls with a few
// frames) are gathered into packets of the smallest multiple of the period
// of at least kMinFrames. JELLIE needs even frames: `even` keeps the result
// even. 0 when max_frames < kMinFrames.
int choose_packet_frames(int period, int max_frames, bool even) noexcept;

// --- JSONL ----------------------------------------------------------------
// One line, no newline. Plain float32 samples are written as the shortest
// decimal that reads back to the same float; ints and parity words as integers.
std::string encode_jsonl(const JdatHeader& h, std::span<const std::uint32_t> words);
// The same into `out` (its capacity reused: no allocation once it is large enough).
void encode_jsonl(const JdatHeader& h, std::span<const std::uint32_t> words, std::string& out);
struct JdatPacket {
  JdatHeader header;
  std::vector<std::uint32_t> words;
};
Result<JdatPacket> decode_jsonl(std::string_view line);
// The same with the words into `words` (cleared; its capacity reused, so a
// receiver that keeps one vector allocates nothing per line once warm).
Result<JdatHeader> decode_jsonl(std::string_view line, std::vector<std::uint32_t>& words);

// --- Sample <-> word ----------------------------------------------------
// int formats: round-to-nearest with saturation to [-1, 1).
std::uint32_t to_word(SampleFormat f, float sample) noexcept;
float from_word(SampleFormat f, std::uint32_t word) noexcept;
void to_words(SampleFormat f, std::span<const float> samples,
              std::span<std::uint32_t> words) noexcept;
void from_words(SampleFormat f, std::span<const std::uint32_t> words,
                std::span<float> samples) noexcept;

}  // namespace jamnet::protocol::jdat
