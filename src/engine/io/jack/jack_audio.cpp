// JACK audio backend (compiled only when JACK is found; JAMNET_HAVE_JACK).
#include "jamnet/engine/io/jack_audio.hpp"

#include <jack/jack.h>
#include <jack/transport.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>

#include "jack_midi_io.hpp"
#include "jack_time.hpp"

namespace jamnet::engine::io {

static_assert(JackAudioBackend::kPortIsInput == JackPortIsInput);
static_assert(JackAudioBackend::kPortIsOutput == JackPortIsOutput);
static_assert(JackAudioBackend::kPortIsPhysical == JackPortIsPhysical);

namespace {

// The output ports and the pointer array the callback fills each cycle.
// add_output publishes a new set rather than growing this one, so the
// callback never sees a vector reallocated under it.
constexpr jack_nframes_t kScratchFrames = 16384;  // above JACK's largest period (8192)
struct OutputSet {
  std::vector<jack_port_t*> ports;
  std::vector<float*> buffers;  // written by the callback only
};

}  // namespace

struct JackAudioBackend::Impl {
  BackendConfig config;
  jack_client_t* client = nullptr;
  std::string client_name;
  Nanos clock_offset_ns = 0;

  std::vector<jack_port_t*> in_ports;    // fixed at open
  std::vector<const float*> in_buffers;  // written by the callback only
  jack_port_t* midi_in = nullptr;
  jack_port_t* midi_out = nullptr;
  std::unique_ptr<jack_detail::JackMidiIo> midi;  // null without config.midi

  mutable std::mutex mutex;                      // control threads only; never the callback
  std::vector<std::unique_ptr<OutputSet>> sets;  // back() is current; the rest retired
  std::vector<std::string> input_names, output_names;
  std::string midi_in_name, midi_out_name;

  std::atomic<OutputSet*> outputs{nullptr};
  std::vector<float> scratch = std::vector<float>(kScratchFrames, 0.0f);  // removed ports
  std::atomic<AudioCallback*> callback{nullptr};
  std::atomic<bool> in_cycle{false};  // the callback is between its first and last line

  std::atomic<std::uint64_t> jack_cycles{0};
  std::atomic<std::uint64_t> cycles{0};
  std::atomic<std::uint64_t> xruns{0};
  std::atomic<std::uint64_t> clock_fallback_cycles{0};
  std::atomic<bool> server_gone{false};
  std::atomic<std::uint32_t> sample_rate{48000};  // set before activation; kept by on_sample_rate

  // ---- owned by the process callback ----
  std::int64_t jack_frames = 0;       // JACK's 32-bit frame counter, widened
  jack_nframes_t last_frame = 0;      // ... as JACK last reported it
  std::uint64_t frame_time = 0;       // what this cycle reports: never repeats
  std::uint64_t next_frame_time = 0;  // frame_time + nframes of the last cycle
  bool have_frame = false;

  static void count(std::atomic<std::uint64_t>& c) noexcept {
    c.fetch_add(1, std::memory_order_relaxed);
  }

  // ---- the real-time part: no allocation, locks, logging or blocking ----
  int process(jack_nframes_t nframes) noexcept {
    // seq_cst pairs with quiesce(): either stop() sees this cycle running, or
    // this cycle sees the callback stop() cleared (and the current port set).
    in_cycle.store(true, std::memory_order_seq_cst);
    count(jack_cycles);
    const auto clock =
        jack_detail::read_cycle_clock(client, nframes, sample_rate.load(std::memory_order_relaxed));
    if (clock.fallback) count(clock_fallback_cycles);
    // JACK's 32-bit counter, widened (a signed step: it may step back, below).
    jack_frames += have_frame ? static_cast<std::int32_t>(clock.frame - last_frame)
                              : static_cast<std::int64_t>(clock.frame);
    last_frame = clock.frame;
    // When the server ran late (an xrun), the timing a callback reads can
    // belong to a neighbouring cycle and repeat the last value or step back.
    // frame_time never does: it counts on from the last cycle and rejoins
    // JACK's counter (shared by every client) once that moves ahead again.
    frame_time = have_frame ? std::max(static_cast<std::uint64_t>(jack_frames), next_frame_time)
                            : static_cast<std::uint64_t>(jack_frames);
    next_frame_time = frame_time + nframes;
    have_frame = true;

    for (std::size_t i = 0; i < in_ports.size(); ++i) {
      in_buffers[i] = static_cast<const float*>(jack_port_get_buffer(in_ports[i], nframes));
    }
    OutputSet* outs = outputs.load(std::memory_order_seq_cst);
    for (std::size_t j = 0; j < outs->ports.size(); ++j) {
      // A removed port's slot writes into scratch nobody hears.
      outs->buffers[j] = outs->ports[j] != nullptr && nframes <= kScratchFrames
                             ? static_cast<float*>(jack_port_get_buffer(outs->ports[j], nframes))
                             : scratch.data();
    }

    AudioCallback* cb = callback.load(std::memory_order_seq_cst);
    if (cb != nullptr && nframes > 0) {
      AudioBlock block;
      block.inputs = {in_buffers.data(), in_buffers.size()};
      block.outputs = {outs->buffers.data(), outs->buffers.size()};
      block.info.frame_time = frame_time;
      block.info.start_ns = clock.t0;
      block.info.wake_ns = clock.wake_ns;
      block.info.period_ns =
          static_cast<Nanos>(nframes) * 1'000'000'000 /
          std::max<std::uint32_t>(1, sample_rate.load(std::memory_order_relaxed));
      block.info.frames = nframes;
      block.info.sample_rate = sample_rate.load(std::memory_order_relaxed);
      cb->process(block);
      count(cycles);
    } else {
      for (float* b : outs->buffers) std::memset(b, 0, sizeof(float) * nframes);
    }

    if (midi) {
      midi->process(jack_port_get_buffer(midi_in, nframes), jack_port_get_buffer(midi_out, nframes),
                    nframes, clock);
    }
    in_cycle.store(false, std::memory_order_release);
    return 0;
  }

