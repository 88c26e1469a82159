#include "jamnet/engine/io/midi_file.hpp"

#include <smf.h>
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <memory>

namespace jamnet::engine::io {
namespace {

namespace jmid = protocol::jmid;

struct SmfDeleter {
  void operator()(smf_t* s) const noexcept { smf_delete(s); }
};
using SmfPtr = std::unique_ptr<smf_t, SmfDeleter>;

// 480 ticks per quarter at 120 bpm (500000 us per quarter): 960 ticks a second.
constexpr int kPpqn = 480;
constexpr double kTicksPerSecond = kPpqn * 2.0;
constexpr std::array<std::uint8_t, 6> kTempo120 = {0xFF, 0x51, 0x03, 0x07, 0xA1, 0x20};

Result<std::vector<std::uint8_t>> read_whole_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    const int err = errno;
    return make_error(err == ENOENT ? Errc::kNotFound : Errc::kIo,
                      "cannot open MIDI file '" + path + "': " + std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    return make_error(Errc::kIo, "MIDI file '" + path + "' is not a regular file");
  }
  constexpr off_t kMaxBytes = 256 << 20;
  if (st.st_size > kMaxBytes) {
    return make_error(Errc::kTooLarge, "MIDI file '" + path + "' is larger than 256 MiB");
  }
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) {
    const int err = errno;
    return make_error(Errc::kIo, "cannot open MIDI file '" + path + "': " + std::strerror(err));
  }
  std::vector<std::uint8_t> bytes;
  std::array<std::uint8_t, 64 * 1024> chunk;
  while (std::size_t n = std::fread(chunk.data(), 1, chunk.size(), f.get())) {
    bytes.insert(bytes.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(n));
    if (bytes.size() > static_cast<std::size_t>(kMaxBytes)) break;
  }
  if (std::ferror(f.get())) return make_error(Errc::kIo, "cannot read MIDI file '" + path + "'");
  return bytes;
}

// libsmf asserts (aborts the process) on some malformed files, so before it
// sees a byte we walk the SMF chunk and event grammar ourselves and reject
// anything it might trip on. Returns an empty string when the file is sound.
class SmfChecker {
 public:
  explicit SmfChecker(std::span<const std::uint8_t> d) : d_(d) {}

  std::string check() {
    if (d_.size() < 14 || std::memcmp(d_.data(), "MThd", 4) != 0) return "no MThd header";
    const std::uint32_t header_len = be32(4);
    if (header_len < 6 || header_len > d_.size() - 8) return "bad MThd length";
    const unsigned format = be16(8), tracks = be16(10), division = be16(12);
    if (format > 2) return "unknown format " + std::to_string(format);
    if (tracks == 0) return "no tracks";
    if (format == 0 && tracks != 1) return "format 0 with " + std::to_string(tracks) + " tracks";
    if (division & 0x8000) return "SMPTE time division is not supported";
    if (division == 0) return "zero ticks per quarter note";
    std::size_t pos = 8 + header_len;
    unsigned found = 0;
    while (pos < d_.size()) {
      if (d_.size() - pos < 8) return "truncated chunk header at byte " + std::to_string(pos);
      const std::uint32_t len = be32(pos + 4);
      if (len > d_.size() - pos - 8)
        return "chunk at byte " + std::to_string(pos) + " runs past the end of the file";
      if (std::memcmp(d_.data() + pos, "MTrk", 4) == 0) {
        ++found;
        if (auto why = check_track(d_.subspan(pos + 8, len)); !why.empty()) {
          return "track " + std::to_string(found) + ": " + why;
        }
      } else {
        return "unknown chunk at byte " + std::to_string(pos);
      }
      pos += 8 + len;
    }
    if (found != tracks) {
      return "header says " + std::to_string(tracks) + " tracks, file has " + std::to_string(found);
    }
    return {};
  }

 private:
  std::uint32_t be32(std::size_t at) const {
    return (std::uint32_t{d_[at]} << 24) | (std::uint32_t{d_[at + 1]} << 16) |
           (std::uint32_t{d_[at + 2]} << 8) | d_[at + 3];
  }
  unsigned be16(std::size_t at) const { return (unsigned{d_[at]} << 8) | d_[at + 1]; }

