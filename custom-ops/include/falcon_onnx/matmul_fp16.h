// falcon_onnx::matmul_fp16_cpu: y = x · Wᵀ for a float16 weight W [N, K], stored row by row as Hugging Face stores
// an lm_head or an embedding table, with float32 activations and float32 arithmetic. It keeps a weight at twice
// the precision of int8 for half the bytes of float32, where ONNX Runtime's CPU MatMul has no float16 kernel on
// x86-64: in an int8 export, the vocabulary projection is the one weight whose rounding moves the logits directly
// (see falcon-onnx's PrecisionPolicy).
#pragma once

#include <cstdint>

#include "falcon_onnx/mamba2_mixer.h"

namespace falcon_onnx {

struct MatMulFp16Shape {
  int64_t tokens = 0;   // rows of x and y
  int64_t inputs = 0;   // K: columns of x and of W
  int64_t outputs = 0;  // N: rows of W, columns of y
};

// Throws std::invalid_argument when the shape cannot be run. weights: IEEE binary16 bit patterns.
void matmul_fp16_cpu(const MatMulFp16Shape& shape, const float* x, const uint16_t* weights, float* y,
                     const ParallelRunner& runner);

// Which kernel runs: "avx512", "avx2" or "generic"; FALCON_ONNX_CPU_ISA=avx2 or =generic asks for a lower one.
const char* matmul_fp16_cpu_kernel();

}  // namespace falcon_onnx
