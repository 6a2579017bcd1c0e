// The CUDA part of mamba2_harness: the CUDA kernels against the double-precision reference (small shapes)
// and the CPU kernel (the Falcon-H1 head shapes, up to 2048 tokens), in fp32, fp16 and bf16 activations,
// then decode and prefill timings. Lines starting with "SUMMARY|" are collected by gpu-check.sh.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "../src/mamba2_mixer_cuda.cuh"
#include "harness_cuda.h"
#include "test_support.h"

namespace falcon_onnx::test {
namespace {

void check(cudaError_t error, const char* what) {
  if (error != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(error));
}

// A device buffer of bytes; typed views through get<T>().
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t bytes) { resize(bytes); }
  ~DeviceBuffer() { release(); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  void swap(DeviceBuffer& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(bytes_, other.bytes_);
  }
  void resize(std::size_t bytes) {
    release();
    bytes_ = bytes;
    if (bytes) check(cudaMalloc(&data_, bytes), "cudaMalloc");
  }
  template <typename T>
  void upload(const std::vector<T>& values) {
    resize(values.size() * sizeof(T));
    if (bytes_) check(cudaMemcpy(data_, values.data(), bytes_, cudaMemcpyHostToDevice), "upload");
  }
  template <typename T>
  std::vector<T> download() const {
    std::vector<T> values(bytes_ / sizeof(T));
    if (bytes_) check(cudaMemcpy(values.data(), data_, bytes_, cudaMemcpyDeviceToHost), "download");
    return values;
  }
  void poison() {  // all-ones bits: NaN in float, fp16 and bf16, so unwritten outputs fail the checks
    if (bytes_) check(cudaMemset(data_, 0xff, bytes_), "cudaMemset");
  }
  template <typename T>
  T* get() const {
    return static_cast<T*>(data_);
  }
  std::size_t bytes() const { return bytes_; }

 private:
  void release() {
    if (data_) cudaFree(data_);
    data_ = nullptr;
    bytes_ = 0;
  }
  void* data_ = nullptr;
  std::size_t bytes_ = 0;
};

// ---- activation types ----
enum class Dtype { F32, F16, BF16 };
const Dtype kDtypes[] = {Dtype::F32, Dtype::F16, Dtype::BF16};

const char* dtype_name(Dtype d) { return d == Dtype::F32 ? "fp32" : d == Dtype::F16 ? "fp16" : "bf16"; }
std::size_t dtype_bytes(Dtype d) { return d == Dtype::F32 ? 4 : 2; }

// The conversions run on the host; the bit casts go through memcpy (the __half_as_ushort family is
// device-only in CUDA 11.8).
uint16_t to_bits(Dtype d, float v) {
  uint16_t bits;
  if (d == Dtype::F16) {
    const __half h = __float2half_rn(v);
    std::memcpy(&bits, &h, sizeof bits);
  } else {
    const __nv_bfloat16 b = __float2bfloat16_rn(v);
    std::memcpy(&bits, &b, sizeof bits);
  }
  return bits;
}

float from_bits(Dtype d, uint16_t bits) {
  if (d == Dtype::F16) {
    __half h;
    std::memcpy(&h, &bits, sizeof h);
    return __half2float(h);
  }
  __nv_bfloat16 b;
  std::memcpy(&b, &bits, sizeof b);
  return __bfloat162float(b);
}

float round_to(Dtype d, float v) { return d == Dtype::F32 ? v : from_bits(d, to_bits(d, v)); }

void upload_activations(Dtype d, const std::vector<float>& values, DeviceBuffer& buffer) {
  if (d == Dtype::F32) return buffer.upload(values);
  std::vector<uint16_t> bits(values.size());
  for (std::size_t i = 0; i < values.size(); ++i) bits[i] = to_bits(d, values[i]);
  buffer.upload(bits);
}

std::vector<float> download_activations(Dtype d, const DeviceBuffer& buffer) {
  if (d == Dtype::F32) return buffer.download<float>();
  const std::vector<uint16_t> bits = buffer.download<uint16_t>();
  std::vector<float> values(bits.size());
  for (std::size_t i = 0; i < bits.size(); ++i) values[i] = from_bits(d, bits[i]);
  return values;
}

// `t` carries float-typed pointers; projected and y really hold the activation type d.
const char* run_mixer(Dtype d, const Mamba2Shape& s, const Mamba2Tensors<float>& t, void* workspace,
                      std::size_t bytes, cudaStream_t stream) {
  if (d == Dtype::F16) return mamba2_mixer_cuda(s, with_activation_type<Float16Bits>(t), workspace, bytes, stream);
  if (d == Dtype::BF16) return mamba2_mixer_cuda(s, with_activation_type<BFloat16Bits>(t), workspace, bytes, stream);
  return mamba2_mixer_cuda(s, t, workspace, bytes, stream);
}

// ---- one case, on the GPU ----
struct DeviceWeights {
  DeviceBuffer conv_weight, conv_bias, dt_bias, a_log, d, norm_weight;
  explicit DeviceWeights(const HostInputs& in) {
    conv_weight.upload(in.conv_weight);
    conv_bias.upload(in.conv_bias);
    dt_bias.upload(in.dt_bias);
    a_log.upload(in.a_log);
    d.upload(in.d);
    norm_weight.upload(in.norm_weight);
  }
  void bind(Mamba2Tensors<float>& t) const {
    t.conv_weight = conv_weight.get<float>();
    t.conv_bias = conv_bias.bytes() ? conv_bias.get<float>() : nullptr;
    t.dt_bias = dt_bias.get<float>();
    t.a_log = a_log.get<float>();
    t.d = d.get<float>();
    t.norm_weight = norm_weight.bytes() ? norm_weight.get<float>() : nullptr;
  }
};

struct GpuCase {
  std::string name;
  Mamba2Shape shape;  // the whole sequence
  CaseOptions options;
  std::vector<int64_t> calls;
  bool exact_reference;  // expected values from reference.h (double) instead of the CPU kernel
};

// Runs the case's calls one after the other on the GPU; states stay on the device between calls.
HostOutputs run_on_gpu(const GpuCase& c, Dtype d, const HostInputs& in, cudaStream_t stream) {
  const DeviceWeights weights(in);
  DeviceBuffer conv, recurrent, next_conv, next_recurrent;
  conv.upload(in.past_conv);
  recurrent.upload(in.past_recurrent);
  next_conv.resize(conv.bytes());
  next_recurrent.resize(recurrent.bytes());
  HostOutputs out;
  out.y.assign(c.shape.batch * c.shape.tokens * c.shape.inner(), NAN);
  int64_t first = 0;
  for (int64_t count : c.calls) {
    Mamba2Shape part;
    const HostInputs call = slice_call(c.shape, in, first, count, part);
    DeviceBuffer projected, mask, y(part.batch * count * part.inner() * dtype_bytes(d));
    upload_activations(d, call.projected, projected);
    mask.upload(call.attention_mask);
    y.poison();
    if (!c.options.in_place) {
      next_conv.poison();
      next_recurrent.poison();
    }
    Mamba2Tensors<float> t;
    weights.bind(t);
    t.projected = projected.get<float>();
    t.attention_mask = mask.get<int64_t>();
    t.past_conv = conv.get<float>();
    t.past_recurrent = recurrent.get<float>();
    t.y = y.get<float>();
    t.present_conv = c.options.in_place ? conv.get<float>() : next_conv.get<float>();
    t.present_recurrent = c.options.in_place ? recurrent.get<float>() : next_recurrent.get<float>();
    const std::size_t bytes = mamba2_cuda_workspace_bytes(part);
    DeviceBuffer workspace(bytes);
    if (const char* error = run_mixer(d, part, t, workspace.get<void>(), bytes, stream))
      throw std::runtime_error(std::string("mamba2_mixer_cuda: ") + error);
    check(cudaStreamSynchronize(stream), "kernels");
    place_tokens(c.shape, download_activations(d, y), first, count, out.y);
    if (!c.options.in_place) {
      conv.swap(next_conv);
      recurrent.swap(next_recurrent);
    }
    first += count;
  }
  out.conv = conv.download<float>();
  out.recurrent = recurrent.download<float>();
  return out;
}

// ---- tolerances ----
// fp32: both sides compute in float with different exp implementations and summation orders; the recurrence
// is contractive (decay < 1), so rounding does not build up over long prefills and 1e-4 relative to the
// output scale leaves a wide margin over the ~1e-6 seen. fp16/bf16: the same inputs (rounded once on the
// host) and float states; y is rounded to the activation type at the end, half an ulp = 2^-11 / 2^-8 of |y|.
struct Tolerance {
  double relative;  // per element, of the expected value
  double absolute;  // of the output scale
};

Tolerance y_tolerance(Dtype d) {
  if (d == Dtype::F16) return {1.0 / 1024, 1e-4};
  if (d == Dtype::BF16) return {1.0 / 128, 1e-4};
  return {0.0, 1e-4};
}

// Largest |got - want| and whether every element is within absolute * max(1, scale) + relative * |want|.
std::pair<double, bool> within(const std::vector<float>& got, const std::vector<float>& want, Tolerance tolerance) {
  if (got.size() != want.size()) return {INFINITY, false};
  const double absolute = tolerance.absolute * std::max(1.0, max_abs(want));
  double worst = 0;
  bool ok = true;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double difference = std::fabs(static_cast<double>(got[i]) - want[i]);
    if (!(difference <= absolute + tolerance.relative * std::fabs(want[i]))) ok = false;
    worst = std::max(worst, difference == difference ? difference : INFINITY);
  }
  return {worst, ok};
}

