// The CUDA Mamba2Mixer (mamba2_mixer_cuda.cu). Plain C++ declarations, no CUDA or ORT header, so that the
// ORT glue (register_ops.cpp), the harness and the ctypes test entry point all include it.
//
// Launch plan: prefill (T > 1) runs three kernels, decode (T = 1) two, all on the caller's stream, with no
// host synchronisation and no allocation (scratch comes from the caller's workspace), so the calls can be
// captured in a CUDA graph:
//   prefill: conv+SiLU+dt -> workspace | chunked scan (state in registers, a chunk of tokens in shared
//            memory) -> partial y in workspace | gate/norm -> y, and the new conv state
//   decode:  fused conv+dt+state step (each state element read and written once) -> partial y | gate/norm
// Past and present states may be the same buffers.
#pragma once

#include <cstddef>
#include <cstdint>

#include "falcon_onnx/mamba2_mixer.h"

namespace falcon_onnx {

// 16-bit storage types, layout-compatible with Ort::Float16_t / __half and Ort::BFloat16_t / __nv_bfloat16.
struct Float16Bits {
  uint16_t bits;
};
struct BFloat16Bits {
  uint16_t bits;
};

// Bytes of device scratch a call of this shape needs on the current device (the split of the work depends
// on its multiprocessor count).
std::size_t mamba2_cuda_workspace_bytes(const Mamba2Shape& shape);

// Enqueues the mixer on `stream` (a cudaStream_t; nullptr = the legacy default stream). Every tensor is a
// device pointer; `workspace` holds at least mamba2_cuda_workspace_bytes(shape) bytes, 256-byte aligned.
// Returns nullptr, or a description of the shape or launch error.
template <typename T>
const char* mamba2_mixer_cuda(const Mamba2Shape& shape, const Mamba2Tensors<T>& tensors, void* workspace,
                              std::size_t workspace_bytes, void* stream);

extern template const char* mamba2_mixer_cuda<float>(const Mamba2Shape&, const Mamba2Tensors<float>&, void*,
                                                     std::size_t, void*);
extern template const char* mamba2_mixer_cuda<Float16Bits>(const Mamba2Shape&, const Mamba2Tensors<Float16Bits>&,
                                                           void*, std::size_t, void*);
extern template const char* mamba2_mixer_cuda<BFloat16Bits>(const Mamba2Shape&,
                                                            const Mamba2Tensors<BFloat16Bits>&, void*,
                                                            std::size_t, void*);

}  // namespace falcon_onnx
