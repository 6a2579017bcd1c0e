// The CPU Mamba2Mixer: the call is cut into blocks of tokens; each block runs three parallel phases:
//   1. conv + SiLU + mask and dt/decay, per (row, run of tokens), into a scratch block
//   2. the recurrence, per (row, head), a block of state columns at a time so that it stays in L1/L2
//   3. gate and grouped RMSNorm, per (row, token), in place on y
// Why a sequential scan and not the chunked (SSD) form: per token and head the scan does 3*N*P flops on a
// state that stays in cache, while the chunked form does about as many (C.B^T, the masked L x L product,
// C.S and B^T.X) plus exponentials of an L x L decay matrix; on a CPU both are bound by the same FMA units,
// so the chunked form only pays where a GEMM library would run its products much faster than these loops.
// The conv state is read once at the start and written at the end and every state column is owned by one
// task, so past and present may be the same buffers.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <vector>

#include "cpu/cpu_kernels.h"
#include "falcon_onnx/mamba2_mixer.h"
#include "mamba2_mixer_cpu_internal.h"
#include "thread_pool.h"

namespace falcon_onnx {
namespace {

using cpu::KernelTable;

template <typename Body>
void parallel_for(const ParallelRunner& runner, std::size_t count, const Body& body) {
  if (count == 0) return;
  if (count == 1) {  // not worth a trip through the pool (decode: one row's conv, one row's gate)
    body(0);
    return;
  }
  runner.run(count, [](void* context, std::size_t i) { (*static_cast<const Body*>(context))(i); },
             const_cast<Body*>(&body));
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Tokens per block: enough that the three parallel phases cost little next to the work, few enough that
// the block's conv output (tokens * conv_dim floats per row) stays in L2.
int64_t tokens_per_block(int64_t batch) { return std::clamp<int64_t>(512 / std::max<int64_t>(batch, 1), 16, 256); }

// The per-call scratch of the calling thread, reused between calls to avoid page faults on every call.
std::vector<float>& thread_scratch() {
  thread_local std::vector<float> scratch;
  return scratch;
}

// Carves the scratch buffer into the arrays of one call.
struct Scratch {
  float* weights_t;   // [K][conv_dim]
  float* bias;        // [conv_dim]
  float* a;           // [H]
  float* history_t;   // [batch][K-1][conv_dim], copies of past_conv before anything is written
  float* token_mask;  // [batch][T]
  float* xbc;         // [batch][block][conv_dim]
  float* dt;          // [batch][block][H]
  float* decay;       // [batch][block][H]
};

Scratch carve_scratch(const Mamba2Shape& s, int64_t block) {
  const int64_t cd = s.conv_dim(), k = s.conv_kernel, h = s.heads, b = s.batch;
  const int64_t sizes[] = {k * cd, cd, h, b * (k - 1) * cd, b * s.tokens, b * block * cd, b * block * h, b * block * h};
  int64_t total = 0;
  for (int64_t size : sizes) total += size;
  std::vector<float>& buffer = thread_scratch();
  if (static_cast<int64_t>(buffer.size()) < total) buffer.resize(total);
  float* next = buffer.data();
  float* parts[8];
  for (int i = 0; i < 8; ++i) {
    parts[i] = next;
    next += sizes[i];
  }
  return Scratch{parts[0], parts[1], parts[2], parts[3], parts[4], parts[5], parts[6], parts[7]};
}

void prepare_weights(const Mamba2Shape& s, const Mamba2Tensors<float>& io, const Scratch& w) {
  const int64_t cd = s.conv_dim(), k = s.conv_kernel;
  for (int64_t c = 0; c < cd; ++c)
    for (int64_t j = 0; j < k; ++j) w.weights_t[j * cd + c] = io.conv_weight[c * k + j];
  for (int64_t c = 0; c < cd; ++c) w.bias[c] = io.conv_bias ? io.conv_bias[c] : 0.0f;
  for (int64_t h = 0; h < s.heads; ++h) w.a[h] = -std::exp(io.a_log[h]);
}

void read_inputs_that_may_be_overwritten(const Mamba2Shape& s, const Mamba2Tensors<float>& io, const Scratch& w) {
  const int64_t cd = s.conv_dim(), history = s.conv_kernel - 1;
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t c = 0; c < cd; ++c)
      for (int64_t j = 0; j < history; ++j)
        w.history_t[(b * history + j) * cd + c] = io.past_conv[(b * cd + c) * history + j];
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t t = 0; t < s.tokens; ++t)
      w.token_mask[b * s.tokens + t] = io.attention_mask[b * s.total + (s.total - s.tokens) + t] != 0 ? 1.0f : 0.0f;
}

// present_conv = the last K-1 columns of [past_conv | this call's raw inputs].
void write_conv_state(const Mamba2Shape& s, const Mamba2Tensors<float>& io, const Scratch& w) {
  const int64_t cd = s.conv_dim(), history = s.conv_kernel - 1, width = s.projected_width();
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t j = 0; j < history; ++j) {
      const int64_t source = s.tokens - history + j;
      const float* column = source >= 0 ? io.projected + (b * s.tokens + source) * width + s.inner()
                                         : w.history_t + (b * history + history + source) * cd;
      for (int64_t c = 0; c < cd; ++c) io.present_conv[(b * cd + c) * history + j] = column[c];
    }
}