// ---- the cases ----
GpuCase gpu_case(std::string name, Mamba2Shape shape, CaseOptions options, std::vector<int64_t> calls, bool exact) {
  if (calls.empty()) calls = {shape.tokens};
  shape.total = shape.tokens + options.past_columns;
  return GpuCase{std::move(name), shape, std::move(options), std::move(calls), exact};
}

std::vector<GpuCase> small_cases() {
  std::vector<GpuCase> cases;
  int index = 0;
  for (int64_t tokens : {1, 7, 128})
    for (int64_t groups : {1, 2})
      for (int norm = 0; norm < 3; ++norm, ++index) {
        Mamba2Shape s = make_shape(2, tokens, 4, 64, groups, 32);
        s.norm_before_gate = norm == 2;
        CaseOptions o;
        o.norm = norm != 0;
        o.conv_bias = index % 2 == 0;
        o.in_place = index % 4 < 2;
        o.random_past_state = index % 3 != 0;
        o.past_columns = o.random_past_state ? 4 : 0;
        if (index % 5 == 1) o.left_pads = {0, o.past_columns + tokens / 2};
        cases.push_back(gpu_case("small T=" + std::to_string(tokens) + " G=" + std::to_string(groups) + " norm=" +
                                     std::to_string(norm) + (o.in_place ? " in-place" : "") +
                                     (o.left_pads.empty() ? "" : " padded"),
                                 s, o, {}, true));
      }
  CaseOptions past;
  past.random_past_state = true;
  past.past_columns = 3;
  past.norm = true;
  cases.push_back(gpu_case("P=40 N=24 (partial warp and rows)", make_shape(2, 9, 3, 40, 1, 24), past, {}, true));
  CaseOptions left;
  left.left_pads = {0, 5, 12};
  left.in_place = true;
  cases.push_back(gpu_case("left-padded prefill 20 + 3 decode steps", make_shape(3, 23, 4, 64, 2, 32), left,
                           {20, 1, 1, 1}, true));
  CaseOptions pads;
  pads.left_pads = {0, 100};
  pads.random_past_state = true;
  cases.push_back(gpu_case("a row of pads only", make_shape(2, 6, 4, 64, 1, 32), pads, {}, true));
  past.in_place = true;
  cases.push_back(gpu_case("continuation 64 + 66 in place", make_shape(1, 130, 2, 64, 1, 32), past, {64, 66}, true));
  cases.push_back(gpu_case("d_conv=2, 2 + 1 tokens", make_shape(2, 3, 2, 64, 1, 32, 2), past, {2, 1}, true));
  // Prefills long enough to be cut into segments (see scan_prefill_kernel): a padded row, 2 groups, in place,
  // from a random state, and a continuation whose calls are segmented and not.
  CaseOptions segmented = past;
  segmented.left_pads = {0, past.past_columns + 150};
  Mamba2Shape segmented_shape = make_shape(2, 301, 4, 64, 2, 32);
  segmented_shape.norm_before_gate = true;
  cases.push_back(gpu_case("segmented T=301 G=2 padded in place", segmented_shape, segmented, {}, true));
  cases.push_back(gpu_case("continuation 200 + 1 + 199 in place", make_shape(1, 400, 2, 64, 1, 32), past,
                           {200, 1, 199}, true));
  Mamba2Shape clamp = make_shape(1, 33, 2, 64, 1, 32);
  clamp.dt_min = 0.05f;
  clamp.dt_max = 0.3f;
  cases.push_back(gpu_case("dt clamp", clamp, CaseOptions{}, {}, true));
  return cases;
}

