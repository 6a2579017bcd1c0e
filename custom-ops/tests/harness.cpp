// mamba2_harness: checks the CPU Mamba2Mixer against the double-precision reference (reference.h) and times
// it; with --cuda (CUDA builds) also checks and times the CUDA kernels. Exit code 1 when a check fails.
//   mamba2_harness                     CPU correctness, every instruction set this processor runs
//   mamba2_harness --bench [--threads N]   + CPU timings of the Falcon-H1-0.5B mixer (default 2 threads)
//   mamba2_harness --cuda [--cuda-only]    + the CUDA checks and timings (harness_cuda.cu)
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "../src/cpu/cpu_kernels.h"
#include "../src/mamba2_mixer_cpu_internal.h"
#include "../src/thread_pool.h"
#include "falcon_onnx/mamba2_mixer.h"
#include "harness_cuda.h"
#include "test_support.h"

namespace falcon_onnx::test {
namespace {

constexpr double kCpuTolerance = 1e-5;  // absolute, on outputs and states of magnitude O(1)

struct CpuCase {
  std::string name;
  Mamba2Shape shape;          // the whole sequence
  CaseOptions options;
  std::vector<int64_t> calls; // tokens per call; the kernel continues from its own states between calls
};

// Runs the calls of `c` one after the other. Separate present buffers are filled with NaN first, so an
// element the kernel forgets to write fails the comparison.
HostOutputs run_kernel_calls(const CpuCase& c, const HostInputs& in, const ParallelRunner& runner,
                             const cpu::KernelTable& kernels) {
  const float poison = std::numeric_limits<float>::quiet_NaN();
  HostOutputs out;
  out.y.assign(c.shape.batch * c.shape.tokens * c.shape.inner(), poison);
  std::vector<float> conv = in.past_conv, recurrent = in.past_recurrent;
  int64_t first = 0;
  for (int64_t count : c.calls) {
    Mamba2Shape part;
    HostInputs call = slice_call(c.shape, in, first, count, part);
    std::vector<float> y(part.batch * count * part.inner(), poison);
    std::vector<float> next_conv = c.options.in_place ? std::vector<float>() : std::vector<float>(conv.size(), poison);
    std::vector<float> next_recurrent =
        c.options.in_place ? std::vector<float>() : std::vector<float>(recurrent.size(), poison);
    Mamba2Tensors<float> t = tensors_of(call, call.projected.data());
    t.past_conv = conv.data();
    t.past_recurrent = recurrent.data();
    t.y = y.data();
    t.present_conv = c.options.in_place ? conv.data() : next_conv.data();
    t.present_recurrent = c.options.in_place ? recurrent.data() : next_recurrent.data();
    mamba2_mixer_cpu_with(part, t, runner, kernels);
    if (!c.options.in_place) {
      conv.swap(next_conv);
      recurrent.swap(next_recurrent);
    }
    place_tokens(c.shape, y, first, count, out.y);
    first += count;
  }
  out.conv = conv;
  out.recurrent = recurrent;
  return out;
}

CpuCase make_case(std::string name, Mamba2Shape shape, CaseOptions options, std::vector<int64_t> calls = {}) {
  if (calls.empty()) calls = {shape.tokens};
  shape.total = shape.tokens + options.past_columns;
  return CpuCase{std::move(name), shape, std::move(options), std::move(calls)};
}

const char* norm_name(const CaseOptions& o, const Mamba2Shape& s) {
  return !o.norm ? "no-norm" : s.norm_before_gate ? "norm-then-gate" : "gate-then-norm";
}

// The test matrix: token counts around the block and vector boundaries, both group counts,
// the three gate/norm orders, with bias, in-place states, padding and non-zero pasts rotating through.
std::vector<CpuCase> matrix_cases() {
  std::vector<CpuCase> cases;
  int index = 0;
  for (int64_t tokens : {1, 7, 16, 17, 64, 130})
    for (int64_t groups : {1, 2})
      for (int norm = 0; norm < 3; ++norm, ++index) {
        Mamba2Shape s = make_shape(2, tokens, 4, 16, groups, 16);
        s.norm_before_gate = norm == 2;
        CaseOptions o;
        o.norm = norm != 0;
        o.conv_bias = index % 2 == 0;
        o.in_place = index % 4 < 2;
        o.random_past_state = index % 3 != 0;
        o.past_columns = o.random_past_state ? 5 : 0;
        if (index % 5 == 1) o.left_pads = {0, o.past_columns + tokens / 2};
        std::string name = "T=" + std::to_string(tokens) + " G=" + std::to_string(groups) + " " + norm_name(o, s) +
                           (o.conv_bias ? " bias" : " no-bias") + (o.in_place ? " in-place" : "") +
                           (o.random_past_state ? " past" : "") + (o.left_pads.empty() ? "" : " padded");
        cases.push_back(make_case(name, s, o));
      }
  return cases;
}

std::vector<CpuCase> special_cases() {
  std::vector<CpuCase> cases;
  CaseOptions pads;
  pads.left_pads = {0, 100};  // row 1 is only pads in this call (its mask has 9 columns)
  pads.random_past_state = true;
  pads.past_columns = 0;
  cases.push_back(make_case("row of pads only, past state kept", make_shape(2, 9, 4, 16, 1, 16), pads));

  CaseOptions left;
  left.left_pads = {0, 5, 12};
  left.norm = true;
  left.in_place = true;
  cases.push_back(make_case("left-padded prefill + 3 decode steps", make_shape(3, 23, 4, 16, 2, 16), left,
                            {20, 1, 1, 1}));

  CaseOptions past;
  past.random_past_state = true;
  past.past_columns = 3;
  cases.push_back(make_case("continuation 9 + 8", make_shape(2, 17, 4, 16, 1, 16), past, {9, 8}));
  past.in_place = true;
  cases.push_back(make_case("continuation 64 + 66 in place", make_shape(1, 130, 4, 16, 2, 16), past, {64, 66}));
  cases.push_back(make_case("five decode steps in place", make_shape(2, 5, 4, 16, 1, 16), past, {1, 1, 1, 1, 1}));
  cases.push_back(make_case("continuation 2 + 1 (T < K-1)", make_shape(2, 3, 4, 16, 1, 16), past, {2, 1}));

  Mamba2Shape clamp = make_shape(2, 33, 4, 16, 1, 16);
  clamp.dt_min = 0.05f;
  clamp.dt_max = 0.3f;
  cases.push_back(make_case("dt clamp [0.05, 0.3]", clamp, CaseOptions{}));

  CaseOptions odd;
  odd.norm = true;
  odd.random_past_state = true;
  cases.push_back(make_case("P=12 (tail columns)", make_shape(2, 19, 3, 12, 1, 8), odd));
  cases.push_back(make_case("P=40 N=24 (tail columns)", make_shape(1, 21, 2, 40, 2, 24), odd));
  cases.push_back(make_case("0.5B head P=64 N=128", make_shape(1, 17, 2, 64, 1, 128), odd));
  cases.push_back(make_case("7B head P=128 N=256 + decode", make_shape(1, 10, 2, 128, 1, 256), odd, {9, 1}));
  for (int64_t k : {1, 2, 3})
    cases.push_back(make_case("d_conv=" + std::to_string(k), make_shape(2, 11, 4, 16, 1, 16, k), past, {6, 5}));
  Mamba2Shape g3 = make_shape(3, 13, 6, 8, 3, 16);
  g3.norm_before_gate = true;
  cases.push_back(make_case("batch 3, G=3, norm-then-gate", g3, odd));
  return cases;
}

int run_cpu_checks(int threads) {
  const cpu::KernelTable* tables[3];
  const int table_count = cpu::supported_kernels(tables, 3);
  const ThreadPool& pool = ThreadPool::shared(threads);
  std::vector<CpuCase> cases = matrix_cases();
  for (auto& c : special_cases()) cases.push_back(std::move(c));
  int failures = 0;
  double worst_overall = 0;
  std::printf("CPU kernel vs reference.h (double), %d threads, tolerance %.0e x max(1, |reference|)\n", threads,
              kCpuTolerance);
  std::printf("%-58s %-7s %10s %10s %10s %8s\n", "case", "isa", "max|dy|", "max|dconv|", "max|dS|", "max|y|");
  uint64_t seed = 1;
  for (const CpuCase& c : cases) {
    const HostInputs in = make_inputs(c.shape, c.options, seed++);
    const HostOutputs want = run_reference(c.shape, in);
    for (int i = 0; i < table_count; ++i) {
      const Comparison got = compare(run_kernel_calls(c, in, pool, *tables[i]), want);
      const bool ok = got.y <= kCpuTolerance * std::max(1.0, got.y_scale) && got.conv <= kCpuTolerance &&
                      got.recurrent <= kCpuTolerance * std::max(1.0, got.recurrent_scale);
      failures += ok ? 0 : 1;
      worst_overall = std::max(worst_overall, got.worst());
      std::printf("%-58s %-7s %10.2e %10.2e %10.2e %8.3f %s\n", c.name.c_str(), tables[i]->name, got.y, got.conv,
                  got.recurrent, got.y_scale, ok ? "ok" : "FAIL");
    }
  }
  std::printf("CPU checks: %zu cases x %d instruction sets, %d failed, worst error %.2e\n", cases.size(), table_count,
              failures, worst_overall);
  return failures;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct Timing {
  double median_ms, best_ms;
};

// Wall time of `repeats` calls of `body` after `warmup` calls. The best is printed next to the median because
// the 2-core build machines are shared: other tenants slow single runs down by up to 2x.
Timing time_ms(int warmup, int repeats, const std::function<void(int)>& body) {
  for (int i = 0; i < warmup; ++i) body(i);
  std::vector<double> times;
  for (int i = 0; i < repeats; ++i) {
    const auto start = std::chrono::steady_clock::now();
    body(i);
    times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  return {median(times), *std::min_element(times.begin(), times.end())};
}

// Falcon-H1-0.5B's mixer: 24 heads x 64, d_state 128, one group, d_conv 4, no gated norm.
void run_cpu_bench(int threads) {
  const cpu::KernelTable* tables[3];
  const int table_count = cpu::supported_kernels(tables, 3);
  const ThreadPool& pool = ThreadPool::shared(threads);
  std::printf("\nCPU timings, Falcon-H1-0.5B mixer (24x64, N=128, G=1, K=4), %d threads, median (best) wall time\n",
              threads);
  std::printf("%-8s %22s %18s %18s %18s\n", "isa", "prefill 2048 ms", "state upd./ns", "decode hot us",
              "decode cold us");
  CaseOptions options;
  options.random_past_state = true;
  const Mamba2Shape prefill = make_shape(1, 2048, 24, 64, 1, 128);
  const Mamba2Shape decode = make_shape(1, 1, 24, 64, 1, 128);
  const HostInputs prefill_in = make_inputs(prefill, options, 7);
  const HostInputs decode_in = make_inputs(decode, options, 8);
  // "Cold": 64 state buffers (50 MB) in rotation, so each step reads its state from memory as a real
  // model does (the other layers' weights evict it between steps), not from this core's L2.
  constexpr int kColdStates = 64;
  std::vector<std::vector<float>> cold_states(kColdStates, decode_in.past_recurrent);
  for (int i = 0; i < table_count; ++i) {
    std::vector<float> y(prefill.tokens * prefill.inner()), conv(prefill_in.past_conv), state(prefill_in.past_recurrent);
    Mamba2Tensors<float> t = tensors_of(prefill_in, prefill_in.projected.data());
    t.y = y.data();
    t.present_conv = conv.data();
    t.present_recurrent = state.data();
    const Timing prefill_ms = time_ms(1, 7, [&](int) { mamba2_mixer_cpu_with(prefill, t, pool, *tables[i]); });

    std::vector<float> dy(decode.inner()), dconv(decode_in.past_conv), dstate(decode_in.past_recurrent);
    Mamba2Tensors<float> d = tensors_of(decode_in, decode_in.projected.data());
    d.y = dy.data();
    d.past_conv = d.present_conv = dconv.data();
    d.past_recurrent = d.present_recurrent = dstate.data();
    const Timing hot_ms = time_ms(50, 400, [&](int) { mamba2_mixer_cpu_with(decode, d, pool, *tables[i]); });
    const Timing cold_ms = time_ms(kColdStates, 8 * kColdStates, [&](int step) {
      d.past_recurrent = d.present_recurrent = cold_states[step % kColdStates].data();
      mamba2_mixer_cpu_with(decode, d, pool, *tables[i]);
    });
    // state element updates (one multiply and two fused multiply-adds each) per nanosecond, all threads
    const double updates = static_cast<double>(prefill.tokens) * prefill.heads * prefill.state_size * prefill.head_dim;
    std::printf("%-8s %12.2f (%6.2f) %10.1f (%5.1f) %10.1f (%5.1f) %10.1f (%5.1f)\n", tables[i]->name,
                prefill_ms.median_ms, prefill_ms.best_ms, updates / (prefill_ms.median_ms * 1e6),
                updates / (prefill_ms.best_ms * 1e6), hot_ms.median_ms * 1e3, hot_ms.best_ms * 1e3,
                cold_ms.median_ms * 1e3, cold_ms.best_ms * 1e3);
  }
}

}  // namespace
}  // namespace falcon_onnx::test

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // keep the log in order with stderr when piped
  bool bench = false, cuda = false, cuda_only = false, cuda_tune = false;
  const char* tune_shape = nullptr;
  int threads = 2;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--bench") == 0) bench = true;
    else if (std::strcmp(argv[i], "--cuda") == 0) cuda = true;
    else if (std::strcmp(argv[i], "--cuda-only") == 0) cuda = cuda_only = true;
    else if (std::strcmp(argv[i], "--cuda-tune") == 0) {
      cuda_tune = true;
      if (i + 1 < argc && argv[i + 1][0] != '-') tune_shape = argv[++i];
    }
    else if (std::strcmp(argv[i], "--threads") == 0 && i + 1 < argc) threads = std::atoi(argv[++i]);
    else {
      std::fprintf(stderr, "usage: %s [--bench] [--threads N] [--cuda | --cuda-only] | --cuda-tune [0.5B|1.5B-Deep|7B|34B]\n", argv[0]);
      return 2;
    }
  }
  if (cuda_tune) return falcon_onnx::test::run_cuda_tuning(tune_shape);
  int failures = 0;
  if (!cuda_only) failures += falcon_onnx::test::run_cpu_checks(threads);
  if (bench) falcon_onnx::test::run_cpu_bench(threads);
  if (cuda) failures += falcon_onnx::test::run_cuda_checks(threads);
  std::printf("\n%s\n", failures == 0 ? "ALL CHECKS PASSED" : "SOME CHECKS FAILED");
  return failures == 0 ? 0 : 1;
}
