// A plain packer of matmul_int4.h's weight layout for the test programs (independent of the exporter's): each
// block of 32 weights quantized with scale absmax / 7, codes round(w / scale) clamped to [-8, 7], then laid out
// 16 rows at a time. Also returns the signed codes and row-major scales, for references.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "falcon_onnx/matmul_int4.h"

namespace falcon_onnx::test {

struct Rows16Weights {
  std::vector<uint8_t> bytes;     // [groups][blocks][4][16][4]
  std::vector<float> scales;      // [groups][blocks][16]
  std::vector<int> codes;         // [outputs][inputs], signed
  std::vector<float> row_scales;  // [outputs][blocks]
};

// w is [outputs][inputs] row-major.
inline Rows16Weights pack_rows16(const std::vector<float>& w, const MatMulInt4Shape& s) {
  const int64_t blocks = s.blocks();
  Rows16Weights p{std::vector<uint8_t>(s.packed_bytes(), 0x88), std::vector<float>(s.scale_count(), 0.0f),
                  std::vector<int>(static_cast<std::size_t>(s.outputs * s.inputs)),
                  std::vector<float>(static_cast<std::size_t>(s.outputs * blocks))};
  for (int64_t n = 0; n < s.outputs; ++n)
    for (int64_t b = 0; b < blocks; ++b) {
      float absmax = 0;
      for (int i = 0; i < kInt4Block; ++i) absmax = std::max(absmax, std::fabs(w[n * s.inputs + b * kInt4Block + i]));
      const float scale = absmax / 7.0f;
      p.row_scales[n * blocks + b] = scale;
      p.scales[((n / 16) * blocks + b) * 16 + n % 16] = scale;
      for (int i = 0; i < kInt4Block; ++i) {
        const float v = w[n * s.inputs + b * kInt4Block + i];
        p.codes[n * s.inputs + b * kInt4Block + i] = std::clamp(scale > 0 ? static_cast<int>(std::lround(v / scale)) : 0, -8, 7);
      }
    }
  for (int64_t n = 0; n < s.outputs; ++n)
    for (int64_t b = 0; b < blocks; ++b)
      for (int j = 0; j < 4; ++j)
        for (int i = 0; i < 4; ++i) {
          const int64_t k = b * kInt4Block + 8 * j + i;
          const int low = p.codes[n * s.inputs + k] + 8, high = p.codes[n * s.inputs + k + 4] + 8;
          p.bytes[(((n / 16) * blocks + b) * 4 + j) * 64 + (n % 16) * 4 + i] = static_cast<uint8_t>(low | high << 4);
        }
  return p;
}

}  // namespace falcon_onnx::test
