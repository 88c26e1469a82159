#include "jamnet/core/triple_buffer.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <type_traits>
#include <utility>

namespace jamnet {
namespace {

struct Pair {
  std::uint64_t a = 0;
  std::uint64_t b = 0;  // always 3 * a in a whole value
};

TEST(TripleBuffer, ReadsDefaultBeforeTheFirstWrite) {
  TripleBuffer<Pair> tb;
  EXPECT_EQ(tb.read().a, 0u);
  EXPECT_EQ(tb.read().b, 0u);
}

TEST(TripleBuffer, ReaderGetsTheLatestValueAndKeepsItUntilTheNext) {
  TripleBuffer<Pair> tb;
  for (std::uint64_t i = 1; i <= 5; ++i) tb.write({i, 3 * i});
  EXPECT_EQ(tb.read().a, 5u);
  EXPECT_EQ(tb.read().a, 5u);  // nothing new: the same value again
  tb.write({6, 18});
  EXPECT_EQ(tb.read().a, 6u);
  tb.write({7, 21});
  tb.write({8, 24});
  EXPECT_EQ(tb.read().b, 24u);
}

TEST(TripleBuffer, ConcurrentReaderNeverSeesATornOrOlderValue) {
  TripleBuffer<Pair> tb;
  std::atomic<bool> done{false};
  constexpr std::uint64_t kWrites = 200'000;
  std::thread writer([&] {
    for (std::uint64_t i = 1; i <= kWrites; ++i) tb.write({i, 3 * i});
    done = true;
  });
  std::uint64_t last = 0, torn = 0, backwards = 0;
  while (!done.load()) {
    const Pair p = tb.read();
    torn += p.b != 3 * p.a;
    backwards += p.a < last;
    last = p.a;
  }
  writer.join();
  EXPECT_EQ(torn, 0u);
  EXPECT_EQ(backwards, 0u);
  EXPECT_EQ(tb.read().a, kWrites);
}

// The single-writer rule as a type property: one writer handle, one reader
// handle, neither copyable.
static_assert(!std::is_copy_constructible_v<TripleBufferWriter<Pair>>);
static_assert(!std::is_copy_assignable_v<TripleBufferWriter<Pair>>);
static_assert(!std::is_copy_constructible_v<TripleBufferReader<Pair>>);
static_assert(!std::is_copy_assignable_v<TripleBufferReader<Pair>>);
static_assert(std::is_nothrow_move_constructible_v<TripleBufferWriter<Pair>>);
static_assert(std::is_nothrow_move_assignable_v<TripleBufferWriter<Pair>>);
static_assert(std::is_nothrow_move_constructible_v<TripleBufferReader<Pair>>);
static_assert(std::is_nothrow_move_assignable_v<TripleBufferReader<Pair>>);
static_assert(noexcept(std::declval<TripleBufferWriter<Pair>&>().write(Pair{})));
static_assert(noexcept(std::declval<TripleBufferReader<Pair>&>().read()));
static_assert(!std::is_copy_constructible_v<TripleBufferPair<Pair>>);

TEST(TripleBufferHandles, WriterPublishesToReader) {
  auto [writer, reader] = make_triple_buffer<Pair>();
  ASSERT_TRUE(writer.valid());
  ASSERT_TRUE(reader.valid());
  EXPECT_EQ(reader.read().a, 0u);  // default before the first write
  writer.write({4, 12});
  EXPECT_EQ(reader.read().a, 4u);
  EXPECT_EQ(reader.read().b, 12u);
  writer.write({5, 15});
  writer.write({6, 18});
  EXPECT_EQ(reader.read().a, 6u);
}

TEST(TripleBufferHandles, TwoPairsAreIndependent) {
  auto one = make_triple_buffer<Pair>();
  auto two = make_triple_buffer<Pair>();
  one.writer.write({1, 3});
  EXPECT_EQ(one.reader.read().a, 1u);
  EXPECT_EQ(two.reader.read().a, 0u);
}

TEST(TripleBufferHandles, MovedHandlesKeepTheSharedBuffer) {
  auto pair = make_triple_buffer<Pair>();
  TripleBufferWriter<Pair> writer = std::move(pair.writer);
  TripleBufferReader<Pair> reader;
  EXPECT_FALSE(reader.valid());  // default-constructed: empty
  reader = std::move(pair.reader);
  EXPECT_FALSE(pair.writer.valid());  // NOLINT(bugprone-use-after-move): moved-from is empty
  EXPECT_FALSE(pair.reader.valid());  // NOLINT(bugprone-use-after-move)
  ASSERT_TRUE(writer.valid());
  ASSERT_TRUE(reader.valid());
  writer.write({9, 27});
  EXPECT_EQ(reader.read().a, 9u);

  // The buffer outlives the writer: the reader still holds the last value.
  { TripleBufferWriter<Pair> gone = std::move(writer); }
  EXPECT_FALSE(writer.valid());  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(reader.read().a, 9u);
  EXPECT_EQ(reader.read().b, 27u);
}

TEST(TripleBufferHandles, ConcurrentWriterAndReaderThroughHandles) {
  auto [writer, reader] = make_triple_buffer<Pair>();
  std::atomic<bool> done{false};
  constexpr std::uint64_t kWrites = 200'000;
  // The writer handle moves into the writer thread: only that thread can write.
  std::thread writer_thread([w = std::move(writer), &done]() mutable {
    for (std::uint64_t i = 1; i <= kWrites; ++i) w.write({i, 3 * i});
    done = true;
  });
  EXPECT_FALSE(writer.valid());  // NOLINT(bugprone-use-after-move)
  std::uint64_t last = 0, torn = 0, backwards = 0;
  do {
    const Pair& p = reader.read();
    torn += p.b != 3 * p.a;
    backwards += p.a < last;
    last = p.a;
  } while (!done.load());
  writer_thread.join();
  EXPECT_EQ(torn, 0u);
  EXPECT_EQ(backwards, 0u);
  EXPECT_EQ(reader.read().a, kWrites);
  EXPECT_EQ(reader.read().b, 3 * kWrites);
}

}  // namespace
}  // namespace jamnet
