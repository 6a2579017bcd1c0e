// matmul_rows16_check: falcon_onnx::matmul_rows16_cpu (int4 and int8 weights) against a plain double-precision
// reference of the same math (weights packed by rows16_pack.h, independently of the exporter, into the layout of
// matmul_rows16.h; activations quantized per block as the kernel does), over shapes with one and many tokens,
// padded row groups and token counts that are not a multiple of the kernel's group of 8. Run it once more with
// FALCON_ONNX_CPU_ISA=avx2 and =generic for the other kernels. Exit code 1 on a mismatch.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#include "falcon_onnx/matmul_rows16.h"
#include "../src/thread_pool.h"
#include "rows16_pack.h"

namespace {

using falcon_onnx::kRows16Block;
using falcon_onnx::Rows16Shape;

int check(const Rows16Shape& s, std::mt19937& random, const falcon_onnx::ParallelRunner& runner) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> w(static_cast<std::size_t>(s.outputs * s.inputs)), x(static_cast<std::size_t>(s.tokens * s.inputs));
  for (float& v : w) v = 0.02f * normal(random);
  for (float& v : x) v = normal(random) * (1.0f + 4.0f * std::fabs(normal(random)));
  if (!x.empty()) x[0] = 0.0f;  // a zero and a block of zeros: scale 0
  if (x.size() >= static_cast<std::size_t>(2 * kRows16Block)) std::fill(x.begin() + kRows16Block, x.begin() + 2 * kRows16Block, 0.0f);
  const falcon_onnx::test::Rows16Weights p = falcon_onnx::test::pack_rows16(w, s);
  std::vector<float> y(static_cast<std::size_t>(s.tokens * s.outputs), -1.0f);
  falcon_onnx::matmul_rows16_cpu(s, x.data(), p.bytes.data(), p.scales.data(), y.data(), runner);
  double worst = 0;
  for (int64_t t = 0; t < s.tokens; ++t) {
    // The activations as the kernel quantizes them: per block, absmax / 127, round to nearest even.
    std::vector<double> a(static_cast<std::size_t>(s.inputs));
    for (int64_t b = 0; b < s.blocks(); ++b) {
      float absmax = 0;
      for (int i = 0; i < kRows16Block; ++i) absmax = std::max(absmax, std::fabs(x[t * s.inputs + b * kRows16Block + i]));
      const float inverse = absmax > 0 ? 127.0f / absmax : 0.0f;
      for (int i = 0; i < kRows16Block; ++i)
        a[b * kRows16Block + i] = std::nearbyint(x[t * s.inputs + b * kRows16Block + i] * inverse) * (absmax / 127.0f);
    }
    for (int64_t n = 0; n < s.outputs; ++n) {
      double expected = 0;
      for (int64_t k = 0; k < s.inputs; ++k) expected += p.codes[n * s.inputs + k] * static_cast<double>(p.row_scales[n * s.blocks() + k / kRows16Block]) * a[k];
      worst = std::max(worst, std::fabs(y[t * s.outputs + n] - expected) / std::max(1.0, std::fabs(expected)));
    }
  }
  const bool ok = worst <= 1e-5;
  std::printf("  tokens %4lld  K %5lld  N %5lld: worst relative error %.2e %s\n", static_cast<long long>(s.tokens),
              static_cast<long long>(s.inputs), static_cast<long long>(s.outputs), worst, ok ? "ok" : "FAIL");
  return ok ? 0 : 1;
}

}  // namespace

int main() {
  std::printf("matmul_rows16_cpu (%s kernel) against the double reference\n", falcon_onnx::matmul_rows16_cpu_kernel());
  std::mt19937 random(7);
  const Rows16Shape shapes[] = {{1, 64, 16}, {1, 1024, 3352}, {3, 96, 40}, {8, 1024, 768}, {13, 512, 1024},
                                {128, 256, 100}, {9, 2048, 17}, {0, 64, 16},
                                {2, 64, 32}, {6, 128, 48}, {7, 96, 16}, {12, 256, 64}};
  int failures = 0;
  for (int bits : {4, 8})
    for (int threads : {1, 2}) {
      const falcon_onnx::ThreadPool& pool = falcon_onnx::ThreadPool::shared(threads);
      std::printf(" int%d, %d thread%s\n", bits, threads, threads == 1 ? "" : "s");
      for (Rows16Shape s : shapes) {
        s.bits = bits;
        failures += check(s, random, pool);
      }
    }
  std::printf("%s\n", failures ? "FAILED" : "all ok");
  return failures ? 1 : 0;
}
