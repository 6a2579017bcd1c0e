// The int4 and int8 matrix products of matmul_rows16.h: activations quantized per block of 32 into int8 codes, then
// one pass over the weights in groups of 16 rows, each group's (unpacked) codes reused for up to 8 activation rows.
#include "falcon_onnx/matmul_rows16.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "compile_time_count.h"
#include "cpu_features.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define FALCON_ONNX_ROWS16_X86 1
#endif

namespace falcon_onnx {
namespace {

constexpr int kTokenGroup = 8;  // activation rows that share one unpacking of a block

// One activation row quantized: codes[k], and per block the scale and zero_point * scale * sum(codes), the part the
// weights' zero point (8 or 128) adds to the integer dot product.
struct QuantizedRows {
  std::vector<int8_t> codes;
  std::vector<float> scales, zero_terms;
};

void quantize_row(const float* x, int64_t inputs, int8_t* codes, float* scales, float* zero_terms, float zero_point) {
  for (int64_t b = 0; b < inputs / kRows16Block; ++b) {
    const float* v = x + b * kRows16Block;
    float absmax = 0.0f;
    for (int i = 0; i < kRows16Block; ++i) absmax = std::max(absmax, std::fabs(v[i]));
    const float scale = absmax / 127.0f, inverse = absmax > 0.0f ? 127.0f / absmax : 0.0f;
    int sum = 0;
    for (int i = 0; i < kRows16Block; ++i) {
      const int code = static_cast<int>(std::nearbyint(v[i] * inverse));
      codes[b * kRows16Block + i] = static_cast<int8_t>(std::clamp(code, -127, 127));
      sum += codes[b * kRows16Block + i];
    }
    scales[b] = scale;
    zero_terms[b] = zero_point * scale * static_cast<float>(sum);
  }
}

struct Call {
  const Rows16Shape* shape;
  const float* x;
  const uint8_t* packed;
  const float* scales;
  float* y;
  QuantizedRows* rows;
  int64_t groups_per_task;
};

// Writes the (up to 16) outputs of group g for one activation row.
inline void store_group(const Rows16Shape& s, int64_t g, int64_t token, const float* values, float* y) {
  const int64_t first = g * kRows16Group, count = std::min<int64_t>(kRows16Group, s.outputs - first);
  std::memcpy(y + token * s.outputs + first, values, static_cast<std::size_t>(count) * sizeof(float));
}

// The unsigned code of row r (0..15), column `column` (0..31) in one group's block (matmul_rows16.h).
inline int weight_code(const uint8_t* block, int bits, int r, int column) {
  if (bits == 8) return block[(column / 4) * 64 + r * 4 + column % 4];
  const uint8_t byte = block[(column / 8) * 64 + r * 4 + column % 4];
  return column % 8 < 4 ? byte & 15 : byte >> 4;
}

// Portable kernel: the same arithmetic, one row, block and code at a time.
void groups_generic(const Call& c, int64_t first_group, int64_t end_group) {
  const Rows16Shape& s = *c.shape;
  const int64_t blocks = s.blocks();
  float values[kRows16Group];
  for (int64_t g = first_group; g < end_group; ++g)
    for (int64_t t = 0; t < s.tokens; ++t) {
      const int8_t* a = c.rows->codes.data() + t * s.inputs;
      for (int r = 0; r < kRows16Group; ++r) {
        float sum = 0.0f;
        for (int64_t b = 0; b < blocks; ++b) {
          const uint8_t* block = c.packed + (g * blocks + b) * s.block_bytes();
          int dot = 0;
          for (int column = 0; column < kRows16Block; ++column) dot += weight_code(block, s.bits, r, column) * a[b * kRows16Block + column];
          const float weight_scale = c.scales[(g * blocks + b) * kRows16Group + r];
          sum += static_cast<float>(dot) * (weight_scale * c.rows->scales[t * blocks + b]);
          sum -= weight_scale * c.rows->zero_terms[t * blocks + b];
        }
        values[r] = sum;
      }
      store_group(s, g, t, values, c.y);
    }
}

#if defined(FALCON_ONNX_ROWS16_X86)
inline int32_t four_codes(const int8_t* codes) {
  int32_t v;
  std::memcpy(&v, codes, 4);
  return v;
}

// A decode step's int4 loop spends few instructions per byte, but too many for the out-of-order window to keep enough
// cache misses in flight by itself: every line of the block 16 blocks (4 KiB) ahead, and its scales, are asked for
// early. The int4 decode products of the 0.5B shape took 7 % less time in a decode step with it (7.22 against 7.74 ms,
// medians of three `bench --profile` runs each, interleaved; the AVX2 loop 7.81 against 8.80 ms); 1 and 2 KiB ahead
// gained less, and int8's loops (twice the bytes per instruction) gained nothing, so int8 keeps none.
// The addresses may lie past the weights' end (a prefetch never faults), so they are computed as integers.
inline void prefetch_ahead(const uint8_t* block, const float* block_scales) {
  constexpr uintptr_t kDistance = 4096, kBlockBytes = 256, kScaleDistance = kDistance / kBlockBytes * kRows16Group * sizeof(float);
  const uintptr_t codes = reinterpret_cast<uintptr_t>(block) + kDistance, scales = reinterpret_cast<uintptr_t>(block_scales) + kScaleDistance;
  for (uintptr_t line = 0; line < kBlockBytes; line += 64) _mm_prefetch(reinterpret_cast<const char*>(codes + line), _MM_HINT_T0);
  _mm_prefetch(reinterpret_cast<const char*>(scales), _MM_HINT_T0);
}

template <int kBits, int kTokens>
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"))) void group_tokens_vnni(const Call& c, int64_t g,
                                                                                        int64_t first_token) {
  constexpr int kBlockBytes = 64 * kBits;
  const Rows16Shape& s = *c.shape;
  const int64_t blocks = s.blocks();
  const __m512i low_nibbles = _mm512_set1_epi8(0x0F);
  const uint8_t* packed = c.packed + g * blocks * kBlockBytes;
  const float* weight_scales = c.scales + g * blocks * kRows16Group;
  const int8_t* codes_a = c.rows->codes.data() + first_token * s.inputs;
  const float* scales_a = c.rows->scales.data() + first_token * blocks;
  const float* zero_a = c.rows->zero_terms.data() + first_token * blocks;
  __m512 sum[kTokens];
  for (int t = 0; t < kTokens; ++t) sum[t] = _mm512_setzero_ps();
  for (int64_t b = 0; b < blocks; ++b) {
    if constexpr (kTokens == 1 && kBits == 4) prefetch_ahead(packed + b * kBlockBytes, weight_scales + b * kRows16Group);
    // codes[q]: columns 4q..4q+3 of the 16 rows, unsigned.
    __m512i codes[8];
    if constexpr (kBits == 4) {
      for (int j = 0; j < 4; ++j) {
        const __m512i raw = _mm512_loadu_si512(packed + b * kBlockBytes + j * 64);
        codes[2 * j] = _mm512_and_si512(raw, low_nibbles);
        codes[2 * j + 1] = _mm512_and_si512(_mm512_srli_epi16(raw, 4), low_nibbles);
      }
    } else {
      for (int q = 0; q < 8; ++q) codes[q] = _mm512_loadu_si512(packed + b * kBlockBytes + q * 64);
    }
    const __m512 w = _mm512_loadu_ps(weight_scales + b * kRows16Group);
    for (int t = 0; t < kTokens; ++t) {
      const int8_t* a = codes_a + t * s.inputs + b * kRows16Block;
      __m512i dot;
      if constexpr (kTokens == 1) {
        // One row: two chains, so that consecutive runs' dot products do not wait on each other.
        __m512i even = _mm512_setzero_si512(), odd = _mm512_setzero_si512();
        for (int q = 0; q < 8; q += 2) {
          even = _mm512_dpbusd_epi32(even, codes[q], _mm512_set1_epi32(four_codes(a + 4 * q)));
          odd = _mm512_dpbusd_epi32(odd, codes[q + 1], _mm512_set1_epi32(four_codes(a + 4 * q + 4)));
        }
        dot = _mm512_add_epi32(even, odd);
      } else {  // several rows: their chains interleave
        dot = _mm512_setzero_si512();
        for (int q = 0; q < 8; ++q) dot = _mm512_dpbusd_epi32(dot, codes[q], _mm512_set1_epi32(four_codes(a + 4 * q)));
      }
      sum[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(w, _mm512_set1_ps(scales_a[t * blocks + b])), sum[t]);
      sum[t] = _mm512_fnmadd_ps(w, _mm512_set1_ps(zero_a[t * blocks + b]), sum[t]);
    }
  }
  alignas(64) float values[kRows16Group];
  for (int t = 0; t < kTokens; ++t) {
    _mm512_store_ps(values, sum[t]);
    store_group(s, g, first_token + t, values, c.y);
  }
}

template <int kBits>
void groups_vnni(const Call& c, int64_t first_group, int64_t end_group) {
  for (int64_t g = first_group; g < end_group; ++g)
    cpu::for_runs<kTokenGroup>(c.shape->tokens, [&](auto rows, int64_t first) { group_tokens_vnni<kBits, decltype(rows)::value>(c, g, first); });
}

// quantize_row with AVX-512: the same codes (cvtps rounds to nearest even, as nearbyint does under the default
// rounding mode), a block of 32 in two registers instead of a libm call per value.
__attribute__((target("avx512f,avx512bw,avx512vl"))) void quantize_row_avx512(const float* x, int64_t inputs, int8_t* codes,
                                                                               float* scales, float* zero_terms, float zero_point) {
  for (int64_t b = 0; b < inputs / kRows16Block; ++b) {
    const __m512 low = _mm512_loadu_ps(x + b * kRows16Block), high = _mm512_loadu_ps(x + b * kRows16Block + 16);
    const float absmax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(low), _mm512_abs_ps(high)));
    const float scale = absmax / 127.0f, inverse = absmax > 0.0f ? 127.0f / absmax : 0.0f;
    const __m512 factor = _mm512_set1_ps(inverse);
    const __m512i limit = _mm512_set1_epi32(127);
    const __m512i q_low = _mm512_max_epi32(_mm512_min_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(low, factor)), limit), _mm512_sub_epi32(_mm512_setzero_si512(), limit));
    const __m512i q_high = _mm512_max_epi32(_mm512_min_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(high, factor)), limit), _mm512_sub_epi32(_mm512_setzero_si512(), limit));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(codes + b * kRows16Block), _mm512_cvtepi32_epi8(q_low));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(codes + b * kRows16Block + 16), _mm512_cvtepi32_epi8(q_high));
    scales[b] = scale;
    zero_terms[b] = zero_point * scale * static_cast<float>(_mm512_reduce_add_epi32(_mm512_add_epi32(q_low, q_high)));
  }
}

