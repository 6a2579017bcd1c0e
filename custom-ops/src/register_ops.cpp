// ONNX Runtime glue: the op falcon_onnx:Mamba2Mixer (since version 1) for the CPU execution provider (float)
// and, in CUDA builds, for the CUDA execution provider (float, float16, bfloat16 activations; states float);
// falcon_onnx:MatMulInt4 and MatMulInt8 (since version 1, CPU, float): y = x · Wᵀ with W in matmul_rows16.h's layout; and
// falcon_onnx:MatMulFp16 (since version 1, CPU, float activations): y = x · Wᵀ with W float16 [N, K] (matmul_fp16.h).
// Written against the classic custom-op API (Ort::CustomOpBase) rather than the lite API: the lite API builds
// a tensor for every declared input and fails on an absent optional input in the middle of the list
// (conv_bias = ""), and it cannot name the two optional inputs.
#define ORT_API_MANUAL_INIT
#include "onnxruntime_cxx_api.h"
#undef ORT_API_MANUAL_INIT

#include <cmath>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "falcon_onnx/mamba2_mixer.h"
#include "falcon_onnx/matmul_fp16.h"
#include "falcon_onnx/matmul_rows16.h"
#include "falcon_onnx/swiglu.h"
#if defined(FALCON_ONNX_WITH_CUDA)
#include "mamba2_mixer_cuda.cuh"
#endif

#if defined(_WIN32)
#define FALCON_ONNX_EXPORT __declspec(dllexport)
#else
#define FALCON_ONNX_EXPORT __attribute__((visibility("default")))
#endif

