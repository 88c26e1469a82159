#include "jamnet/platform/realtime.hpp"

#include <pthread.h>
#include <sched.h>

#include <cstdlib>

namespace jamnet::platform {

bool make_current_thread_realtime(int priority) noexcept {
  // An escape hatch for machines where real-time threads misbehave.
  if (const char* off = std::getenv("JAMNET_NO_REALTIME");
      off != nullptr && *off != '\0' && *off != '0')
    return false;
  sched_param param{};
  param.sched_priority = priority;
  return ::pthread_setschedparam(::pthread_self(), SCHED_FIFO, &param) == 0;
}

}  // namespace jamnet::platform
