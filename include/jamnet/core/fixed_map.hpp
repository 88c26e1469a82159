// FixedMap<K, V, Hash>: a hash map whose storage is allocated once, in the
// constructor, for a fixed number of entries. Lookups, inserts and erases
// never allocate, so a real-time thread can keep per-key state in it (the
// transport's receive thread counts per sender and stream). It is full at
// `capacity` entries: try_emplace then returns nullptr and the owner applies
// its eviction rule (keys that arrive from outside are bounded state).
//
// Open addressing with linear probing over twice the capacity in slots, and
// backward-shift deletion, so there are no tombstones and probe runs stay
// short. Iteration (for_each) visits entries in slot order.
//
// Contract: one thread at a time (no internal locking); K and V default
// constructible and copyable.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace jamnet {

template <class K, class V, class Hash>
class FixedMap {
 public:
  explicit FixedMap(std::size_t capacity)
      : capacity_(capacity), slots_(std::bit_ceil(std::max<std::size_t>(2 * capacity, 4))) {}

  std::size_t size() const noexcept { return size_; }
  std::size_t capacity() const noexcept { return capacity_; }
  bool full() const noexcept { return size_ >= capacity_; }

  V* find(const K& key) noexcept {
    for (std::size_t i = home(key);; i = next(i)) {
      Slot& s = slots_[i];
      if (!s.used) return nullptr;
      if (s.key == key) return &s.value;
    }
  }

  // The entry for `key`, default-constructed if new; nullptr when the key is
  // new and the map is full.
  V* try_emplace(const K& key) noexcept {
    std::size_t i = home(key);
    for (;; i = next(i)) {
      Slot& s = slots_[i];
      if (!s.used) break;
      if (s.key == key) return &s.value;
    }
    if (full()) return nullptr;
    Slot& s = slots_[i];
    s.used = true;
    s.key = key;
    s.value = V{};
    ++size_;
    return &s.value;
  }

  bool erase(const K& key) noexcept {
    std::size_t i = home(key);
    for (;; i = next(i)) {
      if (!slots_[i].used) return false;
      if (slots_[i].key == key) break;
    }
    // Backward shift: pull later members of the probe run into the hole
    // when their home position allows it.
    std::size_t hole = i;
    for (std::size_t j = next(i); slots_[j].used; j = next(j)) {
      const std::size_t h = home(slots_[j].key);
      const bool movable = hole <= j ? (h <= hole || h > j) : (h <= hole && h > j);
      if (movable) {
        slots_[hole] = slots_[j];
        hole = j;
      }
    }
    slots_[hole].used = false;
    slots_[hole].value = V{};
    --size_;
    return true;
  }

  // Erases every entry for which pred(key, value) is true.
  template <class Pred>
  std::size_t erase_if(Pred pred) noexcept {
    std::size_t n = 0;
    for (std::size_t i = 0; i < slots_.size();) {
      Slot& s = slots_[i];
      if (s.used && pred(static_cast<const K&>(s.key), static_cast<const V&>(s.value))) {
        erase(K(s.key));  // a shifted entry may land at i: look at i again
        ++n;
      } else {
        ++i;
      }
    }
    return n;
  }

  // Eviction for a full map, in bounded time: looks at the next `probes`
  // entries from where the last call stopped (round the table) and erases
  // the one `age` ranks oldest (smallest). A sampled least-recently-used
  // rule: a flood of new keys costs O(probes) each, not O(capacity).
  template <class Age>
  bool evict_sampled(std::size_t probes, Age age) noexcept {
    if (size_ == 0) return false;
    std::size_t best = slots_.size();
    std::size_t looked = 0;
    for (std::size_t n = 0; n < slots_.size() && looked < probes; ++n) {
      cursor_ = next(cursor_);
      const Slot& s = slots_[cursor_];
      if (!s.used) continue;
      ++looked;
      if (best == slots_.size() || age(s.value) < age(slots_[best].value)) best = cursor_;
    }
    if (best == slots_.size()) return false;
    erase(K(slots_[best].key));
    return true;
  }

  template <class F>
  void for_each(F f) const {
    for (const Slot& s : slots_)
      if (s.used) f(s.key, s.value);
  }

  template <class F>
  void for_each(F f) {
    for (Slot& s : slots_)
      if (s.used) f(static_cast<const K&>(s.key), s.value);
  }

  void clear() noexcept {
    for (Slot& s : slots_) s = Slot{};
    size_ = 0;
  }

 private:
  struct Slot {
    K key{};
    V value{};
    bool used = false;
  };
  std::size_t home(const K& key) const noexcept {
    // Mixed (splitmix64's finaliser): identity hashes of addresses and ports
    // would crowd the low bits the mask keeps.
    std::uint64_t x = static_cast<std::uint64_t>(Hash{}(key));
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return static_cast<std::size_t>(x) & (slots_.size() - 1);
  }
  std::size_t next(std::size_t i) const noexcept { return (i + 1) & (slots_.size() - 1); }

  std::size_t capacity_;
  std::size_t size_ = 0;
  std::size_t cursor_ = 0;  // evict_sampled's position
  std::vector<Slot> slots_;
};

}  // namespace jamnet
