#include "jamnet/peer/audio_bridge.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <ctime>

#include "jamnet/core/rt_scope.hpp"
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
      // JACK may change its period while running: room for up to 1024 frames
      // (or the period, if larger) per cycle.
      slot_frames_(std::max<std::size_t>(backend.buffer_size(), 1024)),
      ready_(config.send_queue_blocks) {
  // The queue holds at most capacity() seqs and the sender holds one more
  // while it sends: with two spare slots the producer never writes a slot
  // that is still queued or being sent.
  slots_ = ready_.capacity() + 2;
  ring_.assign(slots_ * slot_frames_ * channels_, 0.0f);
  ring_frames_.assign(slots_, 0);
  scratch_.assign(slot_frames_ * channels_, 0.0f);
  if (config_.input != nullptr) {
    input_.assign(slot_frames_ * channels_, 0.0f);
    for (std::size_t ch = 0; ch < channels_; ++ch)
      input_ptrs_.push_back(&input_[ch * slot_frames_]);
  }
  // The audio thread reads a slot's outputs while it is active; the control
  // thread changes them only while it is not, and never reallocates them.
  for (auto& r : remotes_) r.outputs.reserve(channels_);
}

AudioBridge::~AudioBridge() {
  stop();
}

void AudioBridge::start() {
  if (running_.exchange(true)) return;
  if (config_.send) sender_ = std::thread([this] { sender_loop(); });
}

void AudioBridge::stop() {
  if (!running_.exchange(false)) return;
  wake_.post();
  if (sender_.joinable()) sender_.join();
}

bool SendStream::write(std::span<const float> interleaved) noexcept {
  const auto ch = static_cast<std::size_t>(channels_);
  const std::size_t frames = interleaved.size() / ch;
  if (interleaved.size() % ch != 0 || !queue_.try_push_all(interleaved)) {
    dropped_.fetch_add(frames, std::memory_order_relaxed);
    return false;
  }
  written_.fetch_add(frames, std::memory_order_relaxed);
  wake_->post();
  return true;
}

Result<SendStream*> AudioBridge::add_stream(const AudioStreamConfig& sc) {
  if (!config_.send)
    return make_error(Errc::kInvalidArgument, "this session only listens: it sends no streams");
  // The session hands out each handle once: no two calls write one slot.
  auto handle = session_.add_stream(sc);
  if (!handle) return std::unexpected(handle.error());
  auto st = std::unique_ptr<SendStream>(
      new SendStream(*handle, session_.stream_index(*handle), sc.channels, &wake_));
  SendStream* raw = st.get();
  stream_store_[*handle] = std::move(st);
  streams_[*handle].store(raw, std::memory_order_release);
  return raw;
}

void AudioBridge::sender_loop() {
  platform::make_current_thread_realtime(config_.sender_rt_priority);
  std::uint64_t seq = 0;
  const std::size_t slot = slot_frames_ * channels_;
  while (running_.load(std::memory_order_relaxed)) {
    // Sleeps until the audio thread (or a stream's writer) posts; the
    // timeout only bounds how long a stop waits.
    (void)wake_.wait_for(config_.sender_idle_ns);
    // Everything ready, then back to sleep (posts that came meanwhile make
    // the next wait return at once).
    for (bool busy = true; busy;) {
      busy = false;
      if (ready_.try_pop(seq)) {
        const rt::Scope scope(rt::Work::kAudioSend);
        const std::size_t i = seq % slots_;
        session_.send_block(
            std::span<const float>(ring_.data() + i * slot, ring_frames_[i] * channels_));
        sent_.fetch_add(1, std::memory_order_relaxed);
        busy = true;
      }
      // The app's own streams: whatever whole frames are queued.
      for (const auto& sp : streams_) {
        SendStream* st = sp.load(std::memory_order_acquire);
        if (st == nullptr) continue;
        const rt::Scope scope(rt::Work::kAudioSend);
        const std::size_t n = st->queue_.pop_some(st->out_);
        if (n == 0) continue;
        session_.send_block(st->handle_, std::span<const float>(st->out_).first(n));
        busy = true;
      }
    }
  }
}

