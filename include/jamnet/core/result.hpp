// Result<T>: the return type of everything that can fail on input from outside.
#pragma once

#include <cstdint>
#include <expected>
#include <string>
#include <string_view>

namespace jamnet {

enum class Errc : std::uint8_t {
  kInvalidArgument,
  kParse,
  kTooLarge,
  kIo,
  kTimeout,
  kUnsupported,
  kNotFound,
};

std::string_view to_string(Errc code) noexcept;

// A code for programs and a message for people. Allocates, so it stays off the
// audio thread; hot paths use their own small enum errors (see FrameError).
struct Error {
  Errc code = Errc::kInvalidArgument;
  std::string message;
};

template <class T>
using Result = std::expected<T, Error>;

inline std::unexpected<Error> make_error(Errc code, std::string message) {
  return std::unexpected<Error>(Error{code, std::move(message)});
}

}  // namespace jamnet
