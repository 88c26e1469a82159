#include "jamnet/engine/io/midi_file.hpp"

#include <gtest/gtest.h>
#include <simdjson.h>
#include <smf.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace jamnet::engine::io {
namespace {

namespace jmid = protocol::jmid;
namespace fs = std::filesystem;

constexpr std::int64_t kMs = 1'000'000;

// Events come from raw bytes through the protocol's own parser, so the test
// does not depend on how it fills fields it does not use.
std::vector<jmid::Event> events_from(std::initializer_list<std::uint8_t> bytes, std::int64_t ts) {
  std::vector<std::uint8_t> v(bytes);
  std::vector<jmid::Event> out;
  jmid::MidiParser parser;
  parser.feed(v, [&](const jmid::Event& e) {
    out.push_back(e);
    out.back().ts_ns = ts;
  });
  return out;
}

std::vector<jmid::Event> sysex_events(std::size_t payload, std::uint8_t seed, std::int64_t ts) {
  std::vector<std::uint8_t> v{0xF0};
  for (std::size_t i = 0; i < payload; ++i)
    v.push_back(static_cast<std::uint8_t>((seed + i * 7) & 0x7F));
  v.push_back(0xF7);
  std::vector<jmid::Event> out;
  jmid::MidiParser parser;
  parser.feed(v, [&](const jmid::Event& e) {
    out.push_back(e);
    out.back().ts_ns = ts;
  });
  return out;
}

class TempDir : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("jamnet-midi-file-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

using MidiFile = TempDir;

std::vector<jmid::Event> sample_song() {
  std::vector<jmid::Event> song;
  auto add = [&](std::vector<jmid::Event> v) { song.insert(song.end(), v.begin(), v.end()); };
  add(events_from({0x90, 60, 100}, 0));                 // note on, ch 1
  add(events_from({0xB1, 7, 90}, 10 * kMs));            // CC 7, ch 2
  add(events_from({0xE2, 0x2E, 0x36}, 20'300'000));     // pitch bend, ch 3
  add(events_from({0xC9, 42}, 33 * kMs));               // program 42, ch 10
  add(events_from({0xA0, 60, 33}, 120'700'000));        // poly pressure
  add(events_from({0xD5, 77}, 250 * kMs));              // channel pressure, ch 6
  add(events_from({0x80, 60, 64}, 500 * kMs));          // note off with release velocity
  add(sysex_events(5, 1, 600 * kMs));                   // short SysEx: one chunk
  add(sysex_events(600, 9, 700'400'000));               // long SysEx: three chunks
  add(events_from({0xEF, 0x7F, 0x7F}, 1'234'567'891));  // pitch bend max, ch 16
  add(events_from({0x9F, 127, 127}, 61'000 * kMs));     // a minute later
  return song;
}

TEST_F(MidiFile, WriteThenReadRoundTrips) {
  const auto song = sample_song();
  ASSERT_EQ(song.size(), 13u);  // the 600-byte SysEx is three chunks
  const auto file = path("song.mid");
  auto w = write_smf(file, song);
  ASSERT_TRUE(w.has_value()) << w.error().message;

  auto r = read_smf(file);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  const auto& got = *r;
  ASSERT_EQ(got.size(), song.size());
  std::int64_t worst = 0;
  for (std::size_t i = 0; i < song.size(); ++i) {
    SCOPED_TRACE("event " + std::to_string(i) + ": " + jmid::to_line(song[i]));
    const std::int64_t err = std::llabs(got[i].ts_ns - song[i].ts_ns);
    worst = std::max(worst, err);
    EXPECT_LE(err, 1 * kMs);
    EXPECT_EQ(got[i].seq, 0u);
    jmid::Event expected = song[i];
    expected.ts_ns = got[i].ts_ns;
    expected.seq = 0;
    EXPECT_EQ(got[i], expected) << jmid::to_line(got[i]);
  }
  std::printf("SMF round trip: %zu events, worst time error %.3f ms\n", got.size(), worst / 1e6);
}

TEST_F(MidiFile, UnsortedInputIsWrittenInTimeOrder) {
  std::vector<jmid::Event> song;
  for (auto& e : events_from({0x90, 64, 1}, 300 * kMs)) song.push_back(e);
  for (auto& e : events_from({0x90, 62, 1}, 200 * kMs)) song.push_back(e);
  for (auto& e : events_from({0x90, 60, 1}, 100 * kMs)) song.push_back(e);
  const auto file = path("unsorted.mid");
  ASSERT_TRUE(write_smf(file, song).has_value());
  auto r = read_smf(file);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[0].data1, 60);
  EXPECT_EQ((*r)[1].data1, 62);
  EXPECT_EQ((*r)[2].data1, 64);
}

TEST_F(MidiFile, EmptyEventListMakesAValidEmptyFile) {
  const auto file = path("empty.mid");
  ASSERT_TRUE(write_smf(file, {}).has_value());
  auto r = read_smf(file);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_TRUE(r->empty());
}

// A type 1 file made with libsmf directly: tempo map on track 1 (120 bpm,
// then 60 bpm from beat 4), notes on track 2.
TEST_F(MidiFile, HonoursTheTempoMapOfAType1File) {
  const auto file = path("tempo.mid");
  {
    smf_t* smf = smf_new();
    ASSERT_NE(smf, nullptr);
    ASSERT_EQ(smf_set_ppqn(smf, 96), 0);
    smf_track_t* tempo = smf_track_new();
    smf_track_t* notes = smf_track_new();
    smf_add_track(smf, tempo);
    smf_add_track(smf, notes);
    std::uint8_t t120[] = {0xFF, 0x51, 0x03, 0x07, 0xA1, 0x20};  // 500000 us / quarter
    std::uint8_t t60[] = {0xFF, 0x51, 0x03, 0x0F, 0x42, 0x40};   // 1000000 us / quarter
    smf_track_add_event_pulses(tempo, smf_event_new_from_pointer(t120, sizeof t120), 0);
    smf_track_add_event_pulses(tempo, smf_event_new_from_pointer(t60, sizeof t60), 4 * 96);
    smf_track_add_event_pulses(notes, smf_event_new_from_bytes(0x90, 60, 100), 96);    // 0.5 s
    smf_track_add_event_pulses(notes, smf_event_new_from_bytes(0x80, 60, 0), 4 * 96);  // 2.0 s
    smf_track_add_event_pulses(notes, smf_event_new_from_bytes(0xB0, 1, 5),
                               6 * 96);  // 2 + 2 = 4.0 s
    ASSERT_EQ(smf_set_format(smf, 1), 0);
    ASSERT_EQ(smf_save(smf, file.c_str()), 0);
    smf_delete(smf);
  }
  auto r = read_smf(file);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[0].kind, jmid::Kind::kNoteOn);
  EXPECT_NEAR((*r)[0].ts_ns, 500 * kMs, kMs);
  EXPECT_EQ((*r)[1].kind, jmid::Kind::kNoteOff);
  EXPECT_NEAR((*r)[1].ts_ns, 2000 * kMs, kMs);
  EXPECT_EQ((*r)[2].kind, jmid::Kind::kControlChange);
  EXPECT_NEAR((*r)[2].ts_ns, 4000 * kMs, kMs);
}

TEST_F(MidiFile, MissingFileIsNotFound) {
  auto r = read_smf(path("does-not-exist.mid"));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errc::kNotFound);
  EXPECT_NE(r.error().message.find("does-not-exist.mid"), std::string::npos) << r.error().message;
}

TEST_F(MidiFile, GarbageAndTruncatedFilesAreParseErrors) {
  const auto garbage = path("garbage.mid");
  {
    std::ofstream f(garbage, std::ios::binary);
    f << "this is not a MIDI file at all, just some text that is long enough\n";
  }
  auto r = read_smf(garbage);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errc::kParse) << r.error().message;

  const auto empty = path("empty-file.mid");
  { std::ofstream f(empty, std::ios::binary); }
  r = read_smf(empty);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errc::kParse) << r.error().message;

  // A real file cut in the middle of its track.
  const auto good = path("good.mid");
  ASSERT_TRUE(write_smf(good, sample_song()).has_value());
  std::string bytes;
  {
    std::ifstream f(good, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    bytes = ss.str();
  }
  ASSERT_GT(bytes.size(), 60u);
  const auto cut = path("cut.mid");
  {
    std::ofstream f(cut, std::ios::binary);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
  }
  r = read_smf(cut);
  EXPECT_FALSE(r.has_value());

  r = read_smf(dir_.string());  // a directory
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errc::kIo);
}

// libsmf asserts on some malformed files; read_smf must reject them first.
TEST_F(MidiFile, EveryTruncationAndByteFlipIsHandledWithoutCrashing) {
  // The sample song without its 600-byte SysEx: every byte of it is structure.
  std::vector<jmid::Event> song;
  for (const auto& e : sample_song()) {
    if (e.kind != jmid::Kind::kSysEx || e.sysex_len < 100) song.push_back(e);
  }
  const auto good = path("good.mid");
  ASSERT_TRUE(write_smf(good, song).has_value());
  std::string bytes;
  {
    std::ifstream f(good, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    bytes = ss.str();
  }
  const auto bad = path("bad.mid");
  auto try_bytes = [&](const std::string& b) {
    {
      std::ofstream f(bad, std::ios::binary | std::ios::trunc);
      f.write(b.data(), static_cast<std::streamsize>(b.size()));
    }
    auto r = read_smf(bad);
    if (!r) {
      EXPECT_FALSE(r.error().message.empty());
    }
    return r.has_value();
  };
  std::size_t accepted_cuts = 0, accepted_flips = 0;
  for (std::size_t n = 0; n < bytes.size(); ++n)
    accepted_cuts += try_bytes(bytes.substr(0, n)) ? 1 : 0;
  EXPECT_EQ(accepted_cuts, 0u);  // every proper prefix misses its End Of Track
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    for (const std::uint8_t mask : {0x80, 0x7F, 0x01}) {
      std::string b = bytes;
      b[i] = static_cast<char>(b[i] ^ mask);
      accepted_flips += try_bytes(b) ? 1 : 0;
    }
  }
  std::printf("SMF robustness: %zu cuts, %zu flips, %zu flips still valid\n", bytes.size(),
              3 * bytes.size(), accepted_flips);
}

TEST_F(MidiFile, WriteToAMissingDirectoryFails) {
  auto w = write_smf(path("no/such/dir/x.mid"), sample_song());
  ASSERT_FALSE(w.has_value());
  EXPECT_EQ(w.error().code, Errc::kNotFound);
  EXPECT_NE(w.error().message.find("x.mid"), std::string::npos);
}

TEST_F(MidiFile, JsonlLogWritesOneValidObjectPerLine) {
  const auto file = path("log.jsonl");
  const auto song = sample_song();
  {
    auto log = JsonlMidiLog::open(file);
    ASSERT_TRUE(log.has_value()) << log.error().message;
    auto moved = std::move(*log);  // movable: it lives in Result
    for (std::size_t i = 0; i < song.size(); ++i) {
      const std::string from = i == 3 ? std::string("we\"ird\\ \x01name") : std::string("alice");
      moved.write(song[i], song[i].ts_ns + 5, song[i].ts_ns + 7 + static_cast<Nanos>(i), from);
    }
    EXPECT_EQ(moved.lines_written(), song.size());
  }  // the destructor flushes

  std::ifstream in(file);
  std::string line;
  std::size_t n = 0;
  simdjson::dom::parser json;
  while (std::getline(in, line)) {
    ASSERT_LT(n, song.size());
    SCOPED_TRACE(line);
    // The protocol parser reads the JMID part and ignores our extra keys.
    auto e = jmid::parse_line(line);
    ASSERT_TRUE(e.has_value()) << e.error().message;
    EXPECT_EQ(*e, song[n]);
    // A general JSON parser agrees it is one valid object with our keys.
    simdjson::dom::element doc;
    ASSERT_EQ(json.parse(line).get(doc), simdjson::SUCCESS);
    std::int64_t scheduled = 0, played = 0;
    std::string_view from;
    ASSERT_EQ(doc["scheduled_ns"].get(scheduled), simdjson::SUCCESS);
    ASSERT_EQ(doc["played_ns"].get(played), simdjson::SUCCESS);
    ASSERT_EQ(doc["from"].get(from), simdjson::SUCCESS);
    EXPECT_EQ(scheduled, song[n].ts_ns + 5);
    EXPECT_EQ(played, song[n].ts_ns + 7 + static_cast<Nanos>(n));
    EXPECT_EQ(from, n == 3 ? std::string_view("we\"ird\\ \x01name") : std::string_view("alice"));
    ++n;
  }
  EXPECT_EQ(n, song.size());
}

TEST_F(MidiFile, QueuedLogWritesFromAnotherThreadInOrder) {
  const auto file = path("queued.jsonl");
  const auto song = sample_song();
  const Uuid from = Uuid::random();
  auto log = QueuedMidiLog::open(file);
  ASSERT_TRUE(log.has_value()) << log.error().message;
  std::thread playout([&] {  // as the MIDI playout thread would
    for (const auto& e : song) EXPECT_TRUE((*log)->push(e, e.ts_ns + 5, e.ts_ns + 7, from));
  });
  playout.join();
  ASSERT_TRUE((*log)->close());
  EXPECT_EQ((*log)->lines_written(), song.size());
  EXPECT_EQ((*log)->dropped(), 0u);
  EXPECT_FALSE((*log)->push(song[0], 0, 0, from)) << "closed: nothing more is taken";

  std::ifstream in(file);
  std::string line;
  std::size_t n = 0;
  while (std::getline(in, line)) {
    ASSERT_LT(n, song.size());
    auto e = jmid::parse_line(line);
    ASSERT_TRUE(e.has_value()) << e.error().message;
    EXPECT_EQ(*e, song[n]);
    EXPECT_NE(line.find(from.short_string()), std::string::npos) << line;
    ++n;
  }
  EXPECT_EQ(n, song.size());
}

TEST_F(MidiFile, JsonlLogOpenFailsClearly) {
  auto log = JsonlMidiLog::open(path("no/such/dir/log.jsonl"));
  ASSERT_FALSE(log.has_value());
  EXPECT_NE(log.error().message.find("log.jsonl"), std::string::npos);
}

}  // namespace
}  // namespace jamnet::engine::io
