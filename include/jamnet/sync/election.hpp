// Deterministic clock-master election: every peer that sees the same set of
// candidates picks the same master.
//
// Rank (best first): forced (configured master) before not; then a candidate
// that claims to be master now (incumbency: a newcomer never unseats a running
// master, so the timeline stays put); then higher priority; then the lower
// UUID (bytewise). When the master leaves, the next by this rank takes over;
// it was following the old master, so its session clock continues (see
// SessionClock::hold) and there is no jump.
#pragma once

#include <optional>
#include <span>

#include "jamnet/core/uuid.hpp"

namespace jamnet::sync {

struct MasterCandidate {
  Uuid id;
  int priority = 0;
  bool forced = false;
  bool claims_master = false;
};

std::optional<Uuid> elect_master(std::span<const MasterCandidate> candidates);

}  // namespace jamnet::sync
