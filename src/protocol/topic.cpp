#include "jamnet/protocol/topic.hpp"

#include <array>
#include <charconv>
#include <utility>

namespace jamnet::protocol {

namespace {
constexpr std::array<std::pair<StreamType, std::string_view>, 7> kSchemes{{
    {StreamType::kMidi, "midi"},
    {StreamType::kAudio, "audio"},
    {StreamType::kVideo, "video"},
    {StreamType::kControl, "control"},
    {StreamType::kSync, "sync"},
    {StreamType::kDiscovery, "discovery"},
    {StreamType::kHeartbeat, "heartbeat"},
}};
}  // namespace

std::string_view scheme_of(StreamType t) noexcept {
  for (const auto& [type, name] : kSchemes) {
    if (type == t) return name;
  }
  return "unknown";
}

std::string topic_uri(const Uuid& session, const Topic& topic) {
  std::string uri(scheme_of(topic.type));
  uri += "://";
  uri += session.to_string();
  const bool multi = topic.type == StreamType::kAudio || topic.type == StreamType::kVideo;
  if (multi || topic.index != 0) uri += "/" + std::to_string(topic.index);
  return uri;
}

Result<TopicPattern> parse_topic_uri(std::string_view uri) {
  const auto sep = uri.find("://");
  if (sep == std::string_view::npos) {
    return make_error(Errc::kParse, "topic must look like scheme://SESSION[/STREAM], got '" +
                                        std::string(uri) + "'");
  }
  const std::string_view scheme = uri.substr(0, sep);
  TopicPattern p;
  bool known = false;
  for (const auto& [type, name] : kSchemes) {
    if (name == scheme) {
      p.type = type;
      known = true;
    }
  }
  if (!known) return make_error(Errc::kParse, "unknown topic scheme '" + std::string(scheme) + "'");
  std::string_view rest = uri.substr(sep + 3);
  const auto slash = rest.find('/');
  auto session = Uuid::parse(rest.substr(0, slash));
  if (!session) return make_error(Errc::kParse, "topic session: " + session.error().message);
  p.session = *session;
  if (slash == std::string_view::npos) {
    p.index = 0;
    if (p.type == StreamType::kAudio || p.type == StreamType::kVideo) p.index.reset();
    return p;
  }
  const std::string_view idx = rest.substr(slash + 1);
  if (idx == "*") return p;
  unsigned v = 0;
  const auto [end, ec] = std::from_chars(idx.data(), idx.data() + idx.size(), v);
  if (idx.empty() || ec != std::errc{} || end != idx.data() + idx.size() || v > 0xFFFF) {
    return make_error(Errc::kParse,
                      "topic stream index must be 0..65535 or '*', got '" + std::string(idx) + "'");
  }
  p.index = static_cast<std::uint16_t>(v);
  return p;
}

}  // namespace jamnet::protocol
