#include "jamnet/core/result.hpp"

namespace jamnet {

std::string_view to_string(Errc code) noexcept {
  switch (code) {
    case Errc::kInvalidArgument:
      return "invalid argument";
    case Errc::kParse:
      return "parse error";
    case Errc::kTooLarge:
      return "too large";
    case Errc::kIo:
      return "i/o error";
    case Errc::kTimeout:
      return "timeout";
    case Errc::kUnsupported:
      return "unsupported";
    case Errc::kNotFound:
      return "not found";
  }
  return "unknown error";
}

}  // namespace jamnet
