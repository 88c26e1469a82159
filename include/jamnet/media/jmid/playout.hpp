// Receiver timing: each event plays at its sender timestamp plus a fixed
// session latency, so network jitter does not become MIDI jitter.
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <optional>
#include <utility>
#include <vector>

#include "jamnet/core/clock.hpp"
#include "jamnet/protocol/jmid.hpp"

namespace jamnet::media::jmid {

// Maps a sender's timestamps onto the local clock. With no sync layer, the
// offset is estimated as the minimum of (local arrival - sender timestamp)
// over a sliding window: the path's fastest delivery, which jitter only ever
// adds to. The sync layer can set the offset instead.
class PlayoutClock {
 public:
  explicit PlayoutClock(Nanos latency_ns = 5'000'000, Nanos window_ns = 2'000'000'000);

  // False (nothing learnt) when either time is implausible (core/clock.hpp).
  bool observe(std::int64_t sender_ts_ns, Nanos local_rx_ns);
  void set_offset(Nanos sender_to_local_ns);  // from clock sync; wins over the estimate
  void clear_offset();
  bool ready() const noexcept;  // an offset is known
  Nanos offset() const noexcept;
  Nanos latency() const noexcept { return latency_; }
  Nanos play_at(std::int64_t sender_ts_ns) const noexcept;

 private:
  Nanos latency_;
  Nanos window_;
  std::optional<Nanos> fixed_;
  std::deque<std::pair<Nanos, Nanos>> mins_;  // monotonic deque of (local time, offset sample)
};

// Items waiting for their play time, in time order (stable for equal times).
// T is an event, or whatever a caller needs to carry with it.
template <class T = protocol::jmid::Event>
class PlayoutQueue {
 public:
  void push(Nanos play_at_ns, T item) {
    items_.push_back(Item{play_at_ns, next_order_++, std::move(item)});
    std::push_heap(items_.begin(), items_.end(), Later{});
  }
  // Moves every item due at or before `now` into `out`, in order.
  void pop_due(Nanos now, std::vector<std::pair<Nanos, T>>& out) {
    while (!items_.empty() && items_.front().at <= now) {
      std::pop_heap(items_.begin(), items_.end(), Later{});
      out.emplace_back(items_.back().at, std::move(items_.back().item));
      items_.pop_back();
    }
  }
  std::optional<Nanos> next_due() const {
    if (items_.empty()) return std::nullopt;
    return items_.front().at;
  }
  std::size_t size() const noexcept { return items_.size(); }
  // Room for n items: pushes below that never allocate.
  void reserve(std::size_t n) { items_.reserve(n); }
  std::size_t capacity() const noexcept { return items_.capacity(); }

 private:
  struct Item {
    Nanos at;
    std::uint64_t order;
    T item;
  };
  struct Later {  // min-heap on (at, order)
    bool operator()(const Item& a, const Item& b) const noexcept {
      return a.at != b.at ? a.at > b.at : a.order > b.order;
    }
  };
  std::vector<Item> items_;
  std::uint64_t next_order_ = 0;
};

}  // namespace jamnet::media::jmid
