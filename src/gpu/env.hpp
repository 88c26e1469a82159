#pragma once

#include <cstdlib>
#include <string_view>

namespace jamnet::gpu {

// True when the environment variable `name` is exactly "1".
inline bool env_is_one(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && std::string_view(v) == "1";
}

}  // namespace jamnet::gpu