  // A variable-length quantity of at most 4 bytes; false when cut short.
  static bool varlen(std::span<const std::uint8_t> t, std::size_t& p, std::uint32_t& value) {
    value = 0;
    for (int i = 0; i < 4; ++i) {
      if (p >= t.size()) return false;
      const std::uint8_t b = t[p++];
      value = (value << 7) | (b & 0x7F);
      if ((b & 0x80) == 0) return true;
    }
    return false;
  }

  static std::string check_track(std::span<const std::uint8_t> t) {
    std::size_t p = 0;
    std::uint8_t running = 0;
    std::uint64_t ticks = 0;
    while (p < t.size()) {
      std::uint32_t delta = 0;
      if (!varlen(t, p, delta)) return "bad delta time";
      ticks += delta;
      if (ticks > 0x7FFFFFFF) return "track longer than 2^31 ticks";
      if (p >= t.size()) return "event cut short";
      std::uint8_t status = t[p];
      if (status & 0x80) {
        ++p;
      } else if (running != 0) {
        status = running;
      } else {
        return "data byte without a status";
      }
      std::uint32_t len = 0;
      if (status == 0xFF) {
        if (p >= t.size()) return "meta event cut short";
        const std::uint8_t type = t[p++];
        if (!varlen(t, p, len) || len > t.size() - p) return "meta event cut short";
        if (type == 0x51 && len != 3) return "tempo event of length " + std::to_string(len);
        if (type == 0x2F) return p + len == t.size() ? std::string() : "data after End Of Track";
        p += len;
        running = 0;  // meta and SysEx events cancel running status
      } else if (status == 0xF0 || status == 0xF7) {
        if (!varlen(t, p, len) || len > t.size() - p) return "SysEx cut short";
        p += len;
        running = 0;
      } else if (status > 0xF0) {
        static constexpr char kHex[] = "0123456789ABCDEF";
        return std::string("system message 0x") + kHex[status >> 4] + kHex[status & 0xF] +
               " in a track";
      } else {
        const std::size_t n = (status & 0xF0) == 0xC0 || (status & 0xF0) == 0xD0 ? 1 : 2;
        if (n > t.size() - p) return "channel message cut short";
        for (std::size_t i = 0; i < n; ++i) {
          if (t[p + i] & 0x80) return "status byte inside a channel message";
        }
        p += n;
        running = status;
      }
    }
    return "no End Of Track event";
  }

  std::span<const std::uint8_t> d_;
};

// Adds one raw message to the track at `pulses`. libsmf copies the bytes.
bool add_raw(smf_track_t* track, const std::uint8_t* bytes, std::size_t len, int pulses) {
  smf_event_t* ev =
      smf_event_new_from_pointer(const_cast<std::uint8_t*>(bytes), static_cast<int>(len));
  if (ev == nullptr) return false;
  smf_track_add_event_pulses(track, ev, pulses);
  return true;
}

void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          static constexpr char kHex[] = "0123456789abcdef";
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 0xF];
        } else {
          out += ch;
        }
    }
  }
  out += '"';
}

void append_int(std::string& out, std::int64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

}  // namespace

Result<std::vector<jmid::Event>> read_smf(const std::string& path) {
  auto bytes = read_whole_file(path);
  if (!bytes) return std::unexpected(bytes.error());
  if (auto why = SmfChecker(*bytes).check(); !why.empty()) {
    return make_error(Errc::kParse, "'" + path + "' is not a valid Standard MIDI File: " + why);
  }
  SmfPtr smf(smf_load_from_memory(bytes->data(), static_cast<int>(bytes->size())));
  if (!smf) {
    return make_error(
        Errc::kParse,
        "'" + path + "' is not a valid Standard MIDI File (libsmf could not parse it)");
  }

  std::vector<jmid::Event> events;
  jmid::MidiParser parser;
  smf_rewind(smf.get());
  // smf_get_next_event merges all tracks in time order; time_seconds already
  // applies the file's tempo map.
  while (smf_event_t* ev = smf_get_next_event(smf.get())) {
    if (ev->midi_buffer == nullptr || ev->midi_buffer_length <= 0) continue;
    if (smf_event_is_metadata(ev)) continue;   // FF: tempo, text, EOT...
    if (ev->midi_buffer[0] == 0xF7) continue;  // escaped packet: not a message
    const auto ts = static_cast<std::int64_t>(std::llround(ev->time_seconds * 1e9));
    parser.reset();  // every SMF event is a complete message: no state carries over
    parser.feed({ev->midi_buffer, static_cast<std::size_t>(ev->midi_buffer_length)},
                [&](const jmid::Event& e) {
                  events.push_back(e);
                  events.back().ts_ns = ts;
                  events.back().seq = 0;
                });
  }
  return events;
}

