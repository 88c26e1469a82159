#include "jamnet/peer/audio_bridge.hpp"

#include <algorithm>
#include <cctype>

#include "jamnet/platform/realtime.hpp"

namespace jamnet {

namespace {

// JACK port names: keep letters, digits, '-' and '_'; the rest becomes '_'.
std::string port_safe(const std::string& name) {
  std::string s;
  for (char c : name)
    s += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') ? c : '_';
  return s.empty() ? std::string("peer") : s;
}

}  // namespace

Result<std::unique_ptr<AudioBridge>> AudioBridge::create(AudioSession& session,
                                                         engine::io::AudioBackend& backend,
                                                         const AudioBridgeConfig& config) {
  const auto& ac = session.config();
  if (static_cast<std::uint32_t>(ac.frames_per_packet) != backend.buffer_size())
    return make_error(Errc::kInvalidArgument,
                      "packet size " + std::to_string(ac.frames_per_packet) +
                          " frames differs from the audio period of " +
                          std::to_string(backend.buffer_size()) + " frames");
  if (static_cast<std::uint32_t>(ac.sample_rate) != backend.sample_rate())
    return make_error(Errc::kInvalidArgument, "stream rate " + std::to_string(ac.sample_rate) +
                                                  " Hz differs from the audio device's " +
                                                  std::to_string(backend.sample_rate()) + " Hz");
  if (config.send_queue_blocks == 0)
    return make_error(Errc::kInvalidArgument, "send queue must hold at least one block");
  return std::unique_ptr<AudioBridge>(new AudioBridge(session, backend, config));
}

AudioBridge::AudioBridge(AudioSession& session, engine::io::AudioBackend& backend,
                         const AudioBridgeConfig& config)
    : session_(session),
      backend_(backend),
      config_(config),
      channels_(static_cast<std::size_t>(session.config().channels)),
      frames_(static_cast<std::size_t>(session.config().frames_per_packet)),
      ready_(config.send_queue_blocks) {
  // The queue holds at most capacity() seqs and the sender holds one more
  // while it sends: with two spare slots the producer never writes a slot
  // that is still queued or being sent.
  slots_ = ready_.capacity() + 2;
  ring_.assign(slots_ * frames_ * channels_, 0.0f);
  scratch_.assign(frames_ * channels_, 0.0f);
}

AudioBridge::~AudioBridge() {
  stop();
}

void AudioBridge::start() {
  if (running_.exchange(true)) return;
  sender_ = std::thread([this] { sender_loop(); });
}

void AudioBridge::stop() {
  if (!running_.exchange(false)) return;
  if (sender_.joinable()) sender_.join();
}

void AudioBridge::sender_loop() {
  platform::make_current_thread_realtime(config_.sender_rt_priority);
  std::uint64_t seq = 0;
  const std::size_t block = frames_ * channels_;
  while (running_.load(std::memory_order_relaxed)) {
    if (!ready_.try_pop(seq)) {
      sleep_until_ns(monotonic_ns() + config_.sender_poll_ns);
      continue;
    }
    session_.send_block(std::span<const float>(ring_.data() + (seq % slots_) * block, block));
    sent_.fetch_add(1, std::memory_order_relaxed);
  }
}

std::vector<std::string> AudioBridge::update(const std::vector<net::PeerInfo>& peers) {
  std::vector<std::string> added;
  for (const auto& p : peers) {
    const std::size_t count = remote_count_.load(std::memory_order_relaxed);
    if (count >= kMaxRemotes) break;
    const bool known = std::any_of(remotes_.begin(), remotes_.begin() + count,
                                   [&](const Remote& r) { return r.id == p.id; });
    if (known || !session_.heard_from(p.id)) continue;
    Remote r;
    r.id = p.id;
    bool ok = true;
    for (std::size_t ch = 0; ch < channels_ && ok; ++ch) {
      const std::string name = port_safe(p.name) + "_" + std::to_string(ch + 1);
      auto idx = backend_.add_output(name);
      ok = idx.has_value();
      if (!ok) break;
      if (ch == 0) r.first_output = *idx;
      added.push_back(name);
      port_names_.push_back(name);
    }
    if (!ok) continue;
    remotes_[count] = r;
    remote_count_.store(count + 1, std::memory_order_release);
  }
  return added;
}

AudioBridgeStats AudioBridge::stats() const {
  AudioBridgeStats s;
  s.cycles = cycles_.load(std::memory_order_relaxed);
  s.captured = captured_.load(std::memory_order_relaxed);
  s.sent = sent_.load(std::memory_order_relaxed);
  s.send_queue_full = full_.load(std::memory_order_relaxed);
  s.size_mismatch = mismatch_.load(std::memory_order_relaxed);
  s.remote_ports = port_names_;
  return s;
}

void AudioBridge::process(const engine::io::AudioBlock& block) noexcept {
  cycles_.fetch_add(1, std::memory_order_relaxed);
  if (config_.device_clock != nullptr)
    config_.device_clock->on_cycle(block.info.frame_time, block.info.start_ns);
  const std::size_t frames = block.info.frames;
  for (float* out : block.outputs) std::fill(out, out + frames, 0.0f);
  if (frames != frames_) {
    mismatch_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  // Capture: interleave this cycle's inputs into the next ring slot.
  float* slot = ring_.data() + (next_seq_ % slots_) * frames_ * channels_;
  for (std::size_t ch = 0; ch < channels_; ++ch) {
    const float* in = ch < block.inputs.size() ? block.inputs[ch] : nullptr;
    for (std::size_t f = 0; f < frames; ++f) slot[f * channels_ + ch] = in ? in[f] : 0.0f;
  }
  if (ready_.try_push(next_seq_)) {
    ++next_seq_;
    captured_.fetch_add(1, std::memory_order_relaxed);
  } else {
    full_.fetch_add(1, std::memory_order_relaxed);
  }
  // Playback: each remote peer's jitter buffer straight into its ports. The
  // cycle's start is the smooth device clock the jitter buffer wants.
  const std::size_t n = remote_count_.load(std::memory_order_acquire);
  for (std::size_t r = 0; r < n; ++r) {
    const Remote& rem = remotes_[r];
    session_.pull(rem.id, std::span<float>(scratch_.data(), frames * channels_),
                  block.info.start_ns);
    for (std::size_t ch = 0; ch < channels_; ++ch) {
      const std::size_t o = rem.first_output + ch;
      if (o >= block.outputs.size()) continue;  // the port is not in this cycle's array yet
      float* out = block.outputs[o];
      for (std::size_t f = 0; f < frames; ++f) out[f] = scratch_[f * channels_ + ch];
    }
  }
}

}  // namespace jamnet
