// The generated test signals: right length and level, sound where they should,
// and music/speech come back identical from the cache and from a fresh render.
#include "signals/signals.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>
#include "../support/skip.hpp"

namespace jamnet::signals {
namespace {

namespace fs = std::filesystem;

double rms(const std::vector<float>& x, std::size_t from, std::size_t n) {
  double e = 0;
  for (std::size_t i = from; i < from + n && i < x.size(); ++i) e += double{x[i]} * x[i];
  return std::sqrt(e / static_cast<double>(n));
}

float peak(const std::vector<float>& x) {
  float m = 0;
  for (float v : x) m = std::max(m, std::abs(v));
  return m;
}

bool have_tool(const char* name) {
  const std::string cmd = std::string("command -v ") + name + " >/dev/null 2>&1";
  return std::system(cmd.c_str()) == 0;
}

class SignalsDir : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("jamnet_signals_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST(Signals, SineHasLengthAmplitudeAndFrequency) {
  const auto x = sine(1000.0, 0.5, 48000, 0.25f);
  ASSERT_EQ(x.size(), 24000u);
  EXPECT_NEAR(peak(x), 0.25f, 1e-3f);
  int rising = 0;  // upward zero crossings: one per cycle
  for (std::size_t i = 1; i < x.size(); ++i) rising += x[i - 1] < 0 && x[i] >= 0;
  EXPECT_NEAR(rising, 500, 1);
}

TEST(Signals, ChordsSoundThroughoutWithOnsetsEachSecond) {
  const int rate = 48000;
  const auto x = chords(4.0, rate);
  ASSERT_EQ(x.size(), 4u * rate);
  EXPECT_NEAR(peak(x), 0.5f, 1e-4f);
  const std::size_t w = rate / 10;
  for (std::size_t i = 0; i + w <= x.size(); i += w) EXPECT_GT(rms(x, i, w), 1e-3) << "at " << i;
  // A new chord starts every second: the level just after the onset is well
  // above the decayed level just before it.
  for (int s = 1; s < 4; ++s) {
    const auto t = static_cast<std::size_t>(s * rate);
    EXPECT_GT(rms(x, t + 480, 2400), 1.5 * rms(x, t - 2400, 2400)) << "second " << s;
  }
  EXPECT_EQ(chords(4.0, rate), x);  // deterministic
}

TEST_F(SignalsDir, MusicIsRenderedCachedAndDeterministic) {
  if (!have_tool("fluidsynth") || !fs::exists("/usr/share/sounds/sf2/FluidR3_GM.sf2"))
    JAMNET_SKIP_UNLESS_REQUIRED("fluidsynth or the FluidR3 GM soundfont is not installed");
  const int rate = 48000;
  auto a = music(dir_ / "a", 3.0, rate);
  ASSERT_TRUE(a.has_value()) << a.error().message;
  ASSERT_EQ(a->size(), 3u * rate);
  EXPECT_NEAR(peak(*a), 0.7f, 1e-3f);
  // Drums every eighth note, bass and piano throughout: no silent stretch.
  const std::size_t w = rate / 4;
  for (std::size_t i = 0; i + w <= a->size(); i += w) EXPECT_GT(rms(*a, i, w), 0.01) << "at " << i;
  // Exactly one cached file, and the cached copy is what came back.
  std::size_t files = 0;
  for (const auto& e : fs::directory_iterator(dir_ / "a")) files += e.is_regular_file();
  EXPECT_EQ(files, 1u);
  auto cached = music(dir_ / "a", 3.0, rate);
  ASSERT_TRUE(cached.has_value());
  EXPECT_EQ(*cached, *a);
  // A fresh render elsewhere gives the same samples (reverb and chorus off).
  auto b = music(dir_ / "b", 3.0, rate);
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(*b, *a);
  // Another length is another song length: a different cache entry.
  auto c = music(dir_ / "a", 2.0, rate);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->size(), 2u * rate);
}

TEST_F(SignalsDir, MusicRejectsBadArguments) {
  EXPECT_FALSE(music(dir_, 0.0, 48000).has_value());
  EXPECT_FALSE(music(dir_, 1.0, 0).has_value());
}

TEST_F(SignalsDir, MissingToolIsAClearError) {
  const char* old = std::getenv("PATH");
  const std::string saved = old ? old : "";
  ::setenv("PATH", "/nonexistent-jamnet-test", 1);
  auto s = speech(dir_, 48000);
  auto m = music(dir_, 1.0, 48000);
  ::setenv("PATH", saved.c_str(), 1);
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code, Errc::kNotFound);
  EXPECT_NE(s.error().message.find("espeak-ng"), std::string::npos) << s.error().message;
  if (fs::exists("/usr/share/sounds/sf2/FluidR3_GM.sf2")) {
    ASSERT_FALSE(m.has_value());
    EXPECT_EQ(m.error().code, Errc::kNotFound);
    EXPECT_NE(m.error().message.find("fluidsynth"), std::string::npos) << m.error().message;
  }
  // Nothing half-made is left behind as a cache entry.
  std::size_t wavs = 0;
  for (const auto& e : fs::directory_iterator(dir_)) wavs += e.path().extension() == ".wav";
  EXPECT_EQ(wavs, 0u);
}

TEST_F(SignalsDir, SpeechIsResampledAndCached) {
  if (!have_tool("espeak-ng")) JAMNET_SKIP_UNLESS_REQUIRED("espeak-ng is not installed");
  auto a = speech(dir_, 48000);
  ASSERT_TRUE(a.has_value()) << a.error().message;
  // A few sentences: several seconds, at 48 kHz.
  EXPECT_GT(a->size(), 4u * 48000);
  EXPECT_LT(a->size(), 60u * 48000);
  EXPECT_NEAR(peak(*a), 0.7f, 1e-3f);
  EXPECT_GT(rms(*a, 0, a->size()), 0.02);
  auto again = speech(dir_, 48000);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(*again, *a);
  // Other rates scale the length (espeak-ng speaks at 22050 Hz).
  auto low = speech(dir_, 16000);
  ASSERT_TRUE(low.has_value());
  EXPECT_NEAR(static_cast<double>(low->size()) / static_cast<double>(a->size()), 1.0 / 3.0, 1e-3);
}

}  // namespace
}  // namespace jamnet::signals
