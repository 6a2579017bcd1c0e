// The CPU kernel with an explicit copy of the loops, so that the tests can run every instruction set the
// processor has (the public entry points always take the widest).
#pragma once

#include "cpu/cpu_kernels.h"
#include "falcon_onnx/mamba2_mixer.h"

namespace falcon_onnx {

void mamba2_mixer_cpu_with(const Mamba2Shape& shape, const Mamba2Tensors<float>& io, const ParallelRunner& runner,
                           const cpu::KernelTable& kernels);

}  // namespace falcon_onnx
