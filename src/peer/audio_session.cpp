#include "jamnet/peer/audio_session.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <random>

#include "jamnet/core/spsc_queue.hpp"
#include "jamnet/core/triple_buffer.hpp"
#include "jamnet/media/jdat/jellie.hpp"
#include "jamnet/media/jdat/jellie_assembler.hpp"
#include "jamnet/protocol/toast_frame.hpp"

namespace jamnet {

using protocol::StreamType;
namespace jdat = protocol::jdat;

namespace {

constexpr std::uint16_t kJdatKind = 1;

// A decoded block handed from the network thread to the playout side: its
// samples live in the receiver's slab at `index`.
struct BlockSlot {
  std::uint32_t index = 0;
  std::uint64_t first_frame = 0;
  Nanos arrival_ns = 0;
};

int packet_frames_for(const AudioConfig& c) {
  if (c.frames_per_packet != 0) return c.frames_per_packet;
  const int most = jdat::max_packet_frames(c.format, c.channels, c.jellie, c.max_payload);
  return jdat::choose_packet_frames(c.period_frames, most, c.jellie);
}

}  // namespace

struct AudioSession::Receiver {
  using Slot = BlockSlot;

  Uuid id;
  std::uint16_t stream = 0;
  std::string name;         // source_name(peer, stream)
  jdat::JdatHeader layout;  // the stream's format, role class, channels, frames, rate
  bool is_jellie;
  std::size_t block_samples;
  media::jdat::JitterBuffer jitter;
  std::uint32_t slots;  // hand-off slots
  std::vector<float> slab;
  SpscQueue<Slot> filled;
  SpscQueue<std::uint32_t> free_slots;

  // network thread only
  std::vector<std::uint32_t> rx_words;
  std::vector<float> rx_samples;
  std::optional<media::jdat::JellieAssembler> jellie;
  std::atomic<std::uint64_t> packets{0}, blocks{0}, decode_errors{0}, format_mismatch{0},
      queue_full{0}, backlog_skipped{0};
  std::atomic<std::uint64_t> jellie_exact{0}, jellie_recovered{0}, jellie_interpolated{0},
      jellie_lost{0};

  // playout side only
  std::vector<float> mix;  // one pull in the stream's channel count
  std::atomic<float> peak{0.0f};

  // The playout side publishes the buffer's statistics after every pull;
  // stats() reads them (readers serialised by snapshot_mu, never the writer).
  TripleBuffer<media::jdat::JitterBufferStats> snapshot;
  std::mutex snapshot_mu;

  static media::jdat::JitterBufferConfig jitter_config(const AudioConfig& c,
                                                       const jdat::JdatHeader& h) {
    auto j = c.jitter;
    j.channels = h.channels;
    j.frames_per_packet = h.frames;
    j.sample_rate = static_cast<int>(h.sample_rate);
    j.output_rate = c.sample_rate;
    j.max_pull_frames = std::max(j.max_pull_frames, std::min(c.max_pull_frames, 8192));
    return j;
  }

  // Enough hand-off slots for the largest target plus 100 ms of this stream,
  // within kMaxSlabBytes (the header is the sender's word: 64 channels of
  // 512 frames at 384 kHz would otherwise ask for 64 MiB).
  static constexpr std::size_t kMaxSlabBytes = 16u << 20;
  static std::uint32_t queue_slots(const AudioConfig& c, const jdat::JdatHeader& h) {
    const double seconds = static_cast<double>(c.jitter.max_target_ns) * 1e-9 + 0.1;
    const double packets = seconds * h.sample_rate / std::max<double>(h.frames, 1.0);
    const double block_bytes =
        static_cast<double>(std::max<std::size_t>(std::size_t{h.frames} * h.channels, 1)) *
        sizeof(float);
    const double cap = std::max(8.0, static_cast<double>(kMaxSlabBytes) / block_bytes);
    return static_cast<std::uint32_t>(std::min(
        cap,
        std::clamp<double>(std::ceil(packets), static_cast<double>(c.queue_packets), 65536.0)));
  }

