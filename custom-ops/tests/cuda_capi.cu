// A C entry point over the CUDA kernels for tests/torch_reference.py (ctypes): torch allocates the tensors,
// this runs the mixer on torch's current stream. Test-only; the ORT library does not contain it.
#include <cstddef>
#include <cstdint>

#include "../src/mamba2_mixer_cuda.cuh"

#define FALCON_ONNX_TEST_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

// dims: batch, tokens, total, heads, head_dim, groups, state_size, conv_kernel, norm_before_gate
// scalars: epsilon, dt_min, dt_max (<= 0: none)
falcon_onnx::Mamba2Shape shape_of(const int64_t* dims, const float* scalars) {
  falcon_onnx::Mamba2Shape s;
  s.batch = dims[0];
  s.tokens = dims[1];
  s.total = dims[2];
  s.heads = dims[3];
  s.head_dim = dims[4];
  s.groups = dims[5];
  s.state_size = dims[6];
  s.conv_kernel = dims[7];
  s.norm_before_gate = dims[8] != 0;
  s.chunk_size = 256;
  s.epsilon = scalars[0];
  s.dt_min = scalars[1];
  s.dt_max = scalars[2];
  return s;
}

// pointers, in the contract's order: projected, conv_weight, conv_bias (or null), dt_bias, A_log, D,
// norm_weight (or null), attention_mask, past_conv, past_recurrent, y, present_conv, present_recurrent
template <typename T>
falcon_onnx::Mamba2Tensors<T> tensors_of(void* const* p) {
  falcon_onnx::Mamba2Tensors<T> t;
  t.projected = static_cast<const T*>(p[0]);
  t.conv_weight = static_cast<const float*>(p[1]);
  t.conv_bias = static_cast<const float*>(p[2]);
  t.dt_bias = static_cast<const float*>(p[3]);
  t.a_log = static_cast<const float*>(p[4]);
  t.d = static_cast<const float*>(p[5]);
  t.norm_weight = static_cast<const float*>(p[6]);
  t.attention_mask = static_cast<const int64_t*>(p[7]);
  t.past_conv = static_cast<const float*>(p[8]);
  t.past_recurrent = static_cast<const float*>(p[9]);
  t.y = static_cast<T*>(p[10]);
  t.present_conv = static_cast<float*>(p[11]);
  t.present_recurrent = static_cast<float*>(p[12]);
  return t;
}

}  // namespace

FALCON_ONNX_TEST_EXPORT std::size_t falcon_mamba2_workspace_bytes(const int64_t* dims, const float* scalars) {
  return falcon_onnx::mamba2_cuda_workspace_bytes(shape_of(dims, scalars));
}

// dtype: 0 float32, 1 float16, 2 bfloat16. Returns null or the error text.
FALCON_ONNX_TEST_EXPORT const char* falcon_mamba2_run(int dtype, const int64_t* dims, const float* scalars,
                                                      void* const* pointers, void* workspace, std::size_t bytes,
                                                      void* stream) {
  const falcon_onnx::Mamba2Shape s = shape_of(dims, scalars);
  switch (dtype) {
    case 0: return falcon_onnx::mamba2_mixer_cuda(s, tensors_of<float>(pointers), workspace, bytes, stream);
    case 1:
      return falcon_onnx::mamba2_mixer_cuda(s, tensors_of<falcon_onnx::Float16Bits>(pointers), workspace, bytes, stream);
    case 2:
      return falcon_onnx::mamba2_mixer_cuda(s, tensors_of<falcon_onnx::BFloat16Bits>(pointers), workspace, bytes,
                                            stream);
    default: return "dtype must be 0 (float32), 1 (float16) or 2 (bfloat16)";
  }
}