struct ModelShape {
  const char* name;
  int64_t heads, head_dim, state_size, groups;
  bool norm;
};
const ModelShape kModels[] = {{"0.5B", 24, 64, 128, 1, false},
                              {"1.5B-Deep", 24, 64, 256, 1, true},
                              {"7B", 24, 128, 256, 1, true},
                              {"34B", 32, 128, 256, 2, true}};

std::vector<GpuCase> model_cases() {
  std::vector<GpuCase> cases;
  for (const ModelShape& m : kModels)
    for (int64_t tokens : {1, 7, 128, 2048}) {
      CaseOptions o;
      o.norm = m.norm;
      o.random_past_state = tokens != 128;
      o.past_columns = o.random_past_state ? 10 : 0;
      o.in_place = tokens != 7;
      cases.push_back(gpu_case(std::string(m.name) + " T=" + std::to_string(tokens) + (o.in_place ? " in-place" : ""),
                               make_shape(1, tokens, m.heads, m.head_dim, m.groups, m.state_size), o, {}, false));
    }
  return cases;
}

int run_checks(const std::vector<GpuCase>& cases, int cpu_threads, cudaStream_t stream) {
  int failures = 0;
  uint64_t seed = 1000;
  for (const GpuCase& c : cases) {
    const HostInputs original = make_inputs(c.shape, c.options, seed++);
    for (Dtype d : kDtypes) {
      HostInputs in = original;
      for (float& v : in.projected) v = round_to(d, v);
      const HostOutputs want = c.exact_reference ? run_reference(c.shape, in) : run_cpu_kernel(c.shape, in, cpu_threads);
      const HostOutputs got = run_on_gpu(c, d, in, stream);
      const auto y = within(got.y, want.y, y_tolerance(d));
      const auto conv = within(got.conv, want.conv, {0.0, 1e-4});
      const auto state = within(got.recurrent, want.recurrent, {0.0, 1e-4});
      const bool ok = y.second && conv.second && state.second;
      failures += ok ? 0 : 1;
      std::printf("%-44s %-5s vs %-9s max|dy| %9.2e  max|dconv| %9.2e  max|dS| %9.2e  |y|<=%7.3f  %s\n",
                  c.name.c_str(), dtype_name(d), c.exact_reference ? "reference" : "cpu", y.first, conv.first,
                  state.first, max_abs(want.y), ok ? "ok" : "FAIL");
    }
  }
  return failures;
}

