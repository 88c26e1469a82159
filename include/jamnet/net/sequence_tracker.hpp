// Receiver-side accounting for one stream from one sender: which sequence
// numbers arrived, which are missing, which came late or twice.
//
// Sequence numbers are 32-bit and wrap; they are extended to 64 bits by serial
// arithmetic (RFC 1982). A sliding window of the last kWindow numbers says
// whether a frame is new or a duplicate. Loss is cumulative, as in RTP:
// expected (highest - first + 1) minus unique frames received.
#pragma once

#include <array>
#include <cstdint>

namespace jamnet::net {

struct SequenceCounts {
  std::uint64_t received = 0;    // unique frames delivered to the application
  std::uint64_t lost = 0;        // expected but never received (so far)
  std::uint64_t reordered = 0;   // unique, but older than the highest seen
  std::uint64_t duplicated = 0;  // seen before; dropped
  std::uint64_t too_old = 0;     // behind the window; dropped
  std::uint64_t resyncs = 0;     // sender restarted its numbering
  std::uint64_t expected() const noexcept { return received + lost; }
  SequenceCounts& operator+=(const SequenceCounts& o) noexcept;
};

class SequenceTracker {
 public:
  static constexpr std::uint32_t kWindow = 4096;
  // A jump by more than this either way means the sender restarted: senders
  // start every stream at a random number (like a TCP initial sequence
  // number), so a restarted process lands far from where it was. A straggler
  // this late, or an outage this long, is not a realistic alternative.
  static constexpr std::int64_t kResyncDistance = 2 * kWindow;

  enum class Verdict : std::uint8_t { kNew, kDuplicate, kTooOld };

  Verdict on_frame(std::uint32_t seq) noexcept;
  const SequenceCounts& counts() const noexcept { return counts_; }

 private:
  void restart_at(std::uint32_t seq) noexcept;
  bool test_and_set(std::uint64_t ext) noexcept;
  void advance_to(std::uint64_t ext) noexcept;

  bool started_ = false;
  std::uint64_t first_ = 0;
  std::uint64_t highest_ = 0;  // extended
  std::array<std::uint64_t, kWindow / 64> bits_{};
  SequenceCounts counts_;
};

}  // namespace jamnet::net