Result<void> write_smf(const std::string& path, std::span<const jmid::Event> events) {
  SmfPtr smf(smf_new());
  if (!smf) return make_error(Errc::kIo, "libsmf: out of memory");
  if (smf_set_ppqn(smf.get(), kPpqn) != 0 || smf_set_format(smf.get(), 0) != 0) {
    return make_error(Errc::kIo, "libsmf: cannot set format 0 / 480 ppqn");
  }
  smf_track_t* track = smf_track_new();
  if (track == nullptr) return make_error(Errc::kIo, "libsmf: out of memory");
  smf_add_track(smf.get(), track);  // the smf owns the track from here
  if (!add_raw(track, kTempo120.data(), kTempo120.size(), 0)) {
    return make_error(Errc::kIo, "libsmf: cannot add the tempo event");
  }

  std::vector<const jmid::Event*> sorted;
  sorted.reserve(events.size());
  for (const auto& e : events) sorted.push_back(&e);
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const jmid::Event* a, const jmid::Event* b) { return a->ts_ns < b->ts_ns; });

  std::array<std::uint8_t, jmid::kMaxSysExChunk + 8> buf{};
  std::vector<std::uint8_t> sysex;  // F0 ... F7 being joined from chunks
  bool in_sysex = false;
  int last_pulses = 0;
  for (const jmid::Event* e : sorted) {
    const double seconds = static_cast<double>(std::max<std::int64_t>(e->ts_ns, 0)) * 1e-9;
    const int pulses = static_cast<int>(std::llround(seconds * kTicksPerSecond));
    if (e->kind == jmid::Kind::kSysEx) {
      if (e->sysex_index == 0) {
        sysex.clear();
        in_sysex = true;
      }
      if (!in_sysex) continue;  // a chunk without its start: nothing to join it to
      const std::size_t n = jmid::to_midi(*e, buf);
      sysex.insert(sysex.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
      if (e->sysex_last) {
        in_sysex = false;
        if (sysex.size() < 2 || sysex.front() != 0xF0 || sysex.back() != 0xF7) continue;
        if (!add_raw(track, sysex.data(), sysex.size(), pulses)) {
          return make_error(Errc::kIo, "libsmf: cannot add a SysEx event");
        }
        last_pulses = std::max(last_pulses, pulses);
      }
      continue;
    }
    if (!jmid::is_channel_message(e->kind)) continue;
    const std::size_t n = jmid::to_midi(*e, buf);
    if (n == 0) continue;
    if (!add_raw(track, buf.data(), n, pulses)) {
      return make_error(Errc::kIo, "libsmf: cannot add an event");
    }
    last_pulses = std::max(last_pulses, pulses);
  }
  if (smf_track_add_eot_pulses(track, last_pulses) != 0) {
    return make_error(Errc::kIo, "libsmf: cannot add end of track");
  }
  // Open it ourselves first for a clear error (libsmf only logs why).
  if (std::FILE* probe = std::fopen(path.c_str(), "wb")) {
    std::fclose(probe);
  } else {
    const int err = errno;
    return make_error(err == ENOENT ? Errc::kNotFound : Errc::kIo,
                      "cannot write MIDI file '" + path + "': " + std::strerror(err));
  }
  if (smf_save(smf.get(), path.c_str()) != 0) {
    return make_error(Errc::kIo, "cannot write MIDI file '" + path + "'");
  }
  return {};
}

