// A plain, sequential implementation of the Mamba2Mixer semantics (mamba2_mixer.h), in double precision,
// written for clarity and used only to check the kernels. Not optimised on purpose.
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

#include "falcon_onnx/mamba2_mixer.h"

namespace falcon_onnx::reference {

inline double silu(double x) { return x / (1.0 + std::exp(-x)); }
inline double softplus(double x) { return x > 20.0 ? x : std::log1p(std::exp(x)); }

// Same signature as the kernels; reads all inputs before writing outputs, so in-place states work.
template <typename T>
void mamba2_mixer(const Mamba2Shape& s, const Mamba2Tensors<T>& io) {
  const int64_t Ds = s.inner(), Cd = s.conv_dim(), W = s.projected_width(), K = s.conv_kernel;
  const int64_t H = s.heads, P = s.head_dim, N = s.state_size, G = s.groups, heads_per_group = H / G;
  std::vector<double> conv(s.batch * Cd * (K - 1)), state(s.batch * H * N * P);
  for (size_t i = 0; i < conv.size(); ++i) conv[i] = io.past_conv[i];
  for (size_t i = 0; i < state.size(); ++i) state[i] = io.past_recurrent[i];
  std::vector<double> window(K), xbc(Cd), y(Ds), gated(Ds);
  for (int64_t b = 0; b < s.batch; ++b) {
    for (int64_t t = 0; t < s.tokens; ++t) {
      const T* row = io.projected + (b * s.tokens + t) * W;
      const double m = io.attention_mask[b * s.total + (s.total - s.tokens) + t] != 0 ? 1.0 : 0.0;
      for (int64_t c = 0; c < Cd; ++c) {
        double* past = conv.data() + (b * Cd + c) * (K - 1);
        double acc = io.conv_bias ? io.conv_bias[c] : 0.0;
        for (int64_t k = 0; k < K - 1; ++k) acc += io.conv_weight[c * K + k] * past[k];
        const double raw = static_cast<double>(static_cast<float>(row[Ds + c]));
        acc += io.conv_weight[c * K + K - 1] * raw;
        for (int64_t k = 0; k + 1 < K - 1; ++k) past[k] = past[k + 1];
        if (K > 1) past[K - 2] = raw;  // d_conv = 1 keeps no conv state
        xbc[c] = m * silu(acc);
      }
      for (int64_t h = 0; h < H; ++h) {
        const int64_t g = h / heads_per_group;
        double dt = softplus(static_cast<double>(static_cast<float>(row[2 * Ds + 2 * G * N + h])) + io.dt_bias[h]);
        dt = std::max(dt, static_cast<double>(s.dt_min));
        if (s.dt_max > 0 && std::isfinite(s.dt_max)) dt = std::min(dt, static_cast<double>(s.dt_max));
        dt *= m;
        const double decay = std::exp(dt * -std::exp(static_cast<double>(io.a_log[h])));
        const double* x = &xbc[h * P];
        const double* B = &xbc[Ds + g * N];
        const double* C = &xbc[Ds + G * N + g * N];
        double* S = &state[(b * H + h) * N * P];
        for (int64_t p = 0; p < P; ++p) {
          double acc = 0;
          for (int64_t n = 0; n < N; ++n) {
            S[n * P + p] = decay * S[n * P + p] + B[n] * dt * x[p];
            acc += C[n] * S[n * P + p];
          }
          y[h * P + p] = acc + io.d[h] * x[p];
        }
      }
      const int64_t group_width = Ds / G;
      if (!io.norm_weight) {
        for (int64_t i = 0; i < Ds; ++i) gated[i] = y[i] * silu(static_cast<float>(row[i]));
      } else {
        std::vector<double> v(Ds);
        for (int64_t i = 0; i < Ds; ++i) v[i] = s.norm_before_gate ? y[i] : y[i] * silu(static_cast<float>(row[i]));
        for (int64_t gi = 0; gi < G; ++gi) {
          double mean = 0;
          for (int64_t i = 0; i < group_width; ++i) mean += v[gi * group_width + i] * v[gi * group_width + i];
          const double scale = 1.0 / std::sqrt(mean / group_width + s.epsilon);
          for (int64_t i = gi * group_width; i < (gi + 1) * group_width; ++i) {
            gated[i] = v[i] * scale * io.norm_weight[i];
            if (s.norm_before_gate) gated[i] *= silu(static_cast<float>(row[i]));
          }
        }
      }
      for (int64_t i = 0; i < Ds; ++i) io.y[(b * s.tokens + t) * Ds + i] = static_cast<T>(static_cast<float>(gated[i]));
    }
  }
  for (size_t i = 0; i < conv.size(); ++i) io.present_conv[i] = static_cast<float>(conv[i]);
  for (size_t i = 0; i < state.size(); ++i) io.present_recurrent[i] = static_cast<float>(state[i]);
}

}  // namespace falcon_onnx::reference
