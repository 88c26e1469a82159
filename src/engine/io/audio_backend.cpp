#include "jamnet/engine/io/audio_backend.hpp"

#include <algorithm>

namespace jamnet::engine::io {

Result<void> check_port_names(const BackendConfig& config) {
  std::vector<std::string> seen;
  if (config.midi) seen = {"midi_in", "midi_out"};
  for (const auto* names : {&config.inputs, &config.outputs}) {
    for (const auto& n : *names) {
      if (n.empty()) return make_error(Errc::kInvalidArgument, "a port name is empty");
      if (n.find(':') != std::string::npos)
        return make_error(Errc::kInvalidArgument, "port name '" + n + "' contains ':'");
      if (std::find(seen.begin(), seen.end(), n) != seen.end())
        return make_error(Errc::kInvalidArgument, "port name '" + n + "' is used twice");
      seen.push_back(n);
    }
  }
  return {};
}

}  // namespace jamnet::engine::io
