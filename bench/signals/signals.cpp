// Test signals: synthesised sines and chords, music rendered by fluidsynth
// from a MIDI file written here, speech from espeak-ng. Everything is made on
// this machine at test time and cached in a work folder by content.
#include "signals/signals.hpp"

#include <fcntl.h>
#include <samplerate.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <numbers>
#include <optional>
#include <span>
#include <string_view>

#include "jamnet/engine/io/wav_file.hpp"

extern char** environ;

namespace jamnet::signals {
namespace {

constexpr const char* kSoundFont = "/usr/share/sounds/sf2/FluidR3_GM.sf2";
// Music and speech are scaled to this peak, so their level (and the -60 dBFS
// silence threshold of the quality measures) does not depend on synth gains.
constexpr float kPeak = 0.7f;


// ---- small helpers ---------------------------------------------------------

std::uint64_t fnv1a(std::span<const std::uint8_t> bytes, std::uint64_t h = 0xcbf29ce484222325ull) {
  for (std::uint8_t b : bytes) {
    h ^= b;
    h *= 0x100000001b3ull;
  }
  return h;
}

std::uint64_t fnv1a(std::string_view s, std::uint64_t h = 0xcbf29ce484222325ull) {
  return fnv1a(std::span(reinterpret_cast<const std::uint8_t*>(s.data()), s.size()), h);
}

std::string hex64(std::uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

// Runs argv[0] (looked up in PATH) with stdout and stderr to `log`, waits for
// it. Errors say which tool is missing or what it printed.
Result<void> run_tool(const std::vector<std::string>& args, const std::filesystem::path& log) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc == ENOENT)
    return make_error(Errc::kNotFound,
                      args[0] + " not found in PATH (install the " + args[0] + " package)");
  if (rc != 0) return make_error(Errc::kIo, "cannot start " + args[0] + ": " + std::strerror(rc));
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return make_error(Errc::kIo, "waitpid failed for " + args[0]);
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::ifstream f(log);
    std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    if (text.size() > 400) text = text.substr(text.size() - 400);
    return make_error(Errc::kIo,
                      args[0] + " failed (status " + std::to_string(status) + "): " + text);
  }
  return {};
}

// Writes a mono float WAV through a temporary name, so a reader never sees a
// half-written cache file.
Result<void> write_mono_atomic(const std::filesystem::path& path, std::span<const float> x,
                               int rate) {
  const auto tmp = path.string() + ".tmp" + std::to_string(::getpid());
  if (auto ok = engine::io::write_wav(tmp, x, 1, rate); !ok) return ok;
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return make_error(Errc::kIo, "cannot rename " + tmp + ": " + ec.message());
  return {};
}

Result<std::vector<float>> read_mono(const std::filesystem::path& path, int* rate_out) {
  return engine::io::read_wav_mono(path.string(), rate_out);
}

Result<std::vector<float>> resample(std::vector<float> x, int from, int to) {
  if (from == to || x.empty()) return x;
  const double ratio = static_cast<double>(to) / from;
  std::vector<float> y(static_cast<std::size_t>(std::ceil(x.size() * ratio)) + 16);
  SRC_DATA d{};
  d.data_in = x.data();
  d.input_frames = static_cast<long>(x.size());
  d.data_out = y.data();
  d.output_frames = static_cast<long>(y.size());
  d.src_ratio = ratio;
  const int err = src_simple(&d, SRC_SINC_BEST_QUALITY, 1);
  if (err != 0) return make_error(Errc::kIo, std::string("libsamplerate: ") + src_strerror(err));
  y.resize(static_cast<std::size_t>(d.output_frames_gen));
  return y;
}

void normalise_peak(std::vector<float>& x, float peak) {
  float m = 0.0f;
  for (float v : x) m = std::max(m, std::abs(v));
  if (m <= 0.0f) return;
  const float g = peak / m;
  for (float& v : x) v *= g;
}

Result<void> ensure_dir(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return make_error(Errc::kIo, "cannot create " + dir.string() + ": " + ec.message());
  return {};
}

// A cached signal: right length, right rate, or nothing.
std::optional<std::vector<float>> load_cached(const std::filesystem::path& path, int rate,
                                              std::size_t want_len) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return std::nullopt;
  int got_rate = 0;
  auto x = read_mono(path, &got_rate);
  if (!x || got_rate != rate || (want_len != 0 && x->size() != want_len)) return std::nullopt;
  return std::move(*x);
}