// ---- JsonlMidiLog ---------------------------------------------------------

Result<JsonlMidiLog> JsonlMidiLog::open(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) {
    const int err = errno;
    return make_error(err == ENOENT ? Errc::kNotFound : Errc::kIo,
                      "cannot open MIDI log '" + path + "': " + std::strerror(err));
  }
  std::setvbuf(f, nullptr, _IOFBF, 64 * 1024);
  return JsonlMidiLog(f, path);
}

JsonlMidiLog::JsonlMidiLog(JsonlMidiLog&& other) noexcept
    : file_(std::exchange(other.file_, nullptr)),
      path_(std::move(other.path_)),
      line_(std::move(other.line_)),
      lines_(other.lines_),
      failed_(other.failed_) {}

JsonlMidiLog& JsonlMidiLog::operator=(JsonlMidiLog&& other) noexcept {
  if (this != &other) {
    close();
    file_ = std::exchange(other.file_, nullptr);
    path_ = std::move(other.path_);
    line_ = std::move(other.line_);
    lines_ = other.lines_;
    failed_ = other.failed_;
  }
  return *this;
}

JsonlMidiLog::~JsonlMidiLog() {
  close();
}

void JsonlMidiLog::write(const jmid::Event& e, Nanos scheduled_ns, Nanos played_ns,
                         std::string_view from) {
  if (file_ == nullptr) return;
  line_.resize(jmid::kMaxLineBytes);
  std::size_t n = jmid::format_line(e, {line_.data(), line_.size()});
  if (n < 2 || line_[n - 1] != '}') {  // cannot happen for a valid Event; keep the log valid
    failed_ = true;
    return;
  }
  line_.resize(n - 1);  // drop the closing brace, splice our keys in
  line_ += ",\"scheduled_ns\":";
  append_int(line_, scheduled_ns);
  line_ += ",\"played_ns\":";
  append_int(line_, played_ns);
  line_ += ",\"from\":";
  append_json_string(line_, from);
  line_ += "}\n";
  if (std::fwrite(line_.data(), 1, line_.size(), file_) != line_.size()) failed_ = true;
  ++lines_;
}

void JsonlMidiLog::flush() {
  if (file_ != nullptr && std::fflush(file_) != 0) failed_ = true;
}

bool JsonlMidiLog::close() {
  if (file_ != nullptr) {
    if (std::fclose(file_) != 0) failed_ = true;
    file_ = nullptr;
  }
  return !failed_;
}

// ---- QueuedMidiLog ------------------------------------------------------------

Result<std::unique_ptr<QueuedMidiLog>> QueuedMidiLog::open(const std::string& path) {
  auto log = JsonlMidiLog::open(path);
  if (!log) return std::unexpected(log.error());
  return std::unique_ptr<QueuedMidiLog>(new QueuedMidiLog(std::move(*log)));
}

QueuedMidiLog::QueuedMidiLog(JsonlMidiLog log) : log_(std::move(log)) {
  writer_ = std::thread([this] {
    while (running_.load(std::memory_order_acquire)) {
      drain();
      log_.flush();
      sleep_until_ns(monotonic_ns() + 20'000'000);
    }
  });
}

QueuedMidiLog::~QueuedMidiLog() {
  close();
}

bool QueuedMidiLog::push(const protocol::jmid::Event& e, Nanos scheduled_ns, Nanos played_ns,
                         const Uuid& from) noexcept {
  if (!running_.load(std::memory_order_acquire) ||
      !queue_.try_push(MidiLogRecord{e, scheduled_ns, played_ns, from})) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  return true;
}

void QueuedMidiLog::drain() {
  MidiLogRecord r;
  while (queue_.try_pop(r)) {
    log_.write(r.event, r.scheduled_ns, r.played_ns, r.from.short_string());
    lines_.fetch_add(1, std::memory_order_relaxed);
  }
}

bool QueuedMidiLog::close() {
  if (running_.exchange(false) && writer_.joinable()) writer_.join();
  if (!writer_.joinable()) {
    drain();
    ok_ = log_.close() && ok_;
  }
  return ok_;
}

}  // namespace jamnet::engine::io
