// int4_gemv_probe: how fast an int4 x int8 matrix-vector product can stream its weights on this CPU, beside
// the plain read bandwidth of the same bytes, measured in one run.
//
// Why it exists: decoding an int4 export is bound by com.microsoft.MatMulNBits (ONNX Runtime's MLAS kernel,
// ~70 % of a 0.5B decode step), which streams its packed weights at ~30 GB/s on the 2-core build machine while
// the machine reads ~48 GB/s, and its prefill products run at ~200 G multiply-adds/s. This probe is the
// evidence for (or against) writing our own kernel: plain AVX-512 VNNI loops over blocks of 32 (symmetric, zero
// point 8, a float scale per block; activations quantized to int8 per block, as MatMulNBits' accuracy_level 4
// does), rows split over threads, in two weight layouts: A (vectors along the columns of one row) and B
// (vectors across 16 rows), each as a matrix-vector product (decode) and a product with 128 activation rows
// (prefill), checked against each other and against the dequantized product.
//
// Layout A, per row: each pair of blocks (64 weights) is 32 bytes, the even block in the low nibbles and the odd
// block in the high ones, so one AND and one shift give 64 unsigned codes in the order the activations are in.
// Per pair: vpdpbusd (codes x int8 activations) -> 16 int32 lanes, lanes 0-7 the even block and 8-15 the odd
// one, turned into float and scaled by weight scale x activation scale of their block; the zero point comes
// off once per row as sum_b weight_scale[b] * 8 * activation_scale[b] * sum(activation codes of b).
//
//   int4_gemv_probe            (x86-64 with AVX-512 VNNI; prints a line and exits 0 elsewhere; exit 1 if a
//                               product is wrong)
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "falcon_onnx/matmul_rows16.h"
#include "../src/thread_pool.h"
#include "rows16_pack.h"

