// Splits a count into runs of a compile-time size, so that a kernel's loops over rows are unrolled.
#pragma once

#include <cstdint>
#include <type_traits>

namespace falcon_onnx::cpu {

// Calls run(std::integral_constant<int, kMax>{}, first) for each run of kMax items of [first, total), then once with
// the smaller count of the items left: every call has its item count as a compile-time constant.
template <int kMax, typename Run>
void for_runs(int64_t total, Run&& run, int64_t first = 0) {
  for (; first + kMax <= total; first += kMax) run(std::integral_constant<int, kMax>{}, first);
  if constexpr (kMax > 1) {
    if (first < total) for_runs<kMax - 1>(total, run, first);
  }
}

}  // namespace falcon_onnx::cpu