// ---- timings ----
struct DeviceInfo {
  std::string name;
  int multiprocessors = 0;
  std::size_t l2_bytes = 0;
  double peak_gbs = 0;  // from the memory clock and bus width
  double copy_gbs = 0;  // measured device-to-device copy, bytes read + written
};

class EventTimer {
 public:
  EventTimer() {
    check(cudaEventCreate(&start_), "cudaEventCreate");
    check(cudaEventCreate(&stop_), "cudaEventCreate");
  }
  ~EventTimer() {
    cudaEventDestroy(start_);
    cudaEventDestroy(stop_);
  }
  void start(cudaStream_t stream) { check(cudaEventRecord(start_, stream), "cudaEventRecord"); }
  double stop_ms(cudaStream_t stream) {
    check(cudaEventRecord(stop_, stream), "cudaEventRecord");
    check(cudaEventSynchronize(stop_), "cudaEventSynchronize");
    float ms = 0;
    check(cudaEventElapsedTime(&ms, start_, stop_), "cudaEventElapsedTime");
    return ms;
  }

 private:
  cudaEvent_t start_{}, stop_{};
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

DeviceInfo describe_device(cudaStream_t stream) {
  DeviceInfo info;
  int device = 0;
  check(cudaGetDevice(&device), "cudaGetDevice");
  cudaDeviceProp properties{};
  check(cudaGetDeviceProperties(&properties, device), "cudaGetDeviceProperties");
  info.name = properties.name;
  info.multiprocessors = properties.multiProcessorCount;
  info.l2_bytes = properties.l2CacheSize;
  // CUDA 13 dropped cudaDeviceProp::memoryClockRate; the attributes remain (36 and 37 since CUDA 5).
  int memory_khz = 0, bus_bits = 0;
  if (cudaDeviceGetAttribute(&memory_khz, static_cast<cudaDeviceAttr>(36), device) == cudaSuccess &&
      cudaDeviceGetAttribute(&bus_bits, static_cast<cudaDeviceAttr>(37), device) == cudaSuccess)
    info.peak_gbs = 2.0 * memory_khz * 1e3 * bus_bits / 8 / 1e9;
  const std::size_t bytes = std::size_t{1} << 30;
  DeviceBuffer from(bytes), to(bytes);
  check(cudaMemsetAsync(from.get<void>(), 1, bytes, stream), "cudaMemsetAsync");
  EventTimer timer;
  std::vector<double> times;
  for (int i = 0; i < 6; ++i) {
    timer.start(stream);
    check(cudaMemcpyAsync(to.get<void>(), from.get<void>(), bytes, cudaMemcpyDeviceToDevice, stream), "copy");
    const double ms = timer.stop_ms(stream);
    if (i > 0) times.push_back(ms);
  }
  info.copy_gbs = 2.0 * bytes / (median(times) * 1e-3) / 1e9;
  return info;
}

// Everything a timed call needs on the device: weights, one input token block, and `copies` state sets in
// rotation so that each step reads its state from memory, not from the L2 (as in a model, where the other
// layers' weights evict it between steps).
struct TimedCall {
  Mamba2Shape shape;
  Dtype dtype;
  HostInputs host;
  DeviceWeights weights;
  DeviceBuffer projected, mask, y, workspace;
  std::vector<DeviceBuffer> conv, recurrent;
  std::size_t workspace_bytes = 0;

