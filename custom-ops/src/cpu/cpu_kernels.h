// The inner loops of the CPU mixer, compiled once per instruction set (cpu_kernels_impl.h) and picked at
// run time (cpu_dispatch.cpp). Everything here works on raw pointers of one batch row, so the threading and
// the bookkeeping stay in mamba2_mixer_cpu.cpp and the loops stay small enough to read their assembly.
#pragma once

#include <cstdint>

namespace falcon_onnx::cpu {

// Causal depthwise conv + SiLU + pad mask for the tokens [first, end) of one batch row.
struct ConvArgs {
  const float* projected = nullptr;  // the row's token 0
  int64_t projected_width = 0;       // W, floats per token in projected
  int64_t input_offset = 0;          // Ds: where x|B|C starts inside a projected token
  int64_t channels = 0;              // conv_dim
  int64_t kernel = 0;                // K
  const float* weights_t = nullptr;  // [K][channels]: the weights transposed so channels are contiguous
  const float* bias = nullptr;       // [channels], zeros when the model has none
  const float* history_t = nullptr;  // [K-1][channels]: the past raw inputs, oldest first
  const float* token_mask = nullptr; // [T] 1 or 0
  float* out = nullptr;              // [end-first][channels]
};

// dt = mask * clamp(softplus(dt_raw + dt_bias)) and decay = exp(dt * A) for the tokens [first, end).
struct TimeStepArgs {
  const float* projected = nullptr;
  int64_t projected_width = 0;
  int64_t dt_offset = 0;             // 2*Ds + 2*G*N
  int64_t heads = 0;
  const float* dt_bias = nullptr;    // [H]
  const float* a = nullptr;          // [H], A = -exp(A_log)
  float dt_min = 0.0f;
  float dt_max = 0.0f;               // FLT_MAX when there is no upper clamp
  const float* token_mask = nullptr; // [T]
  float* dt = nullptr;               // [end-first][H]
  float* decay = nullptr;            // [end-first][H]
};

// The SSD recurrence of one head over a range of tokens, for the state columns [p_begin, p_begin+p_count).
// The state is updated in place: the caller copies past into present first when they differ.
struct ScanArgs {
  const float* xbc = nullptr;        // [tokens][xbc_stride], post-conv x|B|C
  int64_t xbc_stride = 0;
  const float* x = nullptr;          // this head's x inside an xbc row
  const float* b = nullptr;          // this head's group's B inside an xbc row
  const float* c = nullptr;          // ... and C
  const float* dt = nullptr;         // [tokens][dt_stride], this head's column
  const float* decay = nullptr;      // same layout
  int64_t dt_stride = 0;
  const float* token_mask = nullptr; // [tokens]
  float d = 0.0f;                    // D[h]
  float* state = nullptr;            // [N][P]
  int64_t state_size = 0;            // N
  int64_t head_dim = 0;              // P
  float* y = nullptr;                // [tokens][y_stride], this head's first channel
  int64_t y_stride = 0;
  int64_t tokens = 0;
};

enum class NormMode { None, GateThenNorm, NormThenGate };

// Gate and grouped RMSNorm of one token, in place on y.
struct GateArgs {
  const float* z = nullptr;          // [width]
  float* y = nullptr;                // [width]
  const float* norm_weight = nullptr;
  int64_t width = 0;                 // Ds
  int64_t groups = 0;
  float epsilon = 0.0f;
  NormMode mode = NormMode::None;
};

struct KernelTable {
  const char* name;
  void (*conv_silu)(const ConvArgs&, int64_t first, int64_t end);
  void (*time_steps)(const TimeStepArgs&, int64_t first, int64_t end);
  void (*scan)(const ScanArgs&, int64_t p_begin, int64_t p_count);
  void (*gate_norm)(const GateArgs&);
};

// One table per instruction set compiled into the library; avx2/avx512 exist only on x86-64 builds.
const KernelTable& generic_kernels();
const KernelTable& avx2_kernels();
const KernelTable& avx512_kernels();

// The best table this processor runs; FALCON_ONNX_CPU_ISA=generic|avx2|avx512 asks for a lower one.
const KernelTable& best_kernels();
// Every table this processor runs, for the tests.
int supported_kernels(const KernelTable** out, int capacity);

}  // namespace falcon_onnx::cpu
