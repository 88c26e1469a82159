// simdjson reads up to SIMDJSON_PADDING bytes past the end of its input, which
// a caller's string_view does not promise. The JSON line parsers copy the line
// into one buffer per thread, reused and padded with zeros.
#pragma once

#include <simdjson.h>

#include <algorithm>
#include <cstring>
#include <string_view>
#include <vector>

namespace jamnet::protocol::detail {

struct PaddedLine {
  const char* data;
  std::size_t size;      // the line
  std::size_t capacity;  // the buffer, at least size + SIMDJSON_PADDING
};

// Valid until the next call on this thread.
inline PaddedLine padded_copy(std::string_view line) {
  thread_local std::vector<char> buf;
  const std::size_t need = line.size() + simdjson::SIMDJSON_PADDING;
  if (buf.size() < need) buf.resize(std::max<std::size_t>(need, 4096));
  if (!line.empty()) std::memcpy(buf.data(), line.data(), line.size());
  std::memset(buf.data() + line.size(), 0, simdjson::SIMDJSON_PADDING);
  return {buf.data(), line.size(), buf.size()};
}

}  // namespace jamnet::protocol::detail
