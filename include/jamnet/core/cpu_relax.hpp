// A spin-wait hint for seqlock readers that found a write in progress.
#pragma once

namespace jamnet {

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

}  // namespace jamnet
