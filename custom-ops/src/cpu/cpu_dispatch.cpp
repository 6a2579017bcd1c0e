// Picks the widest copy of the CPU loops that this processor and its operating system run.
#include <cstdlib>
#include <cstring>

#include "cpu_features.h"
#include "cpu_kernels.h"

#if defined(FALCON_ONNX_CPU_X86_VARIANTS) && defined(_MSC_VER) && !defined(__clang__)
#include <immintrin.h>
#include <intrin.h>
#endif

namespace falcon_onnx::cpu {

#if defined(FALCON_ONNX_CPU_X86_VARIANTS)
#if defined(_MSC_VER) && !defined(__clang__)
// MSVC has no __builtin_cpu_supports: read CPUID and check with XGETBV that the OS saves the wide registers.
namespace {
bool cpuid_bit(int leaf, int register_index, int bit) {
  int regs[4];
  __cpuidex(regs, leaf, 0);
  return (regs[register_index] >> bit) & 1;
}
unsigned long long os_saved_state() { return cpuid_bit(1, 2, 27) ? _xgetbv(0) : 0; }  // OSXSAVE, then XCR0
}  // namespace
bool has_avx2_fma() {
  const bool ymm_saved = (os_saved_state() & 0x6) == 0x6;
  return ymm_saved && cpuid_bit(7, 1, 5) && cpuid_bit(1, 2, 12);
}
bool has_avx512() {
  const bool zmm_saved = (os_saved_state() & 0xe6) == 0xe6;
  return zmm_saved && has_avx2_fma() && cpuid_bit(7, 1, 16) && cpuid_bit(7, 1, 17) && cpuid_bit(7, 1, 30) &&
         cpuid_bit(7, 1, 31);  // F, DQ, BW, VL
}
bool has_avx512_vnni() { return has_avx512() && cpuid_bit(7, 2, 11); }
#else
// libgcc's CPU model reports a feature only when the OS also saves its registers (XGETBV).
bool has_avx2_fma() { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }
bool has_avx512() {
  return has_avx2_fma() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
}
bool has_avx512_vnni() { return has_avx512() && __builtin_cpu_supports("avx512vnni"); }
#endif
#else
bool has_avx2_fma() { return false; }
bool has_avx512() { return false; }
bool has_avx512_vnni() { return false; }
#endif

const char* requested_isa() { return std::getenv("FALCON_ONNX_CPU_ISA"); }

Isa usable_isa() {
  const char* asked = requested_isa();
  const bool generic = asked && std::strcmp(asked, "generic") == 0, avx2 = asked && std::strcmp(asked, "avx2") == 0;
  if (!generic && !avx2 && has_avx512()) return Isa::kAvx512;
  if (!generic && has_avx2_fma()) return Isa::kAvx2;
  return Isa::kGeneric;
}

int supported_kernels(const KernelTable** out, int capacity) {
  int count = 0;
  if (count < capacity) out[count++] = &generic_kernels();
#if defined(FALCON_ONNX_CPU_X86_VARIANTS)
  if (has_avx2_fma() && count < capacity) out[count++] = &avx2_kernels();
  if (has_avx512() && count < capacity) out[count++] = &avx512_kernels();
#endif
  return count;
}

const KernelTable& best_kernels() {
  static const KernelTable* const chosen = [] {
    const KernelTable* tables[3];
    const int count = supported_kernels(tables, 3);
    const char* wanted = requested_isa();
    if (wanted)
      for (int i = 0; i < count; ++i)
        if (std::strcmp(tables[i]->name, wanted) == 0) return tables[i];
    return tables[count - 1];
  }();
  return *chosen;
}

}  // namespace falcon_onnx::cpu
