// falcon_onnx::matmul_int4_cpu: y = x · Wᵀ for int4 weights in blocks of 32 (symmetric, zero point 8, one float
// scale per block), with x quantized to int8 per block of 32 on the fly (as MatMulNBits' accuracy_level 4).
//
// Weight layout ("rows16"): the output rows are taken 16 at a time (the last group padded with zero scales).
// For each group g and each block b of 32 columns, 256 bytes: four runs of 64 bytes; run j holds, for the 16
// rows in order (4 bytes each), columns 8j..8j+3 of the block in the low nibbles and 8j+4..8j+7 in the high
// ones (code = round(w / scale) + 8, in [0, 15]). Scales: [groups][blocks][16] floats. With AVX-512 VNNI one
// vpdpbusd then multiplies 4 columns of 16 rows by a broadcast of 4 activation bytes, and the per-block
// conversion and scaling is shared by 16 rows (custom-ops/tests/int4_gemv_probe.cpp measured the layouts).
#pragma once

#include <cstddef>
#include <cstdint>

#include "falcon_onnx/mamba2_mixer.h"

namespace falcon_onnx {

constexpr int kInt4Block = 32;
constexpr int kInt4RowGroup = 16;

struct MatMulInt4Shape {
  int64_t tokens = 0;   // rows of x and y
  int64_t inputs = 0;   // K: columns of x, a multiple of 32
  int64_t outputs = 0;  // N: columns of y
  int64_t groups() const { return (outputs + kInt4RowGroup - 1) / kInt4RowGroup; }
  int64_t blocks() const { return inputs / kInt4Block; }
  std::size_t packed_bytes() const { return static_cast<std::size_t>(groups() * blocks()) * 256; }
  std::size_t scale_count() const { return static_cast<std::size_t>(groups() * blocks()) * kInt4RowGroup; }
};

// Throws std::invalid_argument when the shape cannot be run.
void matmul_int4_cpu(const MatMulInt4Shape& shape, const float* x, const uint8_t* packed, const float* scales,
                     float* y, const ParallelRunner& runner);

// Which kernel runs: "avx512vnni", "avx2" or "generic"; FALCON_ONNX_CPU_ISA=avx2 or =generic asks for a lower one.
const char* matmul_int4_cpu_kernel();

}  // namespace falcon_onnx