// AVX2 (no VNNI): vpmaddubsw multiplies unsigned bytes by signed ones into 16-bit pairs, and vpmaddwd by ones adds
// them into the same 4-column sums vpdpbusd gives. int4 codes (<= 15) times activations cannot saturate
// (2 * 15 * 127 < 32767); int8 codes (up to 255) could, so they are made signed again (code - 128) and multiplied
// as |w| times the activation with w's sign (2 * 127 * 127 < 32767), which gives sum(w * a) with no zero-point
// term. A 256-bit register holds 8 of the group's 16 rows, so each half of the group is done in turn; 4 activation
// rows share an unpacking (16 registers).
template <int kBits, int kTokens>
__attribute__((target("avx2,fma"))) void group_tokens_avx2(const Call& c, int64_t g, int64_t first_token) {
  constexpr int kBlockBytes = 64 * kBits;
  const Rows16Shape& s = *c.shape;
  const int64_t blocks = s.blocks();
  const __m256i low_nibbles = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1), sign_bits = _mm256_set1_epi8(static_cast<char>(0x80));
  const uint8_t* packed = c.packed + g * blocks * kBlockBytes;
  const float* weight_scales = c.scales + g * blocks * kRows16Group;
  const int8_t* codes_a = c.rows->codes.data() + first_token * s.inputs;
  const float* scales_a = c.rows->scales.data() + first_token * blocks;
  const float* zero_a = c.rows->zero_terms.data() + first_token * blocks;
  alignas(32) float values[kTokens][kRows16Group];
  for (int half = 0; half < 2; ++half) {
    __m256 sum[kTokens];
    for (int t = 0; t < kTokens; ++t) sum[t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < blocks; ++b) {
      if constexpr (kTokens == 1 && kBits == 4) if (half == 0) prefetch_ahead(packed + b * kBlockBytes, weight_scales + b * kRows16Group);
      __m256i codes[8];  // int4: unsigned codes; int8: the signed weights (code - 128)
      if constexpr (kBits == 4) {
        for (int j = 0; j < 4; ++j) {
          const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(packed + b * kBlockBytes + j * 64 + half * 32));
          codes[2 * j] = _mm256_and_si256(raw, low_nibbles);
          codes[2 * j + 1] = _mm256_and_si256(_mm256_srli_epi16(raw, 4), low_nibbles);
        }
      } else {
        for (int q = 0; q < 8; ++q)
          codes[q] = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(packed + b * kBlockBytes + q * 64 + half * 32)), sign_bits);
      }
      const __m256 w = _mm256_loadu_ps(weight_scales + b * kRows16Group + half * 8);
      for (int t = 0; t < kTokens; ++t) {
        const int8_t* a = codes_a + t * s.inputs + b * kRows16Block;
        __m256i dot = _mm256_setzero_si256();
        for (int q = 0; q < 8; ++q) {
          const __m256i activations = _mm256_set1_epi32(four_codes(a + 4 * q));
          const __m256i pairs = kBits == 4 ? _mm256_maddubs_epi16(codes[q], activations)
                                           : _mm256_maddubs_epi16(_mm256_abs_epi8(codes[q]), _mm256_sign_epi8(activations, codes[q]));
          dot = _mm256_add_epi32(dot, _mm256_madd_epi16(pairs, ones));
        }
        sum[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_mul_ps(w, _mm256_set1_ps(scales_a[t * blocks + b])), sum[t]);
        if constexpr (kBits == 4) sum[t] = _mm256_fnmadd_ps(w, _mm256_set1_ps(zero_a[t * blocks + b]), sum[t]);
      }
    }
    for (int t = 0; t < kTokens; ++t) _mm256_store_ps(values[t] + half * 8, sum[t]);
  }
  for (int t = 0; t < kTokens; ++t) store_group(s, g, first_token + t, values[t], c.y);
}

