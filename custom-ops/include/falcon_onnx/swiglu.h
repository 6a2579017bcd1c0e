// falcon_onnx::swiglu_cpu: y = up * SiLU(gate) for each token's gate_up = [gate | up], SwiGLU's activation between
// its fused gate/up projection and its down projection. One kernel where ONNX Runtime runs a Split, a QuickGelu and
// a Mul, with the Mamba-2 mixer's vectorised SiLU (cpu_kernels_impl.h) for this processor's instruction set.
#pragma once

#include <cstdint>

#include "falcon_onnx/mamba2_mixer.h"

namespace falcon_onnx {

struct SwiGluShape {
  int64_t tokens = 0;  // rows of gate_up and y
  int64_t width = 0;   // I: columns of y; gate_up has 2 * I
};

// Throws std::invalid_argument when the shape cannot be run.
void swiglu_cpu(const SwiGluShape& shape, const float* gate_up, float* y, const ParallelRunner& runner);

}  // namespace falcon_onnx
