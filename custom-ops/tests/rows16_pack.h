// A plain packer of matmul_rows16.h's weight layout for the test programs (independent of the exporter's code, with
// its convention): each block of 32 weights quantized with scale e / -z, e the weight of largest magnitude and z the
// zero point (8 or 128), so that e gets the most negative code (-8 or -128, stored as 0); codes round(w / scale)
// clamped to [-z, z - 1], laid out 16 rows at a time with z added. Also returns the signed codes and row-major
// scales, for references.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "falcon_onnx/matmul_rows16.h"

namespace falcon_onnx::test {

struct Rows16Weights {
  std::vector<uint8_t> bytes;     // [groups][blocks][64 * bits]
  std::vector<float> scales;      // [groups][blocks][16]
  std::vector<int> codes;         // [outputs][inputs], signed
  std::vector<float> row_scales;  // [outputs][blocks]
};

// w is [outputs][inputs] row-major.
inline Rows16Weights pack_rows16(const std::vector<float>& w, const Rows16Shape& s) {
  const int64_t blocks = s.blocks();
  const int zero_point = s.zero_point();
  // Padding rows: code zero point in every place (0x88 for int4, 0x80 for int8).
  Rows16Weights p{std::vector<uint8_t>(s.packed_bytes(), s.bits == 4 ? 0x88 : 0x80), std::vector<float>(s.scale_count(), 0.0f),
                  std::vector<int>(static_cast<std::size_t>(s.outputs * s.inputs)),
                  std::vector<float>(static_cast<std::size_t>(s.outputs * blocks))};
  for (int64_t n = 0; n < s.outputs; ++n)
    for (int64_t b = 0; b < blocks; ++b) {
      float extreme = 0;
      for (int i = 0; i < kRows16Block; ++i) {
        const float v = w[n * s.inputs + b * kRows16Block + i];
        if (std::fabs(v) > std::fabs(extreme)) extreme = v;
      }
      const float scale = extreme / static_cast<float>(-zero_point);
      p.row_scales[n * blocks + b] = scale;
      p.scales[((n / 16) * blocks + b) * 16 + n % 16] = scale;
      for (int i = 0; i < kRows16Block; ++i) {
        const float v = w[n * s.inputs + b * kRows16Block + i];
        p.codes[n * s.inputs + b * kRows16Block + i] = std::clamp(scale != 0 ? static_cast<int>(std::lround(v / scale)) : 0, -zero_point, zero_point - 1);
      }
    }
  for (int64_t n = 0; n < s.outputs; ++n)
    for (int64_t b = 0; b < blocks; ++b) {
      uint8_t* block = p.bytes.data() + ((n / 16) * blocks + b) * s.block_bytes() + (n % 16) * 4;
      const int* codes = p.codes.data() + n * s.inputs + b * kRows16Block;
      if (s.bits == 8) {
        for (int column = 0; column < kRows16Block; ++column) block[(column / 4) * 64 + column % 4] = static_cast<uint8_t>(codes[column] + zero_point);
        continue;
      }
      for (int j = 0; j < 4; ++j)
        for (int i = 0; i < 4; ++i) {
          const int low = codes[8 * j + i] + zero_point, high = codes[8 * j + 4 + i] + zero_point;
          block[j * 64 + i] = static_cast<uint8_t>(low | high << 4);
        }
    }
  return p;
}

}  // namespace falcon_onnx::test
