// falcon_onnx::matmul_rows16_cpu: y = x · Wᵀ for int4 or int8 weights in blocks of 32 (symmetric, one float scale per
// block; codes stored with the zero point 8 or 128 added), with x quantized to int8 per block of 32 on the fly (as
// MatMulNBits' accuracy_level 4). The operators falcon_onnx:MatMulInt4 and MatMulInt8 run it.
//
// Weight layout ("rows16"): the output rows are taken 16 at a time (the last group padded with zero codes and
// scales). For each group g and each block b of 32 columns, 64 * bits bytes in runs of 64 bytes, each run holding
// 4 bytes for each of the 16 rows in order:
//   int4: four runs; run j holds columns 8j..8j+3 of the block in the low nibbles and 8j+4..8j+7 in the high ones
//         (code = round(w / scale) + 8, in [0, 15]);
//   int8: eight runs; run q holds columns 4q..4q+3 (code = round(w / scale) + 128, in [1, 255]).
// Scales: [groups][blocks][16] floats. With AVX-512 VNNI one vpdpbusd then multiplies 4 columns of 16 rows by a
// broadcast of 4 activation bytes, and the per-block conversion and scaling is shared by 16 rows
// (custom-ops/tests/int4_gemv_probe.cpp measured the layouts).
#pragma once

#include <cstddef>
#include <cstdint>

#include "falcon_onnx/mamba2_mixer.h"

namespace falcon_onnx {

constexpr int kRows16Block = 32;  // columns per quantization block
constexpr int kRows16Group = 16;  // rows interleaved

struct Rows16Shape {
  int64_t tokens = 0;   // rows of x and y
  int64_t inputs = 0;   // K: columns of x, a multiple of 32
  int64_t outputs = 0;  // N: columns of y
  int bits = 4;         // 4 or 8
  int64_t groups() const { return (outputs + kRows16Group - 1) / kRows16Group; }
  int64_t blocks() const { return inputs / kRows16Block; }
  int64_t block_bytes() const { return int64_t{64} * bits; }  // one block of one group
  int zero_point() const { return bits == 4 ? 8 : 128; }
  std::size_t packed_bytes() const { return static_cast<std::size_t>(groups() * blocks() * block_bytes()); }
  std::size_t scale_count() const { return static_cast<std::size_t>(groups() * blocks()) * kRows16Group; }
};

// Throws std::invalid_argument when the shape cannot be run.
void matmul_rows16_cpu(const Rows16Shape& shape, const float* x, const uint8_t* packed, const float* scales, float* y,
                       const ParallelRunner& runner);

// Which kernel runs: "avx512vnni", "avx2" or "generic"; FALCON_ONNX_CPU_ISA=avx2 or =generic asks for a lower one.
const char* matmul_rows16_cpu_kernel();

}  // namespace falcon_onnx
