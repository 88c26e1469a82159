// Burst redundancy for JMID: every event goes out k times within a short
// jitter window, so it survives heavy loss without retransmission; the
// receiver keeps the first copy and drops the rest.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

#include "jamnet/core/clock.hpp"

namespace jamnet::media::jmid {

inline constexpr int kMaxBurst = 15;  // k travels in 4 bits of the TOAST message kind

struct BurstConfig {
  int k = 3;  // copies per event (fixed when !adaptive; the start value otherwise)
  int k_min = 1;
  int k_max = 8;
  bool adaptive = true;
  double target_event_loss = 1e-4;  // choose the smallest k with p^k <= this
  Nanos window_ns = 500'000;        // all copies leave within this window
};

struct ScheduledCopy {
  Nanos send_at_ns = 0;
  std::uint8_t copy = 0;  // 0..k-1
  std::uint8_t k = 1;
};

class BurstSender {
 public:
  BurstSender(const BurstConfig& config, std::uint64_t seed);

  // When to send the k copies of a burst that starts at `now`: copy 0 at
  // once, the others at distinct random instants within the window (spread
  // so that one short loss burst cannot take them all), in time order.
  // Returns the number written into `out`.
  std::size_t schedule(Nanos now, std::array<ScheduledCopy, kMaxBurst>& out);

  // A receiver's measured packet loss (0..1). With adaptation on, k becomes
  // the smallest value with loss^k <= target, within [k_min, k_max].
  // Hysteresis: k is the largest value asked for by the last kHoldReports
  // reports (the start k counts as reported), so it rises at once when loss
  // rises but falls only after kHoldReports consecutive reports agree.
  void on_feedback(double packet_loss);
  // The k the formula asks for at this loss, without hysteresis.
  int k_for_loss(double packet_loss) const noexcept;
  static constexpr std::size_t kHoldReports = 4;
  int k() const noexcept { return k_; }
  const BurstConfig& config() const noexcept { return config_; }

  // Event numbers (burst ids): start at a random value, then count up, so a
  // restarted sender is told apart from a late one.
  std::uint64_t next_seq() noexcept { return seq_++; }

 private:
  BurstConfig config_;
  int k_;
  std::mt19937_64 rng_;
  std::uint64_t seq_;
  std::array<int, kHoldReports> recent_k_{};  // ring of the last reports' k
  std::size_t recent_pos_ = 0;
};

// Receiver-side deduplication for one sender, with bounded memory.
class BurstDeduper {
 public:
  struct Config {
    Nanos expiry_ns = 5'000'000;  // how long a burst id is remembered after its first copy
    std::size_t capacity = 4096;  // at most this many burst ids remembered
    int min_copies = 1;           // acceptance threshold: copies needed before delivery
                                  // (a burst sent with fewer than this needs all of them)
  };
  enum class Verdict : std::uint8_t { kDeliver, kDuplicate, kTooOld, kWaiting };

  struct Stats {
    std::uint64_t copies = 0;
    std::uint64_t delivered = 0;
    std::uint64_t duplicates = 0;
    std::uint64_t too_old = 0;
    std::uint64_t resyncs = 0;
  };

  BurstDeduper();
  explicit BurstDeduper(const Config& config);

  // One copy of burst `seq` (k copies were sent) arrived at `now`.
  Verdict on_copy(std::uint64_t seq, std::uint8_t k, Nanos now);
  // Forget expired ids; called by on_copy too.
  void expire(Nanos now);

  const Stats& stats() const noexcept { return stats_; }
  std::size_t remembered() const noexcept;
  // Packet loss seen in completed (expired) bursts: 1 - copies seen / copies sent.
  // Bursts none of whose copies arrived count too (k copies lost each, k taken
  // from the next burst forgotten): their ids are the gaps in the seq count,
  // and leaving them out would understate loss most when it matters most.
  // The counts are halved whenever kLossHorizon copies have been accounted,
  // so the estimate follows the recent path rather than the whole session.
  double copy_loss_estimate() const noexcept;

  // A seq this far from the highest seen (either way) is a restarted sender.
  static constexpr std::uint64_t kRestartDistance = std::uint64_t{1} << 20;
  static constexpr std::uint64_t kLossHorizon = 8192;

 private:
  struct Slot {
    std::uint64_t seq = 0;
    Nanos first_ns = 0;
    std::uint8_t copies = 0;
    std::uint8_t k = 0;
    bool delivered = false;
  };
  Slot* find(std::uint64_t seq) noexcept;
  Verdict on_known(Slot& s) noexcept;
  void forget_oldest() noexcept;
  void resync(std::uint64_t seq) noexcept;

  Config config_;
  std::vector<Slot> slots_;  // ring in arrival order (so first_ns ascends), oldest at head_
  std::size_t head_ = 0;
  std::size_t size_ = 0;
  bool started_ = false;
  std::uint64_t floor_ = 0;  // every seq below this is too old
  std::uint64_t highest_ = 0;
  std::uint64_t loss_copies_sent_ = 0;
  std::uint64_t loss_copies_seen_ = 0;
  bool forgot_any_ = false;  // floor_ - 1 is the highest id accounted for loss
  Stats stats_;
};

}  // namespace jamnet::media::jmid
