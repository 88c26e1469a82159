// "what: <strerror(errno)>", for socket and system call errors.
#pragma once

#include <cerrno>
#include <cstring>
#include <string>

namespace jamnet::net {

inline std::string errno_text(const char* what) {
  return std::string(what) + ": " + std::strerror(errno);
}

}  // namespace jamnet::net
