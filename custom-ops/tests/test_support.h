// Random mixer inputs and comparisons shared by the CPU harness and the CUDA checks.
// Input scales are chosen so that outputs and states are O(1): the tolerances are then absolute errors.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "falcon_onnx/mamba2_mixer.h"
#include "reference.h"

namespace falcon_onnx::test {

struct CaseOptions {
  bool conv_bias = true;
  bool norm = false;                  // norm_weight present (then shape.norm_before_gate picks the order)
  std::vector<int64_t> left_pads;     // per row: mask columns that are 0 at the start (>= total: all pads)
  int64_t past_columns = 0;           // mask columns before this call's tokens
  bool random_past_state = false;     // continue from a non-zero conv and recurrent state
  bool in_place = false;              // present buffers are the past buffers
};

struct HostInputs {
  std::vector<float> projected, conv_weight, conv_bias, dt_bias, a_log, d, norm_weight, past_conv, past_recurrent;
  std::vector<int64_t> attention_mask;
};

struct HostOutputs {
  std::vector<float> y, conv, recurrent;
};

inline Mamba2Shape make_shape(int64_t batch, int64_t tokens, int64_t heads, int64_t head_dim, int64_t groups,
                              int64_t state_size, int64_t conv_kernel = 4) {
  Mamba2Shape s;
  s.batch = batch;
  s.tokens = tokens;
  s.total = tokens;
  s.heads = heads;
  s.head_dim = head_dim;
  s.groups = groups;
  s.state_size = state_size;
  s.conv_kernel = conv_kernel;
  s.chunk_size = 256;
  return s;
}

class Random {
 public:
  explicit Random(uint64_t seed) : engine_(seed) {}
  float uniform(float low, float high) { return std::uniform_real_distribution<float>(low, high)(engine_); }
  void fill(std::vector<float>& v, std::size_t count, float low, float high) {
    v.resize(count);
    for (auto& x : v) x = uniform(low, high);
  }

 private:
  std::mt19937_64 engine_;
};

// The state and x|B|C scales shrink with sqrt(N) so that y = C.S stays O(1) for any d_state.
inline HostInputs make_inputs(const Mamba2Shape& s, const CaseOptions& o, uint64_t seed) {
  Random r(seed);
  HostInputs in;
  const int64_t ds = s.inner(), cd = s.conv_dim(), w = s.projected_width(), gn = s.groups * s.state_size;
  const float bc_scale = 3.0f / std::sqrt(static_cast<float>(s.state_size)) + 0.5f;
  in.projected.resize(s.batch * s.tokens * w);
  for (int64_t row = 0; row < s.batch * s.tokens; ++row) {
    float* p = &in.projected[row * w];
    for (int64_t i = 0; i < ds; ++i) p[i] = r.uniform(-2.0f, 3.0f);                           // z
    for (int64_t i = 0; i < ds; ++i) p[ds + i] = r.uniform(-1.5f, 1.5f);                      // x
    for (int64_t i = 0; i < 2 * gn; ++i) p[2 * ds + i] = r.uniform(-bc_scale, bc_scale);      // B, C
    for (int64_t h = 0; h < s.heads; ++h) p[2 * ds + 2 * gn + h] = r.uniform(-4.0f, 1.0f);   // dt
  }
  r.fill(in.conv_weight, cd * s.conv_kernel, -0.6f, 0.6f);
  if (o.conv_bias) r.fill(in.conv_bias, cd, -0.3f, 0.3f);
  r.fill(in.dt_bias, s.heads, -2.0f, 0.5f);
  r.fill(in.a_log, s.heads, -1.0f, 1.5f);
  r.fill(in.d, s.heads, 0.5f, 1.5f);
  if (o.norm) r.fill(in.norm_weight, ds, 0.5f, 1.5f);
  in.past_conv.assign(s.batch * cd * (s.conv_kernel - 1), 0.0f);
  in.past_recurrent.assign(s.batch * s.heads * s.state_size * s.head_dim, 0.0f);
  if (o.random_past_state) {
    for (auto& v : in.past_conv) v = r.uniform(-1.5f, 1.5f);
    const float state_scale = 2.0f / std::sqrt(static_cast<float>(s.state_size));
    for (auto& v : in.past_recurrent) v = r.uniform(-state_scale, state_scale);
  }
  in.attention_mask.assign(s.batch * s.total, 1);
  for (int64_t b = 0; b < s.batch && b < static_cast<int64_t>(o.left_pads.size()); ++b)
    for (int64_t col = 0; col < std::min(o.left_pads[b], s.total); ++col) in.attention_mask[b * s.total + col] = 0;
  // The graph zeroes the mixer input at pads, so their in_proj output is 0 (mamba2_mixer.h).
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t t = 0; t < s.tokens; ++t)
      if (in.attention_mask[b * s.total + (s.total - s.tokens) + t] == 0)
        std::fill_n(&in.projected[(b * s.tokens + t) * w], w, 0.0f);
  return in;
}