template <int kBits>
void groups_avx2(const Call& c, int64_t first_group, int64_t end_group) {
  for (int64_t g = first_group; g < end_group; ++g)
    cpu::for_runs<4>(c.shape->tokens, [&](auto rows, int64_t first) { group_tokens_avx2<kBits, decltype(rows)::value>(c, g, first); });
}

#endif

using GroupKernel = void (*)(const Call&, int64_t, int64_t);
using RowQuantizer = void (*)(const float*, int64_t, int8_t*, float*, float*, float);

struct Selected {
  GroupKernel int4, int8;
  RowQuantizer quantize;
  const char* name;
};

Selected select_kernel() {
#if defined(FALCON_ONNX_ROWS16_X86)
  const cpu::Isa isa = cpu::usable_isa();
  if (isa == cpu::Isa::kAvx512 && cpu::has_avx512_vnni()) return {groups_vnni<4>, groups_vnni<8>, quantize_row_avx512, "avx512vnni"};
  if (isa != cpu::Isa::kGeneric) return {groups_avx2<4>, groups_avx2<8>, quantize_row, "avx2"};
#endif
  return {groups_generic, groups_generic, quantize_row, "generic"};
}

const Selected& selected() {
  static const Selected kernel = select_kernel();
  return kernel;
}

}  // namespace

