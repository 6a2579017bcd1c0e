// The CPU mixer's loops for the baseline of the target (SSE2 on x86-64, NEON on arm64). 32 columns per scan
// step: with 16 the compiler vectorises the loop over n instead, with strided gathers, 4x slower.
#define FALCON_ONNX_ISA generic
#define FALCON_ONNX_SCAN_BLOCK 32
#define FALCON_ONNX_TABLE generic_kernels
#include "cpu_kernels_impl.h"
