// The CPU mixer's loops for AVX-512 F/VL/BW/DQ (x86-64-v4), compiled with -mavx512f ... or /arch:AVX512.
#define FALCON_ONNX_ISA avx512
#define FALCON_ONNX_SCAN_BLOCK 64
#define FALCON_ONNX_TABLE avx512_kernels
#include "cpu_kernels_impl.h"