namespace falcon_onnx {
namespace {

constexpr const char* kDomain = "falcon_onnx";
constexpr const char* kOpType = "Mamba2Mixer";
constexpr const char* kCpuProvider = "CPUExecutionProvider";
constexpr const char* kCudaProvider = "CUDAExecutionProvider";

enum Input : std::size_t {
  kProjected, kConvWeight, kConvBias, kDtBias, kALog, kD, kNormWeight, kAttentionMask, kPastConv, kPastRecurrent,
  kInputCount
};
enum Output : std::size_t { kY, kPresentConv, kPresentRecurrent, kOutputCount };
const char* const kInputNames[] = {"projected", "conv_weight", "conv_bias", "dt_bias", "A_log", "D", "norm_weight",
                                   "attention_mask", "past_conv_state", "past_recurrent_state"};

// ---- attributes, read once per kernel ----
int64_t int_attribute(const OrtKernelInfo* info, const char* name, const int64_t* fallback,
                      const char* op = "Mamba2Mixer") {
  int64_t value = 0;
  if (OrtStatus* status = Ort::GetApi().KernelInfoGetAttribute_int64(info, name, &value)) {
    Ort::GetApi().ReleaseStatus(status);
    if (!fallback) throw std::invalid_argument(std::string(op) + ": missing int attribute " + name);
    return *fallback;
  }
  return value;
}

float float_attribute(const OrtKernelInfo* info, const char* name, float fallback) {
  float value = 0.0f;
  if (OrtStatus* status = Ort::GetApi().KernelInfoGetAttribute_float(info, name, &value)) {
    Ort::GetApi().ReleaseStatus(status);
    return fallback;
  }
  return value;
}

// The shape fields that come from attributes; batch, tokens and total come from the inputs of each call.
Mamba2Shape read_attributes(const OrtKernelInfo* info) {
  const int64_t default_chunk = 256, default_order = 0;
  Mamba2Shape s;
  s.heads = int_attribute(info, "n_heads", nullptr);
  s.head_dim = int_attribute(info, "head_dim", nullptr);
  s.groups = int_attribute(info, "n_groups", nullptr);
  s.state_size = int_attribute(info, "d_state", nullptr);
  s.conv_kernel = int_attribute(info, "d_conv", nullptr);
  s.chunk_size = int_attribute(info, "chunk_size", &default_chunk);
  s.norm_before_gate = int_attribute(info, "norm_before_gate", &default_order) != 0;
  s.epsilon = float_attribute(info, "epsilon", 1e-5f);
  s.dt_min = float_attribute(info, "dt_min", 0.0f);
  s.dt_max = float_attribute(info, "dt_max", std::numeric_limits<float>::infinity());
  s.batch = s.tokens = s.total = 1;
  if (const char* error = mamba2_shape_error(s)) throw std::invalid_argument(std::string("Mamba2Mixer: ") + error);
  return s;
}

// ---- inputs of one call ----
std::string dims_text(const std::vector<int64_t>& dims) {
  std::string text = "[";
  for (std::size_t i = 0; i < dims.size(); ++i) text += (i ? ", " : "") + std::to_string(dims[i]);
  return text + "]";
}

// Rows of a [..., width] tensor: the product of every dimension but the last.
int64_t leading_rows(const std::vector<int64_t>& dims) {
  int64_t rows = 1;
  for (std::size_t i = 0; i + 1 < dims.size(); ++i) rows *= dims[i];
  return rows;
}

struct CallInputs {
  Ort::ConstValue values[kInputCount];
  std::vector<int64_t> dims[kInputCount];
  bool present(std::size_t i) const { return values[i] != nullptr; }
};

CallInputs read_inputs(const Ort::KernelContext& context) {
  CallInputs in;
  if (context.GetInputCount() < kInputCount)
    throw std::invalid_argument("Mamba2Mixer: expected 10 inputs, got " + std::to_string(context.GetInputCount()));
  for (std::size_t i = 0; i < kInputCount; ++i) {
    in.values[i] = context.GetInput(i);
    if (in.values[i] != nullptr) in.dims[i] = in.values[i].GetTensorTypeAndShapeInfo().GetShape();
  }
  return in;
}

void expect_dims(const CallInputs& in, std::size_t input, const std::vector<int64_t>& expected) {
  if (in.dims[input] != expected)
    throw std::invalid_argument(std::string("Mamba2Mixer: input ") + kInputNames[input] + " has shape " +
                                dims_text(in.dims[input]) + ", expected " + dims_text(expected));
}

// The call's shape: the attributes plus batch, T and total from the inputs, every input's shape checked.
Mamba2Shape call_shape(const Mamba2Shape& attributes, const CallInputs& in) {
  Mamba2Shape s = attributes;
  if (in.dims[kProjected].size() != 3 || in.dims[kAttentionMask].size() != 2)
    throw std::invalid_argument("Mamba2Mixer: projected must be [batch, T, width] and attention_mask [batch, total]");
  s.batch = in.dims[kProjected][0];
  s.tokens = in.dims[kProjected][1];
  s.total = in.dims[kAttentionMask][1];
  if (const char* error = mamba2_shape_error(s)) throw std::invalid_argument(std::string("Mamba2Mixer: ") + error);
  expect_dims(in, kProjected, {s.batch, s.tokens, s.projected_width()});
  expect_dims(in, kConvWeight, {s.conv_dim(), 1, s.conv_kernel});
  if (in.present(kConvBias)) expect_dims(in, kConvBias, {s.conv_dim()});
  for (std::size_t per_head : {kDtBias, kALog, kD}) expect_dims(in, per_head, {s.heads});
  if (in.present(kNormWeight)) expect_dims(in, kNormWeight, {s.inner()});
  expect_dims(in, kAttentionMask, {s.batch, s.total});
  expect_dims(in, kPastConv, {s.batch, s.conv_dim(), s.conv_kernel - 1});
  expect_dims(in, kPastRecurrent, {s.batch, s.heads, s.state_size, s.head_dim});
  return s;
}

const float* optional_floats(const CallInputs& in, std::size_t input) {
  return in.present(input) ? in.values[input].GetTensorData<float>() : nullptr;
}

// Binds the inputs and allocates the outputs (ORT hands back the past buffers when they are bound in place).
template <typename T>
Mamba2Tensors<T> bind_tensors(Ort::KernelContext& context, const CallInputs& in, const Mamba2Shape& s) {
  Mamba2Tensors<T> t;
  t.projected = in.values[kProjected].GetTensorData<T>();
  t.conv_weight = in.values[kConvWeight].GetTensorData<float>();
  t.conv_bias = optional_floats(in, kConvBias);
  t.dt_bias = in.values[kDtBias].GetTensorData<float>();
  t.a_log = in.values[kALog].GetTensorData<float>();
  t.d = in.values[kD].GetTensorData<float>();
  t.norm_weight = optional_floats(in, kNormWeight);
  t.attention_mask = in.values[kAttentionMask].GetTensorData<int64_t>();
  t.past_conv = in.values[kPastConv].GetTensorData<float>();
  t.past_recurrent = in.values[kPastRecurrent].GetTensorData<float>();
  t.y = context.GetOutput(kY, {s.batch, s.tokens, s.inner()}).GetTensorMutableData<T>();
  t.present_conv = context.GetOutput(kPresentConv, in.dims[kPastConv]).GetTensorMutableData<float>();
  t.present_recurrent = context.GetOutput(kPresentRecurrent, in.dims[kPastRecurrent]).GetTensorMutableData<float>();
  return t;
}

// ORT's intra-op thread pool behind the kernel's ParallelRunner (sequential when the session has none).
class OrtThreadPoolRunner final : public ParallelRunner {
 public:
  explicit OrtThreadPoolRunner(const Ort::KernelContext& context) : context_(context) {}
  void run(std::size_t count, void (*task)(void*, std::size_t), void* task_context) const override {
    context_.ParallelFor(task, count, 0, task_context);
  }

