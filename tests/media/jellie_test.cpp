#include "jamnet/media/jdat/jellie.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "signals/signals.hpp"

namespace jamnet::media::jdat {
namespace {

namespace pj = protocol::jdat;

constexpr SampleFormat kFormats[] = {SampleFormat::kFloat32, SampleFormat::kInt24,
                                     SampleFormat::kInt16};
constexpr int kBlocks[] = {16, 64, 256, 512};

// The signal as the stream format carries it: what an exact decode must give.
std::vector<float> quantised(SampleFormat f, const std::vector<float>& x) {
  std::vector<float> q(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) q[i] = pj::from_word(f, pj::to_word(f, x[i]));
  return q;
}

std::vector<float> noise(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-0.9f, 0.9f);
  std::vector<float> x(n);
  for (auto& v : x) v = u(rng);
  return x;
}

double snr_db(const std::vector<float>& ref, const std::vector<float>& got, std::size_t from = 0) {
  double s = 0.0, e = 0.0;
  for (std::size_t i = from; i < std::min(ref.size(), got.size()); ++i) {
    s += double(ref[i]) * ref[i];
    e += (double(got[i]) - ref[i]) * (double(got[i]) - ref[i]);
  }
  return 10.0 * std::log10(s / std::max(e, 1e-300));
}

struct Decoded {
  std::vector<float> out;
  std::vector<JellieOutcome> outcomes;
};

// Encodes x block by block and decodes it with the streams of `mask` (bit i:
// stream i arrives), block b getting masks[b % masks.size()]. With
// tell_history, each lost block is followed by set_history(the true block).
Decoded run(SampleFormat f, int block, const std::vector<float>& x,
            const std::vector<unsigned>& masks, bool tell_history = false) {
  const JellieEncoder enc(f);
  JellieDecoder dec(f, pj::kMaxFrames);
  const std::size_t half = static_cast<std::size_t>(block / 2);
  std::array<std::vector<std::uint32_t>, 4> s;
  for (auto& v : s) v.assign(half, 0xDEADBEEFu);
  Decoded r;
  r.out.assign(x.size() / block * block, 0.0f);
  for (std::size_t b = 0; b * block < r.out.size(); ++b) {
    const std::span<const float> in(x.data() + b * block, static_cast<std::size_t>(block));
    enc.encode(in, {s[0], s[1], s[2], s[3]});
    const unsigned mask = masks[b % masks.size()];
    std::array<bool, 4> present{};
    std::array<std::vector<std::uint32_t>, 4> got = s;
    for (int i = 0; i < 4; ++i) {
      present[static_cast<std::size_t>(i)] = (mask >> i) & 1;
      if (!present[static_cast<std::size_t>(i)])  // what did not arrive is garbage
        std::fill(got[static_cast<std::size_t>(i)].begin(), got[static_cast<std::size_t>(i)].end(),
                  0xA5A5A5A5u);
    }
    r.outcomes.push_back(dec.decode({got[0], got[1], got[2], got[3]}, present,
                                    std::span(r.out).subspan(b * block, block)));
    if (tell_history && r.outcomes.back() == JellieOutcome::kLost) dec.set_history(in);
  }
  return r;
}

int count_of(unsigned mask) {
  return std::popcount(mask);
}

std::string name_of(unsigned mask) {
  std::string s;
  for (int i = 0; i < 4; ++i)
    if ((mask >> i) & 1) s += "EOPQ"[i];
  return s.empty() ? "{}" : "{" + s + "}";
}

TEST(Jellie, StreamsAreEvenOddAndTheirParities) {
  const JellieEncoder enc(SampleFormat::kInt16);
  std::vector<float> x{0.5f, -0.5f, 0.25f, 1.0f};
  std::array<std::vector<std::uint32_t>, 4> s;
  for (auto& v : s) v.assign(2, 0);
  enc.encode(x, {s[0], s[1], s[2], s[3]});
  EXPECT_EQ(s[0], (std::vector<std::uint32_t>{0x4000, 0x2000}));
  EXPECT_EQ(s[1], (std::vector<std::uint32_t>{0xC000, 0x7FFF}));
  EXPECT_EQ(s[2], (std::vector<std::uint32_t>{0x4000 ^ 0xC000, 0x2000 ^ 0x7FFF}));
  // 2 * 0xC0 = 0x180 ^ 0x11d = 0x9d; 2 * 0x7F = 0xFE, 2 * 0xFF = 0x1FE ^ 0x11d = 0xE3.
  EXPECT_EQ(s[3], (std::vector<std::uint32_t>{0x4000 ^ 0x9D00, 0x2000 ^ 0xFEE3}));
  for (const auto& v : s)
    for (auto w : v) EXPECT_EQ(w >> 16, 0u);  // int16 words stay in 16 bits
}

TEST(Jellie, AnyTwoStreamsGiveEveryByteValueBack) {
  // Random bit patterns as float32 samples: every byte value in every byte
  // position, NaNs included, through all 6 pairs.
  std::mt19937 rng(5);
  std::vector<float> x(4096);
  for (auto& v : x) v = std::bit_cast<float>(static_cast<std::uint32_t>(rng()));
  for (unsigned mask = 0; mask < 16; ++mask) {
    if (count_of(mask) < 2) continue;
    const Decoded r = run(SampleFormat::kFloat32, 64, x, {mask});
    for (auto o : r.outcomes) ASSERT_EQ(o, JellieOutcome::kExact);
    for (std::size_t i = 0; i < x.size(); ++i)
      ASSERT_EQ(std::bit_cast<std::uint32_t>(r.out[i]), std::bit_cast<std::uint32_t>(x[i]))
          << name_of(mask) << " sample " << i;
  }
}

TEST(Jellie, UpToTwoLostStreamsAreBitExactForEveryFormatAndBlockSize) {
  const std::vector<std::vector<float>> signals{signals::sine(1000.0, 0.1), signals::chords(0.1),
                                                noise(4800, 9)};
  for (auto f : kFormats) {
    for (int block : kBlocks) {
      for (std::size_t sig = 0; sig < signals.size(); ++sig) {
        const auto& x = signals[sig];
        const auto want = quantised(f, x);
        for (unsigned mask = 0; mask < 16; ++mask) {
          if (count_of(mask) < 2) continue;
          const Decoded r = run(f, block, x, {mask});
          for (auto o : r.outcomes) ASSERT_EQ(o, JellieOutcome::kExact);
          for (std::size_t i = 0; i < r.out.size(); ++i)
            ASSERT_EQ(std::bit_cast<std::uint32_t>(r.out[i]), std::bit_cast<std::uint32_t>(want[i]))
                << pj::to_string(f) << " block " << block << " signal " << sig << " "
                << name_of(mask) << " sample " << i;
        }
      }
    }
  }
}

TEST(Jellie, OnlyEvenOrOddLeftIsInterpolatedWell) {
  // A 1 kHz sine at 48 kHz and the chord progression, every block with only
  // E or only O: half the samples are exact, the other half interpolated.
  const auto sine = signals::sine(1000.0, 0.1);
  const auto chords = signals::chords(0.3);
  for (auto f : kFormats) {
    for (int block : kBlocks) {
      for (unsigned mask : {1u, 2u}) {
        const auto want_sine = quantised(f, sine);
        const Decoded rs = run(f, block, sine, {mask});
        for (auto o : rs.outcomes) ASSERT_EQ(o, JellieOutcome::kInterpolated);
        const double snr_sine = snr_db(want_sine, rs.out);
        EXPECT_GT(snr_sine, 80.0) << pj::to_string(f) << " block " << block << " " << name_of(mask);
        // The half that arrived is exact.
        const std::size_t known = mask == 1u ? 0 : 1;
        for (std::size_t i = known; i < rs.out.size(); i += 2) ASSERT_EQ(rs.out[i], want_sine[i]);

        const auto want_chords = quantised(f, chords);
        const Decoded rc = run(f, block, chords, {mask});
        const double snr_chords = snr_db(want_chords, rc.out);
        EXPECT_GT(snr_chords, 60.0)
            << pj::to_string(f) << " block " << block << " " << name_of(mask);
      }
    }
  }
}

TEST(Jellie, ThreeLostStreamsBeatRepeatingTheKnownNeighbour) {
  // Interpolation must beat the naive alternative (sample-and-hold of the
  // known half) by a wide margin (measured: 60-70 dB) on music-like material, even when every
  // other block is exact (history changes between exact and interpolated).
  const auto chords = signals::chords(0.5);
  for (auto f : kFormats) {
    const auto want = quantised(f, chords);
    const Decoded r = run(f, 64, chords, {0b0001u, 0b1111u, 0b0010u, 0b0110u});
    std::vector<float> hold(want.size());
    for (std::size_t i = 0; i + 1 < want.size(); i += 2) hold[i] = hold[i + 1] = want[i];
    EXPECT_GT(snr_db(want, r.out), snr_db(want, hold) + 40.0) << pj::to_string(f);
  }
}

TEST(Jellie, OnlyParityLeftIsLostAndOutputsZeros) {
  const auto x = signals::sine(1000.0, 0.05);
  for (auto f : kFormats) {
    for (unsigned mask : {0u, 4u, 8u}) {
      const Decoded r = run(f, 64, x, {mask});
      for (auto o : r.outcomes) ASSERT_EQ(o, JellieOutcome::kLost) << name_of(mask);
      for (float v : r.out) ASSERT_EQ(v, 0.0f);
    }
  }
}

TEST(Jellie, AllSixteenLossPatternsGiveTheDocumentedOutcome) {
  const auto x = signals::sine(440.0, 0.02);
  for (unsigned mask = 0; mask < 16; ++mask) {
    const Decoded r = run(SampleFormat::kInt16, 32, x, {mask});
    JellieOutcome want = JellieOutcome::kLost;
    if (count_of(mask) >= 2)
      want = JellieOutcome::kExact;
    else if (mask == 1u || mask == 2u)
      want = JellieOutcome::kInterpolated;
    for (auto o : r.outcomes) ASSERT_EQ(o, want) << name_of(mask);
  }
}

TEST(Jellie, RandomLossKeepsExactBlocksExactAndInterpolatesAfterGaps) {
  // Each stream lost independently with 40%: all outcomes mixed, lost blocks
  // in between. Exact blocks stay bit-exact whatever came before; the
  // interpolated ones stay good even right after a lost block (no history).
  const auto x = signals::chords(1.0);
  std::mt19937 rng(17);
  std::vector<unsigned> masks(x.size() / 64);
  for (auto& m : masks) {
    m = 0;
    for (int i = 0; i < 4; ++i) m |= (rng() % 100 < 60 ? 1u : 0u) << i;
  }
  for (auto f : kFormats) {
    const auto want = quantised(f, x);
    const Decoded r = run(f, 64, x, masks);
    double s = 0.0, e = 0.0;
    int interpolated = 0, lost = 0;
    for (std::size_t b = 0; b < masks.size(); ++b) {
      const unsigned m = masks[b];
      const auto o = r.outcomes[b];
      const std::size_t at = b * 64;
      if (count_of(m) >= 2) {
        ASSERT_EQ(o, JellieOutcome::kExact);
        for (std::size_t i = at; i < at + 64; ++i) ASSERT_EQ(r.out[i], want[i]);
      } else if (m == 1u || m == 2u) {
        ASSERT_EQ(o, JellieOutcome::kInterpolated);
        ++interpolated;
        for (std::size_t i = at; i < at + 64; ++i) {
          s += double(want[i]) * want[i];
          e += (double(r.out[i]) - want[i]) * (double(r.out[i]) - want[i]);
        }
      } else {
        ASSERT_EQ(o, JellieOutcome::kLost);
        ++lost;
      }
    }
    ASSERT_GT(interpolated, 10);
    ASSERT_GT(lost, 10);
    EXPECT_GT(10.0 * std::log10(s / e), 60.0) << pj::to_string(f);
  }
}

TEST(Jellie, ConcealedHistoryIsUsedForTheNextLeftEdge) {
  // Every other block lost, the ones between with only O. Telling the
  // decoder what was played in the gaps (here the true signal, as a perfect
  // concealer would) gives the interpolation its left edge back; without it
  // the edge is predicted backward from the block alone, which is worse.
  const auto x = signals::chords(1.0);
  const auto want = quantised(SampleFormat::kFloat32, x);
  auto interpolated_snr = [&](bool tell) {
    const Decoded r = run(SampleFormat::kFloat32, 64, x, {0b0000u, 0b0010u}, tell);
    double s = 0.0, e = 0.0;
    for (std::size_t b = 1; b < r.outcomes.size(); b += 2) {
      EXPECT_EQ(r.outcomes[b], JellieOutcome::kInterpolated);
      for (std::size_t i = b * 64; i < b * 64 + 64; ++i) {
        s += double(want[i]) * want[i];
        e += (double(r.out[i]) - want[i]) * (double(r.out[i]) - want[i]);
      }
    }
    return 10.0 * std::log10(s / e);
  };
  const double told = interpolated_snr(true);
  const double untold = interpolated_snr(false);
  EXPECT_GT(told, 80.0);
  EXPECT_GT(untold, 55.0);
  EXPECT_GT(told, untold + 8.0);
}

TEST(Jellie, MisusedSpansAreHandledWithoutCrashing) {
  JellieDecoder dec(SampleFormat::kInt16, 64);
  std::vector<std::uint32_t> w(32, 0x1234);
  std::vector<float> out(128, 1.0f);  // more than max_frames
  EXPECT_EQ(dec.decode({w, w, w, w}, {true, true, true, true}, out), JellieOutcome::kLost);
  for (float v : out) EXPECT_EQ(v, 0.0f);
  std::vector<float> odd(33, 1.0f);
  EXPECT_EQ(dec.decode({w, w, w, w}, {true, true, true, true}, odd), JellieOutcome::kLost);
  // A present stream shorter than the block counts as missing.
  std::vector<float> out64(64);
  std::vector<std::uint32_t> shorter(10, 0);
  EXPECT_EQ(dec.decode({w, shorter, shorter, shorter}, {true, true, true, true}, out64),
            JellieOutcome::kInterpolated);
}

}  // namespace
}  // namespace jamnet::media::jdat