// ---- the song --------------------------------------------------------------

// A format 0 SMF built byte by byte: 480 ticks per quarter, 120 bpm, so one
// 4/4 bar is 2 s. Events are (tick, status, d1, d2).
struct MidiEvent {
  std::uint32_t tick;
  std::uint8_t status, d1, d2;
};

constexpr int kPpq = 480;
constexpr int kBar = 4 * kPpq;
constexpr int kEighth = kPpq / 2;

void note(std::vector<MidiEvent>& ev, int ch, std::uint32_t tick, int len, int key, int vel) {
  ev.push_back({tick, static_cast<std::uint8_t>(0x90 | ch), static_cast<std::uint8_t>(key),
                static_cast<std::uint8_t>(vel)});
  ev.push_back({tick + static_cast<std::uint32_t>(len), static_cast<std::uint8_t>(0x80 | ch),
                static_cast<std::uint8_t>(key), 0});
}

void put_vlq(std::vector<std::uint8_t>& out, std::uint32_t v) {
  std::uint8_t tmp[5];
  int n = 0;
  tmp[n++] = v & 0x7f;
  while ((v >>= 7) != 0) tmp[n++] = static_cast<std::uint8_t>(0x80 | (v & 0x7f));
  while (n > 0) out.push_back(tmp[--n]);
}

void put_be(std::vector<std::uint8_t>& out, std::uint32_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}

