#include "jamnet/net/sequence_tracker.hpp"

namespace jamnet::net {

SequenceCounts& SequenceCounts::operator+=(const SequenceCounts& o) noexcept {
  received += o.received;
  lost += o.lost;
  reordered += o.reordered;
  duplicated += o.duplicated;
  too_old += o.too_old;
  resyncs += o.resyncs;
  return *this;
}

void SequenceTracker::restart_at(std::uint32_t seq) noexcept {
  // A new numbering epoch above the old one keeps extended numbers monotonic
  // while the low 32 bits stay equal to the wire value.
  const std::uint64_t base = started_ ? ((highest_ >> 32) + 2) << 32 : 0;
  first_ = highest_ = base | seq;
  bits_.fill(0);
  bits_[(highest_ % kWindow) / 64] |= 1ull << (highest_ % 64);
  started_ = true;
}

bool SequenceTracker::test_and_set(std::uint64_t ext) noexcept {
  auto& word = bits_[(ext % kWindow) / 64];
  const std::uint64_t mask = 1ull << (ext % 64);
  const bool was = (word & mask) != 0;
  word |= mask;
  return was;
}

void SequenceTracker::advance_to(std::uint64_t ext) noexcept {
  const std::uint64_t gap = ext - highest_;
  if (gap >= kWindow) {
    bits_.fill(0);
  } else {
    for (std::uint64_t s = highest_ + 1; s < ext; ++s)
      bits_[(s % kWindow) / 64] &= ~(1ull << (s % 64));
  }
  counts_.lost += gap - 1;  // skipped numbers count as lost until they show up
  highest_ = ext;
  bits_[(ext % kWindow) / 64] |= 1ull << (ext % 64);
}

SequenceTracker::Verdict SequenceTracker::on_frame(std::uint32_t seq) noexcept {
  if (!started_) {
    restart_at(seq);
    ++counts_.received;
    return Verdict::kNew;
  }
  const auto diff = static_cast<std::int32_t>(seq - static_cast<std::uint32_t>(highest_));
  if (diff > kResyncDistance || diff < -kResyncDistance) {
    ++counts_.resyncs;
    restart_at(seq);
    ++counts_.received;
    return Verdict::kNew;
  }
  const std::uint64_t ext = highest_ + static_cast<std::uint64_t>(static_cast<std::int64_t>(diff));
  if (diff > 0) {
    advance_to(ext);
    ++counts_.received;
    return Verdict::kNew;
  }
  if (-static_cast<std::int64_t>(diff) < kWindow && ext >= first_) {
    if (test_and_set(ext)) {
      ++counts_.duplicated;
      return Verdict::kDuplicate;
    }
    ++counts_.received;
    ++counts_.reordered;
    --counts_.lost;  // a gap filled late (ext > first_, so it was counted lost)
    return Verdict::kNew;
  }
  ++counts_.too_old;
  return Verdict::kTooOld;
}

}  // namespace jamnet::net
