#!/usr/bin/env bash
# The GPU check of the Mamba2Mixer CUDA kernels, for a Linux machine with an NVIDIA GPU, nvcc (CUDA 11.8+,
# made for 13), CMake and PyTorch; no .NET and no ONNX Runtime needed. Sources only, about 2-3 minutes on an
# H100/H200:
#   1. builds the kernels, mamba2_harness and the ctypes test library (cmake, or nvcc directly without it)
#   2. mamba2_harness --cuda: the CPU kernel vs reference.h, then the CUDA kernels vs reference.h (small shapes)
#      and vs the CPU kernel (Falcon-H1 0.5B / 1.5B-Deep / 7B / 34B head shapes, T = 1, 7, 128, 2048; fp32,
#      fp16, bf16; in place), decode-step timings with memory bandwidth, prefill timings
#   3. tests/torch_reference.py: the same shapes vs PyTorch in float64, and prefill speed vs PyTorch fp32
#   4. tests/ort_cpu_check.py, when the onnxruntime Python package is there and an ORT op library can be had
#      (ONNXRUNTIME_INCLUDE_DIR to build it, or FALCON_ONNX_ORT_LIB pointing at a built one)
#   5. a summary table; exit code 1 when any check failed.
# Usage: custom-ops/gpu-check.sh   (env: BUILD_DIR, LOG_DIR, ONNXRUNTIME_INCLUDE_DIR, FALCON_ONNX_ORT_LIB)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
build="${BUILD_DIR:-/tmp/falcon-onnx-gpu-check}"
logs="${LOG_DIR:-$build}"
mkdir -p "$build" "$logs"
started=$(date +%s)
statuses=()

section() { printf '\n==== %s ====\n' "$1"; }
record() { statuses+=("$1|$2"); }  # name, PASS/FAIL

section "versions"
nvcc --version | tail -n 2
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.memory --format=csv,noheader || true
command -v cmake >/dev/null && cmake --version | head -n 1 || echo "cmake: not found (building with nvcc directly)"
python3 -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda, torch.cuda.get_device_name(0))'
echo "CPU threads: $(nproc)"

section "build"
build_with_cmake() {
  local ort_args=()
  [[ -n "${ONNXRUNTIME_INCLUDE_DIR:-}" ]] && ort_args=(-DONNXRUNTIME_INCLUDE_DIR="$ONNXRUNTIME_INCLUDE_DIR")
  cmake -S "$here" -B "$build" -DFALCON_ONNX_CUDA=ON -DCMAKE_BUILD_TYPE=Release "${ort_args[@]}" >"$logs/cmake.log" 2>&1 ||
    { tail -n 40 "$logs/cmake.log"; return 1; }
  cmake --build "$build" -j "$(nproc)" >>"$logs/cmake.log" 2>&1 || { tail -n 40 "$logs/cmake.log"; return 1; }
}
build_with_nvcc() {
  local flags=(-std=c++17 -O3 -I"$here/include" -I"$here/src" -Xcompiler=-fPIC,-pthread -lpthread
               -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90)
  local cpu=("$here"/src/mamba2_shape.cpp "$here"/src/mamba2_mixer_cpu.cpp "$here"/src/thread_pool.cpp
             "$here"/src/cpu/cpu_dispatch.cpp "$here"/src/cpu/cpu_kernels_generic.cpp)
  nvcc "${flags[@]}" -DFALCON_ONNX_HARNESS_CUDA "${cpu[@]}" "$here"/src/mamba2_mixer_cuda.cu \
    "$here"/tests/harness.cpp "$here"/tests/harness_cuda.cu -o "$build/mamba2_harness"
  nvcc "${flags[@]}" -shared "${cpu[@]}" "$here"/src/mamba2_mixer_cuda.cu "$here"/tests/cuda_capi.cu \
    -o "$build/libmamba2_cuda_capi.so"
}
build_started=$(date +%s)
if command -v cmake >/dev/null; then builder=build_with_cmake; else builder=build_with_nvcc; fi
if ! $builder; then
  echo "GPU CHECK: FAIL (build)"
  exit 1
fi
echo "built in $(( $(date +%s) - build_started )) s: $(cd "$build" && ls mamba2_harness lib*.so 2>/dev/null | tr '\n' ' ')"

section "mamba2_harness --cuda"
if timeout 240 "$build/mamba2_harness" --cuda --threads "$(nproc)" 2>&1 | tee "$logs/harness.log"; then
  record "harness: CPU kernel vs reference + CUDA checks" PASS
else
  record "harness: CPU kernel vs reference + CUDA checks" FAIL
fi

section "prefill tuning sweep (informational)"
timeout 120 "$build/mamba2_harness" --cuda-tune 2>&1 | tee "$logs/tune.log" || echo "(the sweep did not finish)"

section "PyTorch reference and baseline"
if (cd "$here/tests" && timeout 200 python3 torch_reference.py --lib "$build/libmamba2_cuda_capi.so") 2>&1 |
    tee "$logs/torch.log"; then
  record "torch_reference.py" PASS
else
  record "torch_reference.py" FAIL
fi

section "ONNX Runtime (CPU provider) end to end"
ort_lib="${FALCON_ONNX_ORT_LIB:-}"
[[ -z "$ort_lib" && -f "$build/libfalcon_onnx_ops.so" ]] && ort_lib="$build/libfalcon_onnx_ops.so"
if [[ -z "$ort_lib" ]]; then
  echo "skipped: no ORT op library (set ONNXRUNTIME_INCLUDE_DIR or FALCON_ONNX_ORT_LIB)" | tee "$logs/ort.log"
elif ! python3 -c 'import onnx, onnxruntime' 2>/dev/null; then
  echo "skipped: the onnx / onnxruntime Python packages are not installed" | tee "$logs/ort.log"
elif (cd "$here/tests" && timeout 120 python3 ort_cpu_check.py --lib "$ort_lib") 2>&1 | tee "$logs/ort.log"; then
  record "ort_cpu_check.py" PASS
else
  record "ort_cpu_check.py" FAIL
fi

section "summary ($(( $(date +%s) - started )) s)"
failed=0
for line in "${statuses[@]}"; do [[ "${line##*|}" == PASS ]] || failed=1; done
if cat "$logs"/harness.log "$logs"/torch.log "$logs"/ort.log 2>/dev/null | grep -q '^SUMMARY|check|.*|FAIL'; then
  failed=1
fi
{
  for line in "${statuses[@]}"; do printf 'step|%s|%s\n' "${line%%|*}" "${line##*|}"; done
  cat "$logs"/harness.log "$logs"/torch.log "$logs"/ort.log 2>/dev/null | grep '^SUMMARY|' | cut -d'|' -f2- || true
} | awk -F'|' '{ printf "%-6s %-84s %s\n", $1, $2, $3 }'
if [[ $failed -eq 0 ]]; then echo "GPU CHECK: PASS"; else echo "GPU CHECK: FAIL"; fi
exit $failed
