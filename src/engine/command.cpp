#include "jamnet/engine/command.hpp"

#include <algorithm>
#include <atomic>
#include <bit>

#include "jamnet/core/mpsc_queue.hpp"

namespace jamnet::engine {
namespace {

// The normal batch is popped whole before it is applied (so a newer command
// later in the batch can supersede an older one); this caps it, and with it
// budget.max_normal. 1024 is four times the default budget.
constexpr std::size_t kMaxNormalBatch = 1024;

// kUser and above belong to the application, which may rely on every one of
// them arriving (a sequence of edits, not a latest value): never coalesced.
constexpr bool is_coalescable(CommandKind k) noexcept {
  return !is_priority(k) &&
         static_cast<std::uint16_t>(k) < static_cast<std::uint16_t>(CommandKind::kUser);
}

constexpr std::uint32_t key_of(const Command& c) noexcept {
  return (std::uint32_t{static_cast<std::uint16_t>(c.kind)} << 16) | c.target;
}

}  // namespace

struct CommandQueues::Impl {
  Impl(std::size_t priority_capacity, std::size_t normal_capacity)
      : priority(priority_capacity),
        normal(normal_capacity),
        batch_capacity(std::min(kMaxNormalBatch, normal.capacity())),
        batch(std::make_unique<Command[]>(batch_capacity)),
        superseded(std::make_unique<bool[]>(batch_capacity)),
        // Load factor at most 1/2: linear probes stay short.
        table_mask(std::bit_ceil(2 * batch_capacity) - 1),
        table(std::make_unique<Slot[]>(table_mask + 1)) {}

  // Marks every coalescable entry of batch[0, n) that a later entry with the
  // same (kind, target) supersedes. One reverse pass over the batch with an
  // open-addressing set of the keys seen so far; the set is emptied in O(1)
  // by moving to a new generation, so a drain costs O(n), not O(table).
  void mark_superseded(std::size_t n) noexcept {
    if (++generation == 0) {  // wrapped after 2^32 drains: stale stamps could match again
      std::fill_n(table.get(), table_mask + 1, Slot{});
      generation = 1;
    }
    for (std::size_t i = n; i-- > 0;) {
      superseded[i] = false;
      if (!is_coalescable(batch[i].kind)) continue;
      const std::uint32_t key = key_of(batch[i]);
      std::size_t h = ((key * 0x9E3779B1u) >> 16) & table_mask;  // Fibonacci hashing
      for (; table[h].generation == generation; h = (h + 1) & table_mask) {
        if (table[h].key == key) {
          superseded[i] = true;
          break;
        }
      }
      if (!superseded[i]) table[h] = Slot{key, generation};
    }
  }

  struct Slot {
    std::uint32_t key = 0;
    std::uint32_t generation = 0;  // occupied in the current drain iff == Impl::generation
  };

  MpscQueue<Command> priority;
  MpscQueue<Command> normal;
  std::atomic<std::uint64_t> rejected{0};

  // Consumer (audio thread) state, all sized here so drain never allocates.
  const std::size_t batch_capacity;
  std::unique_ptr<Command[]> batch;  // [0, pending): popped, not yet applied
  std::unique_ptr<bool[]> superseded;
  const std::size_t table_mask;
  std::unique_ptr<Slot[]> table;
  std::uint32_t generation = 0;
  // Entries carried over to the next drain when the time budget stopped this
  // one (popped commands cannot go back into the queue). Written by the
  // consumer; atomic only so normal_depth() may be read from any thread.
  std::atomic<std::size_t> pending{0};
};

CommandQueues::CommandQueues(std::size_t priority_capacity, std::size_t normal_capacity)
    : impl_(std::make_unique<Impl>(priority_capacity, normal_capacity)) {}

CommandQueues::~CommandQueues() = default;

bool CommandQueues::push(Command c) noexcept {
  c.enqueued_ns = monotonic_ns();
  auto& q = is_priority(c.kind) ? impl_->priority : impl_->normal;
  if (q.try_push(c)) return true;
  impl_->rejected.fetch_add(1, std::memory_order_relaxed);
  return false;
}

DrainStats CommandQueues::drain(CommandSink& sink, const DrainBudget& budget, Nanos now_ns,
                                Histogram* priority_latency) noexcept {
  Impl& im = *impl_;
  DrainStats st;
  const Nanos start = monotonic_ns();

  // Priority: notes and live moves. Only the count bounds it: cutting it by
  // time would delay exactly what the player hears, to save the cycle time
  // that normal traffic can give up instead.
  Command c;
  while (st.priority < budget.max_priority && im.priority.try_pop(c)) {
    const Nanos latency = now_ns - c.enqueued_ns;
    st.max_priority_latency_ns = std::max(st.max_priority_latency_ns, latency);
    if (priority_latency != nullptr) priority_latency->add(latency);
    sink.apply(c);
    ++st.priority;
  }
  st.priority_left = im.priority.size_approx();
  if (st.priority >= budget.max_priority && st.priority_left > 0) st.budget_hit = true;

  // Normal: pop up to the count budget behind whatever the last drain left,
  // then apply in order, skipping superseded entries, while time remains.
  const std::size_t limit = std::min(budget.max_normal, im.batch_capacity);
  std::size_t n = im.pending.load(std::memory_order_relaxed);
  while (n < limit && im.normal.try_pop(im.batch[n])) ++n;
  if (n > 1) {
    im.mark_superseded(n);
  } else if (n == 1) {
    im.superseded[0] = false;
  }

  const std::size_t to_process = std::min(n, limit);
  std::size_t i = 0;
  for (; i < to_process; ++i) {
    // The clock is read every 16 entries, not every one: the check must cost
    // far less than the commands it bounds. The first check (i == 0) catches a
    // priority burst that used the whole budget already.
    if ((i & 15) == 0 && monotonic_ns() - start >= budget.max_ns) break;
    if (im.superseded[i]) {
      ++st.coalesced;
    } else {
      sink.apply(im.batch[i]);
      ++st.normal;
    }
  }
  const std::size_t remaining = n - i;
  if (remaining > 0 && i > 0) {
    std::copy(im.batch.get() + i, im.batch.get() + n, im.batch.get());
  }
  im.pending.store(remaining, std::memory_order_relaxed);
  st.normal_left = im.normal.size_approx() + remaining;
  if (remaining > 0 || (n >= limit && !im.normal.empty_approx())) st.budget_hit = true;
  return st;
}

std::uint64_t CommandQueues::rejected_full() const noexcept {
  return impl_->rejected.load(std::memory_order_relaxed);
}

std::size_t CommandQueues::priority_depth() const noexcept {
  return impl_->priority.size_approx();
}

std::size_t CommandQueues::normal_depth() const noexcept {
  return impl_->normal.size_approx() + impl_->pending.load(std::memory_order_relaxed);
}

}  // namespace jamnet::engine