class BlockRunner {
 public:
  BlockRunner(const Mamba2Shape& s, const Mamba2Tensors<float>& io, const ParallelRunner& runner, const Scratch& w,
              const KernelTable& kernels, int64_t block)
      : s_(s), io_(io), runner_(runner), w_(w), k_(kernels), block_(block) {}

  void run_block(int64_t first, int64_t end) const {
    conv_and_time_steps(first, end);
    recurrence(first, end);
    gate(first, end);
  }

 private:
  static constexpr int64_t kConvTokensPerTask = 16;

  void conv_and_time_steps(int64_t first, int64_t end) const {
    const int64_t runs = ceil_div(end - first, kConvTokensPerTask);
    parallel_for(runner_, static_cast<std::size_t>(s_.batch * runs), [&](std::size_t task) {
      const int64_t b = static_cast<int64_t>(task) / runs, run = static_cast<int64_t>(task) % runs;
      const int64_t run_first = first + run * kConvTokensPerTask;
      const int64_t run_end = std::min(end, run_first + kConvTokensPerTask);
      const float* projected = io_.projected + b * s_.tokens * s_.projected_width();
      const float* token_mask = w_.token_mask + b * s_.tokens;
      const int64_t offset = run_first - first;
      cpu::ConvArgs conv;
      conv.projected = projected;
      conv.projected_width = s_.projected_width();
      conv.input_offset = s_.inner();
      conv.channels = s_.conv_dim();
      conv.kernel = s_.conv_kernel;
      conv.weights_t = w_.weights_t;
      conv.bias = w_.bias;
      conv.history_t = w_.history_t + b * (s_.conv_kernel - 1) * s_.conv_dim();
      conv.token_mask = token_mask;
      conv.out = w_.xbc + (b * block_ + offset) * s_.conv_dim();
      k_.conv_silu(conv, run_first, run_end);
      cpu::TimeStepArgs steps;
      steps.projected = projected;
      steps.projected_width = s_.projected_width();
      steps.dt_offset = s_.inner() + s_.conv_dim();
      steps.heads = s_.heads;
      steps.dt_bias = io_.dt_bias;
      steps.a = w_.a;
      steps.dt_min = s_.dt_min;
      // FLT_MAX, not +inf, for "no upper clamp": the loops are compiled for finite values only.
      steps.dt_max = s_.dt_max > 0.0f ? std::min(s_.dt_max, std::numeric_limits<float>::max())
                                      : std::numeric_limits<float>::max();
      steps.token_mask = token_mask;
      steps.dt = w_.dt + (b * block_ + offset) * s_.heads;
      steps.decay = w_.decay + (b * block_ + offset) * s_.heads;
      k_.time_steps(steps, run_first, run_end);
    });
  }

  // One task per (row, head): tasks that split a head's columns would write the same cache lines of its
  // state rows (a 256-byte row is not always line-aligned) and of y for every token.
  void recurrence(int64_t first, int64_t end) const {
    const int64_t heads_per_group = s_.heads / s_.groups;
    parallel_for(runner_, static_cast<std::size_t>(s_.batch * s_.heads), [&](std::size_t task) {
      const int64_t b = static_cast<int64_t>(task) / s_.heads, h = static_cast<int64_t>(task) % s_.heads;
      const int64_t g = h / heads_per_group;
      const int64_t state_offset = (b * s_.heads + h) * s_.state_size * s_.head_dim;
      if (first == 0) copy_past_state(state_offset);
      const float* xbc = w_.xbc + b * block_ * s_.conv_dim();
      cpu::ScanArgs scan;
      scan.xbc = xbc;
      scan.xbc_stride = s_.conv_dim();
      scan.x = xbc + h * s_.head_dim;
      scan.b = xbc + s_.inner() + g * s_.state_size;
      scan.c = xbc + s_.inner() + (s_.groups + g) * s_.state_size;
      scan.dt = w_.dt + b * block_ * s_.heads + h;
      scan.decay = w_.decay + b * block_ * s_.heads + h;
      scan.dt_stride = s_.heads;
      scan.token_mask = w_.token_mask + b * s_.tokens + first;
      scan.d = io_.d[h];
      scan.state = io_.present_recurrent + state_offset;
      scan.state_size = s_.state_size;
      scan.head_dim = s_.head_dim;
      scan.y = io_.y + (b * s_.tokens + first) * s_.inner() + h * s_.head_dim;
      scan.y_stride = s_.inner();
      scan.tokens = end - first;
      k_.scan(scan, 0, s_.head_dim);
    });
  }

