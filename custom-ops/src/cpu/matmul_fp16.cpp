// The float16-weight matrix product of matmul_fp16.h. Each task takes a block of activation rows and a run of
// weight rows; inside it, tiles of 4 weight rows by up to 4 activation rows (8 by 1 for a single activation row)
// accumulate 16 (AVX-512) or 8 (AVX2) lanes of each dot product and add the lanes up once at the end. A tile's
// weight rows stay in L1 while the block's activation rows (at most 256 KiB) are read from L2, so a prefill reads
// the weights from memory once per block and a decode step streams them once, converting each value where it is
// loaded.
#include "falcon_onnx/matmul_fp16.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

#include "compile_time_count.h"
#include "cpu_features.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define FALCON_ONNX_FP16_X86 1
// Every loop over a tile's rows unrolled: only then does GCC 12 keep a tile of more than 8 sums in registers
// (otherwise it stores each sum to the stack after every multiply-add).
#define FALCON_ONNX_UNROLLED _Pragma("GCC unroll 16")
#endif

namespace falcon_onnx {
namespace {

constexpr int64_t kRowsPerTask = 128;    // weight rows per task: a multiple of the tiles' (4 or 8)
constexpr int64_t kBlockBytes = 256 << 10;  // activation rows per task: at most this many bytes of them

struct Call {
  const MatMulFp16Shape* shape;
  const float* x;
  const uint16_t* w;
  float* y;
  int64_t tokens_per_block, row_runs;
};

// IEEE binary16 to binary32, exactly (subnormals, infinities and NaNs included).
inline float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16, exponent = (h >> 10) & 0x1fu, mantissa = h & 0x3ffu;
  if (exponent == 0) {
    const float magnitude = static_cast<float>(mantissa) * 5.9604644775390625e-8f;  // mantissa * 2^-24
    return sign ? -magnitude : magnitude;
  }
  const uint32_t bits = sign | (exponent == 0x1f ? 0x7f800000u | (mantissa << 13) : ((exponent + 112) << 23) | (mantissa << 13));
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

// Portable kernel: one dot product at a time, in the same float32 arithmetic.
template <int kRows, int kTokens>
void tile_generic(const Call& c, int64_t row, int64_t token) {
  const MatMulFp16Shape& s = *c.shape;
  for (int t = 0; t < kTokens; ++t)
    for (int r = 0; r < kRows; ++r) {
      const uint16_t* w = c.w + (row + r) * s.inputs;
      const float* x = c.x + (token + t) * s.inputs;
      float sum = 0.0f;
      for (int64_t k = 0; k < s.inputs; ++k) sum += half_to_float(w[k]) * x[k];
      c.y[(token + t) * s.outputs + row + r] = sum;
    }
}

#if defined(FALCON_ONNX_FP16_X86)
// The lanes of a sum added up.
__attribute__((target("avx2"))) inline float add_lanes(__m256 v) {
  const __m128 four = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 two = _mm_add_ps(four, _mm_movehl_ps(four, four));
  return _mm_cvtss_f32(_mm_add_ss(two, _mm_movehdup_ps(two)));
}

__attribute__((target("avx512f"))) inline float add_lanes(__m512 v) {
  return add_lanes(_mm256_add_ps(_mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))));
}

template <int kRows, int kTokens>
__attribute__((target("avx512f,avx512bw,avx512vl,f16c,fma"))) void tile_avx512(const Call& c, int64_t row, int64_t token) {
  const MatMulFp16Shape& s = *c.shape;
  const int64_t inputs = s.inputs, whole = inputs & ~int64_t{15};
  const uint16_t* w = c.w + row * inputs;
  const float* x = c.x + token * inputs;
  __m512 sum[kTokens][kRows];
  FALCON_ONNX_UNROLLED
  for (int t = 0; t < kTokens; ++t)
    FALCON_ONNX_UNROLLED
    for (int r = 0; r < kRows; ++r) sum[t][r] = _mm512_setzero_ps();
  const __mmask16 tail = static_cast<__mmask16>((1u << (inputs - whole)) - 1);
  // Masked loads take the last, partial group of 16 columns; zeros beyond K add nothing.
  for (int64_t k = 0; k < inputs; k += 16) {
    const __mmask16 mask = k < whole ? static_cast<__mmask16>(0xffff) : tail;
    __m512 weights[kRows];
    FALCON_ONNX_UNROLLED
    for (int r = 0; r < kRows; ++r) weights[r] = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, w + r * inputs + k));
    FALCON_ONNX_UNROLLED
    for (int t = 0; t < kTokens; ++t) {
      const __m512 a = _mm512_maskz_loadu_ps(mask, x + t * inputs + k);
      FALCON_ONNX_UNROLLED
      for (int r = 0; r < kRows; ++r) sum[t][r] = _mm512_fmadd_ps(weights[r], a, sum[t][r]);
    }
  }
  FALCON_ONNX_UNROLLED
  for (int t = 0; t < kTokens; ++t)
    FALCON_ONNX_UNROLLED
    for (int r = 0; r < kRows; ++r) c.y[(token + t) * s.outputs + row + r] = add_lanes(sum[t][r]);
}

