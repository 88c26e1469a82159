#include "jamnet/peer/audio_session.hpp"

#include <algorithm>
#include <array>
#include <random>

#include "jamnet/core/spsc_queue.hpp"
#include "jamnet/core/triple_buffer.hpp"
#include "jamnet/media/jdat/jellie.hpp"
#include "jamnet/protocol/toast_frame.hpp"

namespace jamnet {

using protocol::StreamType;
namespace jdat = protocol::jdat;

namespace {

constexpr std::uint16_t kJdatKind = 1;
// JELLIE blocks being reassembled at once; a block with a single data stream
// is interpolated once the stream has moved kJellieFlushAfterBlocks past it.
constexpr std::size_t kJellieWindow = 8;
constexpr std::uint64_t kJellieFlushAfterBlocks = 2;

int role_index(jdat::StreamRole r) noexcept {
  return static_cast<int>(r) - static_cast<int>(jdat::StreamRole::kJellieEven);
}

// A decoded block handed from the network thread to the playout side: its
// samples live in the receiver's slab at `index`.
struct BlockSlot {
  std::uint32_t index = 0;
  std::uint64_t first_frame = 0;
  Nanos arrival_ns = 0;
};

}  // namespace

struct AudioSession::Receiver {
  using Slot = BlockSlot;
  struct PendingBlock {
    bool used = false;
    bool emitted = false;
    std::uint64_t first_frame = 0;
    Nanos arrival_ns = 0;
    std::array<bool, 4> present{};
    std::array<std::vector<std::uint32_t>, 4> words;
  };

  Uuid id;
  std::size_t block_samples;
  media::jdat::JitterBuffer jitter;
  std::vector<float> slab;
  SpscQueue<Slot> filled;
  SpscQueue<std::uint32_t> free_slots;

  // network thread only
  std::vector<std::uint32_t> rx_words;
  std::vector<float> rx_samples;
  std::optional<media::jdat::JellieDecoder> jellie;
  std::array<PendingBlock, kJellieWindow> pending;
  std::uint64_t newest_block = 0;
  bool have_newest = false;
  std::atomic<std::uint64_t> packets{0}, blocks{0}, jellie_exact{0}, jellie_recovered{0},
      jellie_interpolated{0}, jellie_lost{0}, decode_errors{0}, format_mismatch{0}, queue_full{0},
      backlog_skipped{0};

  // The playout side publishes the buffer's statistics after every pull;
  // stats() reads them (readers serialised by snapshot_mu, never the writer).
  TripleBuffer<media::jdat::JitterBufferStats> snapshot;
  std::mutex snapshot_mu;

