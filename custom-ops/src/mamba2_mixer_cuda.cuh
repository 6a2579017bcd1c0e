// The CUDA Mamba2Mixer (mamba2_mixer_cuda.cu). Plain C++ declarations, no CUDA or ORT header, so that the
// ORT glue (register_ops.cpp), the harness and the ctypes test entry point all include it.
//
// Launch plan: prefill (T > 1) runs three kernels (five when cut into segments), decode (T = 1) two, all on
// the caller's stream, with no host synchronisation and no allocation (scratch comes from the caller's
// workspace), so the calls can be captured in a CUDA graph:
//   prefill: conv+SiLU+dt -> workspace | [segments' end states from zero | carry of the states across
//            segments] | chunked scan of every segment (state in registers, a chunk of tokens in shared
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

// Knobs of the launch plan, for the harness's tuning sweep (mamba2_harness --cuda-tune); the defaults are
// what ships. Set them only while no call is in flight: they change the workspace size.
struct Mamba2CudaTuning {
  // Prefill: a scan grid with fewer warps per multiprocessor than prefill_segment_below_warps is cut into
  // segments until it has prefill_warps_per_multiprocessor (0 = never cut).
  int prefill_warps_per_multiprocessor = 16;
  int prefill_segment_below_warps = 4;
  // Prefill: the state rows are split over more blocks until the grid has this many per multiprocessor.
  float prefill_blocks_per_multiprocessor = 0.5f;
  // Prefill: bytes of shared memory a scan block may use (0 = shared out among the blocks meant to be resident).
  std::size_t prefill_shared_budget = 0;
  // Prefill: the scan keeps S / D in registers (D the running product of the decays), one FMA per state element
  // and token instead of a multiply and an FMA. Off until a GPU run of gpu-check.sh shows it correct and faster.
  bool prefill_rescaled_state = false;
};
void mamba2_cuda_set_tuning(const Mamba2CudaTuning& knobs);

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