 private:
  const Ort::KernelContext& context_;
};

template <typename Body>
OrtStatusPtr status_of(Body&& body) noexcept {
  try {
    body();
    return nullptr;
  } catch (const Ort::Exception& e) {
    return Ort::Status(e).release();
  } catch (const std::exception& e) {
    return Ort::Status(e.what(), ORT_INVALID_ARGUMENT).release();
  }
}

// ---- kernels ----
class CpuKernel {
 public:
  explicit CpuKernel(const OrtKernelInfo* info) : attributes_(read_attributes(info)) {}

  OrtStatusPtr ComputeV2(OrtKernelContext* raw_context) const noexcept {
    return status_of([&] {
      Ort::KernelContext context(raw_context);
      const CallInputs in = read_inputs(context);
      const Mamba2Shape s = call_shape(attributes_, in);
      const Mamba2Tensors<float> t = bind_tensors<float>(context, in, s);
      mamba2_mixer_cpu(s, t, OrtThreadPoolRunner(context));
    });
  }

 private:
  Mamba2Shape attributes_;
};

#if defined(FALCON_ONNX_WITH_CUDA)
template <typename OrtType> struct StorageOf;
template <> struct StorageOf<float> { using type = float; };
template <> struct StorageOf<Ort::Float16_t> { using type = Float16Bits; };
template <> struct StorageOf<Ort::BFloat16_t> { using type = BFloat16Bits; };

template <typename OrtType>
class CudaKernel {
 public:
  using Storage = typename StorageOf<OrtType>::type;
  static_assert(sizeof(Storage) == sizeof(OrtType), "16-bit storage types must match ORT's");

  explicit CudaKernel(const OrtKernelInfo* info) : attributes_(read_attributes(info)) {}

  OrtStatusPtr ComputeV2(OrtKernelContext* raw_context) const noexcept {
    return status_of([&] {
      Ort::KernelContext context(raw_context);
      const CallInputs in = read_inputs(context);
      const Mamba2Shape s = call_shape(attributes_, in);
      const Mamba2Tensors<OrtType> bound = bind_tensors<OrtType>(context, in, s);
      const Mamba2Tensors<Storage> t = with_activation_type<Storage>(bound);
      // Scratch from the CUDA provider's allocator; freeing it right after the launches is safe because
      // ORT hands it out again only to work on the same stream, which runs after these kernels.
      const std::size_t bytes = mamba2_cuda_workspace_bytes(s);
      void* workspace = nullptr;
      std::optional<Ort::Allocator> allocator;
      std::optional<Ort::MemoryAllocation> allocation;
      if (bytes) {
        const int device = in.values[kProjected].GetTensorMemoryInfo().GetDeviceId();
        const Ort::MemoryInfo memory("Cuda", OrtDeviceAllocator, device, OrtMemTypeDefault);
        allocator.emplace(context.GetAllocator(*memory.GetConst()));
        allocation.emplace(allocator->GetAllocation(bytes));
        workspace = allocation->get();
      }
      if (const char* error = mamba2_mixer_cuda(s, t, workspace, bytes, context.GetGPUComputeStream()))
        throw std::runtime_error(std::string("Mamba2Mixer (CUDA): ") + error);
    });
  }

