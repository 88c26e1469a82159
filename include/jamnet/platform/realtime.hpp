// Real-time scheduling for the calling thread.
#pragma once

namespace jamnet::platform {

// Moves the calling thread to SCHED_FIFO at `priority` (1 = the lowest
// real-time level: above every normal thread, below JACK's audio threads,
// which run at 10 and up). Returns false, changing nothing, when the system
// does not allow it (not root, no CAP_SYS_NICE, no rtprio limit).
bool make_current_thread_realtime(int priority = 1) noexcept;

}  // namespace jamnet::platform