  TimedCall(const Mamba2Shape& s, Dtype d, int copies, const CaseOptions& o)
      : shape(s), dtype(d), host(make_inputs(s, o, 77)), weights(host), conv(copies), recurrent(copies) {
    upload_activations(d, host.projected, projected);
    mask.upload(host.attention_mask);
    y.resize(s.batch * s.tokens * s.inner() * dtype_bytes(d));
    for (int i = 0; i < copies; ++i) {
      conv[i].upload(host.past_conv);
      recurrent[i].upload(host.past_recurrent);
    }
    workspace_bytes = mamba2_cuda_workspace_bytes(s);
    workspace.resize(workspace_bytes);
  }

  void enqueue(int copy, cudaStream_t stream) const {
    Mamba2Tensors<float> t;
    weights.bind(t);
    t.projected = projected.get<float>();
    t.attention_mask = mask.get<int64_t>();
    t.past_conv = t.present_conv = conv[copy].get<float>();
    t.past_recurrent = t.present_recurrent = recurrent[copy].get<float>();
    t.y = y.get<float>();
    if (const char* error = run_mixer(dtype, shape, t, workspace.get<void>(), workspace_bytes, stream))
      throw std::runtime_error(std::string("mamba2_mixer_cuda: ") + error);
  }

  // Bytes a decode step must move: the state read and written, the conv state read and written, the
  // token's projection read, y written (weights are a few kB and left out).
  double step_bytes() const {
    const double state = static_cast<double>(host.past_recurrent.size()) * 4;
    const double conv_state = static_cast<double>(host.past_conv.size()) * 4;
    return 2 * state + 2 * conv_state +
           static_cast<double>(shape.batch * shape.tokens) * (shape.projected_width() + shape.inner()) * dtype_bytes(dtype);
  }
};

// Median time per call, in µs, of `copies` calls enqueue(0..copies-1) captured in one CUDA graph and replayed
// (the way ORT runs a captured decode loop).
template <typename Enqueue>
double graph_replay_us(int copies, cudaStream_t stream, Enqueue enqueue) {
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  check(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
  for (int i = 0; i < copies; ++i) enqueue(i);
  check(cudaStreamEndCapture(stream, &graph), "cudaStreamEndCapture");
  check(cudaGraphInstantiateWithFlags(&exec, graph, 0), "cudaGraphInstantiateWithFlags");
  EventTimer timer;
  std::vector<double> replayed;
  for (int round = 0; round < 6; ++round) {
    timer.start(stream);
    check(cudaGraphLaunch(exec, stream), "cudaGraphLaunch");
    const double ms = timer.stop_ms(stream) / copies;
    if (round > 0) replayed.push_back(ms);
  }
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  return median(replayed) * 1e3;
}

// Per-step time of decode steps replayed from a CUDA graph and launched one by one.
std::pair<double, double> time_decode(const TimedCall& call, cudaStream_t stream) {
  const int copies = static_cast<int>(call.conv.size());
  for (int i = 0; i < copies; ++i) call.enqueue(i, stream);
  EventTimer timer;
  std::vector<double> launched;
  for (int round = 0; round < 3; ++round) {
    timer.start(stream);
    for (int i = 0; i < copies; ++i) call.enqueue(i, stream);
    launched.push_back(timer.stop_ms(stream) / copies);
  }
  return {graph_replay_us(copies, stream, [&](int i) { call.enqueue(i, stream); }), median(launched) * 1e3};
}

// What one launch costs when it does nothing but read and write every state element once, as wide as the GPU
// allows: the floor for a decode step that is a single kernel, against which the step is measured.
__global__ void negate_in_place_kernel(float4* values, long long count) {
  const long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < count) {
    const float4 v = values[i];
    values[i] = make_float4(-v.x, -v.y, -v.z, -v.w);
  }
}

double state_round_trip_us(const TimedCall& call, cudaStream_t stream) {
  const long long count = static_cast<long long>(call.host.past_recurrent.size()) / 4;
  const unsigned blocks = static_cast<unsigned>((count + 255) / 256);
  return graph_replay_us(static_cast<int>(call.recurrent.size()), stream, [&](int i) {
    negate_in_place_kernel<<<blocks, 256, 0, stream>>>(call.recurrent[i].get<float4>(), count);
  });
}

double time_prefill_ms(const TimedCall& call, cudaStream_t stream) {
  EventTimer timer;
  std::vector<double> times;
  for (int i = 0; i < 12; ++i) {
    timer.start(stream);
    call.enqueue(i % static_cast<int>(call.conv.size()), stream);
    const double ms = timer.stop_ms(stream);
    if (i >= 2) times.push_back(ms);
  }
  return median(times);
}

void run_timings(const DeviceInfo& device, cudaStream_t stream) {
  std::printf("\nDecode step (T=1, fp32 activations, states rotating through > 4x L2), per step\n");
  std::printf("%-16s %10s %10s %12s %10s %12s %12s %12s %8s\n", "shape", "graph us", "launch us", "MB moved", "GB/s",
              "% of peak", "% of copy", "floor us", "x floor");
  CaseOptions past;
  past.random_past_state = true;
  struct DecodeShape {
    const ModelShape* model;
    int64_t batch;
  };
  std::vector<DecodeShape> shapes;
  for (const ModelShape& m : kModels) shapes.push_back({&m, 1});
  shapes.push_back({&kModels[0], 16});
  for (const DecodeShape& d : shapes) {
    const ModelShape& m = *d.model;
    const Mamba2Shape s = make_shape(d.batch, 1, m.heads, m.head_dim, m.groups, m.state_size);
    const double state_bytes = static_cast<double>(d.batch * m.heads * m.state_size * m.head_dim) * 4;
    const int copies = static_cast<int>(std::max(8.0, std::ceil(4.0 * device.l2_bytes / state_bytes)));
    const TimedCall call(s, Dtype::F32, copies, past);
    const auto [graph_us, launch_us] = time_decode(call, stream);
    const double floor_us = state_round_trip_us(call, stream);
    const double gbs = call.step_bytes() / (graph_us * 1e-6) / 1e9;
    const std::string name = std::string(m.name) + (d.batch > 1 ? " x" + std::to_string(d.batch) : "");
    std::printf("%-16s %10.2f %10.2f %12.2f %10.0f %11.1f%% %11.1f%% %12.2f %8.2f\n", name.c_str(), graph_us, launch_us,
                call.step_bytes() / 1e6, gbs, device.peak_gbs > 0 ? 100 * gbs / device.peak_gbs : 0.0,
                100 * gbs / device.copy_gbs, floor_us, graph_us / floor_us);
    std::printf("SUMMARY|time|decode %s|%.2f us/step (graph), %.0f GB/s = %.0f%% of peak, %.0f%% of copy; "
                "state read+write kernel %.2f us (%.1fx)\n",
                name.c_str(), graph_us, gbs, device.peak_gbs > 0 ? 100 * gbs / device.peak_gbs : 0.0,
                100 * gbs / device.copy_gbs, floor_us, graph_us / floor_us);
  }
  std::printf("\nPrefill of 2048 tokens (batch 1), kernels only\n");
  std::printf("%-16s %-6s %10s %14s\n", "shape", "dtype", "ms", "tokens/s");
  for (const ModelShape& m : kModels)
    for (Dtype d : {Dtype::F32, Dtype::BF16}) {
      CaseOptions o;
      o.norm = m.norm;
      const TimedCall call(make_shape(1, 2048, m.heads, m.head_dim, m.groups, m.state_size), d, 2, o);
      const double ms = time_prefill_ms(call, stream);
      std::printf("%-16s %-6s %10.3f %14.0f\n", m.name, dtype_name(d), ms, 2048 / (ms * 1e-3));
      std::printf("SUMMARY|time|prefill 2048 %s %s|%.3f ms\n", m.name, dtype_name(d), ms);
    }
}

}  // namespace

