// The CUDA part of mamba2_harness (harness_cuda.cu), compiled only into CUDA builds.
#pragma once

#include <cstdio>

namespace falcon_onnx::test {

#if defined(FALCON_ONNX_HARNESS_CUDA)
// Checks the CUDA kernels against the CPU kernel and the reference, then prints their timings. Returns the
// number of failed checks; cpu_threads is for the CPU kernel that gives the expected results of big shapes.
int run_cuda_checks(int cpu_threads);
// Times prefills under a sweep of Mamba2CudaTuning knobs (the numbers behind the shipped defaults), for every
// model head shape or only the one named (e.g. "7B").
int run_cuda_tuning(const char* only_shape);
#else
inline int run_cuda_checks(int) {
  std::fprintf(stderr, "--cuda: this harness was built without CUDA (configure with -DFALCON_ONNX_CUDA=ON)\n");
  return 1;
}
inline int run_cuda_tuning(const char*) { return run_cuda_checks(0); }
#endif

}  // namespace falcon_onnx::test