// Piano (GM 0, channel 1 on the wire = 0 here), finger bass (GM 33, channel
// 1) and drums (channel 9: kick 36, snare 38, closed hi-hat 42) playing
// I-V-vi-IV / ii-V-I-I in C major with a small melody; `bars` bars long.
std::vector<std::uint8_t> song_smf(int bars) {
  // chord roots (MIDI notes, bass octave) and chord tones (piano voicing)
  struct Chord {
    int root;
    std::array<int, 4> tones;
  };
  static constexpr std::array<Chord, 8> kProg{{
      {36, {60, 64, 67, 72}},  // C
      {43, {59, 62, 67, 71}},  // G/B voicing
      {45, {57, 60, 64, 69}},  // Am
      {41, {57, 60, 65, 69}},  // F
      {38, {57, 62, 65, 69}},  // Dm
      {43, {59, 62, 65, 67}},  // G7
      {36, {60, 64, 67, 72}},  // C
      {36, {60, 64, 67, 71}},  // Cmaj7
  }};
  static constexpr std::array<int, 7> kScale{72, 74, 76, 77, 79, 81, 83};  // C major, octave 5
  std::vector<MidiEvent> ev;
  ev.push_back({0, 0xC0, 0, 0});    // piano
  ev.push_back({0, 0xC1, 33, 0});   // electric bass (finger)
  ev.push_back({0, 0xB0, 7, 100});  // channel volumes: a balanced mix
  ev.push_back({0, 0xB1, 7, 110});
  ev.push_back({0, 0xB9, 7, 90});
  std::uint32_t lcg = 12345;  // deterministic "humanised" choices
  auto rnd = [&lcg](int n) {
    lcg = lcg * 1103515245u + 12345u;
    return static_cast<int>((lcg >> 16) % static_cast<std::uint32_t>(n));
  };
  int melody_idx = 2;  // index into kScale
  for (int b = 0; b < bars; ++b) {
    const Chord& c = kProg[static_cast<std::size_t>(b) % kProg.size()];
    const auto t0 = static_cast<std::uint32_t>(b * kBar);
    const bool last = b == bars - 1;
    // Piano comping: a held chord on 1, a short stab on the "and" of 2, a
    // broken chord on 3-4.
    for (int i = 0; i < 4; ++i)
      note(ev, 0, t0, last ? kBar : 3 * kEighth, c.tones[i], 70 + rnd(10));
    if (!last) {
      for (int i = 0; i < 3; ++i)
        note(ev, 0, t0 + 3 * kEighth, kEighth, c.tones[i + 1], 58 + rnd(8));
      for (int k = 0; k < 4; ++k)
        note(ev, 0, t0 + static_cast<std::uint32_t>((4 + k) * kEighth), kEighth, c.tones[k] - 12,
             55 + rnd(10));
    }
    // Melody: quarter and eighth notes, steps around the scale, landing on
    // a chord tone at the bar start.
    if (!last) {
      int t = 0;
      while (t < kBar) {
        const int len = (rnd(3) == 0) ? kPpq : kEighth;
        const int step = rnd(5) - 2;
        melody_idx = std::clamp(melody_idx + step, 0, static_cast<int>(kScale.size()) - 1);
        int key = kScale[static_cast<std::size_t>(melody_idx)];
        if (t == 0) key = c.tones[3] + 12 > 84 ? c.tones[3] : c.tones[3] + 12;
        if (rnd(6) != 0)
          note(ev, 0, t0 + static_cast<std::uint32_t>(t), len - 10, key, 85 + rnd(15));
        t += len;
      }
    }
    // Bass: root, fifth on the "and" of 2, root on 3, an approach note on 4.
    if (last) {
      note(ev, 1, t0, kBar, c.root, 100);
    } else {
      const int next_root = kProg[static_cast<std::size_t>(b + 1) % kProg.size()].root;
      note(ev, 1, t0, 3 * kEighth - 20, c.root, 100 + rnd(10));
      note(ev, 1, t0 + 3 * kEighth, kEighth - 20, c.root + 7, 85 + rnd(10));
      note(ev, 1, t0 + 4 * kEighth, 2 * kEighth - 20, c.root + 12, 95 + rnd(10));
      note(ev, 1, t0 + 6 * kEighth, 2 * kEighth - 20, next_root + (next_root > c.root ? -1 : 1),
           90 + rnd(10));
    }
    // Drums: kick on 1 and 3 (and sometimes the "and" of 3), snare on 2 and
    // 4, hi-hat on every eighth, accented on the beat.
    note(ev, 9, t0, 60, 36, 110);
    if (!last) {
      note(ev, 9, t0 + 4 * kEighth, 60, 36, 105);
      if (rnd(2) == 0) note(ev, 9, t0 + 5 * kEighth, 60, 36, 80);
      note(ev, 9, t0 + 2 * kEighth, 60, 38, 100 + rnd(15));
      note(ev, 9, t0 + 6 * kEighth, 60, 38, 100 + rnd(15));
      for (int k = 0; k < 8; ++k)
        note(ev, 9, t0 + static_cast<std::uint32_t>(k * kEighth), 60, 42,
             (k % 2 == 0 ? 80 : 55) + rnd(10));
    }
  }
  // Note-offs before note-ons at the same tick (a repeated key must restart).
  std::stable_sort(ev.begin(), ev.end(), [](const MidiEvent& a, const MidiEvent& b) {
    if (a.tick != b.tick) return a.tick < b.tick;
    const bool a_off = (a.status & 0xF0) == 0x80, b_off = (b.status & 0xF0) == 0x80;
    return a_off && !b_off;
  });

  std::vector<std::uint8_t> trk;
  put_vlq(trk, 0);
  trk.insert(trk.end(), {0xFF, 0x51, 0x03, 0x07, 0xA1, 0x20});  // 500000 us per quarter
  std::uint32_t now = 0;
  for (const MidiEvent& e : ev) {
    put_vlq(trk, e.tick - now);
    now = e.tick;
    trk.push_back(e.status);
    trk.push_back(e.d1);
    if ((e.status & 0xF0) != 0xC0) trk.push_back(e.d2);
  }
  put_vlq(trk, kPpq);  // a beat of tail so the last release is rendered
  trk.insert(trk.end(), {0xFF, 0x2F, 0x00});

  std::vector<std::uint8_t> smf{'M', 'T', 'h', 'd'};
  put_be(smf, 6, 4);
  put_be(smf, 0, 2);  // format 0
  put_be(smf, 1, 2);  // one track
  put_be(smf, kPpq, 2);
  smf.insert(smf.end(), {'M', 'T', 'r', 'k'});
  put_be(smf, static_cast<std::uint32_t>(trk.size()), 4);
  smf.insert(smf.end(), trk.begin(), trk.end());
  return smf;
}

constexpr std::string_view kSpeechText =
    "The quick brown fox jumps over the lazy dog. "
    "Network music needs low latency, steady timing, and good sound when packets go missing. "
    "Seven silver swans sang softly by the river, while the band played on into the night.";

}  // namespace

