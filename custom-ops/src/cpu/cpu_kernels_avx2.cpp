// The CPU mixer's loops for AVX2 + FMA (x86-64-v3), compiled with -mavx2 -mfma or /arch:AVX2.
#define FALCON_ONNX_ISA avx2
#define FALCON_ONNX_SCAN_BLOCK 32
#define FALCON_ONNX_TABLE avx2_kernels
#include "cpu_kernels_impl.h"