 private:
  Mamba2Shape attributes_;
};
#endif

// ---- op descriptions ----
template <typename Kernel, typename Activation>
struct MixerOp : Ort::CustomOpBase<MixerOp<Kernel, Activation>, Kernel, true> {
  // api_version: the one the runtime granted; a runtime rejects op descriptions newer than itself.
  MixerOp(const char* provider, uint32_t api_version) : provider_(provider) { OrtCustomOp::version = api_version; }

  OrtStatusPtr CreateKernelV2(const OrtApi&, const OrtKernelInfo* info, void** kernel) const noexcept {
    return status_of([&] { *kernel = new Kernel(info); });
  }
  const char* GetName() const { return kOpType; }
  const char* GetExecutionProviderType() const { return provider_; }

  std::size_t GetInputTypeCount() const { return kInputCount; }
  ONNXTensorElementDataType GetInputType(std::size_t index) const {
    if (index == kProjected) return Ort::TypeToTensorType<Activation>::type;
    if (index == kAttentionMask) return ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64;
    return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
  }
  OrtCustomOpInputOutputCharacteristic GetInputCharacteristic(std::size_t index) const {
    return index == kConvBias || index == kNormWeight ? INPUT_OUTPUT_OPTIONAL : INPUT_OUTPUT_REQUIRED;
  }

  std::size_t GetOutputTypeCount() const { return kOutputCount; }
  ONNXTensorElementDataType GetOutputType(std::size_t index) const {
    return index == kY ? Ort::TypeToTensorType<Activation>::type : ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
  }

 private:
  const char* provider_;
};

using CpuFloatOp = MixerOp<CpuKernel, float>;

constexpr ONNXTensorElementDataType kFloat = ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;

// The description ORT reads for each CPU operator below: float output y, the inputs' types in order, and a kernel
// built from the node's attributes that names its operator (Kernel::kName).
template <typename Kernel, ONNXTensorElementDataType... kInputs>
struct CpuOp : Ort::CustomOpBase<CpuOp<Kernel, kInputs...>, Kernel, true> {
  explicit CpuOp(uint32_t api_version) { OrtCustomOp::version = api_version; }

  OrtStatusPtr CreateKernelV2(const OrtApi&, const OrtKernelInfo* info, void** kernel) const noexcept {
    return status_of([&] { *kernel = new Kernel(info); });
  }
  const char* GetName() const { return Kernel::kName; }
  const char* GetExecutionProviderType() const { return kCpuProvider; }
  std::size_t GetInputTypeCount() const { return sizeof...(kInputs); }
  ONNXTensorElementDataType GetInputType(std::size_t index) const {
    constexpr ONNXTensorElementDataType types[] = {kInputs...};
    return types[index];
  }
  std::size_t GetOutputTypeCount() const { return 1; }
  ONNXTensorElementDataType GetOutputType(std::size_t) const { return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT; }
};

// ---- falcon_onnx:MatMulInt4 and MatMulInt8: inputs x [..., K] float, packed [groups, K / 32, 64 * bits] uint8,
// scales [groups, K / 32, 16] float; attribute N (outputs; groups = ceil(N / 16)); output y [..., N] float ----
template <int kBits>
constexpr const char* kRows16OpName = kBits == 8 ? "MatMulInt8" : "MatMulInt4";

template <int kBits>
class Rows16MatMulKernel {
 public:
  static constexpr const char* kName = kRows16OpName<kBits>;

  explicit Rows16MatMulKernel(const OrtKernelInfo* info) : outputs_(int_attribute(info, "N", nullptr, kRows16OpName<kBits>)) {
    if (outputs_ <= 0)
      throw std::invalid_argument(std::string(kRows16OpName<kBits>) + ": attribute N must be positive, got " + std::to_string(outputs_));
  }

