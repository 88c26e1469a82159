// Fuzzes the JSON control protocol parser (docs/control.md): any input must be
// either rejected with a reason or accepted; whatever is accepted must
// serialize to text that parses back to the same message, and that text is
// canonical (serializing the re-parsed message gives the same bytes).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "jamnet/protocol/control.hpp"

using namespace jamnet::protocol::control;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto m = parse(text);
  if (!m) {
    // A reason from the list, never the sentinel.
    if (static_cast<std::size_t>(m.error().reason) >= kRejectKinds) std::abort();
    return 0;
  }
  const std::string out = serialize(*m);
  // Serializing fills in omitted fields and writes numbers canonically, so a
  // message accepted near the size limit can come back a few bytes over it;
  // everything that fits must round-trip.
  if (out.size() > kMaxControlMessageBytes) {
    if (parse(out).has_value()) std::abort();
    return 0;
  }
  auto again = parse(out);
  if (!again) std::abort();
  if (again->index() != m->index()) std::abort();
  if (type_name(*again) != type_name(*m)) std::abort();
  if (serialize(*again) != out) std::abort();
  return 0;
}