namespace {

constexpr int kColumns = 1024, kRows = 4096, kBlock = 32, kBlocks = kColumns / kBlock;
// 48 matrices of the 0.5B MLP's gate+up shape (4096 x 1024): 113 MB of packed weights, past any cache.
constexpr int kMatrices = 48;

struct Matrix {
  std::vector<uint8_t> packed;  // [rows][columns / 2]
  std::vector<float> scales;    // [rows][blocks]
};

struct Activation {
  alignas(64) int8_t codes[kColumns];
  alignas(64) float scale[kBlocks];
  alignas(64) float zero_correction[kBlocks];  // 8 * scale * sum(codes) per block
  alignas(64) float lane_scale[kColumns / 64][16];
};

Matrix pack(const std::vector<float>& w) {
  Matrix m{std::vector<uint8_t>(static_cast<size_t>(kRows) * kColumns / 2), std::vector<float>(static_cast<size_t>(kRows) * kBlocks)};
  for (int n = 0; n < kRows; ++n)
    for (int b = 0; b < kBlocks; ++b) {
      const float* v = &w[static_cast<size_t>(n) * kColumns + b * kBlock];
      // rows16_pack.h's (and the exporter's) convention: the weight of largest magnitude gets code -8.
      float extreme = 0;
      for (int i = 0; i < kBlock; ++i) extreme = std::fabs(v[i]) > std::fabs(extreme) ? v[i] : extreme;
      const float scale = extreme / -8.0f;
      m.scales[static_cast<size_t>(n) * kBlocks + b] = scale;
      for (int i = 0; i < kBlock; ++i) {
        const int code = std::clamp(scale == 0 ? 0 : static_cast<int>(std::lround(v[i] / scale)), -8, 7) + 8;
        uint8_t& byte = m.packed[static_cast<size_t>(n) * kColumns / 2 + (b / 2) * 32 + i];
        byte |= static_cast<uint8_t>(b % 2 == 0 ? code : code << 4);
      }
    }
  return m;
}

void quantize(const std::vector<float>& a, Activation& x) {
  for (int b = 0; b < kBlocks; ++b) {
    float absmax = 0;
    for (int i = 0; i < kBlock; ++i) absmax = std::max(absmax, std::fabs(a[b * kBlock + i]));
    // As matmul_rows16_cpu quantizes: times 127 / absmax, rounded to nearest even.
    const float scale = absmax / 127.0f, inverse = absmax > 0 ? 127.0f / absmax : 0.0f;
    int sum = 0;
    for (int i = 0; i < kBlock; ++i) {
      const int code = static_cast<int>(std::nearbyint(a[b * kBlock + i] * inverse));
      x.codes[b * kBlock + i] = static_cast<int8_t>(code);
      sum += code;
    }
    x.scale[b] = scale;
    x.zero_correction[b] = 8.0f * scale * static_cast<float>(sum);
  }
  for (int pair = 0; pair < kColumns / 64; ++pair)
    for (int lane = 0; lane < 16; ++lane) x.lane_scale[pair][lane] = x.scale[2 * pair + (lane >= 8)];
}

// Lane l of pair p takes the scale of block 2p + (l >= 8) among the 16 blocks loaded at once.
__attribute__((target("avx512f"))) void spread_indices(__m512i (&spread)[8]) {
  for (int p = 0; p < 8; ++p) spread[p] = _mm512_set_epi32(2 * p + 1, 2 * p + 1, 2 * p + 1, 2 * p + 1, 2 * p + 1, 2 * p + 1,
                                                            2 * p + 1, 2 * p + 1, 2 * p, 2 * p, 2 * p, 2 * p, 2 * p, 2 * p,
                                                            2 * p, 2 * p);
}

// The 64 codes of a pair of blocks (32 bytes): the even block's from the low nibbles, then the odd block's.
__attribute__((target("avx512f,avx2"))) inline __m512i pair_codes(const uint8_t* bytes) {
  const __m256i low_nibbles = _mm256_set1_epi8(0x0F);
  const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bytes));
  return _mm512_inserti64x4(_mm512_zextsi256_si512(_mm256_and_si256(raw, low_nibbles)),
                            _mm256_and_si256(_mm256_srli_epi16(raw, 4), low_nibbles), 1);
}

__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma"))) void gemv(const Matrix& m,
                                                                                    const Activation& x, float* y,
                                                                                    int first_row, int end_row) {
  __m512i spread[8];
  spread_indices(spread);
  for (int n = first_row; n < end_row; ++n) {
    const uint8_t* packed = m.packed.data() + static_cast<size_t>(n) * kColumns / 2;
    const float* scales = m.scales.data() + static_cast<size_t>(n) * kBlocks;
    __m512 sum = _mm512_setzero_ps(), zero = _mm512_setzero_ps();
    for (int block = 0; block < kBlocks; block += 16) {
      const __m512 weight_scales = _mm512_loadu_ps(scales + block);
      zero = _mm512_fmadd_ps(weight_scales, _mm512_load_ps(x.zero_correction + block), zero);
      for (int p = 0; p < 8; ++p) {
        const int pair = block / 2 + p;
        const __m512i codes = pair_codes(packed + pair * 32);
        const __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), codes, _mm512_load_si512(x.codes + pair * 64));
        const __m512 scale = _mm512_mul_ps(_mm512_permutexvar_ps(spread[p], weight_scales), _mm512_load_ps(x.lane_scale[pair]));
        sum = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), scale, sum);
      }
    }
    y[n] = _mm512_reduce_add_ps(sum) - _mm512_reduce_add_ps(zero);
  }
}

// The prefill side: rows [first_row, end_row) of W times kTokens activation rows (int8 per block, as above), each
// weight pair unpacked once per group of kRowGroup activation rows that share it; out is [tokens][rows].
constexpr int kTokens = 128, kRowGroup = 8;

struct Activations {
  std::vector<Activation> rows = std::vector<Activation>(kTokens);
};

