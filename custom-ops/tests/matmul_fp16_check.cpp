// matmul_fp16_check: falcon_onnx::matmul_fp16_cpu against a double-precision reference that decodes the float16
// weights with ldexp (independently of the kernel's bit manipulation and F16C), over shapes with one and many
// activation rows, weight-row counts that are not a multiple of the kernel's tile of 4, widths that are not a
// multiple of its 16 or 8 lanes, and subnormal, largest and signed-zero weights. Run it once more with
// FALCON_ONNX_CPU_ISA=avx2 and =generic for the other kernels. Exit code 1 on a mismatch.
//   matmul_fp16_check --time   also times the 0.5B lm_head shape (decode: GB/s of weights; prefill: GFLOP/s).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "falcon_onnx/matmul_fp16.h"
#include "../src/thread_pool.h"

namespace {

using falcon_onnx::MatMulFp16Shape;

double decode_half(uint16_t h) {
  const int exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
  const double magnitude = exponent == 0 ? std::ldexp(mantissa, -24) : std::ldexp(1024 + mantissa, exponent - 25);
  return (h & 0x8000) ? -magnitude : magnitude;
}

std::vector<uint16_t> random_halves(std::size_t count, std::mt19937& random) {
  // Exponents 8..16 (|w| from 2^-7 to 4) and any mantissa and sign, then a few special values.
  std::uniform_int_distribution<int> exponent(8, 16), mantissa(0, 1023), sign(0, 1);
  std::vector<uint16_t> w(count);
  for (uint16_t& v : w) v = static_cast<uint16_t>((sign(random) << 15) | (exponent(random) << 10) | mantissa(random));
  const uint16_t special[] = {0x0001, 0x03ff, 0x8001, 0x0400, 0x7bff, 0xfbff, 0x8000, 0x0000};
  for (std::size_t i = 0; i < std::size(special) && i * 7 < count; ++i) w[i * 7] = special[i];
  return w;
}

int check(const MatMulFp16Shape& s, std::mt19937& random, const falcon_onnx::ParallelRunner& runner) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const std::vector<uint16_t> w = random_halves(static_cast<std::size_t>(s.outputs * s.inputs), random);
  std::vector<float> x(static_cast<std::size_t>(s.tokens * s.inputs));
  for (float& v : x) v = normal(random);
  std::vector<float> y(static_cast<std::size_t>(s.tokens * s.outputs), -1.0f);
  falcon_onnx::matmul_fp16_cpu(s, x.data(), w.data(), y.data(), runner);
  double worst = 0;
  for (int64_t t = 0; t < s.tokens; ++t)
    for (int64_t n = 0; n < s.outputs; ++n) {
      double expected = 0, magnitude = 0;
      for (int64_t k = 0; k < s.inputs; ++k) {
        const double term = decode_half(w[n * s.inputs + k]) * x[t * s.inputs + k];
        expected += term;
        magnitude += std::fabs(term);
      }
      // float32 accumulation: the error is relative to the sum of the terms' sizes, not to the (cancelling) result.
      worst = std::max(worst, std::fabs(y[t * s.outputs + n] - expected) / std::max(magnitude, 1e-30));
    }
  const bool ok = worst <= 1e-5;
  std::printf("  tokens %4lld  K %5lld  N %5lld: worst error %.2e of the terms' magnitude %s\n", static_cast<long long>(s.tokens),
              static_cast<long long>(s.inputs), static_cast<long long>(s.outputs), worst, ok ? "ok" : "FAIL");
  return ok ? 0 : 1;
}

void time_lm_head(const falcon_onnx::ParallelRunner& runner, int threads) {
  std::mt19937 random(3);
  for (int64_t tokens : {int64_t{1}, int64_t{128}}) {
    const MatMulFp16Shape s{tokens, 1024, 32784};
    const std::vector<uint16_t> w = random_halves(static_cast<std::size_t>(s.outputs * s.inputs), random);
    std::vector<float> x(static_cast<std::size_t>(s.tokens * s.inputs), 0.5f), y(static_cast<std::size_t>(s.tokens * s.outputs));
    const int calls = tokens == 1 ? 50 : 3;
    falcon_onnx::matmul_fp16_cpu(s, x.data(), w.data(), y.data(), runner);
    double best = 1e30;
    for (int i = 0; i < calls; ++i) {
      const auto start = std::chrono::steady_clock::now();
      falcon_onnx::matmul_fp16_cpu(s, x.data(), w.data(), y.data(), runner);
      best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    const double bytes = static_cast<double>(w.size()) * 2, flops = 2.0 * static_cast<double>(w.size()) * static_cast<double>(tokens);
    std::printf("  %d thread%s, tokens %4lld K 1024 N 32784: %.3f ms, %.1f GB/s of weights, %.1f GFLOP/s\n", threads,
                threads == 1 ? "" : "s", static_cast<long long>(tokens), best * 1e3, bytes / best / 1e9, flops / best / 1e9);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::printf("matmul_fp16_cpu (%s kernel) against the double reference\n", falcon_onnx::matmul_fp16_cpu_kernel());
  std::mt19937 random(11);
  const MatMulFp16Shape shapes[] = {{1, 64, 16}, {1, 1024, 3352}, {3, 96, 40}, {8, 1024, 768}, {13, 512, 1031},
                                    {130, 256, 100}, {9, 2048, 17}, {0, 64, 16}, {1, 7, 3}, {5, 23, 9},
                                    {2, 1000, 65}, {6, 136, 130}, {70, 72, 6}, {1, 4096, 5}};
  int failures = 0;
  for (int threads : {1, 2}) {
    const falcon_onnx::ThreadPool& pool = falcon_onnx::ThreadPool::shared(threads);
    std::printf(" %d thread%s\n", threads, threads == 1 ? "" : "s");
    for (const MatMulFp16Shape& s : shapes) failures += check(s, random, pool);
  }
  if (argc > 1 && std::strcmp(argv[1], "--time") == 0)
    for (int threads : {1, 2}) time_lm_head(falcon_onnx::ThreadPool::shared(threads), threads);
  std::printf("%s\n", failures ? "FAILED" : "all ok");
  return failures ? 1 : 0;
}