int run_cuda_tuning(const char* only_shape) {
  try {
    cudaStream_t stream;
    check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
    const Mamba2CudaTuning shipped{};
    struct Variant {
      const char* name;
      Mamba2CudaTuning knobs;
    };
    std::vector<Variant> variants{{"shipped", shipped}};
    auto add = [&](const char* name, auto change) {
      Mamba2CudaTuning knobs = shipped;
      change(knobs);
      variants.push_back({name, knobs});
    };
    add("no-cut", [](Mamba2CudaTuning& k) { k.prefill_warps_per_multiprocessor = 0; });
    add("cut-16w", [](Mamba2CudaTuning& k) { k.prefill_segment_below_warps = 1 << 20; });
    add("cut-32w", [](Mamba2CudaTuning& k) { k.prefill_segment_below_warps = 1 << 20; k.prefill_warps_per_multiprocessor = 32; });
    add("split-1", [](Mamba2CudaTuning& k) { k.prefill_blocks_per_multiprocessor = 1; });
    add("split-2", [](Mamba2CudaTuning& k) { k.prefill_blocks_per_multiprocessor = 2; });
    add("split-3", [](Mamba2CudaTuning& k) { k.prefill_blocks_per_multiprocessor = 3; });
    add("split-4", [](Mamba2CudaTuning& k) { k.prefill_blocks_per_multiprocessor = 4; });
    add("smem-96k", [](Mamba2CudaTuning& k) { k.prefill_shared_budget = 96 * 1024; });
    add("rescaled", [](Mamba2CudaTuning& k) { k.prefill_rescaled_state = true; });
    std::printf("Prefill tuning sweep (Mamba2CudaTuning), fp32, batch 1, ms. shipped: cut into segments up to %d warps "
                "per SM when below %d; splits up to %.1f blocks per SM; shared budget %zu (0 = shared out)\n",
                shipped.prefill_warps_per_multiprocessor, shipped.prefill_segment_below_warps,
                shipped.prefill_blocks_per_multiprocessor, shipped.prefill_shared_budget);
    std::printf("%-10s %6s", "shape", "tokens");
    for (const Variant& v : variants) std::printf(" %9s", v.name);
    std::printf("\n");
    for (const ModelShape& m : kModels)
      for (int64_t tokens : {512, 2048}) {
        if (only_shape && std::strcmp(only_shape, m.name) != 0) continue;
        std::printf("%-10s %6lld", m.name, static_cast<long long>(tokens));
        for (const Variant& v : variants) {
          mamba2_cuda_set_tuning(v.knobs);
          CaseOptions o;
          o.norm = m.norm;
          const TimedCall call(make_shape(1, tokens, m.heads, m.head_dim, m.groups, m.state_size), Dtype::F32, 2, o);
          std::printf(" %9.3f", time_prefill_ms(call, stream));
        }
        std::printf("\n");
      }
    mamba2_cuda_set_tuning(shipped);
    check(cudaStreamDestroy(stream), "cudaStreamDestroy");
    return 0;
  } catch (const std::exception& e) {
    std::printf("CUDA tuning stopped: %s\n", e.what());
    return 1;
  }
}