__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma"))) void gemm(const Matrix& m,
                                                                                    const Activations& x, float* out,
                                                                                    int first_row, int end_row) {
  __m512i spread[8];
  spread_indices(spread);
  for (int n = first_row; n < end_row; ++n) {
    const uint8_t* packed = m.packed.data() + static_cast<size_t>(n) * kColumns / 2;
    const float* scales = m.scales.data() + static_cast<size_t>(n) * kBlocks;
    for (int t0 = 0; t0 < kTokens; t0 += kRowGroup) {
      __m512 sum[kRowGroup];
      for (int r = 0; r < kRowGroup; ++r) sum[r] = _mm512_setzero_ps();
      for (int block = 0; block < kBlocks; block += 16) {
        const __m512 weight_scales = _mm512_loadu_ps(scales + block);
        for (int r = 0; r < kRowGroup; ++r)  // the zero point, per block
          sum[r] = _mm512_fnmadd_ps(weight_scales, _mm512_load_ps(x.rows[t0 + r].zero_correction + block), sum[r]);
        for (int p = 0; p < 8; ++p) {
          const int pair = block / 2 + p;
          const __m512i codes = pair_codes(packed + pair * 32);
          const __m512 lane_weight_scale = _mm512_permutexvar_ps(spread[p], weight_scales);
          for (int r = 0; r < kRowGroup; ++r) {
            const Activation& a = x.rows[t0 + r];
            const __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), codes, _mm512_load_si512(a.codes + pair * 64));
            sum[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(lane_weight_scale, _mm512_load_ps(a.lane_scale[pair])), sum[r]);
          }
        }
      }
      for (int r = 0; r < kRowGroup; ++r) out[static_cast<size_t>(t0 + r) * kRows + n] = _mm512_reduce_add_ps(sum[r]);
    }
  }
}


// The same bytes read and summed, eight independent accumulators: the memory's pace for this thread count.
__attribute__((target("avx512f"))) float read_sum(const uint8_t* data, size_t bytes) {
  __m512i a[8] = {};
  size_t i = 0;
  for (; i + 512 <= bytes; i += 512)
    for (int k = 0; k < 8; ++k) a[k] = _mm512_add_epi32(a[k], _mm512_loadu_si512(data + i + 64 * k));
  __m512i total = a[0];
  for (int k = 1; k < 8; ++k) total = _mm512_add_epi32(total, a[k]);
  return static_cast<float>(_mm512_reduce_add_epi32(total));
}

template <typename Work>
double best_seconds(int threads, Work work) {
  double best = 1e30;
  for (int repeat = 0; repeat < 20; ++repeat) {
    const auto start = std::chrono::steady_clock::now();
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) pool.emplace_back([&, t] { work(t); });
    for (std::thread& thread : pool) thread.join();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return best;
}

}  // namespace

