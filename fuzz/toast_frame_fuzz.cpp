// Feeds arbitrary bytes to the TOAST decoder. Whatever decodes must re-encode to
// the identical bytes (the codec is a bijection on valid frames).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "jamnet/protocol/toast_frame.hpp"

using namespace jamnet::protocol;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> in(data, size);
  FrameErrorCounts counts;
  auto frame = decode_frame(in);
  if (!frame) {
    counts.add(frame.error());
    return 0;
  }
  std::vector<std::uint8_t> out(size);
  auto n = encode_frame(frame->header, frame->payload, out);
  if (!n || *n != size || std::memcmp(out.data(), data, size) != 0) std::abort();
  return 0;
}