int run_cuda_checks(int cpu_threads) {
  try {
    cudaStream_t stream;
    check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
    const DeviceInfo device = describe_device(stream);
    int runtime = 0, driver = 0;
    cudaRuntimeGetVersion(&runtime);
    cudaDriverGetVersion(&driver);
    std::printf("\nCUDA: %s, %d SMs, L2 %.0f MB, runtime %d, driver %d; memory peak %.0f GB/s (clock x bus), "
                "device-to-device copy %.0f GB/s (read + write)\n",
                device.name.c_str(), device.multiprocessors, device.l2_bytes / 1e6, runtime, driver, device.peak_gbs,
                device.copy_gbs);
    std::printf("\nCUDA kernels vs reference.h (small shapes) and the CPU kernel (model head shapes)\n");
    const int small_failures = run_checks(small_cases(), cpu_threads, stream);
    std::printf("SUMMARY|check|CUDA small shapes vs reference (fp32/fp16/bf16)|%s\n", small_failures ? "FAIL" : "PASS");
    const int model_failures = run_checks(model_cases(), cpu_threads, stream);
    std::printf("SUMMARY|check|CUDA model shapes T=1..2048 vs CPU kernel (fp32/fp16/bf16)|%s\n",
                model_failures ? "FAIL" : "PASS");
    // The scan behind the prefill_rescaled_state knob (off in what ships) through the same checks, so that one GPU
    // run says whether it can be switched on; a failure here is reported but does not fail the shipped kernels.
    Mamba2CudaTuning rescaled;
    rescaled.prefill_rescaled_state = true;
    mamba2_cuda_set_tuning(rescaled);
    std::printf("\nThe same checks with Mamba2CudaTuning::prefill_rescaled_state (a trial, off by default)\n");
    const int rescaled_failures =
        run_checks(small_cases(), cpu_threads, stream) + run_checks(model_cases(), cpu_threads, stream);
    mamba2_cuda_set_tuning(Mamba2CudaTuning{});
    std::printf("SUMMARY|trial|CUDA rescaled-state scan, small and model shapes (knob off in what ships)|%s\n",
                rescaled_failures ? "FAIL" : "PASS");
    run_timings(device, stream);
    check(cudaStreamDestroy(stream), "cudaStreamDestroy");
    return small_failures + model_failures;
  } catch (const std::exception& e) {
    std::printf("CUDA checks stopped: %s\nSUMMARY|check|CUDA harness|FAIL (%s)\n", e.what(), e.what());
    return 1;
  }
}

}  // namespace falcon_onnx::test