// AVX2 has 16 registers: tiles of up to 4 weight rows by 2 activation rows (8 sums, 4 weights, 1 activation).
template <int kRows, int kTokens>
__attribute__((target("avx2,f16c,fma"))) void tile_avx2(const Call& c, int64_t row, int64_t token) {
  const MatMulFp16Shape& s = *c.shape;
  const int64_t inputs = s.inputs, whole = inputs & ~int64_t{7};
  const uint16_t* w = c.w + row * inputs;
  const float* x = c.x + token * inputs;
  __m256 sum[kTokens][kRows];
  FALCON_ONNX_UNROLLED
  for (int t = 0; t < kTokens; ++t)
    FALCON_ONNX_UNROLLED
    for (int r = 0; r < kRows; ++r) sum[t][r] = _mm256_setzero_ps();
  for (int64_t k = 0; k < whole; k += 8) {
    __m256 weights[kRows];
    FALCON_ONNX_UNROLLED
    for (int r = 0; r < kRows; ++r)
      weights[r] = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + r * inputs + k)));
    FALCON_ONNX_UNROLLED
    for (int t = 0; t < kTokens; ++t) {
      const __m256 a = _mm256_loadu_ps(x + t * inputs + k);
      FALCON_ONNX_UNROLLED
      for (int r = 0; r < kRows; ++r) sum[t][r] = _mm256_fmadd_ps(weights[r], a, sum[t][r]);
    }
  }
  FALCON_ONNX_UNROLLED
  for (int t = 0; t < kTokens; ++t)
    FALCON_ONNX_UNROLLED
    for (int r = 0; r < kRows; ++r) {
      float total = add_lanes(sum[t][r]);
      for (int64_t k = whole; k < inputs; ++k) total += _cvtsh_ss(w[r * inputs + k]) * x[t * inputs + k];
      c.y[(token + t) * s.outputs + row + r] = total;
    }
}
#endif

// One task: the activation rows of block `block` against the weight rows of run `run`, tile by tile.
template <int kMaxRows, int kMaxTokens, template <int, int> class Tile>
struct Tiles {
  static void run(const Call& c, int64_t block, int64_t run) {
    const int64_t first_token = block * c.tokens_per_block, end_token = std::min(first_token + c.tokens_per_block, c.shape->tokens);
    const int64_t first_row = run * kRowsPerTask, end_row = std::min(first_row + kRowsPerTask, c.shape->outputs);
    cpu::for_runs<kMaxRows>(end_row - first_row, [&](auto rows, int64_t row) {
      cpu::for_runs<kMaxTokens>(end_token - first_token, [&](auto tokens, int64_t token) {
        Tile<decltype(rows)::value, decltype(tokens)::value>::apply(c, first_row + row, first_token + token);
      });
    });
  }
};

template <int kRows, int kTokens> struct GenericTile {
  static void apply(const Call& c, int64_t row, int64_t token) { tile_generic<kRows, kTokens>(c, row, token); }
};
#if defined(FALCON_ONNX_FP16_X86)
template <int kRows, int kTokens> struct Avx512Tile {
  static void apply(const Call& c, int64_t row, int64_t token) { tile_avx512<kRows, kTokens>(c, row, token); }
};
template <int kRows, int kTokens> struct Avx2Tile {
  static void apply(const Call& c, int64_t row, int64_t token) { tile_avx2<kRows, kTokens>(c, row, token); }
};
#endif

using TaskKernel = void (*)(const Call&, int64_t, int64_t);

// One kernel for a single activation row and one for several. A decode step's tiles take 8 weight rows: more loads
// in flight (the 0.5B lm_head, 2 threads, tasks of 64 rows: 1.20 ms, 56 GB/s, against 1.45 ms with 4 rows; 16 rows:
// 1.32 ms). Tasks of 128 rows: inside ONNX Runtime's pool the same product took 1.86 ms with tiles of 4 rows and
// tasks of 64, 1.73 ms with tiles of 8, 1.28-1.30 ms with tasks of 128 (`bench --profile`).
struct Selected {
  TaskKernel single, several;
  const char* name;
};

Selected select_kernel() {
#if defined(FALCON_ONNX_FP16_X86)
  switch (cpu::usable_isa()) {
    case cpu::Isa::kAvx512: return {Tiles<8, 1, Avx512Tile>::run, Tiles<4, 4, Avx512Tile>::run, "avx512"};
    case cpu::Isa::kAvx2: return {Tiles<8, 1, Avx2Tile>::run, Tiles<4, 2, Avx2Tile>::run, "avx2"};
    case cpu::Isa::kGeneric: break;
  }
#endif
  return {Tiles<4, 1, GenericTile>::run, Tiles<4, 4, GenericTile>::run, "generic"};
}

const Selected& selected() {
  static const Selected kernel = select_kernel();
  return kernel;
}

}  // namespace

const char* matmul_fp16_cpu_kernel() { return selected().name; }

void matmul_fp16_cpu(const MatMulFp16Shape& s, const float* x, const uint16_t* weights, float* y,
                     const ParallelRunner& runner) {
  if (s.tokens < 0 || s.inputs <= 0 || s.outputs <= 0)
    throw std::invalid_argument("MatMulFp16: inputs and outputs must be positive (K " + std::to_string(s.inputs) + ", N " +
                                std::to_string(s.outputs) + ")");
  if (s.tokens == 0) return;
  Call call{&s, x, weights, y, 1, 1};
  call.tokens_per_block = std::clamp<int64_t>(kBlockBytes / (s.inputs * static_cast<int64_t>(sizeof(float))) / 4 * 4, 4, 64);
  call.row_runs = (s.outputs + kRowsPerTask - 1) / kRowsPerTask;
  const int64_t blocks = (s.tokens + call.tokens_per_block - 1) / call.tokens_per_block;
  runner.run(static_cast<std::size_t>(blocks * call.row_runs), [](void* context, std::size_t task) {
    const Call& c = *static_cast<const Call*>(context);
    const Selected& kernel = selected();
    (c.shape->tokens == 1 ? kernel.single : kernel.several)(c, static_cast<int64_t>(task) / c.row_runs, static_cast<int64_t>(task) % c.row_runs);
  }, &call);
}

}  // namespace falcon_onnx