int main() {
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx512vnni") || !__builtin_cpu_supports("avx512bw")) {
    std::printf("int4_gemv_probe: this CPU has no AVX-512 VNNI; nothing measured\n");
    return 0;
  }
  std::mt19937 random(1);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  std::vector<float> weights(static_cast<size_t>(kRows) * kColumns);
  for (float& v : weights) v = normal(random);
  std::vector<Matrix> matrices(kMatrices, pack(weights));
  std::vector<float> input(kColumns);
  for (float& v : input) v = normal(random) * 50;
  Activation x;
  quantize(input, x);

  // Correct first: the kernel against the dequantized product in double.
  std::vector<float> y(kRows);
  gemv(matrices[0], x, y.data(), 0, kRows);
  double error = 0, magnitude = 0;
  for (int n = 0; n < kRows; ++n) {
    double expected = 0;
    for (int k = 0; k < kColumns; ++k) {
      const int b = k / kBlock;
      const uint8_t byte = matrices[0].packed[static_cast<size_t>(n) * kColumns / 2 + (b / 2) * 32 + k % kBlock];
      const int code = (b % 2 == 0 ? byte & 15 : byte >> 4) - 8;
      expected += static_cast<double>(code) * matrices[0].scales[static_cast<size_t>(n) * kBlocks + b] * x.codes[k] * x.scale[b];
    }
    error = std::max(error, std::fabs(y[n] - expected));
    magnitude = std::max(magnitude, std::fabs(expected));
  }
  std::printf("int4 x int8 GEMV, %d x %d, blocks of %d: max error %.2e against the dequantized product (max |y| %.2f)\n",
              kRows, kColumns, kBlock, error, magnitude);
  if (error > 1e-4 * std::max(1.0, magnitude)) return 1;

  const double bytes_per_matrix = static_cast<double>(kRows) * kColumns / 2 + static_cast<double>(kRows) * kBlocks * 4;
  std::vector<int> thread_counts{1, 2};
  if (std::thread::hardware_concurrency() > 2) thread_counts.push_back(static_cast<int>(std::thread::hardware_concurrency()));
  for (int threads : thread_counts) {
    const double gemv_seconds = best_seconds(threads, [&](int t) {
      std::vector<float> out(kRows);
      for (const Matrix& m : matrices) gemv(m, x, out.data(), t * kRows / threads, (t + 1) * kRows / threads);
    });
    std::vector<float> sums(threads);
    const double read_seconds = best_seconds(threads, [&](int t) {
      float s = 0;
      for (const Matrix& m : matrices) {
        const size_t half = m.packed.size() / threads;
        s += read_sum(m.packed.data() + t * half, half);
        s += read_sum(reinterpret_cast<const uint8_t*>(m.scales.data()) + t * (m.scales.size() * 4 / threads), m.scales.size() * 4 / threads);
      }
      sums[t] = s;
    });
    const double gemv_rate = kMatrices * bytes_per_matrix / gemv_seconds / 1e9;
    const double read_rate = kMatrices * bytes_per_matrix / read_seconds / 1e9;
    std::printf("%d thread%s: GEMV %.1f us per matrix, %.1f GB/s of weights and scales; plain read of the same bytes "
                "%.1f GB/s; GEMV at %.0f %% of it\n",
                threads, threads == 1 ? " " : "s", gemv_seconds / kMatrices * 1e6, gemv_rate, read_rate,
                100 * gemv_rate / read_rate);
  }

  // Prefill: kTokens activation rows against the same matrices; checked against the GEMV row by row.
  Activations batch;
  std::vector<float> batch_input(static_cast<std::size_t>(kTokens) * kColumns);
  for (int t = 0; t < kTokens; ++t) {
    std::vector<float> row(kColumns);
    for (float& v : row) v = normal(random) * 50;
    std::copy(row.begin(), row.end(), batch_input.begin() + static_cast<std::ptrdiff_t>(t) * kColumns);
    quantize(row, batch.rows[t]);
  }
  std::vector<float> product(static_cast<size_t>(kTokens) * kRows), row(kRows);
  gemm(matrices[0], batch, product.data(), 0, kRows);
  double gemm_error = 0;
  for (int t = 0; t < kTokens; t += 17) {
    gemv(matrices[0], batch.rows[t], row.data(), 0, kRows);
    for (int n = 0; n < kRows; ++n) gemm_error = std::max(gemm_error, static_cast<double>(std::fabs(row[n] - product[static_cast<size_t>(t) * kRows + n])));
  }
  std::printf("int4 x int8 GEMM, %d tokens: max difference %.2e from the GEMV row by row\n", kTokens, gemm_error);
  if (gemm_error > 1e-4) return 1;
  const int gemm_matrices = 8;
  for (int threads : thread_counts) {
    const double seconds = best_seconds(threads, [&](int t) {
      for (int i = 0; i < gemm_matrices; ++i) gemm(matrices[i], batch, product.data(), t * kRows / threads, (t + 1) * kRows / threads);
    });
    const double macs = static_cast<double>(gemm_matrices) * kTokens * kRows * kColumns;
    std::printf("%d thread%s: GEMM %.0f us per matrix and %d tokens, %.0f G multiply-adds/s\n", threads,
                threads == 1 ? " " : "s", seconds / gemm_matrices * 1e6, kTokens, macs / seconds / 1e9);
  }

  // Layout B through the library's kernel, the same products: checked against layout A, then timed.
  // Layout B is MatMulInt4's (include/falcon_onnx/matmul_rows16.h: 16 rows interleaved so that vpdpbusd multiplies 4
  // columns of 16 rows by 4 broadcast activation bytes, the per-block conversion and scaling shared by 16 rows), with
  // the same quantization as layout A (scale e / -8 for e the weight of largest magnitude, codes rounded and clamped
  // to [-8, 7]).
  const falcon_onnx::Rows16Shape one{1, kColumns, kRows}, many{kTokens, kColumns, kRows};
  std::vector<falcon_onnx::test::Rows16Weights> matrices_b(kMatrices, falcon_onnx::test::pack_rows16(weights, one));
  std::vector<float> y_b(kRows), product_b(product.size());
  const falcon_onnx::ThreadPool& single = falcon_onnx::ThreadPool::shared(1);
  falcon_onnx::matmul_rows16_cpu(one, input.data(), matrices_b[0].bytes.data(), matrices_b[0].scales.data(), y_b.data(), single);
  falcon_onnx::matmul_rows16_cpu(many, batch_input.data(), matrices_b[0].bytes.data(), matrices_b[0].scales.data(), product_b.data(), single);
  double layout_error = 0;
  for (int n = 0; n < kRows; ++n) layout_error = std::max(layout_error, std::fabs(y_b[n] - y[n]) / std::max(1.0, static_cast<double>(std::fabs(y[n]))));
  for (std::size_t i = 0; i < product.size(); ++i)
    layout_error = std::max(layout_error, std::fabs(product_b[i] - product[i]) / std::max(1.0, static_cast<double>(std::fabs(product[i]))));
  std::printf("layout B (matmul_rows16_cpu, %s kernel): max relative difference %.2e from layout A (GEMV and GEMM)\n",
              falcon_onnx::matmul_rows16_cpu_kernel(), layout_error);
  if (layout_error > 1e-4) return 1;
  for (int threads : thread_counts) {
    const falcon_onnx::ThreadPool& pool = falcon_onnx::ThreadPool::shared(threads);
    double gemv_seconds = 1e30, gemm_seconds = 1e30;
    for (int repeat = 0; repeat < 20; ++repeat) {
      auto start = std::chrono::steady_clock::now();
      for (const auto& m : matrices_b) falcon_onnx::matmul_rows16_cpu(one, input.data(), m.bytes.data(), m.scales.data(), y_b.data(), pool);
      gemv_seconds = std::min(gemv_seconds, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      start = std::chrono::steady_clock::now();
      for (int i = 0; i < gemm_matrices; ++i)
        falcon_onnx::matmul_rows16_cpu(many, batch_input.data(), matrices_b[i].bytes.data(), matrices_b[i].scales.data(), product_b.data(), pool);
      gemm_seconds = std::min(gemm_seconds, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    const double macs = static_cast<double>(gemm_matrices) * kTokens * kRows * kColumns;
    std::printf("%d thread%s, layout B: GEMV %.1f us per matrix, %.1f GB/s; GEMM %.0f us per matrix and %d tokens, %.0f G "
                "multiply-adds/s\n",
                threads, threads == 1 ? " " : "s", gemv_seconds / kMatrices * 1e6, kMatrices * bytes_per_matrix / gemv_seconds / 1e9,
                gemm_seconds / gemm_matrices * 1e6, kTokens, macs / gemm_seconds / 1e9);
  }
  return 0;
}
