#include "jamnet/sync/election.hpp"

#include <tuple>

namespace jamnet::sync {

std::optional<Uuid> elect_master(std::span<const MasterCandidate> candidates) {
  const MasterCandidate* best = nullptr;
  // Smaller key wins: forced, then claiming, then higher priority, then lower id.
  auto key = [](const MasterCandidate& c) {
    return std::make_tuple(!c.forced, !c.claims_master, -static_cast<long long>(c.priority), c.id);
  };
  for (const auto& c : candidates) {
    if (best == nullptr || key(c) < key(*best)) best = &c;
  }
  if (best == nullptr) return std::nullopt;
  return best->id;
}

}  // namespace jamnet::sync
