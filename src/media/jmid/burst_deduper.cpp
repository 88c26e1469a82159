#include <algorithm>

#include "jamnet/media/jmid/burst.hpp"

namespace jamnet::media::jmid {

BurstDeduper::BurstDeduper() : BurstDeduper(Config{}) {}

BurstDeduper::BurstDeduper(const Config& config) : config_(config) {
  config_.capacity = std::max<std::size_t>(config_.capacity, 1);
  config_.min_copies = std::max(config_.min_copies, 1);
  config_.expiry_ns = std::max<Nanos>(config_.expiry_ns, 0);
  slots_.resize(config_.capacity);  // the only allocation: on_copy never allocates
}

std::size_t BurstDeduper::remembered() const noexcept {
  return size_;
}

double BurstDeduper::copy_loss_estimate() const noexcept {
  if (loss_copies_sent_ == 0) return 0.0;
  // seen can pass sent by a little when a burst counted as missing turns up late.
  return std::max(
      0.0, 1.0 - static_cast<double>(loss_copies_seen_) / static_cast<double>(loss_copies_sent_));
}

BurstDeduper::Slot* BurstDeduper::find(std::uint64_t seq) noexcept {
  // Newest first: the copies of a burst arrive within its send window, so
  // the slot sought is nearly always among the last few.
  const std::size_t cap = slots_.size();
  std::size_t idx = (head_ + size_) % cap;
  for (std::size_t i = 0; i < size_; ++i) {
    idx = (idx == 0 ? cap : idx) - 1;
    if (slots_[idx].seq == seq) return &slots_[idx];
  }
  return nullptr;
}

BurstDeduper::Verdict BurstDeduper::on_known(Slot& s) noexcept {
  if (s.copies < 255) ++s.copies;
  if (s.delivered) {
    ++stats_.duplicates;
    return Verdict::kDuplicate;
  }
  // A burst of k copies can never show more than k: asking for more would
  // drop every burst of a sender that sends fewer.
  if (s.copies >= std::min<int>(config_.min_copies, s.k)) {
    s.delivered = true;
    ++stats_.delivered;
    return Verdict::kDeliver;
  }
  return Verdict::kWaiting;
}

void BurstDeduper::forget_oldest() noexcept {
  const Slot& s = slots_[head_];
  // Ids are forgotten roughly in seq order; ids skipped between the last one
  // accounted (floor_ - 1) and this one never arrived at all, or arrived out
  // of order and are still remembered (those add only their copies seen later).
  if (s.seq >= floor_) {
    const std::uint64_t skipped = forgot_any_ ? s.seq - floor_ : 0;
    loss_copies_sent_ += (skipped + 1) * s.k;
  }
  forgot_any_ = true;
  loss_copies_seen_ += std::min(s.copies, s.k);  // a network may duplicate copies
  while (loss_copies_sent_ >= kLossHorizon) {
    loss_copies_sent_ /= 2;
    loss_copies_seen_ /= 2;
  }
  // Once an id is forgotten, a late copy of it could not be told from a new
  // burst; the floor makes it too old instead of delivering it twice.
  floor_ = std::max(floor_, s.seq + 1);
  head_ = (head_ + 1) % slots_.size();
  --size_;
}

void BurstDeduper::expire(Nanos now) {
  while (size_ > 0 && now - slots_[head_].first_ns >= config_.expiry_ns) forget_oldest();
}

void BurstDeduper::resync(std::uint64_t seq) noexcept {
  // The old ids belong to a sender that is gone: drop them without
  // counting their missing copies as loss.
  head_ = 0;
  size_ = 0;
  floor_ = 0;
  forgot_any_ = false;
  highest_ = seq;
  ++stats_.resyncs;
}

BurstDeduper::Verdict BurstDeduper::on_copy(std::uint64_t seq, std::uint8_t k, Nanos now) {
  ++stats_.copies;
  if (k == 0) k = 1;  // k comes off the wire; 0 would make a burst that never completes
  expire(now);

  if (!started_) {
    started_ = true;
    highest_ = seq;
  } else {
    const std::uint64_t distance = seq > highest_ ? seq - highest_ : highest_ - seq;
    if (distance > kRestartDistance) resync(seq);
  }

  if (seq <= highest_) {
    // Known, or an older burst arriving after a newer one (reordering). A
    // remembered id below the floor is still found: the floor only rules on
    // ids no longer remembered.
    if (Slot* s = find(seq)) return on_known(*s);
    if (seq < floor_) {
      ++stats_.too_old;
      return Verdict::kTooOld;
    }
  } else {
    highest_ = seq;
  }

  if (size_ == slots_.size()) forget_oldest();
  Slot& s = slots_[(head_ + size_) % slots_.size()];
  s = Slot{seq, now, 0, k, false};
  ++size_;
  return on_known(s);
}

}  // namespace jamnet::media::jmid