AudioBridgeUpdate AudioBridge::update() {
  AudioBridgeUpdate u;
  const auto sources = session_.sources();
  auto fail = [&](const std::string& what) {
    port_errors_.fetch_add(1, std::memory_order_relaxed);
    last_error_ = what;
  };
  auto drop_ports = [&](Remote& r) {
    r.active.store(false, std::memory_order_seq_cst);
    for (std::size_t o : r.outputs) {
      if (auto ok = backend_.remove_output(o); !ok) fail(ok.error().message);
    }
    for (std::size_t ch = 0; ch < r.outputs.size(); ++ch) {
      const std::string name = port_safe(r.name) + "_" + std::to_string(ch + 1);
      u.removed.push_back(name);
      port_names_.erase(std::remove(port_names_.begin(), port_names_.end(), name),
                        port_names_.end());
    }
    r.outputs.clear();
    r.name.clear();
  };
  std::array<const AudioSourceInfo*, kMaxRemotes> by_index{};
  for (const auto& s : sources)
    if (s.index < kMaxRemotes) by_index[s.index] = &s;
  for (std::size_t i = 0; i < kMaxRemotes; ++i) {
    Remote& r = remotes_[i];
    const AudioSourceInfo* s = by_index[i];
    if (config_.mix_outputs) {
      // No ports: the slot is mixed into the backend's outputs while it has a source.
      if (s == nullptr) {
        r.active.store(false, std::memory_order_seq_cst);
        r.name.clear();
        continue;
      }
      if (r.name != s->name || !r.active.load()) {
        r.name = s->name;
        apply_mix(r);
        r.active.store(true, std::memory_order_release);
      }
      continue;
    }
    // A freed slot, or one reused under another name: its ports go.
    if (!r.outputs.empty() && (s == nullptr || s->name != r.name)) drop_ports(r);
    if (s == nullptr || !r.outputs.empty()) continue;
    r.name = s->name;
    apply_mix(r);
    bool ok = true;
    for (std::size_t ch = 0; ch < channels_; ++ch) {
      const std::string name = port_safe(s->name) + "_" + std::to_string(ch + 1);
      auto idx = backend_.add_output(name);
      if (!idx) {
        fail("no port " + name + " for " + s->name + ": " + idx.error().message);
        ok = false;
        break;
      }
      r.outputs.push_back(*idx);
      u.added.push_back(name);
      port_names_.push_back(name);
    }
    if (!ok) {
      drop_ports(r);
      continue;
    }
    r.active.store(true, std::memory_order_release);
  }
  return u;
}

void AudioBridge::apply_mix(Remote& r) {
  MixSetting m;
  for (const auto& [name, setting] : mix_)
    if (name == r.name) m = setting;
  const float g = m.mute ? 0.0f : static_cast<float>(std::pow(10.0, m.gain_db / 20.0));
  const double pan = std::clamp(m.pan, -1.0, 1.0);
  if (channels_ == 2) {
    r.gain[0].store(g * static_cast<float>(pan > 0 ? 1.0 - pan : 1.0), std::memory_order_relaxed);
    r.gain[1].store(g * static_cast<float>(pan < 0 ? 1.0 + pan : 1.0), std::memory_order_relaxed);
  } else {
    r.gain[0].store(g, std::memory_order_relaxed);
    r.gain[1].store(g, std::memory_order_relaxed);
  }
}

Result<void> AudioBridge::set_mix(const std::string& name, const MixSetting& m) {
  if (name.empty()) return make_error(Errc::kInvalidArgument, "mix: name a source");
  if (!std::isfinite(m.gain_db) || m.gain_db > 24.0 || m.gain_db < -120.0)
    return make_error(Errc::kInvalidArgument, "mix: gain must be -120..+24 dB");
  if (!std::isfinite(m.pan) || m.pan < -1.0 || m.pan > 1.0)
    return make_error(Errc::kInvalidArgument, "mix: pan must be -1 (left) .. +1 (right)");
  auto it = std::find_if(mix_.begin(), mix_.end(), [&](const auto& e) { return e.first == name; });
  if (it != mix_.end()) {
    mix_.erase(it);
  } else if (mix_.size() >= kMaxMixSettings) {
    // Bounded: the oldest setting of a name nobody plays under now goes.
    auto old = std::find_if(mix_.begin(), mix_.end(), [&](const auto& e) {
      return std::none_of(remotes_.begin(), remotes_.end(),
                          [&](const Remote& r) { return r.name == e.first; });
    });
    mix_.erase(old != mix_.end() ? old : mix_.begin());
  }
  mix_.emplace_back(name, m);
  for (auto& r : remotes_)
    if (r.name == name) apply_mix(r);
  return {};
}

