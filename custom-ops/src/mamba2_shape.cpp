#include "falcon_onnx/mamba2_mixer.h"

namespace falcon_onnx {

const char* mamba2_shape_error(const Mamba2Shape& s) {
  if (s.batch < 0 || s.tokens < 0) return "batch and token counts must not be negative";
  if (s.total < s.tokens) return "attention_mask must have at least as many columns as there are new tokens";
  if (s.heads < 1 || s.head_dim < 1 || s.groups < 1 || s.state_size < 1)
    return "n_heads, head_dim, n_groups and d_state must be positive";
  if (s.heads % s.groups != 0) return "n_heads must be a multiple of n_groups";
  if (s.conv_kernel < 1 || s.conv_kernel > kMaxConvKernel) return "d_conv must be between 1 and 8";
  if (!(s.epsilon >= 0.0f)) return "epsilon must not be negative";
  return nullptr;
}

}  // namespace falcon_onnx
