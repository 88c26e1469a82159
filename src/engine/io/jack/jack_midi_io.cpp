#include "jack_midi_io.hpp"

#include <jack/midiport.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "jamnet/core/rt_scope.hpp"

namespace jamnet::engine::io::jack_detail {

namespace jmid = protocol::jmid;

JackMidiIo::JackMidiIo(std::size_t queue_capacity)
    : in_queue_(queue_capacity), out_queue_(queue_capacity) {}

bool JackMidiIo::pop_input(jmid::Event& e) noexcept {
  return in_queue_.try_pop(e);
}

bool JackMidiIo::push_output(const jmid::Event& e, Nanos at_ns) noexcept {
  if (out_queue_.try_push(MidiOutItem{e, at_ns})) return true;
  count(dropped_full_);
  return false;
}

void JackMidiIo::process(void* in_buf, void* out_buf, jack_nframes_t nframes,
                         const JackCycleClock& clock) noexcept {
  const rt::Scope scope(rt::Work::kJackMidi);
  if (nframes == 0) return;
  if (in_buf != nullptr) read_input(in_buf, clock);
  if (out_buf != nullptr) write_output(out_buf, nframes, clock);
}

void JackMidiIo::read_input(void* buf, const JackCycleClock& clock) noexcept {
  const std::uint32_t n = jack_midi_get_event_count(buf);
  for (std::uint32_t i = 0; i < n; ++i) {
    jack_midi_event_t ev;
    if (jack_midi_event_get(&ev, buf, i) != 0) continue;
    const Nanos ts = clock.t0 + static_cast<Nanos>(std::llround(ev.time * clock.ns_per_frame));
    parser_.feed({ev.buffer, ev.size}, [&](const jmid::Event& parsed) {
      jmid::Event e = parsed;
      e.ts_ns = ts;
      e.seq = 0;
      if (in_queue_.try_push(e)) {
        count(input_events_);
      } else {
        count(dropped_full_);
      }
    });
  }
}

void JackMidiIo::write_output(void* buf, jack_nframes_t nframes,
                              const JackCycleClock& clock) noexcept {
  jack_midi_clear_buffer(buf);
  jack_nframes_t last_offset = 0;  // JACK wants non-decreasing offsets
  // A cycle's t0 and the previous cycle's t1 come from a filter and may
  // differ by a little: an event less than a frame early is on time.
  const Nanos late_before = clock.t0 - static_cast<Nanos>(clock.ns_per_frame);
  for (;;) {
    if (!has_pending_) {
      if (!out_queue_.try_pop(pending_)) break;
      has_pending_ = true;
    }
    if (pending_.at_ns >= clock.t1) break;  // due in a later cycle: hold it
    has_pending_ = false;

    jack_nframes_t offset = 0;
    if (pending_.at_ns > clock.t0) {
      const double f = static_cast<double>(pending_.at_ns - clock.t0) / clock.ns_per_frame +
                       0.5;  // nearest frame
      offset = std::min<jack_nframes_t>(nframes - 1, static_cast<jack_nframes_t>(f));
    } else if (pending_.at_ns < late_before) {
      count(late_events_);
    }
    offset = std::max(offset, last_offset);

    std::array<std::uint8_t, jmid::kMaxSysExChunk + 8> bytes;
    const std::size_t len = jmid::to_midi(pending_.event, bytes);
    if (pending_.event.kind == jmid::Kind::kSysEx) {
      if (pending_.event.sysex_index == 0) {
        sysex_len_ = 0;
        sysex_open_ = true;
        sysex_overflow_ = false;
      }
      if (!sysex_open_) continue;  // a chunk without its start
      if (sysex_len_ + len > sysex_.size()) {
        sysex_overflow_ = true;
      } else {
        std::memcpy(sysex_.data() + sysex_len_, bytes.data(), len);
        sysex_len_ += len;
      }
      if (!pending_.event.sysex_last) continue;
      sysex_open_ = false;
      if (sysex_overflow_) {
        count(dropped_full_);
        continue;
      }
      emit(buf, offset, sysex_.data(), sysex_len_, last_offset);
      continue;
    }
    if (len == 0) continue;
    emit(buf, offset, bytes.data(), len, last_offset);
  }
}

void JackMidiIo::emit(void* buf, jack_nframes_t offset, const std::uint8_t* data, std::size_t len,
                      jack_nframes_t& last_offset) noexcept {
  if (jack_midi_event_write(buf, offset, data, len) == 0) {
    count(output_events_);
    last_offset = offset;
  } else {
    count(dropped_full_);  // the port buffer is full
  }
}

}  // namespace jamnet::engine::io::jack_detail
