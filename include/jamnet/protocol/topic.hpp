// Topics name a stream inside a session: midi://SESSION, audio://SESSION/STREAM,
// control://SESSION ... On the wire a topic is (session_id, stream_type,
// stream_index) from the TOAST header.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "jamnet/core/result.hpp"
#include "jamnet/core/uuid.hpp"
#include "jamnet/protocol/toast_frame.hpp"

namespace jamnet::protocol {

struct Topic {
  StreamType type = StreamType::kControl;
  std::uint16_t index = 0;
  friend bool operator==(const Topic&, const Topic&) = default;
  friend auto operator<=>(const Topic&, const Topic&) = default;
};

// A topic pattern: a session plus a stream type, and a stream index or any.
struct TopicPattern {
  Uuid session;
  StreamType type = StreamType::kControl;
  std::optional<std::uint16_t> index;  // nullopt: every stream of the type
  bool matches(const Uuid& s, const Topic& t) const noexcept {
    return s == session && t.type == type && (!index || *index == t.index);
  }
};

std::string_view scheme_of(StreamType t) noexcept;  // "midi", "audio", ...
// "audio://<uuid>/2"; types with a single stream (midi, control, sync,
// discovery, heartbeat) omit the index when it is 0.
std::string topic_uri(const Uuid& session, const Topic& topic);
// Accepts "scheme://UUID", "scheme://UUID/N" and "scheme://UUID/*".
Result<TopicPattern> parse_topic_uri(std::string_view uri);

}  // namespace jamnet::protocol
