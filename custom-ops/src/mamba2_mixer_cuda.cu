// CUDA kernels of the Mamba2Mixer (see mamba2_mixer_cuda.cuh for the launch plan, mamba2_mixer.h for the
// semantics). Written for CUDA 11.8 and later, sm_80 and newer; fp32 arithmetic throughout, states float.
//
// Work split of the recurrence: a thread owns one state column p of one head and kRowsPerThread rows n of it,
// in registers, for the whole call; a warp owns 32 consecutive columns (coalesced 128-byte state rows), the
// warps of a block consecutive row ranges. y = C.S sums over rows, so each warp writes its partial sum per
// token to shared memory and the block adds them up; blocks that share columns (splits of N, used when the
// grid would otherwise leave multiprocessors idle) write separate partial y that the gate kernel adds.
// Why not the tensor-core SSD form: its products would run in TF32 or 16-bit operands, an error of ~1e-3
// where the fp32 contract is checked at 1e-4, and it does no fewer flops than this scan per token.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_pipeline.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>

#include "mamba2_mixer_cuda.cuh"

namespace falcon_onnx {
namespace {

constexpr int kWarp = 32;
constexpr int kRowsPerThread = 16;
constexpr int kMaxHistory = static_cast<int>(kMaxConvKernel) - 1;
constexpr int kConvThreads = 128;
constexpr int kConvTokensPerBlock = 32;
constexpr int kGateThreads = 256;
// A decode step has one row per batch row to gate and normalise, each as wide as the inner dimension: one
// wide block per row, each thread keeping its few values in registers between the sum of squares and the
// output.
constexpr int kDecodeGateThreads = 1024;
constexpr int kGateCachedValues = 8;
constexpr int kMaxBlockRows = 16 * kRowsPerThread;  // 16 warps, 512 threads
// Dynamic shared memory above 48 kB must be opted into per kernel (cudaFuncSetAttribute); sm_86/89 allow
// 99 kB a block, A100 163 kB, H100 227 kB.
constexpr std::size_t kSharedWithoutOptIn = 48 * 1024;

// ---- element types ----
template <typename T>
struct DeviceTypeOf {
  using type = T;
};
template <>
struct DeviceTypeOf<Float16Bits> {
  using type = __half;
};
template <>
struct DeviceTypeOf<BFloat16Bits> {
  using type = __nv_bfloat16;
};

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T>
__device__ __forceinline__ T from_float(float v);
template <>
__device__ __forceinline__ float from_float<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ __half from_float<__half>(float v) {
  return __float2half_rn(v);
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

// ---- parameters shared by every kernel of a call ----
enum NormMode : int { kNoNorm = 0, kGateThenNorm = 1, kNormThenGate = 2 };

template <typename T>
struct Params {
  int batch, tokens, total, heads, head_dim, groups, state_size, conv_kernel;
  int inner, conv_dim, width, heads_per_group;
  int norm_mode;
  float epsilon, dt_min, dt_max;
  Mamba2Tensors<T> io;  // the call's inputs and outputs, activations in the device type
  // workspace
  float* xbc;        // [B][T][conv_dim], post-conv x|B|C (prefill)
  float2* steps;     // [B][T][H]: (dt, exp(dt * A)), dt masked and clamped (prefill)
  float* y_partial;  // [splits][B][T][Ds]
  float* segment_states;   // [B][H][segments][N][P]: a segment's own end state, then the state it starts from
  float* segment_dt_sums;  // [B][H][segments]: sum of dt over the segment
  // work split
  int splits, rows_per_split, warps, chunk, segments, segment_length;
};

__device__ __forceinline__ float silu(float x) { return x / (1.0f + expf(-x)); }
__device__ __forceinline__ float softplus(float x) { return x > 20.0f ? x : log1pf(expf(x)); }

template <typename T>
__device__ __forceinline__ float token_mask(const Params<T>& p, int b, int t) {
  return p.io.attention_mask[static_cast<long long>(b) * p.total + (p.total - p.tokens) + t] != 0 ? 1.0f : 0.0f;
}

// mask * clamp(softplus(dt_raw + dt_bias)); dt_max is +inf when there is no upper clamp.
template <typename T>
__device__ __forceinline__ float time_step(const Params<T>& p, int b, int t, int h) {
  const long long at = (static_cast<long long>(b) * p.tokens + t) * p.width + p.inner + p.conv_dim + h;
  const float clamped = fminf(fmaxf(softplus(to_float(p.io.projected[at]) + p.io.dt_bias[h]), p.dt_min), p.dt_max);
  return token_mask(p, b, t) * clamped;
}

template <typename T>
__device__ __forceinline__ float raw_input(const Params<T>& p, int b, int t, int channel) {
  return to_float(p.io.projected[(static_cast<long long>(b) * p.tokens + t) * p.width + p.inner + channel]);
}

template <typename T>
__device__ __forceinline__ float past_conv_at(const Params<T>& p, int b, int channel, int column) {
  return p.io.past_conv[(static_cast<long long>(b) * p.conv_dim + channel) * (p.conv_kernel - 1) + column];
}

// ---- prefill 1: causal conv + SiLU + mask for x|B|C, and dt, for kConvTokensPerBlock tokens ----
// A thread walks one channel along the tokens with the conv window in registers. The window and the weights
// are right-aligned in arrays of kMaxHistory so that every index is a compile-time constant.
template <typename T>
__global__ void conv_prefill_kernel(Params<T> p) {
  const int channel = blockIdx.x * kConvThreads + threadIdx.x;
  const int b = blockIdx.z;
  const int first = blockIdx.y * kConvTokensPerBlock;
  const int end = min(p.tokens, first + kConvTokensPerBlock);
  const long long row0 = static_cast<long long>(b) * p.tokens;
  if (channel < p.conv_dim) {
    const int history = p.conv_kernel - 1;
    float window[kMaxHistory], weights[kMaxHistory];
#pragma unroll
    for (int j = 0; j < kMaxHistory; ++j) {
      const int tap = j - (kMaxHistory - history);  // weight index of slot j; negative = slot unused
      const int source = first - (kMaxHistory - j);  // the token slot j holds when the loop starts
      weights[j] = tap >= 0 ? p.io.conv_weight[channel * p.conv_kernel + tap] : 0.0f;
      window[j] = tap < 0 ? 0.0f : source >= 0 ? raw_input(p, b, source, channel) : past_conv_at(p, b, channel, history + source);
    }
    const float current_weight = p.io.conv_weight[channel * p.conv_kernel + history];
    const float bias = p.io.conv_bias ? p.io.conv_bias[channel] : 0.0f;
    constexpr int kBatch = 4;  // tokens whose loads are issued together
    for (int t0 = first; t0 < end; t0 += kBatch) {
      float raws[kBatch], masks[kBatch];
#pragma unroll
      for (int u = 0; u < kBatch; ++u) {
        raws[u] = t0 + u < end ? raw_input(p, b, t0 + u, channel) : 0.0f;
        masks[u] = t0 + u < end ? token_mask(p, b, t0 + u) : 0.0f;
      }
#pragma unroll
      for (int u = 0; u < kBatch; ++u) {
        if (t0 + u >= end) break;
        float acc = bias + current_weight * raws[u];
#pragma unroll
        for (int j = 0; j < kMaxHistory; ++j) acc += weights[j] * window[j];
#pragma unroll
        for (int j = 0; j + 1 < kMaxHistory; ++j) window[j] = window[j + 1];
        window[kMaxHistory - 1] = raws[u];
        p.xbc[(row0 + t0 + u) * p.conv_dim + channel] = masks[u] * silu(acc);
      }
    }
  } else if (channel < p.conv_dim + p.heads) {
    const int h = channel - p.conv_dim;
    const float a = -expf(p.io.a_log[h]);
    for (int t = first; t < end; ++t) {
      const float dt = time_step(p, b, t, h);
      p.steps[(row0 + t) * p.heads + h] = make_float2(dt, expf(dt * a));
    }
  }
}

// ---- the recurrence of one token on the registers of one thread ----
// S[r] = decay * S[r] + B[r] * dt * x (without kDecay: S[r] + B[r] * dt * x, decay unused); returns
// sum_r C[r] * S[r] (0 without output, and C is not read). B and C are the thread's rows in shared memory, the
// same for the whole warp (broadcast reads), 16-byte aligned.
template <bool kWithOutput, bool kDecay = true>
__device__ __forceinline__ float state_step(float (&s)[kRowsPerThread], const float* b, const float* c, float decay,
                                            float dtx) {
  float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
  for (int i = 0; i < kRowsPerThread; i += 4) {
    const float4 b4 = *reinterpret_cast<const float4*>(b + i);
    s[i + 0] = fmaf(b4.x, dtx, kDecay ? decay * s[i + 0] : s[i + 0]);
    s[i + 1] = fmaf(b4.y, dtx, kDecay ? decay * s[i + 1] : s[i + 1]);
    s[i + 2] = fmaf(b4.z, dtx, kDecay ? decay * s[i + 2] : s[i + 2]);
    s[i + 3] = fmaf(b4.w, dtx, kDecay ? decay * s[i + 3] : s[i + 3]);
    if constexpr (kWithOutput) {
      const float4 c4 = *reinterpret_cast<const float4*>(c + i);
      acc[0] = fmaf(c4.x, s[i + 0], acc[0]);
      acc[1] = fmaf(c4.y, s[i + 1], acc[1]);
      acc[2] = fmaf(c4.z, s[i + 2], acc[2]);
      acc[3] = fmaf(c4.w, s[i + 3], acc[3]);
    }
  }
  return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

// Which columns, rows and head a thread of the scan or decode grid owns.
struct Ownership {
  int lane, warp, threads, tid, split, column_base, column, h, b, segment, g, first_row, rows_end, block_first_row;
  bool column_ok;
};

template <typename T>
__device__ __forceinline__ Ownership ownership(const Params<T>& p) {
  Ownership o;
  o.lane = threadIdx.x;
  o.warp = threadIdx.y;
  o.threads = blockDim.x * blockDim.y;
  o.tid = o.warp * kWarp + o.lane;
  o.split = blockIdx.x % p.splits;
  o.column_base = (blockIdx.x / p.splits) * kWarp;
  o.column = o.column_base + o.lane;
  o.column_ok = o.column < p.head_dim;
  o.h = blockIdx.y;
  o.b = blockIdx.z / p.segments;
  o.segment = blockIdx.z % p.segments;
  o.g = o.h / p.heads_per_group;
  o.block_first_row = o.split * p.rows_per_split;
  o.first_row = o.block_first_row + o.warp * kRowsPerThread;
  o.rows_end = min(p.state_size, o.block_first_row + p.rows_per_split);
  return o;
}

template <typename T>
__device__ __forceinline__ long long state_offset(const Params<T>& p, const Ownership& o) {
  return (static_cast<long long>(o.b) * p.heads + o.h) * p.state_size * p.head_dim;
}

// A segment's slot in segment_states: [B][H][segments][N][P].
template <typename T>
__device__ __forceinline__ long long segment_slot(const Params<T>& p, int b, int h, int segment) {
  return ((static_cast<long long>(b) * p.heads + h) * p.segments + segment) * p.state_size * p.head_dim;
}

// The thread's rows and column of one head's [N][P] state starting at `past`.
template <typename T>
__device__ __forceinline__ void load_state(const Params<T>& p, const Ownership& o, const float* past,
                                           float (&s)[kRowsPerThread]) {
#pragma unroll
  for (int i = 0; i < kRowsPerThread; ++i) {
    const int n = o.first_row + i;
    s[i] = o.column_ok && n < o.rows_end ? past[static_cast<long long>(n) * p.head_dim + o.column] : 0.0f;
  }
}

template <typename T>
__device__ __forceinline__ void store_state(const Params<T>& p, const Ownership& o, float* present,
                                            const float (&s)[kRowsPerThread]) {
#pragma unroll
  for (int i = 0; i < kRowsPerThread; ++i) {
    const int n = o.first_row + i;
    if (o.column_ok && n < o.rows_end) present[static_cast<long long>(n) * p.head_dim + o.column] = s[i];
  }
}

template <typename T>
__device__ __forceinline__ float* y_partial_at(const Params<T>& p, int split, int b, int t) {
  return p.y_partial + ((static_cast<long long>(split) * p.batch + b) * p.tokens + t) * p.inner;
}

// ---- prefill 2: the scan, a chunk of tokens at a time staged in shared memory ----
// Two stages of shared memory, each B[chunk][block_rows] | C[chunk][block_rows] | x[chunk][32] | dt[chunk],
// then partial y[chunk][warps][32]. While a chunk is scanned from one stage, cp.async (sm_80+) copies the
// next chunk into the other, so the loads' latency hides behind the arithmetic: with one warp per scheduler
// and each thread's ~32 staging loads issued one after the other, the first version spent 3/4 of its time
// waiting for them.
__host__ __device__ inline int stage_floats(int block_rows, int chunk) { return chunk * (2 * block_rows + kWarp + 2); }

struct Stage {
  float *b_rows, *c_rows, *xs;
  float2* steps;  // 8-byte aligned: block_rows is a multiple of 16
};

__device__ __forceinline__ Stage stage_at(float* shared, int index, int block_rows, int chunk) {
  Stage st;
  st.b_rows = shared + index * stage_floats(block_rows, chunk);
  st.c_rows = st.b_rows + chunk * block_rows;
  st.xs = st.c_rows + chunk * block_rows;
  st.steps = reinterpret_cast<float2*>(st.xs + chunk * kWarp);
  return st;
}

// Starts the copies of `length` tokens into a stage (C only when the pass has an output). Rows past d_state
// and columns past head_dim are not copied: they stay at the zeros written when the kernel started.
template <bool kWithOutput, typename T>
__device__ void stage_chunk_async(const Params<T>& p, const Ownership& o, const Stage& st, int chunk_first,
                                  int length) {
  const int block_rows = p.warps * kRowsPerThread;
  const int valid_rows = o.rows_end - o.block_first_row;
  const int b_channel = p.inner + o.g * p.state_size + o.block_first_row;
  const int c_channel = p.inner + (p.groups + o.g) * p.state_size + o.block_first_row;
  const float* first_row = p.xbc + (static_cast<long long>(o.b) * p.tokens + chunk_first) * p.conv_dim;
  for (int i = o.tid; i < length * block_rows; i += o.threads) {
    const int tl = i / block_rows, r = i % block_rows;
    if (r >= valid_rows) continue;
    const float* row = first_row + static_cast<long long>(tl) * p.conv_dim;
    __pipeline_memcpy_async(st.b_rows + i, row + b_channel + r, sizeof(float));
    if constexpr (kWithOutput) __pipeline_memcpy_async(st.c_rows + i, row + c_channel + r, sizeof(float));
  }
  for (int i = o.tid; i < length * kWarp; i += o.threads) {
    const int tl = i / kWarp, column = o.column_base + i % kWarp;
    if (column < p.head_dim)
      __pipeline_memcpy_async(st.xs + i, first_row + static_cast<long long>(tl) * p.conv_dim + o.h * p.head_dim + column,
                              sizeof(float));
  }
  for (int i = o.tid; i < length; i += o.threads)
    __pipeline_memcpy_async(st.steps + i, p.steps + (static_cast<long long>(o.b) * p.tokens + chunk_first + i) * p.heads + o.h,
                            sizeof(float2));
}

__device__ __forceinline__ void scale_state(float (&s)[kRowsPerThread], float factor) {
#pragma unroll
  for (int i = 0; i < kRowsPerThread; ++i) s[i] *= factor;
}

// With kRescaled (Mamba2CudaTuning::prefill_rescaled_state) the registers hold S' = S / D within a chunk, D the
// product of the decays so far, so that a token costs one FMA per state element (S' += B * dt * x / D) instead
// of a multiply and an FMA: the decay moves into the scalar D, and y = D * (C . S'). D is folded back into S'
// before 1/D could overflow (D below 2^-64; the branch is the same for the whole block) and at the end of the
// chunk. Each term is the plain recurrence's product divided by D and later multiplied by it, so the rounding
// errors stay relative to the same magnitudes.
constexpr float kSmallestScale = 5.42101086e-20f;  // 2^-64

// Each warp's partial y of every token of the chunk -> partial[token][warp][lane] (with output); returns the
// chunk's sum of dt.
template <bool kWithOutput, bool kRescaled>
__device__ __forceinline__ float scan_chunk(float (&s)[kRowsPerThread], const Stage& st, float* partial, int length,
                                            int warps, int warp, int lane) {
  const int block_rows = warps * kRowsPerThread;
  float dt_sum = 0.0f;
  if constexpr (kRescaled) {
    // Pointers stepped per token instead of indices recomputed: fewer integer instructions in the loop.
    const int partial_stride = warps * kWarp;
    const float* b = st.b_rows + warp * kRowsPerThread;
    const float* c = st.c_rows + warp * kRowsPerThread;
    const float* x = st.xs + lane;
    float* out = partial + warp * kWarp + lane;
    float scale = 1.0f, inverse = 1.0f;
#pragma unroll 2
    for (int tl = 0; tl < length; ++tl, b += block_rows, c += block_rows, x += kWarp, out += partial_stride) {
      const float2 step = st.steps[tl];  // dt, decay
      dt_sum += step.x;
      const float next = scale * step.y;
      if (next >= kSmallestScale) {
        scale = next;
        inverse = __fdividef(1.0f, next);
      } else {  // S' * D * decay is this token's decayed state: continue from it with D = 1
        scale_state(s, next);
        scale = inverse = 1.0f;
      }
      const float y = state_step<kWithOutput, false>(s, b, c, 1.0f, step.x * *x * inverse);
      if constexpr (kWithOutput) *out = scale * y;
    }
    scale_state(s, scale);
  } else {
    const int row_in_block = warp * kRowsPerThread;
#pragma unroll 2
    for (int tl = 0; tl < length; ++tl) {
      const float2 step = st.steps[tl];  // dt, decay
      const float dtx = step.x * st.xs[tl * kWarp + lane];
      dt_sum += step.x;
      const float y = state_step<kWithOutput>(s, st.b_rows + tl * block_rows + row_in_block,
                                              st.c_rows + tl * block_rows + row_in_block, step.y, dtx);
      if constexpr (kWithOutput) partial[(tl * warps + warp) * kWarp + lane] = y;
    }
  }
  return dt_sum;
}

// y of the chunk's tokens for this block's columns: the warps' partials, plus D*x in the first split.
template <typename T>
__device__ void write_chunk_y(const Params<T>& p, const Ownership& o, const Stage& st, const float* partial,
                              int chunk_first, int length, float d) {
  for (int i = o.tid; i < length * kWarp; i += o.threads) {
    const int tl = i / kWarp, l = i % kWarp, column = o.column_base + l;
    if (column >= p.head_dim) continue;
    float sum = o.split == 0 ? d * st.xs[i] : 0.0f;
    for (int w = 0; w < p.warps; ++w) sum += partial[(tl * p.warps + w) * kWarp + l];
    y_partial_at(p, o.split, o.b, chunk_first + tl)[o.h * p.head_dim + column] = sum;
  }
}

// Long prefills are cut into segments scanned in parallel (a single chain of 2048 tokens per thread left the
// GPU mostly idle, one warp per scheduler waiting on its own loads). Three launches:
//   1. kSegmentEnd: each segment but the last, from a zero state, keeps only its end state and its sum of dt;
//   2. carry_kernel: walks the segments in order, start[k+1] = exp(A * dt_sum[k]) * start[k] + end[k],
//      start[0] = the past state, and leaves each segment's start state in its slot;
//   3. kOutput: every segment from its start state, writing y; the last one writes the present state.
// Without segments only kOutput runs, from the past state. The past state is read only before anything
// writes the present state (by the carry kernel, or by the thread that owns the element), so present may
// be past.
enum class ScanPass { kSegmentEnd, kOutput };

template <ScanPass kPass, bool kRescaled, typename T>
__global__ void scan_prefill_kernel(Params<T> p) {
  constexpr bool kWithOutput = kPass == ScanPass::kOutput;
  extern __shared__ float4 shared_words[];
  float* shared = reinterpret_cast<float*>(shared_words);
  const Ownership o = ownership(p);
  if (!kWithOutput && o.segment == p.segments - 1) return;
  const int first = o.segment * p.segment_length;
  const int end = min(p.tokens, first + p.segment_length);
  const int block_rows = p.warps * kRowsPerThread;
  float* partial = shared + 2 * stage_floats(block_rows, p.chunk);
  for (int i = o.tid; i < 2 * stage_floats(block_rows, p.chunk); i += o.threads) shared[i] = 0.0f;

  float* slot = p.segment_states ? p.segment_states + segment_slot(p, o.b, o.h, o.segment) : nullptr;
  float s[kRowsPerThread];
  if (!kWithOutput) {
#pragma unroll
    for (int i = 0; i < kRowsPerThread; ++i) s[i] = 0.0f;
  } else {
    load_state(p, o, p.segments > 1 ? slot : p.io.past_recurrent + state_offset(p, o), s);
  }
  const float d = p.io.d[o.h];
  float dt_sum = 0.0f;
  __syncthreads();  // the zeros are written before any copy lands
  stage_chunk_async<kWithOutput>(p, o, stage_at(shared, 0, block_rows, p.chunk), first, min(p.chunk, end - first));
  __pipeline_commit();
  for (int chunk = 0, chunk_first = first; chunk_first < end; ++chunk, chunk_first += p.chunk) {
    const int length = min(p.chunk, end - chunk_first);
    const Stage current = stage_at(shared, chunk & 1, block_rows, p.chunk);
    const int next_first = chunk_first + p.chunk;
    if (next_first < end)
      stage_chunk_async<kWithOutput>(p, o, stage_at(shared, (chunk + 1) & 1, block_rows, p.chunk), next_first,
                                     min(p.chunk, end - next_first));
    __pipeline_commit();
    __pipeline_wait_prior(1);  // this thread's copies of the current chunk have landed ...
    __syncthreads();           // ... and everyone's
    dt_sum += scan_chunk<kWithOutput, kRescaled>(s, current, partial, length, p.warps, o.warp, o.lane);
    __syncthreads();
    if (kWithOutput) {
      write_chunk_y(p, o, current, partial, chunk_first, length, d);
      __syncthreads();  // the next iteration copies into this stage
    }
  }
  if (kWithOutput) {
    if (o.segment == p.segments - 1) store_state(p, o, p.io.present_recurrent + state_offset(p, o), s);
  } else {
    store_state(p, o, slot, s);
    if (o.split == 0 && o.column_base == 0 && o.tid == 0)
      p.segment_dt_sums[(static_cast<long long>(o.b) * p.heads + o.h) * p.segments + o.segment] = dt_sum;
  }
}

// One thread per state element of every (row, head): the segments' start states, in order.
template <typename T>
__global__ void carry_kernel(Params<T> p) {
  const long long per_head = static_cast<long long>(p.state_size) * p.head_dim;
  const long long index = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (index >= static_cast<long long>(p.batch) * p.heads * per_head) return;
  const long long head_row = index / per_head, element = index % per_head;  // head_row = b * H + h
  const int h = static_cast<int>(head_row % p.heads);
  const float a = -expf(p.io.a_log[h]);
  float* slots = p.segment_states + head_row * p.segments * per_head + element;
  const float* dt_sums = p.segment_dt_sums + head_row * p.segments;
  float start = p.io.past_recurrent[index];
  for (int k = 0; k + 1 < p.segments; ++k) {
    const float end_from_zero = slots[k * per_head];
    slots[k * per_head] = start;
    start = fmaf(expf(a * dt_sums[k]), start, end_from_zero);
  }
  slots[(p.segments - 1) * per_head] = start;
}

// ---- decode: conv, dt and the state step of one token in one kernel ----
// Each block computes the conv of the channels it reads (its 32 x columns, its rows of B and C; the B/C of a
// group are recomputed by each of its blocks, a few hundred multiply-adds) while its state loads are in
// flight. The loops have compile-time trip counts so that all their loads are issued before the first use:
// decode is a chain of memory round trips, and every serialised one costs about a microsecond.
template <typename T>
__device__ __forceinline__ float conv_one_token(const Params<T>& p, int b, int channel, float mask) {
  const int history = p.conv_kernel - 1;
  const float* w = p.io.conv_weight + static_cast<long long>(channel) * p.conv_kernel;
  float acc = (p.io.conv_bias ? p.io.conv_bias[channel] : 0.0f) + w[history] * raw_input(p, b, 0, channel);
#pragma unroll
  for (int k = 0; k < kMaxHistory; ++k)
    if (k < history) acc += w[k] * past_conv_at(p, b, channel, k);
  return mask * silu(acc);
}

// A block has 32 * warps = 2 * block_rows threads and needs 32 + 2 * block_rows channels: at most two each.
constexpr int kDecodeChannelsPerThread = 2;

template <typename T>
__global__ void decode_kernel(Params<T> p) {
  extern __shared__ float4 shared_words[];
  float* shared = reinterpret_cast<float*>(shared_words);
  const Ownership o = ownership(p);
  const int block_rows = p.warps * kRowsPerThread;
  float* b_rows = shared;                   // [block_rows]
  float* c_rows = b_rows + block_rows;      // [block_rows]
  float* xs = c_rows + block_rows;          // [32]
  float* partial = xs + kWarp;              // [warps][32]
  float* step = partial + p.warps * kWarp;  // dt, decay

  float s[kRowsPerThread];
  load_state(p, o, p.io.past_recurrent + state_offset(p, o), s);
  if (o.tid == 0) {
    const float dt = time_step(p, o.b, 0, o.h);
    step[0] = dt;
    step[1] = expf(dt * -expf(p.io.a_log[o.h]));
  }
  const float mask = token_mask(p, o.b, 0);
  const int valid_rows = o.rows_end - o.block_first_row;
#pragma unroll
  for (int k = 0; k < kDecodeChannelsPerThread; ++k) {
    const int i = o.tid + k * o.threads;
    if (i < kWarp) {
      const int column = o.column_base + i;
      xs[i] = column < p.head_dim ? conv_one_token(p, o.b, o.h * p.head_dim + column, mask) : 0.0f;
    } else if (i < kWarp + 2 * block_rows) {
      const bool is_c = i >= kWarp + block_rows;
      const int r = i - kWarp - (is_c ? block_rows : 0);
      const int channel = p.inner + ((is_c ? p.groups : 0) + o.g) * p.state_size + o.block_first_row + r;
      (is_c ? c_rows : b_rows)[r] = r < valid_rows ? conv_one_token(p, o.b, channel, mask) : 0.0f;
    }
  }
  __syncthreads();
  const int row_in_block = o.warp * kRowsPerThread;
  partial[o.warp * kWarp + o.lane] =
      state_step<true>(s, b_rows + row_in_block, c_rows + row_in_block, step[1], step[0] * xs[o.lane]);
  store_state(p, o, p.io.present_recurrent + state_offset(p, o), s);
  __syncthreads();
  if (o.warp == 0 && o.column_ok) {
    float sum = o.split == 0 ? p.io.d[o.h] * xs[o.lane] : 0.0f;
    for (int w = 0; w < p.warps; ++w) sum += partial[w * kWarp + o.lane];
    y_partial_at(p, o.split, o.b, 0)[o.h * p.head_dim + o.column] = sum;
  }
}

// ---- last kernel: gate and grouped RMSNorm per token; the new conv state in the remaining blocks ----
__device__ float block_sum(float value, float* scratch) {
#pragma unroll
  for (int offset = kWarp / 2; offset > 0; offset /= 2) value += __shfl_xor_sync(0xffffffffu, value, offset);
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
  __syncthreads();  // scratch may still be read from the previous call
  if (lane == 0) scratch[warp] = value;
  __syncthreads();
  float total = 0.0f;
  for (int w = 0; w < static_cast<int>(blockDim.x) / kWarp; ++w) total += scratch[w];
  return total;
}

template <typename T>
__device__ __forceinline__ float y_sum(const Params<T>& p, long long row, int i) {
  float sum = 0.0f;
#pragma unroll 8
  for (int split = 0; split < p.splits; ++split)
    sum += p.y_partial[(split * static_cast<long long>(p.batch) * p.tokens + row) * p.inner + i];
  return sum;
}

// The value the group's RMS is taken over: y before the gate (norm then gate) or after it.
template <typename T>
__device__ __forceinline__ float norm_input(const Params<T>& p, long long row, int i, const T* z) {
  const float y = y_sum(p, row, i);
  return p.norm_mode == kNormThenGate ? y : y * silu(to_float(z[i]));
}

template <typename T>
__device__ void gate_row(const Params<T>& p, long long row) {
  __shared__ float scratch[kDecodeGateThreads / kWarp];
  const T* z = p.io.projected + row * p.width;
  T* out = p.io.y + row * p.inner;
  if (p.norm_mode == kNoNorm) {
    for (int i = threadIdx.x; i < p.inner; i += blockDim.x) out[i] = from_float<T>(y_sum(p, row, i) * silu(to_float(z[i])));
    return;
  }
  const int group_width = p.inner / p.groups;
  const int stride = blockDim.x, cached_end = kGateCachedValues * stride;
  for (int g = 0; g < p.groups; ++g) {
    const int first = g * group_width;
    // Element first + k of the group for k = threadIdx.x + j * stride: the first kGateCachedValues in
    // registers, any beyond (groups wider than the block can cache) read again for the output.
    float values[kGateCachedValues];
    float squares = 0.0f;
#pragma unroll
    for (int j = 0; j < kGateCachedValues; ++j) {
      const int k = threadIdx.x + j * stride;
      values[j] = k < group_width ? norm_input(p, row, first + k, z) : 0.0f;
      squares += values[j] * values[j];
    }
    for (int k = threadIdx.x + cached_end; k < group_width; k += stride) {
      const float v = norm_input(p, row, first + k, z);
      squares += v * v;
    }
    const float scale = 1.0f / sqrtf(block_sum(squares, scratch) / group_width + p.epsilon);
    auto write = [&](int i, float v) {
      const float normed = v * scale * p.io.norm_weight[i];
      out[i] = from_float<T>(p.norm_mode == kNormThenGate ? normed * silu(to_float(z[i])) : normed);
    };
#pragma unroll
    for (int j = 0; j < kGateCachedValues; ++j) {
      const int k = threadIdx.x + j * stride;
      if (k < group_width) write(first + k, values[j]);
    }
    for (int k = threadIdx.x + cached_end; k < group_width; k += stride) write(first + k, norm_input(p, row, first + k, z));
  }
}

// present_conv = the last K-1 columns of [past_conv | this call's raw inputs]; all reads before the writes,
// so present may be past.
template <typename T>
__device__ void update_conv_state(const Params<T>& p, long long index) {
  if (index >= static_cast<long long>(p.batch) * p.conv_dim) return;
  const int b = static_cast<int>(index / p.conv_dim), channel = static_cast<int>(index % p.conv_dim);
  const int history = p.conv_kernel - 1;
  float next[kMaxHistory];
#pragma unroll
  for (int j = 0; j < kMaxHistory; ++j) {
    const int source = p.tokens - history + j;
    next[j] = j >= history ? 0.0f : source >= 0 ? raw_input(p, b, source, channel) : past_conv_at(p, b, channel, j + p.tokens);
  }
  float* present = p.io.present_conv + index * history;
#pragma unroll
  for (int j = 0; j < kMaxHistory; ++j)
    if (j < history) present[j] = next[j];
}

template <typename T>
__global__ void __launch_bounds__(kDecodeGateThreads) gate_and_conv_state_kernel(Params<T> p) {
  const long long rows = static_cast<long long>(p.batch) * p.tokens;
  if (blockIdx.x < rows) {
    gate_row(p, blockIdx.x);
  } else {
    update_conv_state(p, (blockIdx.x - rows) * blockDim.x + threadIdx.x);
  }
}

// ---- host side ----
// The current device's attributes the plan depends on, asked once per device. The fallbacks are an A100's.
struct DeviceLimits {
  int multiprocessors = 108;
  int shared_per_block = 163 * 1024;        // opt-in maximum of dynamic shared memory per block
  int shared_per_multiprocessor = 164 * 1024;
};

DeviceLimits device_limits() {
  constexpr int kMaxDevices = 64;
  static std::atomic<bool> known[kMaxDevices] = {};
  static DeviceLimits cache[kMaxDevices];
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess || device < 0 || device >= kMaxDevices) return DeviceLimits{};
  if (!known[device].load(std::memory_order_acquire)) {
    DeviceLimits limits;
    int value = 0;
    if (cudaDeviceGetAttribute(&value, cudaDevAttrMultiProcessorCount, device) == cudaSuccess && value > 0)
      limits.multiprocessors = value;
    if (cudaDeviceGetAttribute(&value, cudaDevAttrMaxSharedMemoryPerBlockOptin, device) == cudaSuccess && value > 0)
      limits.shared_per_block = value;
    if (cudaDeviceGetAttribute(&value, cudaDevAttrMaxSharedMemoryPerMultiprocessor, device) == cudaSuccess && value > 0)
      limits.shared_per_multiprocessor = value;
    cache[device] = limits;  // every thread that gets here writes the same values
    known[device].store(true, std::memory_order_release);
  }
  return cache[device];
}

int multiprocessor_count() { return device_limits().multiprocessors; }

Mamba2CudaTuning& tuning() {
  static Mamba2CudaTuning value;
  return value;
}

long long ceil_div(long long a, long long b) { return (a + b - 1) / b; }
std::size_t round_up(std::size_t bytes) { return (bytes + 255) / 256 * 256; }

struct LaunchPlan {
  bool decode = false, rescaled_state = false;
  int splits = 1, rows_per_split = 0, warps = 0, chunk = 0, segments = 1, segment_length = 0;
  std::size_t shared_bytes = 0;
  std::size_t xbc_bytes = 0, steps_bytes = 0, y_partial_bytes = 0, segment_states_bytes = 0, segment_dt_bytes = 0;
  std::size_t workspace_bytes() const {
    return xbc_bytes + steps_bytes + y_partial_bytes + segment_states_bytes + segment_dt_bytes;
  }
};

// Segments are at least this long: shorter ones would spend more on the extra pass and the carry than the
// parallelism wins back.
constexpr int kMinSegmentTokens = 64;

std::size_t prefill_shared_bytes(int warps, int chunk) {
  const int block_rows = warps * kRowsPerThread;
  return (2 * static_cast<std::size_t>(stage_floats(block_rows, chunk)) + static_cast<std::size_t>(chunk) * warps * kWarp) *
         sizeof(float);
}

// Splits N over more blocks until the grid covers the GPU: twice the multiprocessors for decode (a memory
// stream wants many loads in flight), half of them for prefill (each extra split writes one more partial y).
LaunchPlan plan_launch(const Mamba2Shape& s) {
  LaunchPlan plan;
  plan.decode = s.tokens == 1;
  const long long column_blocks = s.batch * s.heads * ceil_div(s.head_dim, kWarp);
  const long long target =
      plan.decode ? 2LL * multiprocessor_count()
                  : static_cast<long long>(std::ceil(tuning().prefill_blocks_per_multiprocessor * multiprocessor_count()));
  plan.splits = static_cast<int>(std::max<long long>(1, ceil_div(s.state_size, kMaxBlockRows)));
  while (column_blocks * plan.splits < target && ceil_div(s.state_size, plan.splits * 2) >= kRowsPerThread)
    plan.splits *= 2;
  plan.rows_per_split = static_cast<int>(ceil_div(ceil_div(s.state_size, plan.splits), kRowsPerThread) * kRowsPerThread);
  plan.splits = static_cast<int>(ceil_div(s.state_size, plan.rows_per_split));
  plan.warps = plan.rows_per_split / kRowsPerThread;
  if (plan.decode) {
    plan.shared_bytes = (2 * plan.rows_per_split + kWarp + plan.warps * kWarp + 2) * sizeof(float);
  } else {
    // The scan of one token is a short dependent chain, so a multiprocessor needs several warps to stay busy.
    // A grid with less than a warp per scheduler is cut into segments along the tokens, up to the target
    // (each segment adds an end-state pass of about half a scan, which costs more than it wins on grids that
    // already keep the schedulers busy: measured on an H200, see mamba2_harness --cuda-tune). Shared memory is
    // shared out so that the grid's blocks can be resident together, and the chunk is the longest that fits.
    const DeviceLimits limits = device_limits();
    const Mamba2CudaTuning& knobs = tuning();
    const long long blocks = column_blocks * plan.splits;
    const long long grid_warps = blocks * plan.warps;
    const bool cut = knobs.prefill_warps_per_multiprocessor > 0 &&
                     grid_warps < static_cast<long long>(knobs.prefill_segment_below_warps) * limits.multiprocessors;
    const long long wanted =
        cut ? ceil_div(static_cast<long long>(knobs.prefill_warps_per_multiprocessor) * limits.multiprocessors, grid_warps)
            : 1;
    const long long most = std::min<long long>(std::max<long long>(1, s.tokens / kMinSegmentTokens), 65535 / s.batch);
    const long long segments = std::max<long long>(1, std::min(wanted, most));
    const long long resident = std::max<long long>(
        1, std::min(ceil_div(std::max(knobs.prefill_warps_per_multiprocessor, 1), plan.warps),
                    ceil_div(blocks * segments, limits.multiprocessors)));
    const std::size_t budget =
        knobs.prefill_shared_budget > 0
            ? knobs.prefill_shared_budget
            : std::max<std::size_t>(kSharedWithoutOptIn,
                                    std::min<std::size_t>(limits.shared_per_block,
                                                          limits.shared_per_multiprocessor / resident - 1024));
    plan.rescaled_state = knobs.prefill_rescaled_state;
    plan.chunk = 64;
    while (plan.chunk > 1 && prefill_shared_bytes(plan.warps, plan.chunk) > budget) plan.chunk /= 2;
    plan.shared_bytes = prefill_shared_bytes(plan.warps, plan.chunk);
    plan.segment_length = static_cast<int>(ceil_div(ceil_div(s.tokens, segments), plan.chunk) * plan.chunk);
    plan.segments = static_cast<int>(ceil_div(s.tokens, plan.segment_length));
    if (plan.segments > 1) {
      plan.segment_states_bytes =
          round_up(static_cast<std::size_t>(s.batch * s.heads * plan.segments * s.state_size * s.head_dim) * sizeof(float));
      plan.segment_dt_bytes = round_up(static_cast<std::size_t>(s.batch * s.heads * plan.segments) * sizeof(float));
    }
    plan.xbc_bytes = round_up(static_cast<std::size_t>(s.batch * s.tokens * s.conv_dim()) * sizeof(float));
    plan.steps_bytes = round_up(static_cast<std::size_t>(s.batch * s.tokens * s.heads) * sizeof(float2));
  }
  plan.y_partial_bytes =
      round_up(static_cast<std::size_t>(plan.splits) * s.batch * s.tokens * s.inner() * sizeof(float));
  return plan;
}

// D is the device element type of the storage type T (float, __half, __nv_bfloat16).
template <typename D, typename T>
Params<D> make_params(const Mamba2Shape& s, const Mamba2Tensors<T>& t, const LaunchPlan& plan, void* workspace) {
  Params<D> p{};
  p.batch = static_cast<int>(s.batch);
  p.tokens = static_cast<int>(s.tokens);
  p.total = static_cast<int>(s.total);
  p.heads = static_cast<int>(s.heads);
  p.head_dim = static_cast<int>(s.head_dim);
  p.groups = static_cast<int>(s.groups);
  p.state_size = static_cast<int>(s.state_size);
  p.conv_kernel = static_cast<int>(s.conv_kernel);
  p.inner = static_cast<int>(s.inner());
  p.conv_dim = static_cast<int>(s.conv_dim());
  p.width = static_cast<int>(s.projected_width());
  p.heads_per_group = static_cast<int>(s.heads / s.groups);
  p.norm_mode = !t.norm_weight ? kNoNorm : s.norm_before_gate ? kNormThenGate : kGateThenNorm;
  p.epsilon = s.epsilon;
  p.dt_min = s.dt_min;
  p.dt_max = s.dt_max > 0.0f ? s.dt_max : std::numeric_limits<float>::infinity();
  p.io = with_activation_type<D>(t);
  char* next = static_cast<char*>(workspace);
  p.xbc = plan.xbc_bytes ? reinterpret_cast<float*>(next) : nullptr;
  next += plan.xbc_bytes;
  p.steps = plan.steps_bytes ? reinterpret_cast<float2*>(next) : nullptr;
  next += plan.steps_bytes;
  p.y_partial = reinterpret_cast<float*>(next);
  next += plan.y_partial_bytes;
  p.segment_states = plan.segment_states_bytes ? reinterpret_cast<float*>(next) : nullptr;
  next += plan.segment_states_bytes;
  p.segment_dt_sums = plan.segment_dt_bytes ? reinterpret_cast<float*>(next) : nullptr;
  p.segments = plan.segments;
  p.segment_length = plan.segment_length;
  p.splits = plan.splits;
  p.rows_per_split = plan.rows_per_split;
  p.warps = plan.warps;
  p.chunk = plan.chunk;
  return p;
}

const char* launch_error() {
  const cudaError_t error = cudaGetLastError();
  return error == cudaSuccess ? nullptr : cudaGetErrorString(error);
}

// With no new tokens the states only move from past to present.
template <typename T>
const char* copy_states(const Mamba2Shape& s, const Mamba2Tensors<T>& t, cudaStream_t stream) {
  const std::size_t conv = static_cast<std::size_t>(s.batch * s.conv_dim() * (s.conv_kernel - 1)) * sizeof(float);
  const std::size_t recurrent = static_cast<std::size_t>(s.batch * s.heads * s.state_size * s.head_dim) * sizeof(float);
  if (t.present_conv != t.past_conv && conv)
    cudaMemcpyAsync(t.present_conv, t.past_conv, conv, cudaMemcpyDeviceToDevice, stream);
  if (t.present_recurrent != t.past_recurrent && recurrent)
    cudaMemcpyAsync(t.present_recurrent, t.past_recurrent, recurrent, cudaMemcpyDeviceToDevice, stream);
  return launch_error();
}

// Grid dimensions y and z are limited to 65535.
const char* launch_limits_error(const Mamba2Shape& s) {
  if (s.batch > 65535) return "the CUDA kernels take at most 65535 rows per call";
  if (s.heads > 65535) return "the CUDA kernels take at most 65535 heads";
  if (ceil_div(s.tokens, kConvTokensPerBlock) > 65535) return "the CUDA kernels take at most 2097120 tokens per call";
  return nullptr;
}

template <bool kRescaled, typename D>
void launch_scans(const Params<D>& p, const LaunchPlan& plan, dim3 scan_grid, dim3 scan_block, cudaStream_t stream) {
  if (plan.shared_bytes > kSharedWithoutOptIn) {  // an attribute of the function, no stream work: fine in a graph
    cudaFuncSetAttribute(scan_prefill_kernel<ScanPass::kSegmentEnd, kRescaled, D>,
                         cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(plan.shared_bytes));
    cudaFuncSetAttribute(scan_prefill_kernel<ScanPass::kOutput, kRescaled, D>,
                         cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(plan.shared_bytes));
  }
  if (p.segments > 1) {
    scan_prefill_kernel<ScanPass::kSegmentEnd, kRescaled, D><<<scan_grid, scan_block, plan.shared_bytes, stream>>>(p);
    const long long elements = static_cast<long long>(p.batch) * p.heads * p.state_size * p.head_dim;
    carry_kernel<D><<<static_cast<unsigned>(ceil_div(elements, kGateThreads)), kGateThreads, 0, stream>>>(p);
  }
  scan_prefill_kernel<ScanPass::kOutput, kRescaled, D><<<scan_grid, scan_block, plan.shared_bytes, stream>>>(p);
}

template <typename D>
void launch_prefill(const Params<D>& p, const LaunchPlan& plan, cudaStream_t stream) {
  const dim3 conv_grid(static_cast<unsigned>(ceil_div(p.conv_dim + p.heads, kConvThreads)),
                       static_cast<unsigned>(ceil_div(p.tokens, kConvTokensPerBlock)), static_cast<unsigned>(p.batch));
  conv_prefill_kernel<D><<<conv_grid, kConvThreads, 0, stream>>>(p);
  const dim3 scan_grid(static_cast<unsigned>(ceil_div(p.head_dim, kWarp) * p.splits), static_cast<unsigned>(p.heads),
                       static_cast<unsigned>(p.batch * p.segments));
  const dim3 scan_block(kWarp, p.warps);
  if (plan.rescaled_state)
    launch_scans<true>(p, plan, scan_grid, scan_block, stream);
  else
    launch_scans<false>(p, plan, scan_grid, scan_block, stream);
}

template <typename D>
void launch_decode(const Params<D>& p, const LaunchPlan& plan, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>(ceil_div(p.head_dim, kWarp) * p.splits), static_cast<unsigned>(p.heads),
                  static_cast<unsigned>(p.batch));
  decode_kernel<D><<<grid, dim3(kWarp, p.warps), plan.shared_bytes, stream>>>(p);
}

template <typename D>
void launch_gate_and_conv_state(const Params<D>& p, cudaStream_t stream) {
  const int threads = p.tokens == 1 ? kDecodeGateThreads : kGateThreads;
  const long long blocks = static_cast<long long>(p.batch) * p.tokens + ceil_div(static_cast<long long>(p.batch) * p.conv_dim, threads);
  gate_and_conv_state_kernel<D><<<static_cast<unsigned>(blocks), threads, 0, stream>>>(p);
}

template <typename T>
const char* launch(const Mamba2Shape& s, const Mamba2Tensors<T>& t, void* workspace, std::size_t workspace_bytes,
                   cudaStream_t stream) {
  using D = typename DeviceTypeOf<T>::type;
  if (const char* error = mamba2_shape_error(s)) return error;
  if (const char* error = launch_limits_error(s)) return error;
  if (s.batch == 0) return nullptr;
  if (s.tokens == 0) return copy_states(s, t, stream);
  const LaunchPlan plan = plan_launch(s);
  if (workspace_bytes < plan.workspace_bytes() || !workspace)
    return "the CUDA workspace is smaller than mamba2_cuda_workspace_bytes()";
  const Params<D> p = make_params<D>(s, t, plan, workspace);
  if (plan.decode) {
    launch_decode(p, plan, stream);
  } else {
    launch_prefill(p, plan, stream);
  }
  launch_gate_and_conv_state(p, stream);
  return launch_error();
}

}  // namespace

void mamba2_cuda_set_tuning(const Mamba2CudaTuning& knobs) { tuning() = knobs; }

std::size_t mamba2_cuda_workspace_bytes(const Mamba2Shape& shape) {
  if (mamba2_shape_error(shape) || shape.batch == 0 || shape.tokens == 0) return 0;
  return plan_launch(shape).workspace_bytes();
}

template <typename T>
const char* mamba2_mixer_cuda(const Mamba2Shape& shape, const Mamba2Tensors<T>& tensors, void* workspace,
                              std::size_t workspace_bytes, void* stream) {
  return launch(shape, tensors, workspace, workspace_bytes, static_cast<cudaStream_t>(stream));
}

template const char* mamba2_mixer_cuda<float>(const Mamba2Shape&, const Mamba2Tensors<float>&, void*, std::size_t,
                                              void*);
template const char* mamba2_mixer_cuda<Float16Bits>(const Mamba2Shape&, const Mamba2Tensors<Float16Bits>&, void*,
                                                    std::size_t, void*);
template const char* mamba2_mixer_cuda<BFloat16Bits>(const Mamba2Shape&, const Mamba2Tensors<BFloat16Bits>&, void*,
                                                     std::size_t, void*);

}  // namespace falcon_onnx