Result<std::vector<float>> music(const std::filesystem::path& workdir, double seconds, int rate) {
  if (!(seconds > 0.0) || rate <= 0)
    return make_error(Errc::kInvalidArgument, "music: seconds and rate must be positive");
  if (auto ok = ensure_dir(workdir); !ok) return std::unexpected(ok.error());
  const int bars = static_cast<int>(std::ceil(seconds / 2.0)) + 1;
  const std::vector<std::uint8_t> smf = song_smf(bars);
  const auto want = static_cast<std::size_t>(std::llround(seconds * rate));
  // The key covers everything that shapes the result: the MIDI bytes, the
  // render settings, the rate and the length.
  std::uint64_t key = fnv1a(smf);
  key = fnv1a("fluidsynth -R0 -C0 -g0.6 FluidR3_GM peak0.7 v1 " + std::to_string(rate) + " " +
                  std::to_string(want),
              key);
  const auto cached = workdir / ("music_" + hex64(key) + ".wav");
  if (auto hit = load_cached(cached, rate, want)) return std::move(*hit);

  if (!std::filesystem::exists(kSoundFont))
    return make_error(Errc::kNotFound, std::string("soundfont ") + kSoundFont +
                                           " missing (install fluid-soundfont-gm)");
  const std::string stem = "song_" + hex64(key) + "_" + std::to_string(::getpid());
  const auto mid = workdir / (stem + ".mid");
  const auto wav = workdir / (stem + ".wav");
  {
    std::ofstream f(mid, std::ios::binary);
    f.write(reinterpret_cast<const char*>(smf.data()), static_cast<std::streamsize>(smf.size()));
    if (!f) return make_error(Errc::kIo, "cannot write " + mid.string());
  }
  // Reverb and chorus off: a dry, deterministic render.
  auto ran = run_tool(
      {"fluidsynth", "-ni", "-q", "-R", "0", "-C", "0", "-g", "0.6", "-r", std::to_string(rate),
       "-T", "wav", "-O", "float", "-F", wav.string(), kSoundFont, mid.string()},
      workdir / (stem + ".log"));
  std::error_code ec;
  if (!ran) {
    std::filesystem::remove(mid, ec);
    std::filesystem::remove(wav, ec);
    std::filesystem::remove(workdir / (stem + ".log"), ec);
    return std::unexpected(ran.error());
  }
  int got_rate = 0;
  auto x = read_mono(wav, &got_rate);
  std::filesystem::remove(mid, ec);
  std::filesystem::remove(wav, ec);
  std::filesystem::remove(workdir / (stem + ".log"), ec);
  if (!x) return std::unexpected(x.error());
  auto y = resample(std::move(*x), got_rate, rate);
  if (!y) return std::unexpected(y.error());
  y->resize(want, 0.0f);
  normalise_peak(*y, kPeak);
  if (auto ok = write_mono_atomic(cached, *y, rate); !ok) return std::unexpected(ok.error());
  return std::move(*y);
}

Result<std::vector<float>> speech(const std::filesystem::path& workdir, int rate) {
  if (rate <= 0) return make_error(Errc::kInvalidArgument, "speech: rate must be positive");
  if (auto ok = ensure_dir(workdir); !ok) return std::unexpected(ok.error());
  const std::uint64_t key = fnv1a("espeak-ng default voice v1 peak0.7 " + std::to_string(rate) +
                                  " " + std::string(kSpeechText));
  const auto cached = workdir / ("speech_" + hex64(key) + ".wav");
  if (auto hit = load_cached(cached, rate, 0); hit && !hit->empty()) return std::move(*hit);

  const std::string stem = "espeak_" + hex64(key) + "_" + std::to_string(::getpid());
  const auto wav = workdir / (stem + ".wav");
  auto ran = run_tool({"espeak-ng", "-w", wav.string(), std::string(kSpeechText)},
                      workdir / (stem + ".log"));
  std::error_code ec;
  if (!ran) {
    std::filesystem::remove(wav, ec);
    std::filesystem::remove(workdir / (stem + ".log"), ec);
    return std::unexpected(ran.error());
  }
  int got_rate = 0;
  auto x = read_mono(wav, &got_rate);
  std::filesystem::remove(wav, ec);
  std::filesystem::remove(workdir / (stem + ".log"), ec);
  if (!x) return std::unexpected(x.error());
  if (x->empty()) return make_error(Errc::kIo, "espeak-ng wrote no audio");
  auto y = resample(std::move(*x), got_rate, rate);
  if (!y) return std::unexpected(y.error());
  normalise_peak(*y, kPeak);
  if (auto ok = write_mono_atomic(cached, *y, rate); !ok) return std::unexpected(ok.error());
  return std::move(*y);
}

}  // namespace jamnet::signals