  // The scan updates present in place; the task that owns a head copies its past just before it reads it,
  // so the copy costs no extra pass over memory for a decode step.
  void copy_past_state(int64_t state_offset) const {
    const float* past = io_.past_recurrent + state_offset;
    float* present = io_.present_recurrent + state_offset;
    if (past != present) std::memcpy(present, past, s_.state_size * s_.head_dim * sizeof(float));
  }

  void gate(int64_t first, int64_t end) const {
    const int64_t tokens = end - first;
    const cpu::NormMode mode = !io_.norm_weight       ? cpu::NormMode::None
                               : s_.norm_before_gate ? cpu::NormMode::NormThenGate
                                                     : cpu::NormMode::GateThenNorm;
    parallel_for(runner_, static_cast<std::size_t>(s_.batch * tokens), [&](std::size_t task) {
      const int64_t b = static_cast<int64_t>(task) / tokens, t = first + static_cast<int64_t>(task) % tokens;
      cpu::GateArgs gate;
      gate.z = io_.projected + (b * s_.tokens + t) * s_.projected_width();
      gate.y = io_.y + (b * s_.tokens + t) * s_.inner();
      gate.norm_weight = io_.norm_weight;
      gate.width = s_.inner();
      gate.groups = s_.groups;
      gate.epsilon = s_.epsilon;
      gate.mode = mode;
      k_.gate_norm(gate);
    });
  }

  const Mamba2Shape& s_;
  const Mamba2Tensors<float>& io_;
  const ParallelRunner& runner_;
  const Scratch& w_;
  const KernelTable& k_;
  int64_t block_;
};

void copy_state_when_no_tokens(const Mamba2Shape& s, const Mamba2Tensors<float>& io) {
  const int64_t conv = s.batch * s.conv_dim() * (s.conv_kernel - 1);
  const int64_t recurrent = s.batch * s.heads * s.state_size * s.head_dim;
  if (io.present_conv != io.past_conv) std::memmove(io.present_conv, io.past_conv, conv * sizeof(float));
  if (io.present_recurrent != io.past_recurrent)
    std::memmove(io.present_recurrent, io.past_recurrent, recurrent * sizeof(float));
}

}  // namespace

void mamba2_mixer_cpu_with(const Mamba2Shape& shape, const Mamba2Tensors<float>& io, const ParallelRunner& runner,
                           const cpu::KernelTable& kernels) {
  if (const char* error = mamba2_shape_error(shape)) throw std::invalid_argument(error);
  if (shape.batch == 0) return;
  if (shape.tokens == 0) {
    copy_state_when_no_tokens(shape, io);
    return;
  }
  const int64_t block = std::min(shape.tokens, tokens_per_block(shape.batch));
  const Scratch scratch = carve_scratch(shape, block);
  prepare_weights(shape, io, scratch);
  read_inputs_that_may_be_overwritten(shape, io, scratch);
  const BlockRunner blocks(shape, io, runner, scratch, kernels, block);
  for (int64_t first = 0; first < shape.tokens; first += block)
    blocks.run_block(first, std::min(shape.tokens, first + block));
  write_conv_state(shape, io, scratch);
}

void mamba2_mixer_cpu(const Mamba2Shape& shape, const Mamba2Tensors<float>& io, const ParallelRunner& runner) {
  mamba2_mixer_cpu_with(shape, io, runner, cpu::best_kernels());
}

void mamba2_mixer_cpu(const Mamba2Shape& shape, const Mamba2Tensors<float>& io, int threads) {
  mamba2_mixer_cpu(shape, io, ThreadPool::shared(threads));
}

}  // namespace falcon_onnx
