// GPU JSONL extraction (the CPU reference of the kernel every backend runs):
// arbitrary bytes as one line and as a newline-separated batch.
//   - never crashes, whatever the bytes;
//   - a line it extracts (kJsonlOk) is one jmid::parse_line accepts, with the
//     same fields: the kernel may only ever hand work back, never disagree;
//   - the batch entry point agrees with the single-line one on every line.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <vector>

#include "jamnet/gpu/kernels.hpp"
#include "jamnet/protocol/jmid.hpp"

using namespace jamnet;

namespace {

void check_line(std::string_view line, const gpu::JsonlFields& f) {
  if (f.status != gpu::kJsonlOk) {
    if (f.status != gpu::kJsonlFallback) std::abort();
    return;
  }
  auto e = protocol::jmid::parse_line(line);
  if (!e) std::abort();
  if (f.kind != std::uint32_t(e->kind) || f.channel != e->channel || f.data1 != e->data1 ||
      f.data2 != e->data2 || f.value14 != e->value14 || f.ts_ns() != e->ts_ns || f.seq() != e->seq)
    std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  check_line(text, gpu::jsonl_extract_line(text));

  auto offsets = gpu::split_lines(text);
  if (!offsets) std::abort();
  const std::size_t lines = offsets->size() - 1;
  std::vector<gpu::JsonlFields> out(lines);
  gpu::jsonl_reference(text, *offsets, out);
  for (std::size_t i = 0; i < lines; ++i) {
    std::size_t a = (*offsets)[i], e = (*offsets)[i + 1];
    if (e > a && text[e - 1] == '\n') --e;
    const std::string_view line = text.substr(a, e - a);
    const gpu::JsonlFields one = gpu::jsonl_extract_line(line);
    if (std::memcmp(&one, &out[i], sizeof one) != 0) std::abort();
    check_line(line, out[i]);
  }
  return 0;
}