AudioBridgeStats AudioBridge::stats() const {
  AudioBridgeStats s;
  s.cycles = cycles_.load(std::memory_order_relaxed);
  s.captured = captured_.load(std::memory_order_relaxed);
  s.sent = sent_.load(std::memory_order_relaxed);
  s.send_queue_full = full_.load(std::memory_order_relaxed);
  s.too_large = too_large_.load(std::memory_order_relaxed);
  s.port_errors = port_errors_.load(std::memory_order_relaxed);
  s.last_error = last_error_;
  s.remote_ports = port_names_;
  s.mix = mix_;
  for (const auto& sp : streams_)
    if (const SendStream* st = sp.load(std::memory_order_acquire))
      s.streams.push_back(
          {st->index(), st->channels(), st->frames_written(), st->frames_dropped()});
  return s;
}

void AudioBridge::capture(const engine::io::AudioBlock& block) noexcept {
  const std::size_t frames = block.info.frames;
  // Capture: interleave this cycle's inputs into the next ring slot.
  const std::size_t i = next_seq_ % slots_;
  float* slot = ring_.data() + i * slot_frames_ * channels_;
  if (config_.input != nullptr) {
    config_.input(config_.input_user, input_ptrs_, static_cast<std::uint32_t>(frames),
                  block.info.frame_time);
  }
  for (std::size_t ch = 0; ch < channels_; ++ch) {
    const float* in = config_.input != nullptr   ? input_ptrs_[ch]
                      : ch < block.inputs.size() ? block.inputs[ch]
                                                 : nullptr;
    for (std::size_t f = 0; f < frames; ++f) slot[f * channels_ + ch] = in ? in[f] : 0.0f;
  }
  ring_frames_[i] = static_cast<std::uint32_t>(frames);
  if (ready_.try_push(next_seq_)) {
    ++next_seq_;
    captured_.fetch_add(1, std::memory_order_relaxed);
    wake_.post();
  } else {
    full_.fetch_add(1, std::memory_order_relaxed);
  }
}

void AudioBridge::process(const engine::io::AudioBlock& block) noexcept {
  cycles_.fetch_add(1, std::memory_order_relaxed);
  if (config_.device_clock != nullptr)
    config_.device_clock->on_cycle(block.info.frame_time, block.info.start_ns);
  const std::size_t frames = block.info.frames;
  for (float* out : block.outputs) std::fill(out, out + frames, 0.0f);
  if (frames > slot_frames_) {
    too_large_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (config_.send) capture(block);
  // Playback: each source's jitter buffer straight into its ports. The
  // cycle's start is the smooth device clock the jitter buffer wants.
  for (std::size_t r = 0; r < kMaxRemotes; ++r) {
    const Remote& rem = remotes_[r];
    if (!rem.active.load(std::memory_order_acquire)) continue;
    const std::span<float> pulled(scratch_.data(), frames * channels_);
    session_.pull_source(r, pulled, block.info.start_ns);
    if (config_.tap != nullptr) config_.tap(config_.tap_user, r, pulled, block.info.start_ns);
    for (std::size_t ch = 0; ch < channels_; ++ch) {
      const float g = rem.gain[std::min<std::size_t>(ch, 1)].load(std::memory_order_relaxed);
      if (config_.mix_outputs) {
        if (ch >= block.outputs.size()) continue;
        float* out = block.outputs[ch];
        for (std::size_t f = 0; f < frames; ++f) out[f] += g * scratch_[f * channels_ + ch];
        continue;
      }
      const std::size_t o = rem.outputs[ch];
      if (o >= block.outputs.size()) continue;  // the port is not in this cycle's array yet
      float* out = block.outputs[o];
      for (std::size_t f = 0; f < frames; ++f) out[f] = g * scratch_[f * channels_ + ch];
    }
  }
}

}  // namespace jamnet