  Receiver(const Uuid& who, const AudioConfig& c)
      : id(who),
        block_samples(static_cast<std::size_t>(c.frames_per_packet * c.channels)),
        jitter(c.jitter),
        slab(c.queue_packets * block_samples),
        filled(c.queue_packets),
        free_slots(c.queue_packets),
        rx_words(jdat::kMaxFrames * jdat::kMaxChannels),
        rx_samples(block_samples) {
    for (std::uint32_t i = 0; i < c.queue_packets; ++i) (void)free_slots.try_push(i);
    if (c.jellie) {
      jellie.emplace(c.format, c.frames_per_packet);
      for (auto& p : pending)
        for (auto& w : p.words) w.resize(static_cast<std::size_t>(c.frames_per_packet / 2));
    }
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

  void decode_jellie(PendingBlock& b, std::size_t frames) {
    std::array<std::span<const std::uint32_t>, 4> streams;
    int lost = 0;
    for (int i = 0; i < 4; ++i) {
      streams[i] = b.words[i];
      lost += b.present[i] ? 0 : 1;
    }
    const auto outcome =
        jellie->decode(streams, b.present, std::span<float>(rx_samples.data(), frames));
    b.emitted = true;
    switch (outcome) {
      case media::jdat::JellieOutcome::kExact:
        jellie_exact.fetch_add(1, std::memory_order_relaxed);
        if (lost > 0) jellie_recovered.fetch_add(1, std::memory_order_relaxed);
        break;
      case media::jdat::JellieOutcome::kInterpolated:
        jellie_interpolated.fetch_add(1, std::memory_order_relaxed);
        break;
      case media::jdat::JellieOutcome::kLost:
        jellie_lost.fetch_add(1, std::memory_order_relaxed);
        return;  // the jitter buffer conceals the gap
    }
    emit(b.first_frame, b.arrival_ns, std::span<const float>(rx_samples.data(), frames));
  }

  // A block left behind with fewer than two streams: interpolate if a data
  // stream is there, else count it lost (PNBTR conceals it at playout).
  void flush(PendingBlock& b, std::size_t frames) {
    if (b.used && !b.emitted) {
      if (b.present[0] || b.present[1]) {
        decode_jellie(b, frames);
      } else {
        jellie_lost.fetch_add(1, std::memory_order_relaxed);
      }
    }
    b.used = false;
  }

  void on_jellie(const jdat::JdatHeader& h, Nanos arrival_ns) {
    const std::size_t frames = h.frames;
    const std::uint64_t block = h.first_frame / frames;
    if (!have_newest || block > newest_block) {
      newest_block = block;
      have_newest = true;
      for (auto& b : pending)
        if (b.used && b.first_frame / frames + kJellieFlushAfterBlocks <= newest_block)
          flush(b, frames);
    }
    PendingBlock* slot = nullptr;
    for (auto& b : pending)
      if (b.used && b.first_frame == h.first_frame) slot = &b;
    if (slot == nullptr) {
      // Blocks this far behind were rebuilt, interpolated or given up on
      // already: a straggler stream must not bring one back a second time.
      if (block + kJellieFlushAfterBlocks <= newest_block) return;
      for (auto& b : pending)
        if (!b.used) slot = &b;
      if (slot == nullptr) {
        slot = &*std::min_element(pending.begin(), pending.end(),
                                  [](auto& a, auto& b) { return a.first_frame < b.first_frame; });
        flush(*slot, frames);
      }
      slot->used = true;
      slot->emitted = false;
      slot->first_frame = h.first_frame;
      slot->arrival_ns = arrival_ns;
      slot->present = {};
    }
    if (slot->emitted) return;  // already rebuilt from two other streams
    const int r = role_index(h.role);
    std::copy_n(rx_words.begin(), frames / 2, slot->words[static_cast<std::size_t>(r)].begin());
    slot->present[static_cast<std::size_t>(r)] = true;
    slot->arrival_ns = std::max(slot->arrival_ns, arrival_ns);
    if (std::count(slot->present.begin(), slot->present.end(), true) >= 2)
      decode_jellie(*slot, frames);
  }
};

AudioSession::AudioSession(const AudioConfig& config, net::Transport& transport,
                           net::SessionRegistry& registry, net::Discovery& discovery,
                           const Uuid& session)
    : config_(config),
      transport_(transport),
      registry_(registry),
      discovery_(discovery),
      session_(session),
      next_frame_(std::mt19937_64{std::random_device{}()}() >> 16) {
  config_.jitter.channels = config_.channels;
  config_.jitter.frames_per_packet = config_.frames_per_packet;
  config_.jitter.sample_rate = config_.sample_rate;
  config_.jitter.max_pull_frames =
      std::max(config_.jitter.max_pull_frames, config_.frames_per_packet);
  // JELLIE's 4 streams of half a block each take twice a mono block's words.
  words_.resize(static_cast<std::size_t>(config_.frames_per_packet *
                                         std::max(config_.channels, config_.jellie ? 2 : 1)));
  payload_.resize(jdat::kBinaryHeaderSize + words_.size() * 4);
  receivers_.reserve(kMaxReceivers);
  sub_ = registry_.subscribe({session_, StreamType::kAudio, config_.stream},
                             [this](const net::ReceivedFrame& rx) { on_frame(rx); });
}

AudioSession::~AudioSession() {
  stop();
}

void AudioSession::stop() {
  if (!running_.exchange(false)) return;
  registry_.unsubscribe(sub_);
}

void AudioSession::send_block(std::span<const float> interleaved) {
  const auto frames = static_cast<std::size_t>(config_.frames_per_packet);
  if (interleaved.size() != frames * static_cast<std::size_t>(config_.channels)) return;
  jdat::JdatHeader h;
  h.format = config_.format;
  h.channels = static_cast<std::uint8_t>(config_.channels);
  h.frames = static_cast<std::uint16_t>(frames);
  h.sample_rate = static_cast<std::uint32_t>(config_.sample_rate);
  h.first_frame = next_frame_;
  next_frame_ += frames;

  net::SendOptions opts;
  opts.session = session_;
  opts.topic = {StreamType::kAudio, config_.stream};
  opts.kind = kJdatKind;
  opts.format = config_.wire;
  const auto routes = discovery_.routes();

  auto send_packet = [&](std::span<const std::uint32_t> words) {
    std::span<const std::uint8_t> bytes;
    std::string line;
    if (config_.wire == protocol::FormatType::kBinary) {
      auto n = jdat::encode_binary(h, words, payload_);
      if (!n) return;
      bytes = {payload_.data(), *n};
    } else {
      line = jdat::encode_jsonl(h, words);
      bytes = {reinterpret_cast<const std::uint8_t*>(line.data()), line.size()};
    }
    for (const auto& route : routes) {
      if (transport_.send(opts, bytes, route.address)) {
        packets_sent_.fetch_add(1, std::memory_order_relaxed);
        bytes_sent_.fetch_add(protocol::encoded_size(bytes.size()), std::memory_order_relaxed);
      }
    }
  };

  if (config_.jellie && config_.channels == 1) {
    const std::size_t half = frames / 2;
    media::jdat::JellieEncoder enc(config_.format);
    std::array<std::span<std::uint32_t>, 4> streams;
    for (std::size_t i = 0; i < 4; ++i) streams[i] = std::span(words_).subspan(i * half, half);
    enc.encode(interleaved, streams);
    for (std::size_t i = 0; i < 4; ++i) {
      h.role = static_cast<jdat::StreamRole>(static_cast<int>(jdat::StreamRole::kJellieEven) +
                                             static_cast<int>(i));
      send_packet(streams[i]);
    }
  } else {
    const auto words = std::span(words_).first(interleaved.size());
    jdat::to_words(config_.format, interleaved, words);
    send_packet(words);
  }
  blocks_sent_.fetch_add(1, std::memory_order_relaxed);
}

AudioSession::Receiver* AudioSession::find_receiver(const Uuid& id) const {
  const std::size_t n = published_count_.load(std::memory_order_acquire);
  for (std::size_t i = 0; i < n; ++i) {
    Receiver* r = published_[i].load(std::memory_order_acquire);
    if (r != nullptr && r->id == id) return r;
  }
  return nullptr;
}

AudioSession::Receiver* AudioSession::receiver_for(const Uuid& id) {
  std::lock_guard lock(receivers_mu_);
  auto it = receivers_.find(id);
  if (it != receivers_.end()) return it->second.get();
  if (receivers_.size() >= kMaxReceivers) return nullptr;
  auto r = std::make_unique<Receiver>(id, config_);
  auto* raw = r.get();
  receivers_.emplace(id, std::move(r));
  const std::size_t n = published_count_.load(std::memory_order_relaxed);
  published_[n].store(raw, std::memory_order_release);
  published_count_.store(n + 1, std::memory_order_release);
  return raw;
}

void AudioSession::on_frame(const net::ReceivedFrame& rx) {
  const auto from = discovery_.peer_at(rx.from);
  if (!from) return;                   // not (yet) a known peer of this session
  Receiver* r = find_receiver(*from);  // lock-free; the lock only to create one
  if (r == nullptr) r = receiver_for(*from);
  if (r == nullptr) return;
  r->packets.fetch_add(1, std::memory_order_relaxed);
  Result<jdat::JdatHeader> h;
  if (rx.frame.header.format_type == protocol::FormatType::kCompactJsonl) {
    auto p = jdat::decode_jsonl(std::string_view(
        reinterpret_cast<const char*>(rx.frame.payload.data()), rx.frame.payload.size()));
    if (p) {
      h = p->header;
      std::copy_n(p->words.begin(), std::min(p->words.size(), r->rx_words.size()),
                  r->rx_words.begin());
    } else {
      h = std::unexpected(p.error());
    }
  } else {
    h = jdat::decode_binary(rx.frame.payload, r->rx_words);
  }
  if (!h) {
    r->decode_errors.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  const bool is_jellie = h->role != jdat::StreamRole::kPlain;
  if (h->channels != config_.channels || h->frames != config_.frames_per_packet ||
      h->sample_rate != static_cast<std::uint32_t>(config_.sample_rate) ||
      is_jellie != (r->jellie.has_value()) || (is_jellie && h->format != config_.format)) {
    r->format_mismatch.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (is_jellie) {
    r->on_jellie(*h, rx.rx_ns);
    return;
  }
  jdat::from_words(h->format, std::span<const std::uint32_t>(r->rx_words.data(), r->block_samples),
                   r->rx_samples);
  r->emit(h->first_frame, rx.rx_ns, r->rx_samples);
}

void AudioSession::pull(const Uuid& from, std::span<float> out, Nanos now_ns) {
  Receiver* r = find_receiver(from);
  if (r == nullptr) {
    std::fill(out.begin(), out.end(), 0.0f);
    return;
  }
  Receiver::Slot slot;
  // Before playout has started (the first pulls may come long after the
  // stream did), packets older than the buffer's largest target could only
  // anchor the playout far behind: they are skipped.
  const bool started = r->jitter.stats().playing;
  while (r->filled.try_pop(slot)) {
    if (!started && slot.arrival_ns < now_ns - config_.jitter.max_target_ns) {
      r->backlog_skipped.fetch_add(1, std::memory_order_relaxed);
      (void)r->free_slots.try_push(slot.index);
      continue;
    }
    r->jitter.push(
        slot.first_frame,
        std::span<const float>(r->slab.data() + slot.index * r->block_samples, r->block_samples),
        slot.arrival_ns);
    (void)r->free_slots.try_push(slot.index);
  }
  r->jitter.pull(out, now_ns);
  r->snapshot.write(r->jitter.stats());
}

AudioStats AudioSession::stats() const {
  AudioStats s;
  s.blocks_sent = blocks_sent_.load();
  s.packets_sent = packets_sent_.load();
  s.bytes_sent = bytes_sent_.load();
  std::lock_guard lock(receivers_mu_);
  for (const auto& [id, r] : receivers_) s.receivers.push_back(receiver_stats(*r));
  return s;
}

std::optional<AudioReceiverStats> AudioSession::stats_from(const Uuid& from) const {
  Receiver* r = find_receiver(from);
  if (r == nullptr) return std::nullopt;
  return receiver_stats(*r);
}

AudioReceiverStats AudioSession::receiver_stats(Receiver& r) const {
  AudioReceiverStats a;
  a.from = r.id;
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
  {
    std::lock_guard readers(r.snapshot_mu);
    a.jitter = r.snapshot.read();
  }
  const auto fpp = static_cast<std::uint64_t>(config_.frames_per_packet);
  a.concealed_blocks = (a.jitter.concealed_frames + fpp - 1) / fpp;
  return a;
}

std::vector<Nanos> AudioSession::held_ns_history(const Uuid& from) const {
  Receiver* r = find_receiver(from);
  return r ? r->jitter.held_ns_history() : std::vector<Nanos>{};
}

}  // namespace jamnet
