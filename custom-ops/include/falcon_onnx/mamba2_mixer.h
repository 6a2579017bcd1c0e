// The Mamba2Mixer operator (domain "falcon_onnx", version 1): everything of a Falcon-H1 Mamba-2 mixer
// between in_proj and out_proj in one kernel.
//
// Inputs (ONNX order)                                   shape                        type
//   0 projected        in_proj output z | x | B | C | dt  [batch, T, 2*Ds + 2*G*N + H]  float (CPU); float/fp16/bf16 (CUDA)
//   1 conv_weight      depthwise conv                     [conv_dim, 1, K]              float
//   2 conv_bias        (optional, "" = none)              [conv_dim]                    float
//   3 dt_bias                                             [H]                           float
//   4 A_log            A = -exp(A_log)                    [H]                           float
//   5 D                skip                               [H]                           float
//   6 norm_weight      (optional, "" = no gated norm)     [Ds]                          float
//   7 attention_mask   1 = token, 0 = left padding        [batch, total]                int64 (last T columns are this call's)
//   8 past_conv_state  last K-1 raw x|B|C inputs          [batch, conv_dim, K-1]        float
//   9 past_recurrent_state  SSM state, (N, P) per head    [batch, H, N, P]              float
// Outputs
//   0 y                 gated (and normed) SSM output     [batch, T, Ds]                same as projected
//   1 present_conv_state                                  [batch, conv_dim, K-1]        float
//   2 present_recurrent_state                             [batch, H, N, P]              float
// Attributes: n_heads (H), head_dim (P), n_groups (G), d_state (N), d_conv (K), chunk_size,
//   norm_before_gate (int, used when norm_weight is given), epsilon, dt_min, dt_max (clamp of dt; 0 and
//   +inf mean none).
// with Ds = H*P, conv_dim = Ds + 2*G*N, head h using group h / (H/G).
//
// Semantics (falcon-h1.md §2.5, model-abi.md), per row b and new token t, m = mask of the token:
//   xBC_raw = projected[Ds : Ds+conv_dim]       (already zero at pads: the graph zeroes in_proj's input
//                                                and, with an in_proj bias, its output)
//   xBC     = m * SiLU(conv_bias + sum_k conv_weight[:, k] * window[:, t+k])   window = [past_conv | xBC_raw^T]
//   dt      = m * clamp(softplus(dt_raw + dt_bias), dt_min, dt_max)          (softplus linear above 20)
//   S_h     = exp(dt_h * A_h) * S_h + B_g(h) (outer) (dt_h * x_h)              S_h is [N, P]
//   y_h     = C_g(h) . S_h + D_h * x_h
//   gate    = y * SiLU(z)                         no norm
//           = rmsnorm_groups(y * SiLU(z)) * w     norm_before_gate = 0 (released checkpoints)
//           = rmsnorm_groups(y) * w * SiLU(z)     norm_before_gate = 1
//   (rmsnorm over G contiguous groups of Ds/G channels, eps = epsilon)
//   present_conv = last K-1 columns of window; present_recurrent = S after the last token.
// Past and present states may be the same buffer (in-place update).
#pragma once

#include <cstddef>
#include <cstdint>

namespace falcon_onnx {

struct Mamba2Shape {
  int64_t batch = 0;
  int64_t tokens = 0;       // T, new tokens in this call
  int64_t total = 0;        // columns of attention_mask (past + T)
  int64_t heads = 0;        // H
  int64_t head_dim = 0;     // P
  int64_t groups = 0;       // G
  int64_t state_size = 0;   // N
  int64_t conv_kernel = 0;  // K
  int64_t chunk_size = 0;
  bool norm_before_gate = false;
  float epsilon = 1e-5f;
  float dt_min = 0.0f;
  float dt_max = 0.0f;      // <= 0 or +inf: no upper clamp

  int64_t inner() const { return heads * head_dim; }
  int64_t conv_dim() const { return inner() + 2 * groups * state_size; }
  int64_t projected_width() const { return 2 * inner() + 2 * groups * state_size + heads; }
};

// d_conv above this is refused: the CUDA kernels keep a token's conv window in registers.
constexpr int64_t kMaxConvKernel = 8;

// Pointers of one call; optional inputs are nullptr when absent.
template <typename T>
struct Mamba2Tensors {
  const T* projected = nullptr;
  const float* conv_weight = nullptr;
  const float* conv_bias = nullptr;
  const float* dt_bias = nullptr;
  const float* a_log = nullptr;
  const float* d = nullptr;
  const float* norm_weight = nullptr;
  const int64_t* attention_mask = nullptr;
  const float* past_conv = nullptr;
  const float* past_recurrent = nullptr;
  T* y = nullptr;
  float* present_conv = nullptr;
  float* present_recurrent = nullptr;
};

// Runs task(context, i) for every i in [0, count), possibly on several threads at once, and returns when
// every call has returned. ORT's intra-op thread pool (KernelContext::ParallelFor) and the library's own
// pool both fit behind it, so the kernel never starts threads of its own inside an ORT session.
class ParallelRunner {
 public:
  virtual ~ParallelRunner() = default;
  virtual void run(std::size_t count, void (*task)(void* context, std::size_t index), void* context) const = 0;
};

// The CPU kernel (float). Threads: the caller's thread pool size hint; 0 = hardware concurrency.
// Throws std::invalid_argument when the shape is inconsistent.
void mamba2_mixer_cpu(const Mamba2Shape& shape, const Mamba2Tensors<float>& t, int threads);

// The same kernel on the caller's threads.
void mamba2_mixer_cpu(const Mamba2Shape& shape, const Mamba2Tensors<float>& t, const ParallelRunner& runner);

// nullptr when the shape is usable, else a sentence saying what is wrong (shared by every entry point).
const char* mamba2_shape_error(const Mamba2Shape& shape);

// The same pointers with the activation buffers (projected, y) read as another element type, e.g. ORT's
// Float16_t as the kernels' 16-bit storage type; the caller guarantees the buffers hold values of that type.
// Parameters and states are float32 whatever the activations.
template <typename To, typename From>
Mamba2Tensors<To> with_activation_type(const Mamba2Tensors<From>& t) {
  Mamba2Tensors<To> r;
  r.projected = reinterpret_cast<const To*>(t.projected);
  r.conv_weight = t.conv_weight;
  r.conv_bias = t.conv_bias;
  r.dt_bias = t.dt_bias;
  r.a_log = t.a_log;
  r.d = t.d;
  r.norm_weight = t.norm_weight;
  r.attention_mask = t.attention_mask;
  r.past_conv = t.past_conv;
  r.past_recurrent = t.past_recurrent;
  r.y = reinterpret_cast<To*>(t.y);
  r.present_conv = t.present_conv;
  r.present_recurrent = t.present_recurrent;
  return r;
}

}  // namespace falcon_onnx