  Receiver(const Uuid& who, std::uint16_t index, std::string source, const AudioConfig& c,
           const jdat::JdatHeader& h)
      : id(who),
        stream(index),
        name(std::move(source)),
        layout(h),
        is_jellie(h.role != jdat::StreamRole::kPlain),
        block_samples(static_cast<std::size_t>(h.frames) * h.channels),
        jitter(jitter_config(c, h)),
        slots(queue_slots(c, h)),
        slab(slots * block_samples),
        filled(slots),
        free_slots(slots),
        rx_words(static_cast<std::size_t>(jdat::kMaxFrames) * jdat::kMaxChannels),
        rx_samples(block_samples),
        mix(static_cast<std::size_t>(jitter_config(c, h).max_pull_frames) * h.channels) {
    for (std::uint32_t i = 0; i < slots; ++i) (void)free_slots.try_push(i);
    if (is_jellie) jellie.emplace(h.format, h.frames);
  }

  // Does a packet with header h belong to this stream's layout?
  bool matches(const jdat::JdatHeader& h) const {
    return h.channels == layout.channels && h.frames == layout.frames &&
           h.sample_rate == layout.sample_rate &&
           (h.role != jdat::StreamRole::kPlain) == is_jellie &&
           (!is_jellie || h.format == layout.format);
  }

  // Network thread: hand one decoded block to the playout side.
  void emit(std::uint64_t first_frame, Nanos arrival_ns, std::span<const float> samples) {
    std::uint32_t index = 0;
    if (!free_slots.try_pop(index)) {
      queue_full.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    std::copy(samples.begin(), samples.end(), slab.begin() + index * block_samples);
    (void)filled.try_push(Slot{index, first_frame, arrival_ns});
    blocks.fetch_add(1, std::memory_order_relaxed);
  }

  void on_jellie(const jdat::JdatHeader& h, Nanos arrival_ns) {
    jellie->on_stream(
        h, std::span<const std::uint32_t>(rx_words.data(), h.frames / 2u), arrival_ns,
        [this](std::uint64_t ff, Nanos at, std::span<const float> s) { emit(ff, at, s); });
    const auto& st = jellie->stats();
    jellie_exact.store(st.exact, std::memory_order_relaxed);
    jellie_recovered.store(st.recovered, std::memory_order_relaxed);
    jellie_interpolated.store(st.interpolated, std::memory_order_relaxed);
    jellie_lost.store(st.lost, std::memory_order_relaxed);
  }
};

Result<void> AudioSession::check(const AudioConfig& a) {
  if (a.channels < 1 || a.channels > jdat::kMaxChannels)
    return make_error(Errc::kInvalidArgument,
                      "audio channels must be 1.." + std::to_string(jdat::kMaxChannels));
  if (a.sample_rate < 8000 || a.sample_rate > 384000)
    return make_error(Errc::kInvalidArgument, "audio sample rate must be 8000..384000 Hz");
  if (a.jellie && a.channels != 1)
    return make_error(Errc::kInvalidArgument, "JELLIE carries one mono signal: it needs 1 channel");
  if (a.wire != protocol::FormatType::kBinary && a.wire != protocol::FormatType::kCompactJsonl)
    return make_error(Errc::kInvalidArgument, "audio wire format must be binary or jsonl");
  if (a.max_payload < jdat::kBinaryHeaderSize + 64 ||
      a.max_payload > protocol::kAbsoluteMaxDatagram)
    return make_error(Errc::kInvalidArgument, "audio payload limit out of range");
  if (a.max_pull_frames < 1 || a.max_pull_frames > (1 << 16))
    return make_error(Errc::kInvalidArgument, "largest pull must be 1..65536 frames");
  const int most = jdat::max_packet_frames(a.format, a.channels, a.jellie, a.max_payload);
  if (most == 0)
    return make_error(Errc::kInvalidArgument,
                      std::to_string(a.channels) + " channels of " +
                          std::string(jdat::to_string(a.format)) + " do not fit " +
                          std::to_string(jdat::kMinFrames) + " frames in one " +
                          std::to_string(a.max_payload) +
                          "-byte packet: use fewer channels or a smaller sample format");
  if (a.frames_per_packet != 0) {
    if (a.frames_per_packet < jdat::kMinFrames || a.frames_per_packet > jdat::kMaxFrames)
      return make_error(Errc::kInvalidArgument,
                        "audio frames per packet must be " + std::to_string(jdat::kMinFrames) +
                            ".." + std::to_string(jdat::kMaxFrames) + " (or 0: chosen)");
    if (a.jellie && a.frames_per_packet % 2 != 0)
      return make_error(Errc::kInvalidArgument, "JELLIE needs an even number of frames per packet");
    if (a.frames_per_packet > most)
      return make_error(Errc::kInvalidArgument,
                        "audio frames per packet " + std::to_string(a.frames_per_packet) +
                            " do not fit one datagram with " + std::to_string(a.channels) +
                            " channels (at most " + std::to_string(most) +
                            "); leave it 0 and JAMNet splits each period into sub-blocks");
  }
  return {};
}

// The send side of one of our streams.
struct AudioSession::Sender {
  std::uint16_t stream = 0;
  int channels = 1;
  bool jellie = false;
  int packet_frames = 0;
  std::uint64_t next_frame = 0;
  std::vector<float> pending;  // frames waiting to fill a packet
  std::size_t pending_frames = 0;
  std::vector<std::uint32_t> words;
  std::vector<std::uint8_t> payload;
  std::string line;  // the JSONL wire format's packet, its capacity reused
  // Where this block goes: copied from discovery's table per block, into
  // room reserved here (no allocation up to 64 peers).
  std::vector<net::Discovery::Route> routes;
  std::atomic<std::uint64_t> blocks{0}, frames{0}, packets{0}, bytes{0};