template <typename T>
Mamba2Tensors<T> tensors_of(const HostInputs& in, const T* projected) {
  Mamba2Tensors<T> t;
  t.projected = projected;
  t.conv_weight = in.conv_weight.data();
  t.conv_bias = in.conv_bias.empty() ? nullptr : in.conv_bias.data();
  t.dt_bias = in.dt_bias.data();
  t.a_log = in.a_log.data();
  t.d = in.d.data();
  t.norm_weight = in.norm_weight.empty() ? nullptr : in.norm_weight.data();
  t.attention_mask = in.attention_mask.data();
  t.past_conv = in.past_conv.data();
  t.past_recurrent = in.past_recurrent.data();
  return t;
}

// The inputs of one call carrying the tokens [first, first + count) of a longer call `whole`: the same
// weights, the mask cut after this call's last column. Past states are left to the caller.
inline HostInputs slice_call(const Mamba2Shape& whole, const HostInputs& in, int64_t first, int64_t count,
                             Mamba2Shape& part) {
  part = whole;
  part.tokens = count;
  part.total = whole.total - whole.tokens + first + count;
  HostInputs out = in;
  const int64_t w = whole.projected_width();
  out.projected.resize(whole.batch * count * w);
  for (int64_t b = 0; b < whole.batch; ++b)
    std::copy_n(&in.projected[(b * whole.tokens + first) * w], count * w, &out.projected[b * count * w]);
  out.attention_mask.resize(whole.batch * part.total);
  for (int64_t b = 0; b < whole.batch; ++b)
    std::copy_n(&in.attention_mask[b * whole.total], part.total, &out.attention_mask[b * part.total]);
  return out;
}

// Copies the y of a call of `count` tokens into the y of the whole sequence at token `first`.
inline void place_tokens(const Mamba2Shape& whole, const std::vector<float>& part_y, int64_t first, int64_t count,
                         std::vector<float>& whole_y) {
  const int64_t ds = whole.inner();
  for (int64_t b = 0; b < whole.batch; ++b)
    std::copy_n(&part_y[b * count * ds], count * ds, &whole_y[(b * whole.tokens + first) * ds]);
}

// One call of the double-precision reference (present buffers separate from past).
inline HostOutputs run_reference(const Mamba2Shape& s, const HostInputs& in) {
  HostOutputs out;
  out.y.assign(s.batch * s.tokens * s.inner(), 0.0f);
  out.conv.assign(in.past_conv.size(), 0.0f);
  out.recurrent.assign(in.past_recurrent.size(), 0.0f);
  Mamba2Tensors<float> t = tensors_of(in, in.projected.data());
  t.y = out.y.data();
  t.present_conv = out.conv.data();
  t.present_recurrent = out.recurrent.data();
  reference::mamba2_mixer(s, t);
  return out;
}

// One call of the CPU kernel, for expected values of shapes too big for the reference.
inline HostOutputs run_cpu_kernel(const Mamba2Shape& s, const HostInputs& in, int threads) {
  HostOutputs out;
  out.y.assign(s.batch * s.tokens * s.inner(), 0.0f);
  out.conv.assign(in.past_conv.size(), 0.0f);
  out.recurrent.assign(in.past_recurrent.size(), 0.0f);
  Mamba2Tensors<float> t = tensors_of(in, in.projected.data());
  t.y = out.y.data();
  t.present_conv = out.conv.data();
  t.present_recurrent = out.recurrent.data();
  mamba2_mixer_cpu(s, t, threads);
  return out;
}

inline double max_abs(const std::vector<float>& v) {
  double m = 0;
  for (float x : v) m = std::max(m, static_cast<double>(std::fabs(x)));
  return m;
}

// Largest |a - b|; NaN anywhere counts as infinitely wrong.
inline double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return INFINITY;
  double m = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double d = std::fabs(static_cast<double>(a[i]) - static_cast<double>(b[i]));
    if (!(d == d)) return INFINITY;
    m = std::max(m, d);
  }
  return m;
}

struct Comparison {
  double y = 0, conv = 0, recurrent = 0, y_scale = 0, recurrent_scale = 0;
  double worst() const { return std::max({y, conv, recurrent}); }
};

inline Comparison compare(const HostOutputs& got, const HostOutputs& want) {
  Comparison c;
  c.y = max_abs_diff(got.y, want.y);
  c.conv = max_abs_diff(got.conv, want.conv);
  c.recurrent = max_abs_diff(got.recurrent, want.recurrent);
  c.y_scale = max_abs(want.y);
  c.recurrent_scale = max_abs(want.recurrent);
  return c;
}

}  // namespace falcon_onnx::test
