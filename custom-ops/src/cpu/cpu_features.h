// What this processor and its operating system run, for every kernel that picks its own loops; answered by
// cpu_dispatch.cpp. All false outside x86-64 builds.
#pragma once

namespace falcon_onnx::cpu {

bool has_avx2_fma();     // AVX2 and FMA (every such processor also has F16C, which the AVX2 loops use)
bool has_avx512();       // and AVX-512 F, DQ, BW, VL
bool has_avx512_vnni();  // and AVX-512 VNNI

// FALCON_ONNX_CPU_ISA when set ("generic", "avx2", ...): a narrower kernel than the processor runs, for tests and
// comparisons. nullptr when unset.
const char* requested_isa();

enum class Isa { kGeneric, kAvx2, kAvx512 };

// The widest of these that the processor runs and FALCON_ONNX_CPU_ISA allows ("generic" or "avx2" ask for less),
// for the kernels that have one loop per instruction set.
Isa usable_isa();

}  // namespace falcon_onnx::cpu
