// SwiGLU's activation (swiglu.h) through the mixer's gate kernel: y = up, then y *= SiLU(gate) in place, token by
// token; a prefill runs tasks of tokens in parallel, a decode step's single token runs on the calling thread.
#include "falcon_onnx/swiglu.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

#include "cpu_kernels.h"

namespace falcon_onnx {
namespace {

constexpr int64_t kTokensPerTask = 16;

struct Call {
  const SwiGluShape* shape;
  const float* gate_up;
  float* y;
  const cpu::KernelTable* kernels;
};

void run_tokens(void* context, std::size_t task) {
  const Call& c = *static_cast<const Call*>(context);
  const int64_t width = c.shape->width, first = static_cast<int64_t>(task) * kTokensPerTask;
  for (int64_t token = first; token < std::min(first + kTokensPerTask, c.shape->tokens); ++token) {
    const float* gate = c.gate_up + token * 2 * width;
    float* y = c.y + token * width;
    std::memcpy(y, gate + width, static_cast<std::size_t>(width) * sizeof(float));
    cpu::GateArgs args;
    args.z = gate;
    args.y = y;
    args.width = width;
    args.mode = cpu::NormMode::None;
    c.kernels->gate_norm(args);
  }
}

}  // namespace

void swiglu_cpu(const SwiGluShape& s, const float* gate_up, float* y, const ParallelRunner& runner) {
  if (s.tokens < 0 || s.width <= 0)
    throw std::invalid_argument("SwiGlu: gate_up needs a positive, even last dimension (width " + std::to_string(s.width) + ")");
  Call call{&s, gate_up, y, &cpu::best_kernels()};
  const std::size_t tasks = static_cast<std::size_t>((s.tokens + kTokensPerTask - 1) / kTokensPerTask);
  if (tasks == 1)
    run_tokens(&call, 0);
  else if (tasks > 1)
    runner.run(tasks, run_tokens, &call);
}

}  // namespace falcon_onnx