  OrtStatusPtr ComputeV2(OrtKernelContext* raw_context) const noexcept {
    return status_of([&] {
      const std::string_view op = kRows16OpName<kBits>;  // a string is built only for an error
      Ort::KernelContext context(raw_context);
      const Ort::ConstValue x = context.GetInput(0), packed = context.GetInput(1), scales = context.GetInput(2);
      std::vector<int64_t> dims = x.GetTensorTypeAndShapeInfo().GetShape();
      const std::vector<int64_t> packed_dims = packed.GetTensorTypeAndShapeInfo().GetShape();
      const std::vector<int64_t> scale_dims = scales.GetTensorTypeAndShapeInfo().GetShape();
      if (dims.empty()) throw std::invalid_argument(std::string(op) + ": x must have at least one dimension");
      Rows16Shape s;
      s.inputs = dims.back();
      s.outputs = outputs_;
      s.bits = kBits;
      s.tokens = leading_rows(dims);
      if (s.inputs % kRows16Block != 0)
        throw std::invalid_argument(std::string(op) + ": the last dimension of x (" + std::to_string(s.inputs) + ") is not a multiple of 32");
      const std::vector<int64_t> want_packed{s.groups(), s.blocks(), s.block_bytes()}, want_scales{s.groups(), s.blocks(), kRows16Group};
      if (packed_dims != want_packed || scale_dims != want_scales)
        throw std::invalid_argument(std::string(op) + ": for x " + dims_text(dims) + " and N " + std::to_string(s.outputs) + " the weights must be " +
                                    dims_text(want_packed) + " and the scales " + dims_text(want_scales) + ", got " +
                                    dims_text(packed_dims) + " and " + dims_text(scale_dims));
      dims.back() = s.outputs;
      float* y = context.GetOutput(0, dims).GetTensorMutableData<float>();
      matmul_rows16_cpu(s, x.GetTensorData<float>(), packed.GetTensorData<uint8_t>(), scales.GetTensorData<float>(), y,
                        OrtThreadPoolRunner(context));
    });
  }

 private:
  int64_t outputs_;
};

template <int kBits>
using Rows16MatMulOp = CpuOp<Rows16MatMulKernel<kBits>, kFloat, ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8, kFloat>;

// ---- falcon_onnx:MatMulFp16: inputs x [..., K] float, weight [N, K] float16; output y [..., N] float ----
constexpr const char* kMatMulFp16 = "MatMulFp16";

class MatMulFp16Kernel {
 public:
  static constexpr const char* kName = kMatMulFp16;

  explicit MatMulFp16Kernel(const OrtKernelInfo*) {}

  OrtStatusPtr ComputeV2(OrtKernelContext* raw_context) const noexcept {
    return status_of([&] {
      Ort::KernelContext context(raw_context);
      const Ort::ConstValue x = context.GetInput(0), weight = context.GetInput(1);
      std::vector<int64_t> dims = x.GetTensorTypeAndShapeInfo().GetShape();
      const std::vector<int64_t> weight_dims = weight.GetTensorTypeAndShapeInfo().GetShape();
      if (dims.empty()) throw std::invalid_argument("MatMulFp16: x must have at least one dimension");
      if (weight_dims.size() != 2 || weight_dims[1] != dims.back())
        throw std::invalid_argument("MatMulFp16: the weight must be [N, " + std::to_string(dims.back()) + "] for x " + dims_text(dims) +
                                    ", got " + dims_text(weight_dims));
      MatMulFp16Shape s;
      s.inputs = dims.back();
      s.outputs = weight_dims[0];
      s.tokens = leading_rows(dims);
      dims.back() = s.outputs;
      float* y = context.GetOutput(0, dims).GetTensorMutableData<float>();
      static_assert(sizeof(Ort::Float16_t) == sizeof(uint16_t), "float16 is stored as its 16 bits");
      matmul_fp16_cpu(s, x.GetTensorData<float>(), reinterpret_cast<const uint16_t*>(weight.GetTensorData<Ort::Float16_t>()), y,
                      OrtThreadPoolRunner(context));
    });
  }
};

using MatMulFp16Op = CpuOp<MatMulFp16Kernel, kFloat, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16>;

// ---- falcon_onnx:SwiGlu: input gate_up [..., 2I] float (gate first); output y [..., I] = up * SiLU(gate) ----
constexpr const char* kSwiGlu = "SwiGlu";

class SwiGluKernel {
 public:
  static constexpr const char* kName = kSwiGlu;

  explicit SwiGluKernel(const OrtKernelInfo*) {}