const char* matmul_rows16_cpu_kernel() { return selected().name; }

void matmul_rows16_cpu(const Rows16Shape& s, const float* x, const uint8_t* packed, const float* scales, float* y,
                       const ParallelRunner& runner) {
  if (s.bits != 4 && s.bits != 8) throw std::invalid_argument("rows16 weights have 4 or 8 bits, not " + std::to_string(s.bits));
  if (s.tokens < 0 || s.inputs <= 0 || s.outputs <= 0 || s.inputs % kRows16Block != 0)
    throw std::invalid_argument(std::string(s.bits == 8 ? "MatMulInt8" : "MatMulInt4") + ": inputs must be a positive multiple of 32 and outputs positive (K " +
                                std::to_string(s.inputs) + ", N " + std::to_string(s.outputs) + ")");
  if (s.tokens == 0) return;
  // Per calling thread, kept between calls: a decode step allocates nothing.
  thread_local QuantizedRows rows;
  const std::size_t codes = static_cast<std::size_t>(s.tokens * s.inputs), blocks = static_cast<std::size_t>(s.tokens * s.blocks());
  if (rows.codes.size() < codes) rows.codes.resize(codes);
  if (rows.scales.size() < blocks) {
    rows.scales.resize(blocks);
    rows.zero_terms.resize(blocks);
  }
  Call call{&s, x, packed, scales, y, &rows, 1};
  // Quantizing a row is quick: a decode step does it here, a prefill in tasks of 16 rows.
  constexpr int64_t kRowsPerTask = 16;
  auto quantize_rows = [](void* context, std::size_t task) {
    const Call& c = *static_cast<const Call*>(context);
    const int64_t blocks_per_row = c.shape->blocks(), first = static_cast<int64_t>(task) * kRowsPerTask;
    for (int64_t token = first; token < std::min(first + kRowsPerTask, c.shape->tokens); ++token)
      selected().quantize(c.x + token * c.shape->inputs, c.shape->inputs, c.rows->codes.data() + token * c.shape->inputs,
                          c.rows->scales.data() + token * blocks_per_row, c.rows->zero_terms.data() + token * blocks_per_row,
                          static_cast<float>(c.shape->zero_point()));
  };
  const std::size_t quantize_tasks = static_cast<std::size_t>((s.tokens + kRowsPerTask - 1) / kRowsPerTask);
  if (quantize_tasks == 1)
    quantize_rows(&call, 0);
  else
    runner.run(quantize_tasks, quantize_rows, &call);
  // Tasks of a few groups: enough of them to balance the threads, each long enough to stream its weights.
  const int64_t groups = s.groups();
  call.groups_per_task = std::max<int64_t>(1, std::min<int64_t>(8, groups / 16));
  const std::size_t tasks = static_cast<std::size_t>((groups + call.groups_per_task - 1) / call.groups_per_task);
  runner.run(tasks, [](void* context, std::size_t task) {
    const Call& c = *static_cast<const Call*>(context);
    const int64_t first = static_cast<int64_t>(task) * c.groups_per_task;
    const Selected& kernel = selected();
    (c.shape->bits == 8 ? kernel.int8 : kernel.int4)(c, first, std::min(first + c.groups_per_task, c.shape->groups()));
  }, &call);
}

}  // namespace falcon_onnx
