// JELLIE reassembly on the receive side: the four streams of each block
// arrive as separate JDAT packets, in any order, some lost. The assembler
// keeps a small window of blocks, rebuilds a block as soon as two streams are
// in (bit-exact), interpolates one whose only stream is a data stream once
// the stream has moved on, and gives up on the rest (the jitter buffer then
// conceals them). Single-threaded (the network thread); no allocation after
// construction.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "jamnet/core/clock.hpp"
#include "jamnet/media/jdat/jellie.hpp"
#include "jamnet/protocol/jdat.hpp"

namespace jamnet::media::jdat {

struct JellieAssemblerStats {
  std::uint64_t exact = 0;         // blocks rebuilt bit-exactly
  std::uint64_t recovered = 0;     // ... of which with 1 or 2 streams missing
  std::uint64_t interpolated = 0;  // one half interpolated (3 streams missing)
  std::uint64_t lost = 0;          // nothing usable
};

class JellieAssembler {
 public:
  // Blocks being reassembled at once; a block with a single data stream is
  // interpolated once the stream has moved kFlushAfterBlocks past it.
  static constexpr std::size_t kWindow = 8;
  static constexpr std::uint64_t kFlushAfterBlocks = 2;

  // `frames`: frames of a whole block (each stream carries frames / 2 words).
  JellieAssembler(protocol::jdat::SampleFormat format, int frames);

  // One stream of a block: h.role is a JELLIE role, h.frames the block's
  // frames, `words` its frames / 2 words. Calls emit(first_frame, arrival_ns,
  // samples) for each block it completes (zero, one or two per call).
  template <typename Emit>
  void on_stream(const protocol::jdat::JdatHeader& h, std::span<const std::uint32_t> words,
                 Nanos arrival_ns, Emit&& emit) {
    emit_ = [](void* ctx, std::uint64_t ff, Nanos at, std::span<const float> s) {
      (*static_cast<Emit*>(ctx))(ff, at, s);
    };
    ctx_ = &emit;
    push(h, words, arrival_ns);
  }

  const JellieAssemblerStats& stats() const noexcept { return stats_; }
  int frames() const noexcept { return frames_; }

 private:
  struct PendingBlock {
    bool used = false;
    bool emitted = false;
    std::uint64_t first_frame = 0;
    Nanos arrival_ns = 0;
    std::array<bool, 4> present{};
    std::array<std::vector<std::uint32_t>, 4> words;
  };
  void push(const protocol::jdat::JdatHeader& h, std::span<const std::uint32_t> words,
            Nanos arrival_ns);
  void decode(PendingBlock& b);
  void flush(PendingBlock& b);

  int frames_;
  JellieDecoder decoder_;
  std::array<PendingBlock, kWindow> pending_;
  std::vector<float> samples_;
  std::uint64_t newest_block_ = 0;
  bool have_newest_ = false;
  JellieAssemblerStats stats_;
  void (*emit_)(void*, std::uint64_t, Nanos, std::span<const float>) = nullptr;
  void* ctx_ = nullptr;
};

}  // namespace jamnet::media::jdat
