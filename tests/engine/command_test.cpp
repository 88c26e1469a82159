#include "jamnet/engine/command.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <limits>
#include <thread>
#include <vector>

namespace jamnet::engine {
namespace {

// Records what the audio thread would apply (allocates: fine in a test).
class RecordingSink : public CommandSink {
 public:
  void apply(const Command& c) noexcept override { applied.push_back(c); }
  std::vector<Command> applied;
};

// Takes `cost_ns` of wall time per command, like a heavy state refresh.
class SpinningSink : public RecordingSink {
 public:
  explicit SpinningSink(Nanos cost_ns) : cost_ns_(cost_ns) {}
  void apply(const Command& c) noexcept override {
    const Nanos until = monotonic_ns() + cost_ns_;
    while (monotonic_ns() < until) {
    }
    RecordingSink::apply(c);
  }

 private:
  Nanos cost_ns_;
};

Command make(CommandKind kind, std::uint16_t target, float value = 0.0f, std::uint8_t a = 0) {
  Command c;
  c.kind = kind;
  c.target = target;
  c.value = value;
  c.a = a;
  return c;
}

constexpr DrainBudget kUnlimitedTime{4096, 256, std::numeric_limits<Nanos>::max()};

TEST(CommandQueues, RoutesByKindAndDrainsPriorityFirst) {
  CommandQueues q;
  ASSERT_TRUE(q.push(make(CommandKind::kGain, 1, 0.5f)));
  ASSERT_TRUE(q.push(make(CommandKind::kNoteOn, 0, 0, 60)));
  ASSERT_TRUE(q.push(make(CommandKind::kUser, 9)));
  ASSERT_TRUE(q.push(make(CommandKind::kHit, 9, 0, 36)));
  ASSERT_TRUE(q.push(make(CommandKind::kLiveParam, 3, 0.25f)));
  ASSERT_TRUE(q.push(make(CommandKind::kNoteOff, 0, 0, 60)));
  EXPECT_EQ(q.priority_depth(), 4u);
  EXPECT_EQ(q.normal_depth(), 2u);

  RecordingSink sink;
  const DrainStats st = q.drain(sink, kUnlimitedTime, monotonic_ns());
  EXPECT_EQ(st.priority, 4u);
  EXPECT_EQ(st.normal, 2u);
  EXPECT_EQ(st.coalesced, 0u);
  EXPECT_EQ(st.priority_left, 0u);
  EXPECT_EQ(st.normal_left, 0u);
  EXPECT_FALSE(st.budget_hit);
  ASSERT_EQ(sink.applied.size(), 6u);
  const CommandKind expected[] = {CommandKind::kNoteOn,    CommandKind::kHit,
                                  CommandKind::kLiveParam, CommandKind::kNoteOff,
                                  CommandKind::kGain,      CommandKind::kUser};
  for (std::size_t i = 0; i < 6; ++i) EXPECT_EQ(sink.applied[i].kind, expected[i]) << i;
  EXPECT_EQ(sink.applied[2].value, 0.25f);  // payload survives the trip
  EXPECT_EQ(sink.applied[0].a, 60);
  EXPECT_EQ(q.priority_depth(), 0u);
  EXPECT_EQ(q.normal_depth(), 0u);

  const DrainStats empty = q.drain(sink, kUnlimitedTime, monotonic_ns());
  EXPECT_EQ(empty.priority + empty.normal + empty.coalesced, 0u);
  EXPECT_FALSE(empty.budget_hit);
}

TEST(CommandQueues, CountBudgetsLeaveTheRestForTheNextDrain) {
  CommandQueues q;
  for (std::uint8_t i = 0; i < 10; ++i) ASSERT_TRUE(q.push(make(CommandKind::kNoteOn, 0, 0, i)));
  for (std::uint16_t t = 0; t < 10; ++t) ASSERT_TRUE(q.push(make(CommandKind::kGain, t)));
  RecordingSink sink;
  const DrainBudget budget{4, 3, std::numeric_limits<Nanos>::max()};

  DrainStats st = q.drain(sink, budget, monotonic_ns());
  EXPECT_EQ(st.priority, 4u);
  EXPECT_EQ(st.normal, 3u);
  EXPECT_TRUE(st.budget_hit);
  EXPECT_EQ(st.priority_left, 6u);
  EXPECT_EQ(st.normal_left, 7u);

  std::size_t priority = st.priority, normal = st.normal;
  for (int i = 0; i < 10 && (priority < 10 || normal < 10); ++i) {
    st = q.drain(sink, budget, monotonic_ns());
    priority += st.priority;
    normal += st.normal;
  }
  EXPECT_EQ(priority, 10u);
  EXPECT_EQ(normal, 10u);
  EXPECT_FALSE(st.budget_hit);  // the last drain emptied both queues within budget
  // Order is kept across drains within each queue.
  std::uint8_t next_note = 0;
  std::uint16_t next_target = 0;
  for (const Command& c : sink.applied) {
    if (is_priority(c.kind)) {
      EXPECT_EQ(c.a, next_note++);
    } else {
      EXPECT_EQ(c.target, next_target++);
    }
  }
}

TEST(CommandQueues, PriorityIsNotCutByTheTimeBudget) {
  CommandQueues q;
  for (std::uint8_t i = 0; i < 50; ++i) ASSERT_TRUE(q.push(make(CommandKind::kHit, 0, 0, i)));
  for (std::uint16_t t = 0; t < 5; ++t) ASSERT_TRUE(q.push(make(CommandKind::kGain, t)));
  RecordingSink sink;
  const DrainStats st = q.drain(sink, DrainBudget{4096, 256, 0}, monotonic_ns());  // no time at all
  EXPECT_EQ(st.priority, 50u);  // every note still played
  EXPECT_EQ(st.normal, 0u);     // maintenance waits
  EXPECT_TRUE(st.budget_hit);
  EXPECT_EQ(st.normal_left, 5u);
  EXPECT_EQ(q.normal_depth(), 5u);  // popped into the batch but not applied: still counted

  const DrainStats next = q.drain(sink, kUnlimitedTime, monotonic_ns());
  EXPECT_EQ(next.normal, 5u);
  EXPECT_EQ(q.normal_depth(), 0u);
}

TEST(CommandQueues, TimeBudgetStopsNormalCommandsAndKeepsTheirOrder) {
  CommandQueues q;
  constexpr std::uint16_t kCount = 100;
  for (std::uint16_t t = 0; t < kCount; ++t) ASSERT_TRUE(q.push(make(CommandKind::kGain, t)));
  // 20 us per command against 100 us of budget. The clock is read every 16
  // commands, so the first drain stops after at most 16 (>= 320 us), however
  // slow or preempted the machine is.
  SpinningSink sink(20'000);
  const DrainBudget budget{4096, 256, 100'000};
  const DrainStats first = q.drain(sink, budget, monotonic_ns());
  EXPECT_LE(first.normal, 16u);
  EXPECT_TRUE(first.budget_hit);
  EXPECT_EQ(first.normal_left, kCount - first.normal);
  EXPECT_EQ(q.normal_depth(), kCount - first.normal);

  std::size_t applied = first.normal;
  for (int i = 0; i < 1000 && applied < kCount; ++i) {
    const DrainStats st = q.drain(sink, budget, monotonic_ns());
    EXPECT_LE(st.normal, 16u);
    applied += st.normal;
  }
  ASSERT_EQ(applied, kCount);
  ASSERT_EQ(sink.applied.size(), kCount);
  for (std::uint16_t t = 0; t < kCount; ++t) EXPECT_EQ(sink.applied[t].target, t);
  EXPECT_EQ(q.normal_depth(), 0u);
}

TEST(CommandQueues, CoalescesToTheNewestPerKindAndTarget) {
  CommandQueues q;
  for (int i = 1; i <= 5; ++i) ASSERT_TRUE(q.push(make(CommandKind::kGain, 1, 0.1f * i)));
  RecordingSink sink;
  const DrainStats st = q.drain(sink, kUnlimitedTime, monotonic_ns());
  EXPECT_EQ(st.normal, 1u);
  EXPECT_EQ(st.coalesced, 4u);
  ASSERT_EQ(sink.applied.size(), 1u);
  EXPECT_EQ(sink.applied[0].value, 0.1f * 5);
}

TEST(CommandQueues, CoalescingKeepsOtherTargetsAndTheirOrder) {
  CommandQueues q;
  ASSERT_TRUE(q.push(make(CommandKind::kGain, 1, 1.0f)));
  ASSERT_TRUE(q.push(make(CommandKind::kGain, 2, 10.0f)));
  ASSERT_TRUE(q.push(make(CommandKind::kGain, 1, 2.0f)));
  ASSERT_TRUE(q.push(make(CommandKind::kTempo, 0, 120.0f)));
  ASSERT_TRUE(q.push(make(CommandKind::kClickOn, 1, 1.0f)));  // same target, other kind
  ASSERT_TRUE(q.push(make(CommandKind::kGain, 3, 30.0f)));
  ASSERT_TRUE(q.push(make(CommandKind::kGain, 1, 3.0f)));
  ASSERT_TRUE(q.push(make(CommandKind::kGain, 0xFFFF, 0.5f)));  // master
  RecordingSink sink;
  const DrainStats st = q.drain(sink, kUnlimitedTime, monotonic_ns());
  EXPECT_EQ(st.coalesced, 2u);
  EXPECT_EQ(st.normal, 6u);
  ASSERT_EQ(sink.applied.size(), 6u);
  // Each survivor is applied where its newest command stood.
  EXPECT_EQ(sink.applied[0].target, 2);
  EXPECT_EQ(sink.applied[1].kind, CommandKind::kTempo);
  EXPECT_EQ(sink.applied[2].kind, CommandKind::kClickOn);
  EXPECT_EQ(sink.applied[3].target, 3);
  EXPECT_EQ(sink.applied[4].target, 1);
  EXPECT_EQ(sink.applied[4].value, 3.0f);
  EXPECT_EQ(sink.applied[5].target, 0xFFFF);
}

TEST(CommandQueues, UserAndPriorityCommandsAreNeverCoalesced) {
  CommandQueues q;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(q.push(make(CommandKind::kUser, 7, float(i))));
  auto user2 = make(CommandKind::kUser, 7);
  user2.kind = static_cast<CommandKind>(200);  // any application kind
  ASSERT_TRUE(q.push(user2));
  ASSERT_TRUE(q.push(user2));
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(q.push(make(CommandKind::kLiveParam, 2, float(i))));
  RecordingSink sink;
  const DrainStats st = q.drain(sink, kUnlimitedTime, monotonic_ns());
  EXPECT_EQ(st.priority, 4u);
  EXPECT_EQ(st.normal, 5u);
  EXPECT_EQ(st.coalesced, 0u);
  ASSERT_EQ(sink.applied.size(), 9u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(sink.applied[4 + i].value, float(i));
}

TEST(CommandQueues, CoalescingIsPerDrainAndRespectsTheCountBudget) {
  CommandQueues q;
  for (int i = 1; i <= 5; ++i) ASSERT_TRUE(q.push(make(CommandKind::kGain, 1, float(i))));
  RecordingSink sink;
  const DrainBudget budget{4096, 3, std::numeric_limits<Nanos>::max()};
  // The first drain sees 3 of them and applies the newest of those; the
  // second sees the other 2.
  DrainStats st = q.drain(sink, budget, monotonic_ns());
  EXPECT_EQ(st.normal, 1u);
  EXPECT_EQ(st.coalesced, 2u);
  st = q.drain(sink, budget, monotonic_ns());
  EXPECT_EQ(st.normal, 1u);
  EXPECT_EQ(st.coalesced, 1u);
  ASSERT_EQ(sink.applied.size(), 2u);
  EXPECT_EQ(sink.applied[0].value, 3.0f);
  EXPECT_EQ(sink.applied[1].value, 5.0f);

  // A later drain applies a new value again: nothing is remembered between drains.
  ASSERT_TRUE(q.push(make(CommandKind::kGain, 1, 6.0f)));
  st = q.drain(sink, budget, monotonic_ns());
  EXPECT_EQ(st.normal, 1u);
  EXPECT_EQ(sink.applied.back().value, 6.0f);
}

TEST(CommandQueues, CoalescingManyTargetsInOneBatch) {
  // Enough distinct keys to fill the table's probe chains; every target's
  // newest value, in the order of the newest commands.
  CommandQueues q;
  for (int round = 0; round < 3; ++round) {
    for (std::uint16_t t = 0; t < 200; ++t) {
      ASSERT_TRUE(
          q.push(make(CommandKind::kGain, static_cast<std::uint16_t>(t * 257), float(round))));
    }
  }
  RecordingSink sink;
  const DrainStats st =
      q.drain(sink, DrainBudget{4096, 1024, std::numeric_limits<Nanos>::max()}, monotonic_ns());
  EXPECT_EQ(st.normal, 200u);
  EXPECT_EQ(st.coalesced, 400u);
  ASSERT_EQ(sink.applied.size(), 200u);
  for (std::uint16_t t = 0; t < 200; ++t) {
    EXPECT_EQ(sink.applied[t].target, static_cast<std::uint16_t>(t * 257));
    EXPECT_EQ(sink.applied[t].value, 2.0f);
  }
}

TEST(CommandQueues, MaxNormalLargerThanTheBatchIsClamped) {
  CommandQueues q(8, 8);  // the batch is at most the normal queue's capacity
  for (std::uint16_t t = 0; t < 8; ++t) ASSERT_TRUE(q.push(make(CommandKind::kGain, t)));
  RecordingSink sink;
  const DrainStats st = q.drain(
      sink, DrainBudget{4096, 1'000'000, std::numeric_limits<Nanos>::max()}, monotonic_ns());
  EXPECT_EQ(st.normal, 8u);
  EXPECT_FALSE(st.budget_hit);
}

TEST(CommandQueues, PriorityLatencyGoesIntoTheHistogram) {
  CommandQueues q;
  for (std::uint8_t i = 0; i < 5; ++i) ASSERT_TRUE(q.push(make(CommandKind::kNoteOn, 0, 0, i)));
  for (std::uint16_t t = 0; t < 3; ++t) ASSERT_TRUE(q.push(make(CommandKind::kGain, t)));
  Histogram latency;
  RecordingSink sink;
  // A cycle time 2 ms after the pushes: every latency is at least that.
  const Nanos now = monotonic_ns() + 2'000'000;
  const DrainStats st = q.drain(sink, kUnlimitedTime, now, &latency);
  EXPECT_EQ(latency.count(), 5u);  // priority only
  EXPECT_GE(latency.min(), 2'000'000);
  EXPECT_LT(latency.max(), 2'000'000 + 10'000'000'000);  // generous: a slow VM
  EXPECT_EQ(st.max_priority_latency_ns, latency.max());
  for (const Command& c : sink.applied) EXPECT_GT(c.enqueued_ns, 0);  // stamped by push

  // Without a histogram the stats still carry the maximum.
  ASSERT_TRUE(q.push(make(CommandKind::kHit, 0)));
  const DrainStats st2 = q.drain(sink, kUnlimitedTime, monotonic_ns() + 5'000'000);
  EXPECT_GE(st2.max_priority_latency_ns, 5'000'000);
  EXPECT_EQ(latency.count(), 5u);
}

TEST(CommandQueues, FullQueuesRejectAndCount) {
  CommandQueues q(4, 4);
  int accepted = 0;
  for (int i = 0; i < 5; ++i) accepted += q.push(make(CommandKind::kNoteOn, 0)) ? 1 : 0;
  for (int i = 0; i < 6; ++i) accepted += q.push(make(CommandKind::kGain, 0)) ? 1 : 0;
  EXPECT_EQ(accepted, 8);
  EXPECT_EQ(q.rejected_full(), 3u);
  EXPECT_EQ(q.priority_depth(), 4u);
  EXPECT_EQ(q.normal_depth(), 4u);
  RecordingSink sink;
  q.drain(sink, kUnlimitedTime, monotonic_ns());
  EXPECT_TRUE(q.push(make(CommandKind::kNoteOn, 0)));  // room again
  EXPECT_EQ(q.rejected_full(), 3u);
}

TEST(CommandQueues, ThreeProducersNothingLostOrDuplicated) {
  // Each producer pushes alternately a priority hit and a normal user command
  // (never coalesced), numbered in at_ns. Small queues, so pushes often fail
  // and are retried; rejected_full() must count every failure.
  constexpr int kProducers = 3;
  constexpr std::int64_t kPerProducer = 30'000;
  CommandQueues q(256, 256);
  std::atomic<bool> go{false};
  std::atomic<std::uint64_t> failures{0};
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      for (std::int64_t i = 0; i < kPerProducer; ++i) {
        Command c = make(i % 2 == 0 ? CommandKind::kHit : CommandKind::kUser,
                         static_cast<std::uint16_t>(p));
        c.at_ns = i;
        while (!q.push(c)) {
          failures.fetch_add(1, std::memory_order_relaxed);
          std::this_thread::yield();
        }
      }
    });
  }

  class CheckingSink : public CommandSink {
   public:
    void apply(const Command& c) noexcept override {
      ++received;
      if (c.target >= kProducers || c.at_ns < 0 || c.at_ns >= kPerProducer) {
        ++bad;
        return;
      }
      const int lane = is_priority(c.kind) ? 0 : 1;
      if ((c.at_ns % 2 == 0) != (lane == 0)) ++bad;  // routed to the wrong queue
      // Within a producer and a queue the numbers rise by 2: no loss, no
      // duplicate, no reordering.
      std::int64_t& expected = next[c.target][lane];
      if (c.at_ns != expected) ++bad;
      expected = c.at_ns + 2;
    }
    std::int64_t next[kProducers][2] = {{0, 1}, {0, 1}, {0, 1}};
    std::uint64_t received = 0, bad = 0;
  } sink;

  go.store(true, std::memory_order_release);
  Histogram latency;
  const std::uint64_t total = std::uint64_t{kProducers} * kPerProducer;
  const Nanos deadline = monotonic_ns() + 60'000'000'000;  // a hang fails, it does not stall CI
  while (sink.received < total && monotonic_ns() < deadline) {
    q.drain(sink, DrainBudget{}, monotonic_ns(), &latency);
    std::this_thread::yield();
  }
  for (auto& t : producers) t.join();
  q.drain(sink, DrainBudget{}, monotonic_ns(), &latency);  // nothing may be left, or extra

  EXPECT_EQ(sink.bad, 0u);
  EXPECT_EQ(sink.received, total);
  for (int p = 0; p < kProducers; ++p) {
    EXPECT_EQ(sink.next[p][0], kPerProducer);
    EXPECT_EQ(sink.next[p][1], kPerProducer + 1);
  }
  EXPECT_EQ(latency.count(), total / 2);
  EXPECT_EQ(q.rejected_full(), failures.load());
  EXPECT_EQ(q.priority_depth(), 0u);
  EXPECT_EQ(q.normal_depth(), 0u);
}

}  // namespace
}  // namespace jamnet::engine
