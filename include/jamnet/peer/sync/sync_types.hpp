// The sync session's configuration and report, shared by its parts
// (peer/sync/) and its callers.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "jamnet/core/clock.hpp"
#include "jamnet/protocol/control.hpp"
#include "jamnet/sync/clock_drift_arbiter.hpp"
#include "jamnet/sync/transport.hpp"

namespace jamnet {

inline constexpr std::uint16_t kJsonControlKind = 0x0001;

struct SyncConfig {
  double sync_hz = 20;  // 1..100
  int priority = 0;
  bool force_master = false;
  // A test clock in place of the local monotonic clock (a crystal that is
  // offset and runs fast or slow): for tests and benchmarks.
  std::optional<Nanos> test_offset_ns;
  double test_skew_ppm = 0;
  Nanos transport_lead_ns = 50'000'000;
  std::uint32_t audio_rate = 48000;
  double initial_bpm = 120;
};

// Where and when this peer started (or stopped) on a transport event.
struct TransportEventReport {
  std::string command;  // "PLAY", ...
  std::string origin;
  std::uint64_t seq = 0;
  Nanos at_session_ns = 0;      // when the command asked to act
  std::int64_t sample = 0;      // first audio-clock sample at or after it
  Nanos sample_local_ns = 0;    // that sample on the local clock
  Nanos sample_mono_ns = 0;     // and on CLOCK_MONOTONIC
  Nanos sample_session_ns = 0;  // and in session time, by our clock
  bool late = false;            // the command arrived after its time
};

struct SyncReport {
  sync::ArbiterStatus clock;
  Nanos mono_ns = 0;     // one reading, taken together:
  Nanos local_ns = 0;    //   the local clock
  Nanos session_ns = 0;  //   and the session clock
  sync::TransportState transport;
  std::vector<TransportEventReport> events;  // most recent last (up to 64)
  std::array<std::uint64_t, protocol::control::kRejectKinds> rejected{};
  std::uint64_t transport_commands = 0, transport_ignored = 0, snapshots_adopted = 0;
  std::uint64_t inbox_dropped = 0;  // frames dropped because the control thread fell behind
  // Sync and control messages from addresses no peer proved, or naming a
  // peer other than the one proven there: dropped.
  std::uint64_t unproven_dropped = 0;
  nlohmann::ordered_json to_json_value() const;
  std::string to_json() const;  // to_json_value(), printed on one line
};

}  // namespace jamnet