  // Returns once no cycle that could have seen the old callback or an old
  // port set is still running. Control thread.
  void quiesce() const {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    // A server that is gone runs no more cycles; a stuck one is not waited
    // for forever (the callback then finishes on its own).
    while (in_cycle.load(std::memory_order_seq_cst) && !server_gone.load() &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
  }

  // Makes `set` the callback's port array. One that a cycle may still read
  // is retired; retired arrays are freed once a cycle has passed since
  // (quiesce), so ports added and removed over a long session do not grow memory.
  void publish(std::unique_ptr<OutputSet> set) {
    outputs.store(set.get(), std::memory_order_seq_cst);
    sets.push_back(std::move(set));
    if (sets.size() > 8) {
      quiesce();
      sets.erase(sets.begin(), sets.end() - 1);
    }
  }

  Result<jack_port_t*> register_port(const std::string& name, const char* type,
                                     unsigned long flags) {
    jack_port_t* p = jack_port_register(client, name.c_str(), type, flags, 0);
    if (p == nullptr) {
      return make_error(Errc::kIo, "cannot register JACK port '" + client_name + ":" + name + "'");
    }
    return p;
  }
};

JackAudioBackend::JackAudioBackend(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<JackAudioBackend>> JackAudioBackend::open(const BackendConfig& config) {
  if (auto ok = check_port_names(config); !ok) return std::unexpected(ok.error());
  auto client = jack_detail::open_client(config.client_name, config.server_name);
  if (!client) return std::unexpected(client.error());
  auto impl = std::make_unique<Impl>();
  impl->client = *client;
  // From here the client is closed by ~JackAudioBackend.
  std::unique_ptr<JackAudioBackend> self(new JackAudioBackend(std::move(impl)));
  Impl& s = *self->impl_;
  s.config = config;
  s.client_name = jack_get_client_name(s.client);
  s.clock_offset_ns = jack_detail::measure_clock_offset();
  s.sample_rate.store(jack_get_sample_rate(s.client), std::memory_order_relaxed);

  for (const auto& n : config.inputs) {
    auto p = s.register_port(n, JACK_DEFAULT_AUDIO_TYPE, JackPortIsInput);
    if (!p) return std::unexpected(p.error());
    s.in_ports.push_back(*p);
    s.input_names.emplace_back(jack_port_name(*p));
  }
  s.in_buffers.assign(s.in_ports.size(), nullptr);
  auto set = std::make_unique<OutputSet>();
  for (const auto& n : config.outputs) {
    auto p = s.register_port(n, JACK_DEFAULT_AUDIO_TYPE, JackPortIsOutput);
    if (!p) return std::unexpected(p.error());
    set->ports.push_back(*p);
    s.output_names.emplace_back(jack_port_name(*p));
  }
  set->buffers.assign(set->ports.size(), nullptr);
  s.outputs.store(set.get());
  s.sets.push_back(std::move(set));

  if (config.midi) {
    s.midi = std::make_unique<jack_detail::JackMidiIo>(kMidiQueueCapacity);
    auto in = s.register_port("midi_in", JACK_DEFAULT_MIDI_TYPE, JackPortIsInput);
    if (!in) return std::unexpected(in.error());
    auto out = s.register_port("midi_out", JACK_DEFAULT_MIDI_TYPE, JackPortIsOutput);
    if (!out) return std::unexpected(out.error());
    s.midi_in = *in;
    s.midi_out = *out;
    s.midi_in_name = jack_port_name(s.midi_in);
    s.midi_out_name = jack_port_name(s.midi_out);
  }

  if (auto r = jack_detail::set_callbacks_and_activate(s.client, s, s.client_name); !r)
    return std::unexpected(r.error());
  return self;
}

JackAudioBackend::~JackAudioBackend() {
  if (impl_ && impl_->client != nullptr) {
    // After deactivation no cycle runs: every port set may go with impl_.
    if (!impl_->server_gone.load()) jack_deactivate(impl_->client);
    jack_client_close(impl_->client);
    impl_->client = nullptr;
  }
}

Result<void> JackAudioBackend::start(AudioCallback& cb) {
  std::lock_guard lock(impl_->mutex);
  if (impl_->server_gone.load()) return make_error(Errc::kIo, "the JACK server has shut down");
  AudioCallback* expected = nullptr;
  if (!impl_->callback.compare_exchange_strong(expected, &cb, std::memory_order_seq_cst)) {
    return make_error(Errc::kInvalidArgument, "JACK backend already started");
  }
  return {};
}

void JackAudioBackend::stop() {
  std::lock_guard lock(impl_->mutex);
  impl_->callback.store(nullptr, std::memory_order_seq_cst);
  impl_->quiesce();
  // No cycle still holds a retired port array either.
  auto& sets = impl_->sets;
  if (sets.size() > 1) sets.erase(sets.begin(), sets.end() - 1);
}

std::string JackAudioBackend::client_name() const {
  return impl_->client_name;
}
std::uint32_t JackAudioBackend::sample_rate() const {
  return impl_->sample_rate.load(std::memory_order_relaxed);
}
std::uint32_t JackAudioBackend::buffer_size() const {
  return jack_get_buffer_size(impl_->client);
}
std::uint64_t JackAudioBackend::xruns() const {
  return impl_->xruns.load(std::memory_order_relaxed);
}
std::uint64_t JackAudioBackend::cycles() const {
  return impl_->cycles.load(std::memory_order_relaxed);
}

Result<std::size_t> JackAudioBackend::add_output(const std::string& name) {
  std::lock_guard lock(impl_->mutex);
  Impl& s = *impl_;
  if (name.empty()) return make_error(Errc::kInvalidArgument, "a port name is empty");
  if (name.find(':') != std::string::npos)
    return make_error(Errc::kInvalidArgument, "port name '" + name + "' contains ':'");
  const std::string full = s.client_name + ":" + name;
  for (const auto* names : {&s.input_names, &s.output_names}) {
    if (std::find(names->begin(), names->end(), full) != names->end())
      return make_error(Errc::kInvalidArgument, "port '" + full + "' exists");
  }
  if (s.midi && (full == s.midi_in_name || full == s.midi_out_name))
    return make_error(Errc::kInvalidArgument, "port '" + full + "' exists");
  auto p = s.register_port(name, JACK_DEFAULT_AUDIO_TYPE, JackPortIsOutput);
  if (!p) return std::unexpected(p.error());
  // Built here, on the control thread; the callback switches to it at its
  // next cycle. A removed port's index is reused first.
  auto set = std::make_unique<OutputSet>();
  set->ports = s.sets.back()->ports;
  std::size_t index = 0;
  while (index < set->ports.size() && set->ports[index] != nullptr) ++index;
  if (index == set->ports.size()) {
    set->ports.push_back(*p);
    s.output_names.emplace_back(jack_port_name(*p));
  } else {
    set->ports[index] = *p;
    s.output_names[index] = jack_port_name(*p);
  }
  set->buffers.assign(set->ports.size(), nullptr);
  s.publish(std::move(set));
  return index;
}

Result<void> JackAudioBackend::remove_output(std::size_t index) {
  std::lock_guard lock(impl_->mutex);
  Impl& s = *impl_;
  const auto& current = s.sets.back()->ports;
  if (index < s.config.outputs.size() || index >= current.size() || current[index] == nullptr)
    return make_error(Errc::kInvalidArgument,
                      "output " + std::to_string(index) + " was not added by add_output");
  jack_port_t* port = current[index];
  auto set = std::make_unique<OutputSet>();
  set->ports = current;
  set->ports[index] = nullptr;
  set->buffers.assign(set->ports.size(), nullptr);
  s.publish(std::move(set));
  // No cycle writes the port's buffer any more: unregister it.
  s.quiesce();
  s.sets.erase(s.sets.begin(), s.sets.end() - 1);
  jack_port_unregister(s.client, port);
  s.output_names[index].clear();
  return {};
}

std::vector<std::string> JackAudioBackend::input_ports() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->input_names;
}
std::vector<std::string> JackAudioBackend::output_ports() const {
  std::lock_guard lock(impl_->mutex);
  std::vector<std::string> names;
  for (const auto& n : impl_->output_names)
    if (!n.empty()) names.push_back(n);
  return names;
}

std::optional<TransportInfo> JackAudioBackend::transport() const {
  if (impl_->server_gone.load()) return std::nullopt;
  jack_position_t pos{};
  const jack_transport_state_t state = jack_transport_query(impl_->client, &pos);
  TransportInfo t;
  t.rolling = state == JackTransportRolling;
  t.frame = pos.frame;
  if (pos.valid & JackPositionBBT) {
    // Copies: jack_position_t is packed, its fields cannot bind to references.
    t.bpm = static_cast<double>(pos.beats_per_minute);
    t.bar = static_cast<std::int32_t>(pos.bar);
    t.beat = static_cast<std::int32_t>(pos.beat);
    t.tick = static_cast<std::int32_t>(pos.tick);
  }
  return t;
}

std::optional<Error> JackAudioBackend::failure() const {
  if (!impl_->server_gone.load()) return std::nullopt;
  return Error{Errc::kIo, "the JACK server shut down (client '" + impl_->client_name + "')"};
}

Result<void> JackAudioBackend::connect(const std::string& source, const std::string& destination) {
  const int rc = jack_connect(impl_->client, source.c_str(), destination.c_str());
  if (rc == 0 || rc == EEXIST) return {};
  for (const auto* p : {&source, &destination}) {
    if (jack_port_by_name(impl_->client, p->c_str()) == nullptr)
      return make_error(Errc::kNotFound, "no JACK port '" + *p + "'");
  }
  return make_error(Errc::kIo, "cannot connect '" + source + "' to '" + destination +
                                   "' (wrong direction or type?)");
}

Result<void> JackAudioBackend::disconnect(const std::string& source,
                                          const std::string& destination) {
  if (jack_disconnect(impl_->client, source.c_str(), destination.c_str()) == 0) return {};
  return make_error(Errc::kNotFound, "'" + source + "' is not connected to '" + destination + "'");
}

bool JackAudioBackend::pop_midi_input(protocol::jmid::Event& e) {
  return impl_->midi && impl_->midi->pop_input(e);
}
bool JackAudioBackend::push_midi_output(const protocol::jmid::Event& e, Nanos at_ns) {
  return impl_->midi && impl_->midi->push_output(e, at_ns);
}
std::string JackAudioBackend::midi_input_port() const {
  return impl_->midi_in_name;
}
std::string JackAudioBackend::midi_output_port() const {
  return impl_->midi_out_name;
}

JackMidi::Stats JackAudioBackend::midi_stats() const {
  const auto get = [](const std::atomic<std::uint64_t>& c) {
    return c.load(std::memory_order_relaxed);
  };
  JackMidi::Stats st;
  st.cycles = get(impl_->jack_cycles);
  st.xruns = get(impl_->xruns);
  st.clock_fallback_cycles = get(impl_->clock_fallback_cycles);
  if (const auto& m = impl_->midi) {
    st.input_events = m->input_events();
    st.output_events = m->output_events();
    st.late_events = m->late_events();
    st.dropped_full = m->dropped_full();
  }
  return st;
}

std::uint64_t JackAudioBackend::clock_fallback_cycles() const {
  return impl_->clock_fallback_cycles.load(std::memory_order_relaxed);
}
Nanos JackAudioBackend::clock_offset_ns() const {
  return impl_->clock_offset_ns;
}

Result<std::vector<std::string>> JackAudioBackend::list_ports(const std::string& server_name,
                                                              unsigned long flags, PortType type) {
  auto client = jack_detail::open_client("jamnet_ls", server_name);
  if (!client) return std::unexpected(client.error());
  const char* pattern = type == PortType::kAudio  ? JACK_DEFAULT_AUDIO_TYPE
                        : type == PortType::kMidi ? JACK_DEFAULT_MIDI_TYPE
                                                  : nullptr;
  std::vector<std::string> out;
  if (const char** ports = jack_get_ports(*client, nullptr, pattern, flags)) {
    for (const char** p = ports; *p != nullptr; ++p) out.emplace_back(*p);
    jack_free(ports);
  }
  jack_client_close(*client);
  return out;
}

}  // namespace jamnet::engine::io