  Sender(std::uint16_t index, const AudioConfig& c)
      : stream(index),
        channels(c.channels),
        jellie(c.jellie),
        packet_frames(std::max(packet_frames_for(c), jdat::kMinFrames)),
        next_frame(std::mt19937_64{std::random_device{}()}() >> 16) {
    // Every packet starts on a multiple of its frame count (JELLIE finds
    // blocks by first_frame / frames).
    next_frame -= next_frame % static_cast<std::uint64_t>(packet_frames);
    pending.assign(static_cast<std::size_t>(packet_frames * channels), 0.0f);
    // JELLIE's 4 streams of half a block each take twice a mono block's words.
    words.resize(static_cast<std::size_t>(packet_frames * std::max(channels, jellie ? 2 : 1)));
    payload.resize(jdat::kBinaryHeaderSize + words.size() * 4);
    routes.reserve(64);
  }
};

std::string source_name(const std::string& peer_name, std::uint16_t stream) {
  return stream == 0 ? peer_name : peer_name + "/" + std::to_string(stream);
}

AudioSession::AudioSession(const AudioConfig& config, net::Transport& transport,
                           net::SessionRegistry& registry, net::Discovery& discovery,
                           const Uuid& session)
    : config_(config),
      transport_(transport),
      registry_(registry),
      discovery_(discovery),
      session_(session) {
  sender_store_[0] = std::make_unique<Sender>(config_.stream, config_);
  senders_[0].store(sender_store_[0].get(), std::memory_order_release);
  receivers_.reserve(kMaxSources);
  // Every stream of every peer: each is its own source.
  sub_ = registry_.subscribe(
      {session_, StreamType::kAudio, std::nullopt},
      [this](const net::ReceivedFrame& rx) { on_frame(rx); }, net::Delivery::kReceiveThread);
}

Result<std::size_t> AudioSession::add_stream(const AudioStreamConfig& sc) {
  AudioConfig c = config_;
  c.channels = sc.channels;
  c.period_frames = sc.period_frames;
  c.frames_per_packet = 0;
  c.jellie = false;
  if (auto ok = check(c); !ok) return std::unexpected(ok.error());
  std::lock_guard lock(streams_mu_);
  std::size_t handle = 0;
  for (std::size_t i = 1; i < kMaxStreams && handle == 0; ++i)
    if (!sender_store_[i]) handle = i;
  if (handle == 0)
    return make_error(Errc::kTooLarge,
                      "a peer sends at most " + std::to_string(kMaxStreams) + " audio streams");
  // The lowest stream index no stream of ours uses.
  auto taken = [&](std::uint16_t index) {
    return std::any_of(sender_store_.begin(), sender_store_.end(),
                       [&](const auto& st) { return st && st->stream == index; });
  };
  std::uint16_t index = 0;
  while (taken(index)) ++index;
  sender_store_[handle] = std::make_unique<Sender>(index, c);
  senders_[handle].store(sender_store_[handle].get(), std::memory_order_release);
  return handle;
}

int AudioSession::packet_frames() const noexcept {
  return sender_store_[0]->packet_frames;
}

std::uint16_t AudioSession::stream_index(std::size_t handle) const noexcept {
  const Sender* st =
      handle < kMaxStreams ? senders_[handle].load(std::memory_order_acquire) : nullptr;
  return st ? st->stream : 0;
}

AudioSession::~AudioSession() {
  stop();
}

void AudioSession::stop() {
  if (!running_.exchange(false)) return;
  registry_.unsubscribe(sub_);
}

// ---- sending -----------------------------------------------------------------

void AudioSession::note_error(std::atomic<std::uint64_t>& counter, const std::string& message) {
  // Counted every time; the words kept once per kind, for the status line.
  if (counter.fetch_add(1, std::memory_order_relaxed) == 0) {
    std::lock_guard lock(error_mu_);
    last_error_ = message;
  }
}

void AudioSession::send_packet(Sender& st, const jdat::JdatHeader& h,
                               std::span<const std::uint32_t> words) {
  net::SendOptions opts;
  opts.session = session_;
  opts.topic = {StreamType::kAudio, st.stream};
  opts.kind = kJdatKind;
  opts.format = config_.wire;
  std::span<const std::uint8_t> bytes;
  if (config_.wire == protocol::FormatType::kBinary) {
    auto n = jdat::encode_binary(h, words, st.payload);
    if (!n) {
      note_error(encode_errors_, "audio packet not encoded: " + n.error().message);
      return;
    }
    bytes = {st.payload.data(), *n};
  } else {
    jdat::encode_jsonl(h, words, st.line);
    bytes = {reinterpret_cast<const std::uint8_t*>(st.line.data()), st.line.size()};
  }
  for (const auto& route : st.routes) {
    if (auto sent = transport_.send_rt(opts, bytes, route.address)) {
      st.packets.fetch_add(1, std::memory_order_relaxed);
      st.bytes.fetch_add(protocol::encoded_size(bytes.size()), std::memory_order_relaxed);
    } else if (send_errors_.fetch_add(1, std::memory_order_relaxed) == 0) {
      // Counted every time; the first one kept as values, worded by stats().
      first_send_failure_ = {sent.error(), route.address, bytes.size()};
      first_send_failure_set_.store(true, std::memory_order_release);
    }
  }
}

// One packet of packet_frames frames.
void AudioSession::send_packetised(Sender& st, std::span<const float> interleaved) {
  const auto frames = static_cast<std::size_t>(st.packet_frames);
  jdat::JdatHeader h;
  h.format = config_.format;
  h.channels = static_cast<std::uint8_t>(st.channels);
  h.frames = static_cast<std::uint16_t>(frames);
  h.sample_rate = static_cast<std::uint32_t>(config_.sample_rate);
  h.first_frame = st.next_frame;
  st.next_frame += frames;
  if (st.jellie) {
    const std::size_t half = frames / 2;
    media::jdat::JellieEncoder enc(config_.format);
    std::array<std::span<std::uint32_t>, 4> streams;
    for (std::size_t i = 0; i < 4; ++i) streams[i] = std::span(st.words).subspan(i * half, half);
    enc.encode(interleaved, streams);
    for (std::size_t i = 0; i < 4; ++i) {
      h.role = static_cast<jdat::StreamRole>(static_cast<int>(jdat::StreamRole::kJellieEven) +
                                             static_cast<int>(i));
      send_packet(st, h, streams[i]);
    }
  } else {
    const auto words = std::span(st.words).first(interleaved.size());
    jdat::to_words(config_.format, interleaved, words);
    send_packet(st, h, words);
  }
}

void AudioSession::send_block(std::span<const float> interleaved) {
  send_block(0, interleaved);
}

void AudioSession::send_block(std::size_t handle, std::span<const float> interleaved) {
  Sender* sp = handle < kMaxStreams ? senders_[handle].load(std::memory_order_acquire) : nullptr;
  if (sp == nullptr) {
    note_error(bad_blocks_, "audio block for stream handle " + std::to_string(handle) +
                                ", which add_stream() never returned: dropped");
    return;
  }
  Sender& st = *sp;
  const auto ch = static_cast<std::size_t>(st.channels);
  if (interleaved.size() % ch != 0) {
    note_error(bad_blocks_, "audio block of " + std::to_string(interleaved.size()) +
                                " samples is not whole frames of " + std::to_string(ch) +
                                " channels: dropped");
    return;
  }
  {
    // Pinned only for the copy: a large block sends (and paces) for a while.
    const auto table = discovery_.route_table();
    st.routes.assign(table->routes.begin(), table->routes.end());
  }
  const auto frames = interleaved.size() / ch;
  const auto packet = static_cast<std::size_t>(st.packet_frames);
  std::size_t done = 0;
  // A block of many packets (a large host block, 8 channels at 1024 frames)
  // would leave as one burst that overflows a receiver's socket buffer:
  // after the first kBurstPackets, packets are spaced kBurstGapNs apart.
  constexpr std::size_t kBurstPackets = 16;
  constexpr Nanos kBurstGapNs = 50'000;
  std::size_t sent_now = 0;
  auto pace = [&] {
    if (++sent_now > kBurstPackets) sleep_until_ns(monotonic_ns() + kBurstGapNs);
  };
  // Whole packets straight from the caller's block when nothing is pending
  // (the usual case: the period is a multiple of the packet); otherwise
  // through pending.
  while (done < frames) {
    if (st.pending_frames == 0 && frames - done >= packet) {
      pace();
      send_packetised(st, interleaved.subspan(done * ch, packet * ch));
      done += packet;
      continue;
    }
    const std::size_t take = std::min(packet - st.pending_frames, frames - done);
    std::copy_n(interleaved.begin() + static_cast<std::ptrdiff_t>(done * ch), take * ch,
                st.pending.begin() + static_cast<std::ptrdiff_t>(st.pending_frames * ch));
    st.pending_frames += take;
    done += take;
    if (st.pending_frames == packet) {
      pace();
      send_packetised(st, st.pending);
      st.pending_frames = 0;
    }
  }
  st.blocks.fetch_add(1, std::memory_order_relaxed);
  st.frames.fetch_add(frames, std::memory_order_relaxed);
}

// ---- receiving ---------------------------------------------------------------

AudioSession::Receiver* AudioSession::find_receiver(const Uuid& id, std::uint16_t stream) const {
  for (const auto& s : sources_) {
    Receiver* r = s.rx.load(std::memory_order_acquire);
    if (r != nullptr && r->id == id && r->stream == stream) return r;
  }
  return nullptr;
}

AudioSession::Receiver* AudioSession::create_receiver(const Uuid& id, std::uint16_t stream,
                                                      const jdat::JdatHeader& h) {
  const auto info = discovery_.peer(id);
  if (!info) return nullptr;
  const std::string name = source_name(info->name, stream);
  std::lock_guard lock(mu_);
  if (!running_.load()) return nullptr;
  if (Receiver* r = find_receiver(id, stream)) return r;
  // The stream index comes from the wire: one peer is heard on at most
  // kMaxStreams slots, so it cannot take every slot from the others.
  const auto held = std::count_if(receivers_.begin(), receivers_.end(),
                                  [&](const auto& r) { return r->id == id; });
  if (held >= static_cast<std::ptrdiff_t>(kMaxStreams)) {
    sources_refused_.fetch_add(1, std::memory_order_relaxed);
    return nullptr;
  }
  Source* slot = nullptr;
  for (auto& s : sources_)
    if (s.used && s.name == name) slot = &s;
  if (slot == nullptr) {
    for (auto& s : sources_)
      if (!s.used) {
        slot = &s;
        break;
      }
  }
  if (slot == nullptr) {
    // Every slot is a source heard now or lingering: the oldest lingering one goes.
    for (auto& s : sources_)
      if (s.rx.load() == nullptr && (slot == nullptr || s.gone_since_ns < slot->gone_since_ns))
        slot = &s;
  }
  if (slot == nullptr) {
    sources_refused_.fetch_add(1, std::memory_order_relaxed);
    return nullptr;
  }
  auto r = std::make_unique<Receiver>(id, stream, name, config_, h);
  Receiver* raw = r.get();
  receivers_.push_back(std::move(r));
  receivers_created_.fetch_add(1, std::memory_order_relaxed);
  // A peer restarted under the same name with a new id replaces the old one.
  if (Receiver* old = slot->rx.load()) retire_locked(old);
  slot->name = name;
  slot->stream = stream;
  slot->used = true;
  slot->gone_since_ns = 0;
  slot->rx.store(raw, std::memory_order_seq_cst);
  return raw;
}

void AudioSession::retire_locked(Receiver* r) {
  for (auto& s : sources_)
    if (s.rx.load() == r) {
      s.rx.store(nullptr, std::memory_order_seq_cst);
      s.gone_since_ns = monotonic_ns();
    }
  for (auto it = receivers_.begin(); it != receivers_.end(); ++it) {
    if (it->get() == r) {
      retired_.push_back(std::move(*it));
      receivers_.erase(it);
      break;
    }
  }
}

void AudioSession::reclaim_locked() {
  // A reader that started before the pointers were cleared may still hold
  // one; any reader that starts later cannot find them.
  if (retired_.empty() || readers_.load(std::memory_order_seq_cst) != 0) return;
  receivers_freed_.fetch_add(retired_.size(), std::memory_order_relaxed);
  retired_.clear();
}

void AudioSession::forget(const Uuid& id) {
  std::lock_guard lock(mu_);
  for (const auto& s : sources_)
    if (Receiver* r = s.rx.load(); r != nullptr && r->id == id) retire_locked(r);
  reclaim_locked();
}

void AudioSession::maintain(Nanos now) {
  std::lock_guard lock(mu_);
  for (auto& s : sources_) {
    if (s.used && s.rx.load() == nullptr && now - s.gone_since_ns >= config_.source_linger_ns) {
      s.used = false;
      s.name.clear();
    }
  }
  reclaim_locked();
}

std::vector<AudioSourceInfo> AudioSession::sources() const {
  std::lock_guard lock(mu_);
  std::vector<AudioSourceInfo> out;
  for (std::size_t i = 0; i < sources_.size(); ++i) {
    const auto& s = sources_[i];
    if (!s.used) continue;
    AudioSourceInfo info;
    info.index = i;
    info.name = s.name;
    info.stream = s.stream;
    if (Receiver* r = s.rx.load()) info.peer = r->id;
    info.gone_since_ns = s.gone_since_ns;
    out.push_back(std::move(info));
  }
  return out;
}

void AudioSession::on_frame(const net::ReceivedFrame& rx) {
  const auto from = discovery_.peer_at(rx.from);
  if (!from) return;  // not (yet) a known peer of this session
  const std::uint16_t stream = rx.frame.header.stream_index;
  ReadGuard guard(readers_);
  Receiver* r = find_receiver(*from, stream);  // lock-free; the lock only to create one
  Result<jdat::JdatHeader> h;
  // The receive thread's own, kept: no allocation per JSONL packet once warm.
  thread_local std::vector<std::uint32_t> jsonl_words;
  jsonl_words.clear();
  if (rx.frame.header.format_type == protocol::FormatType::kCompactJsonl) {
    h = jdat::decode_jsonl(std::string_view(reinterpret_cast<const char*>(rx.frame.payload.data()),
                                            rx.frame.payload.size()),
                           jsonl_words);
  } else if (r != nullptr) {
    h = jdat::decode_binary(rx.frame.payload, r->rx_words);
  } else {
    h = jdat::peek_binary(rx.frame.payload);
  }
  if (!h) {
    if (r != nullptr) r->decode_errors.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (r == nullptr) {
    // The first packet of a stream sets its layout.
    r = create_receiver(*from, stream, *h);
    if (r == nullptr) return;
    if (rx.frame.header.format_type != protocol::FormatType::kCompactJsonl &&
        !jdat::decode_binary(rx.frame.payload, r->rx_words)) {
      r->decode_errors.fetch_add(1, std::memory_order_relaxed);
      return;
    }
  }
  if (!jsonl_words.empty())
    std::copy_n(jsonl_words.begin(), std::min(jsonl_words.size(), r->rx_words.size()),
                r->rx_words.begin());
  r->packets.fetch_add(1, std::memory_order_relaxed);
  if (!r->matches(*h)) {
    r->format_mismatch.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (r->is_jellie) {
    r->on_jellie(*h, rx.rx_ns);
    return;
  }
  jdat::from_words(h->format, std::span<const std::uint32_t>(r->rx_words.data(), r->block_samples),
                   r->rx_samples);
  r->emit(h->first_frame, rx.rx_ns, r->rx_samples);
}

// ---- playout -----------------------------------------------------------------

void AudioSession::play(Receiver& r, std::span<float> out, Nanos now_ns) {
  Receiver::Slot slot;
  // Before playout has started (the first pulls may come long after the
  // stream did), packets older than the buffer's largest target could only
  // anchor the playout far behind: they are skipped.
  const bool started = r.jitter.stats().playing;
  while (r.filled.try_pop(slot)) {
    if (!started && slot.arrival_ns < now_ns - config_.jitter.max_target_ns) {
      r.backlog_skipped.fetch_add(1, std::memory_order_relaxed);
      (void)r.free_slots.try_push(slot.index);
      continue;
    }
    r.jitter.push(
        slot.first_frame,
        std::span<const float>(r.slab.data() + slot.index * r.block_samples, r.block_samples),
        slot.arrival_ns);
    (void)r.free_slots.try_push(slot.index);
  }
  const auto ours = static_cast<std::size_t>(config_.channels);
  const auto theirs = static_cast<std::size_t>(r.layout.channels);
  const std::size_t frames = out.size() / ours;
  const std::size_t chunk_frames = r.mix.size() / theirs;
  float peak = 0.0f;
  for (std::size_t done = 0; done < frames;) {
    const std::size_t n = std::min(chunk_frames, frames - done);
    const std::span<float> mix(r.mix.data(), n * theirs);
    r.jitter.pull(
        mix, now_ns + static_cast<Nanos>(static_cast<double>(done) * 1e9 / config_.sample_rate));
    float* o = out.data() + done * ours;
    for (std::size_t f = 0; f < n; ++f) {
      for (std::size_t c = 0; c < ours; ++c) {
        const float v = theirs == 1 ? mix[f] : (c < theirs ? mix[f * theirs + c] : 0.0f);
        o[f * ours + c] = v;
        peak = std::max(peak, std::fabs(v));
      }
    }
    done += n;
  }
  r.peak.store(peak, std::memory_order_relaxed);
  r.snapshot.write(r.jitter.stats());
}

void AudioSession::pull(const Uuid& from, std::span<float> out, Nanos now_ns) {
  ReadGuard guard(readers_);
  Receiver* r = find_receiver(from, config_.stream);
  if (r == nullptr) {
    std::fill(out.begin(), out.end(), 0.0f);
    return;
  }
  play(*r, out, now_ns);
}

void AudioSession::pull_source(std::size_t index, std::span<float> out, Nanos now_ns) {
  ReadGuard guard(readers_);
  Receiver* r =
      index < sources_.size() ? sources_[index].rx.load(std::memory_order_seq_cst) : nullptr;
  if (r == nullptr) {
    std::fill(out.begin(), out.end(), 0.0f);
    return;
  }
  play(*r, out, now_ns);
}

// ---- figures -----------------------------------------------------------------

bool AudioSession::heard_from(const Uuid& from) const {
  std::lock_guard lock(mu_);
  return find_receiver(from, config_.stream) != nullptr;
}

AudioStats AudioSession::stats() const {
  AudioStats s;
  for (const auto& sp : senders_) {
    const Sender* st = sp.load(std::memory_order_acquire);
    if (st == nullptr) continue;
    AudioStats::Stream x;
    x.stream = st->stream;
    x.channels = st->channels;
    x.packet_frames = st->packet_frames;
    x.blocks = st->blocks.load();
    x.frames = st->frames.load();
    x.packets = st->packets.load();
    s.blocks_sent += x.blocks;
    s.frames_sent += x.frames;
    s.packets_sent += x.packets;
    s.bytes_sent += st->bytes.load();
    s.streams.push_back(x);
  }
  s.packet_frames = sender_store_[0]->packet_frames;
  s.encode_errors = encode_errors_.load();
  s.send_errors = send_errors_.load();
  s.bad_blocks = bad_blocks_.load();
  {
    std::lock_guard lock(error_mu_);
    s.last_error = last_error_;
  }
  if (s.last_error.empty() && first_send_failure_set_.load(std::memory_order_acquire)) {
    const auto& f = first_send_failure_;
    s.last_error = "audio packet to " + f.to.to_string() + " not sent: " +
                   net::describe(f.failure, f.payload_size, f.to, transport_.limits());
  }
  s.receivers_created = receivers_created_.load();
  s.receivers_freed = receivers_freed_.load();
  s.sources_refused = sources_refused_.load();
  std::lock_guard lock(mu_);
  for (const auto& r : receivers_) s.receivers.push_back(receiver_stats(*r));
  return s;
}

std::optional<AudioReceiverStats> AudioSession::stats_from(const Uuid& from) const {
  return stats_from(from, config_.stream);
}

std::optional<AudioReceiverStats> AudioSession::stats_from(const Uuid& from,
                                                           std::uint16_t stream) const {
  std::lock_guard lock(mu_);
  Receiver* r = find_receiver(from, stream);
  if (r == nullptr) return std::nullopt;
  return receiver_stats(*r);
}

AudioReceiverStats AudioSession::receiver_stats(Receiver& r) const {
  AudioReceiverStats a;
  a.from = r.id;
  a.name = r.name;
  a.stream = r.stream;
  a.channels = r.layout.channels;
  a.packet_frames = r.layout.frames;
  a.sample_rate = static_cast<int>(r.layout.sample_rate);
  a.packets = r.packets.load();
  a.blocks = r.blocks.load();
  a.jellie_exact = r.jellie_exact.load();
  a.jellie_recovered = r.jellie_recovered.load();
  a.jellie_interpolated = r.jellie_interpolated.load();
  a.jellie_lost = r.jellie_lost.load();
  a.decode_errors = r.decode_errors.load();
  a.format_mismatch = r.format_mismatch.load();
  a.queue_full = r.queue_full.load();
  a.backlog_skipped = r.backlog_skipped.load();
  a.peak = r.peak.load(std::memory_order_relaxed);
  {
    std::lock_guard readers(r.snapshot_mu);
    a.jitter = r.snapshot.read();
  }
  const auto fpp = static_cast<std::uint64_t>(r.layout.frames);
  a.concealed_blocks = (a.jitter.concealed_frames + fpp - 1) / fpp;
  return a;
}

std::vector<Nanos> AudioSession::held_ns_history(const Uuid& from) const {
  std::lock_guard lock(mu_);
  Receiver* r = find_receiver(from, config_.stream);
  return r ? r->jitter.held_ns_history() : std::vector<Nanos>{};
}

bool stream_played_out(const AudioReceiverStats& s, Nanos since_end_ns, Nanos link_delay_ns) {
  constexpr Nanos kMargin = 10'000'000;  // scheduling slack on a busy machine
  return since_end_ns > s.jitter.target_ns + link_delay_ns + kMargin;
}

}  // namespace jamnet
