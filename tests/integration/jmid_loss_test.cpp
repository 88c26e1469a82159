// JMID over a lossy link (issue: JMID acceptance "Loss tests"). Two peers in
// this process, a real netsim relay between them on loopback; random loss of
// 0, 20, 50 and 66% and Gilbert-Elliott bursts, k = 1..5 copies per event.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <vector>

#include "experiments/midi_link_experiment.hpp"

namespace jamnet {
namespace {

struct Case {
  const char* name;
  double loss;      // independent random loss
  double ge_p = 0;  // Gilbert-Elliott good->bad, bad->good
  double ge_r = 0;
};

// Stationary loss of a Gilbert-Elliott channel that drops everything in the bad state.
double ge_loss(const Case& c) {
  return c.ge_p / (c.ge_p + c.ge_r);
}

class JmidLoss : public ::testing::TestWithParam<Case> {};

TEST_P(JmidLoss, EveryKDeliversNearTheoryWithNoDuplicatesNoStuckNotesInOrder) {
  const Case c = GetParam();
  std::printf("\n%-8s %2s %9s %9s %9s %6s %6s %8s %10s\n", c.name, "k", "sent", "delivered",
              "theory", "dups", "stuck", "repairs", "bytes/ev");
  std::vector<double> rates;
  for (int k = 1; k <= 5; ++k) {
    MidiLinkExperiment x;
    x.k = k;
    x.events = 300;
    x.seed = 1000 + static_cast<std::uint64_t>(k);
    x.link.loss = c.loss;
    x.link.ge_p = c.ge_p;
    x.link.ge_r = c.ge_r;
    auto r = run_midi_link(x);
    ASSERT_TRUE(r.has_value()) << r.error().message;
    const bool bursty = c.ge_p > 0;
    const double p = bursty ? ge_loss(c) : c.loss;
    const double theory = 1.0 - std::pow(p, k);
    std::printf("%-8s %2d %9llu %9.4f %9.4f %6llu %6llu %8llu %10.1f\n", c.name, k,
                static_cast<unsigned long long>(r->sent), r->delivered_rate, theory,
                static_cast<unsigned long long>(r->app_duplicates),
                static_cast<unsigned long long>(r->stuck_notes),
                static_cast<unsigned long long>(r->repairs),
                static_cast<double>(r->bytes_on_wire) / static_cast<double>(r->sent));
    EXPECT_EQ(r->app_duplicates, 0u) << "k=" << k;
    EXPECT_EQ(r->out_of_order, 0u) << "k=" << k;
    EXPECT_EQ(r->stuck_notes, 0u) << "k=" << k;
    EXPECT_EQ(r->wrong_controllers, 0u) << "k=" << k;
    if (!bursty) {
      // Binomial: 5 standard deviations plus a little for copies of one
      // burst sharing a moment (not quite independent at the relay).
      const double sd = std::sqrt(theory * (1 - theory) / static_cast<double>(r->sent));
      EXPECT_NEAR(r->delivered_rate, theory, 5 * sd + 0.02) << "k=" << k;
    } else {
      // Bursts defeat copies sent within 0.5 ms of each other, and a few
      // hundred events see only a few dozen bursts: theory is no bound here.
      EXPECT_GT(r->delivered_rate, 0.5) << "k=" << k;
    }
    rates.push_back(r->delivered_rate);
  }
  // More copies must not deliver less (one event held up by a VM stall is noise).
  EXPECT_GE(rates.back(), rates.front() - 0.01) << "5 copies must deliver at least as much as 1";
}

TEST(JmidAcceptance, ThresholdOfTwoCopiesNeedsTwoOfThreeThrough) {
  // k = 3 at 50% loss: one copy needed -> 1 - 0.5^3 = 0.875; two -> P(X >= 2),
  // X ~ Bin(3, 0.5) = 0.5.
  for (const auto& [need, theory] : {std::pair{1, 0.875}, std::pair{2, 0.5}}) {
    MidiLinkExperiment x;
    x.k = 3;
    x.accept_copies = need;
    x.events = 300;
    x.seed = 77;
    x.link.loss = 0.5;
    auto r = run_midi_link(x);
    ASSERT_TRUE(r.has_value()) << r.error().message;
    std::printf("accept %d of 3 at 50%% loss: delivered %.4f (theory %.4f)\n", need,
                r->delivered_rate, theory);
    const double sd = std::sqrt(theory * (1 - theory) / static_cast<double>(r->sent));
    EXPECT_NEAR(r->delivered_rate, theory, 5 * sd + 0.02) << "accept " << need;
    EXPECT_EQ(r->app_duplicates, 0u);
    EXPECT_EQ(r->stuck_notes, 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(Netsim, JmidLoss,
                         ::testing::Values(Case{"loss0", 0.0}, Case{"loss20", 0.20},
                                           Case{"loss50", 0.50}, Case{"loss66", 0.66},
                                           Case{"bursty", 0.0, 0.05, 0.30}),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace jamnet
