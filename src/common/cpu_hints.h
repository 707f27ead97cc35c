// Hints to the CPU for code that polls or hands cache lines between cores.
#pragma once

namespace chorus {

// In a spin loop: lets a sibling hyperthread run and saves power.
inline void cpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Asks for the cache line at `address` in a state that allows writing, so
// that its transfer from a core that read it overlaps with other work. Only
// a hint: it changes no data. (GCC's __builtin_prefetch(p, 1) emits a plain
// read prefetch on x86-64 unless built for a newer CPU; PREFETCHW is a NOP
// on the few x86-64 CPUs without it.)
inline void prefetchForWrite(const void* address) {
#if defined(__x86_64__)
  asm volatile("prefetchw %0" : : "m"(*static_cast<const char*>(address)));
#else
  __builtin_prefetch(address, 1);
#endif
}

}  // namespace chorus