  OrtStatusPtr ComputeV2(OrtKernelContext* raw_context) const noexcept {
    return status_of([&] {
      Ort::KernelContext context(raw_context);
      const Ort::ConstValue gate_up = context.GetInput(0);
      std::vector<int64_t> dims = gate_up.GetTensorTypeAndShapeInfo().GetShape();
      if (dims.empty() || dims.back() % 2 != 0)
        throw std::invalid_argument("SwiGlu: gate_up must end in an even dimension (gate | up), got " + dims_text(dims));
      SwiGluShape s;
      s.width = dims.back() / 2;
      s.tokens = leading_rows(dims);
      dims.back() = s.width;
      float* y = context.GetOutput(0, dims).GetTensorMutableData<float>();
      swiglu_cpu(s, gate_up.GetTensorData<float>(), y, OrtThreadPoolRunner(context));
    });
  }
};

using SwiGluOp = CpuOp<SwiGluKernel, kFloat>;

#if defined(FALCON_ONNX_WITH_CUDA)
using CudaFloatOp = MixerOp<CudaKernel<float>, float>;
using CudaHalfOp = MixerOp<CudaKernel<Ort::Float16_t>, Ort::Float16_t>;
using CudaBFloat16Op = MixerOp<CudaKernel<Ort::BFloat16_t>, Ort::BFloat16_t>;
#endif

// The op descriptions and domains must outlive every session that uses them: they live until unload.
struct Registry {
  explicit Registry(uint32_t api_version)
      : cpu_float(kCpuProvider, api_version), matmul_int4(api_version), matmul_int8(api_version), matmul_fp16(api_version), swiglu(api_version)
#if defined(FALCON_ONNX_WITH_CUDA)
        , cuda_float(kCudaProvider, api_version), cuda_half(kCudaProvider, api_version),
        cuda_bfloat16(kCudaProvider, api_version)
#endif
  {
  }
  std::mutex mutex;
  std::vector<Ort::CustomOpDomain> domains;
  CpuFloatOp cpu_float;
  Rows16MatMulOp<4> matmul_int4;
  Rows16MatMulOp<8> matmul_int8;
  MatMulFp16Op matmul_fp16;
  SwiGluOp swiglu;
#if defined(FALCON_ONNX_WITH_CUDA)
  CudaFloatOp cuda_float;
  CudaHalfOp cuda_half;
  CudaBFloat16Op cuda_bfloat16;
#endif
};

// Never destroyed: sessions may outlive static destruction. One process talks to one runtime, so the API
// version of the first registration holds for all.
Registry& registry(uint32_t api_version) {
  static Registry* instance = new Registry(api_version);
  return *instance;
}

void add_domain(OrtSessionOptions* options, uint32_t api_version) {
  Registry& r = registry(api_version);
  std::lock_guard<std::mutex> lock(r.mutex);
  Ort::CustomOpDomain domain(kDomain);
  domain.Add(&r.cpu_float);
  domain.Add(&r.matmul_int4);
  domain.Add(&r.matmul_int8);
  domain.Add(&r.matmul_fp16);
  domain.Add(&r.swiglu);
#if defined(FALCON_ONNX_WITH_CUDA)
  domain.Add(&r.cuda_float);
  domain.Add(&r.cuda_half);
  domain.Add(&r.cuda_bfloat16);
#endif
  Ort::UnownedSessionOptions(options).Add(domain);
  r.domains.push_back(std::move(domain));
}

}  // namespace
}  // namespace falcon_onnx

// The library's one export. ORT passes its API base; everything else is reached through it.
extern "C" FALCON_ONNX_EXPORT OrtStatus* ORT_API_CALL RegisterCustomOps(OrtSessionOptions* options,
                                                                         const OrtApiBase* api_base) {
  // The newest API the runtime has, down to 1.17 (KernelContext_ParallelFor): built against 1.31 headers,
  // the library still loads into a slightly older runtime. The C++ wrappers used here all predate 1.17.
  constexpr uint32_t kOldestApi = 17;
  uint32_t version = ORT_API_VERSION;
  const OrtApi* api = api_base->GetApi(version);
  while (!api && version > kOldestApi) api = api_base->GetApi(--version);
  // Older still: there is no API to build an error status with; the session then stops at the unknown op.
  if (!api) return nullptr;
  Ort::InitApi(api);
  return falcon_onnx::status_of([&] { falcon_onnx::add_domain(options, version); });
}
