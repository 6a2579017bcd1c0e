// The CPU mixer's inner loops, written as plain loops that GCC, Clang and MSVC vectorise. Included once per
// instruction set by cpu_kernels_<isa>.cpp, each compiled with its own flags, after defining:
//   FALCON_ONNX_ISA          the namespace of this copy (generic, avx2, avx512)
//   FALCON_ONNX_SCAN_BLOCK   state columns a scan step keeps in registers (4 vector registers' worth)
//   FALCON_ONNX_TABLE        the name of the function returning this copy's KernelTable
// Everything lives in an anonymous namespace and no std:: template is called: a template instantiated here
// with AVX-512 flags could otherwise be merged by the linker into the generic copy and fault on older CPUs.
#include <cmath>
#include <cstdint>
#include <cstring>

#include "cpu_kernels.h"

namespace falcon_onnx::cpu::FALCON_ONNX_ISA {
namespace {

constexpr int kScanBlock = FALCON_ONNX_SCAN_BLOCK;

inline float min_f(float a, float b) { return b < a ? b : a; }
inline float max_f(float a, float b) { return a < b ? b : a; }

// exp(x) to about 2 ulp, branch-free so that loops calling it vectorise (libm's expf does not, and SiLU
// needs 7 million of them for a 2048-token prefill of the 0.5B mixer). x = n*ln2 + r with |r| <= ln2/2,
// exp(r) by its Taylor series to r^7 (truncation error 0.35^8/8! = 6e-9), 2^n built in the exponent bits.
inline float exp_approx(float x) {
  x = min_f(max_f(x, -87.0f), 88.0f);  // keeps 2^n a normal float
  const float round_shift = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const float n = (x * 1.44269504088896341f + round_shift) - round_shift;
  float r = x - n * 0.693145751953125f;  // ln2 split in two so that n*ln2_hi is exact
  r = r - n * 1.42860682030941723212e-6f;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

inline float silu(float x) { return x / (1.0f + exp_approx(-x)); }

// log(1 + u) for u in [0, 1] as 2*atanh(s), s = u / (2 + u) <= 1/3; the odd series to s^15 leaves 4e-9.
inline float log1p_unit(float u) {
  const float s = u / (2.0f + u);
  const float s2 = s * s;
  float p = 1.0f / 15.0f;
  p = p * s2 + 1.0f / 13.0f;
  p = p * s2 + 1.0f / 11.0f;
  p = p * s2 + 1.0f / 9.0f;
  p = p * s2 + 1.0f / 7.0f;
  p = p * s2 + 1.0f / 5.0f;
  p = p * s2 + 1.0f / 3.0f;
  p = p * s2 + 1.0f;
  return 2.0f * s * p;
}

// torch's softplus (beta 1, linear above 20): log(1 + e^x) = max(x, 0) + log(1 + e^-|x|).
inline float softplus(float x) {
  const float smooth = max_f(x, 0.0f) + log1p_unit(exp_approx(-std::fabs(x)));
  return x > 20.0f ? x : smooth;
}

void conv_silu(const ConvArgs& a, int64_t first, int64_t end) {
  const int64_t channels = a.channels, kernel = a.kernel;
  for (int64_t t = first; t < end; ++t) {
    float* __restrict out = a.out + (t - first) * channels;
    for (int64_t c = 0; c < channels; ++c) out[c] = a.bias[c];
    for (int64_t k = 0; k < kernel; ++k) {
      const int64_t source = t - (kernel - 1) + k;  // the token this tap reads; negative = conv state
      const float* __restrict in = source < 0 ? a.history_t + (kernel - 1 + source) * channels
                                              : a.projected + source * a.projected_width + a.input_offset;
      const float* __restrict w = a.weights_t + k * channels;
      for (int64_t c = 0; c < channels; ++c) out[c] += w[c] * in[c];
    }
    const float mask = a.token_mask[t];
    for (int64_t c = 0; c < channels; ++c) out[c] = mask * silu(out[c]);
  }
}

void time_steps(const TimeStepArgs& a, int64_t first, int64_t end) {
  for (int64_t t = first; t < end; ++t) {
    const float* __restrict raw = a.projected + t * a.projected_width + a.dt_offset;
    float* __restrict dt = a.dt + (t - first) * a.heads;
    float* __restrict decay = a.decay + (t - first) * a.heads;
    const float mask = a.token_mask[t];
    for (int64_t h = 0; h < a.heads; ++h) {
      const float clamped = min_f(max_f(softplus(raw[h] + a.dt_bias[h]), a.dt_min), a.dt_max);
      dt[h] = mask * clamped;
      decay[h] = exp_approx(dt[h] * a.a[h]);
    }
  }
}

// One token for kScanBlock state columns: S = decay*S + B (outer) dt*x, y = C.S + D*x. The loop over j
// has a constant trip count, so acc and dtx live in vector registers across the whole loop over n and each
// state element costs one load, one store, a multiply and two fused multiply-adds.
void scan_columns_fixed(const ScanArgs& a, int64_t p0) {
  const int64_t state_size = a.state_size, head_dim = a.head_dim;
  for (int64_t t = 0; t < a.tokens; ++t) {
    float* __restrict y = a.y + t * a.y_stride + p0;
    if (a.token_mask[t] == 0.0f) {  // a pad: the state stays, the output is 0 (x and C are 0 there)
      for (int j = 0; j < kScanBlock; ++j) y[j] = 0.0f;
      continue;
    }
    const float* __restrict x = a.x + t * a.xbc_stride + p0;
    const float* __restrict b = a.b + t * a.xbc_stride;
    const float* __restrict c = a.c + t * a.xbc_stride;
    const float dt = a.dt[t * a.dt_stride], decay = a.decay[t * a.dt_stride];
    float dtx[kScanBlock], acc[kScanBlock];
    for (int j = 0; j < kScanBlock; ++j) {
      dtx[j] = dt * x[j];
      acc[j] = 0.0f;
    }
    float* __restrict s = a.state + p0;
    for (int64_t n = 0; n < state_size; ++n, s += head_dim) {
      const float bn = b[n], cn = c[n];
      for (int j = 0; j < kScanBlock; ++j) {
        const float v = decay * s[j] + bn * dtx[j];
        s[j] = v;
        acc[j] += cn * v;
      }
    }
    for (int j = 0; j < kScanBlock; ++j) y[j] = acc[j] + a.d * x[j];
  }
}

// The same for a last block narrower than kScanBlock (head dims that are not a multiple of it).
void scan_columns_tail(const ScanArgs& a, int64_t p0, int64_t width) {
  for (int64_t t = 0; t < a.tokens; ++t) {
    float* __restrict y = a.y + t * a.y_stride + p0;
    if (a.token_mask[t] == 0.0f) {
      for (int64_t j = 0; j < width; ++j) y[j] = 0.0f;
      continue;
    }
    const float* __restrict x = a.x + t * a.xbc_stride + p0;
    const float* __restrict b = a.b + t * a.xbc_stride;
    const float* __restrict c = a.c + t * a.xbc_stride;
    const float dt = a.dt[t * a.dt_stride], decay = a.decay[t * a.dt_stride];
    float dtx[kScanBlock], acc[kScanBlock];
    for (int64_t j = 0; j < width; ++j) {
      dtx[j] = dt * x[j];
      acc[j] = 0.0f;
    }
    float* __restrict s = a.state + p0;
    for (int64_t n = 0; n < a.state_size; ++n, s += a.head_dim) {
      for (int64_t j = 0; j < width; ++j) {
        const float v = decay * s[j] + b[n] * dtx[j];
        s[j] = v;
        acc[j] += c[n] * v;
      }
    }
    for (int64_t j = 0; j < width; ++j) y[j] = acc[j] + a.d * x[j];
  }
}

void scan(const ScanArgs& a, int64_t p_begin, int64_t p_count) {
  int64_t p = p_begin;
  for (; p + kScanBlock <= p_begin + p_count; p += kScanBlock) scan_columns_fixed(a, p);
  if (p < p_begin + p_count) scan_columns_tail(a, p, p_begin + p_count - p);
}

// Sixteen partial sums keep the reduction vectorised without asking the compiler to reassociate.
float sum_of_squares(const float* __restrict v, int64_t count) {
  float partial[16] = {};
  int64_t i = 0;
  for (; i + 16 <= count; i += 16)
    for (int j = 0; j < 16; ++j) partial[j] += v[i + j] * v[i + j];
  float total = 0.0f;
  for (; i < count; ++i) total += v[i] * v[i];
  for (int j = 0; j < 16; ++j) total += partial[j];
  return total;
}

void gate_norm(const GateArgs& a) {
  float* __restrict y = a.y;
  const float* __restrict z = a.z;
  if (a.mode != NormMode::NormThenGate)
    for (int64_t i = 0; i < a.width; ++i) y[i] *= silu(z[i]);
  if (a.mode == NormMode::None) return;
  const int64_t group_width = a.width / a.groups;
  for (int64_t g = 0; g < a.groups; ++g) {
    float* __restrict v = y + g * group_width;
    const float* __restrict w = a.norm_weight + g * group_width;
    const float scale = 1.0f / std::sqrt(sum_of_squares(v, group_width) / static_cast<float>(group_width) + a.epsilon);
    if (a.mode == NormMode::GateThenNorm) {
      for (int64_t i = 0; i < group_width; ++i) v[i] = v[i] * scale * w[i];
    } else {
      const float* __restrict zg = z + g * group_width;
      for (int64_t i = 0; i < group_width; ++i) v[i] = v[i] * scale * w[i] * silu(zg[i]);
    }
  }
}

}  // namespace

}  // namespace falcon_onnx::cpu::FALCON_ONNX_ISA

namespace falcon_onnx::cpu {

const KernelTable& FALCON_ONNX_TABLE() {
#define FALCON_ONNX_STRINGIFY2(x) #x
#define FALCON_ONNX_STRINGIFY(x) FALCON_ONNX_STRINGIFY2(x)
  static const KernelTable table{FALCON_ONNX_STRINGIFY(FALCON_ONNX_ISA), FALCON_ONNX_ISA::conv_silu, FALCON_ONNX_ISA::time_steps,
                                 FALCON_ONNX_ISA::scan, FALCON_ONNX_ISA::gate_norm};
  return table;
#undef FALCON_ONNX_STRINGIFY
#undef FALCON_ONNX_STRINGIFY2
}

}  // namespace falcon_onnx::cpu
