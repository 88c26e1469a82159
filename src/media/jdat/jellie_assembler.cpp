#include "jamnet/media/jdat/jellie_assembler.hpp"

#include <algorithm>

namespace jamnet::media::jdat {

namespace pj = protocol::jdat;

namespace {
int role_index(pj::StreamRole r) noexcept {
  return static_cast<int>(r) - static_cast<int>(pj::StreamRole::kJellieEven);
}
}  // namespace

JellieAssembler::JellieAssembler(pj::SampleFormat format, int frames)
    : frames_(frames), decoder_(format, frames), samples_(static_cast<std::size_t>(frames)) {
  for (auto& p : pending_)
    for (auto& w : p.words) w.resize(static_cast<std::size_t>(frames / 2));
}

void JellieAssembler::decode(PendingBlock& b) {
  std::array<std::span<const std::uint32_t>, 4> streams;
  int lost = 0;
  for (int i = 0; i < 4; ++i) {
    streams[static_cast<std::size_t>(i)] = b.words[static_cast<std::size_t>(i)];
    lost += b.present[static_cast<std::size_t>(i)] ? 0 : 1;
  }
  const auto outcome = decoder_.decode(streams, b.present, samples_);
  b.emitted = true;
  switch (outcome) {
    case JellieOutcome::kExact:
      ++stats_.exact;
      if (lost > 0) ++stats_.recovered;
      break;
    case JellieOutcome::kInterpolated:
      ++stats_.interpolated;
      break;
    case JellieOutcome::kLost:
      ++stats_.lost;
      return;  // the jitter buffer conceals the gap
  }
  emit_(ctx_, b.first_frame, b.arrival_ns, samples_);
}

// A block left behind with fewer than two streams: interpolate if a data
// stream is there, else count it lost.
void JellieAssembler::flush(PendingBlock& b) {
  if (b.used && !b.emitted) {
    if (b.present[0] || b.present[1]) {
      decode(b);
    } else {
      ++stats_.lost;
    }
  }
  b.used = false;
}

void JellieAssembler::push(const pj::JdatHeader& h, std::span<const std::uint32_t> words,
                           Nanos arrival_ns) {
  const auto frames = static_cast<std::uint64_t>(frames_);
  if (h.frames != frames_ || h.role == pj::StreamRole::kPlain || words.size() < frames / 2) return;
  const std::uint64_t block = h.first_frame / frames;
  if (!have_newest_ || block > newest_block_) {
    newest_block_ = block;
    have_newest_ = true;
    for (auto& b : pending_)
      if (b.used && b.first_frame / frames + kFlushAfterBlocks <= newest_block_) flush(b);
  }
  PendingBlock* slot = nullptr;
  for (auto& b : pending_)
    if (b.used && b.first_frame == h.first_frame) slot = &b;
  if (slot == nullptr) {
    // Blocks this far behind were rebuilt, interpolated or given up on
    // already: a straggler stream must not bring one back a second time.
    if (block + kFlushAfterBlocks <= newest_block_) return;
    for (auto& b : pending_)
      if (!b.used) slot = &b;
    if (slot == nullptr) {
      slot = &*std::min_element(pending_.begin(), pending_.end(), [](auto& a, auto& b) {
        return a.first_frame < b.first_frame;
      });
      flush(*slot);
    }
    slot->used = true;
    slot->emitted = false;
    slot->first_frame = h.first_frame;
    slot->arrival_ns = arrival_ns;
    slot->present = {};
  }
  if (slot->emitted) return;  // already rebuilt from two other streams
  const auto r = static_cast<std::size_t>(role_index(h.role));
  std::copy_n(words.begin(), frames / 2, slot->words[r].begin());
  slot->present[r] = true;
  slot->arrival_ns = std::max(slot->arrival_ns, arrival_ns);
  if (std::count(slot->present.begin(), slot->present.end(), true) >= 2) decode(*slot);
}

}  // namespace jamnet::media::jdat
