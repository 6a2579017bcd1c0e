#!/usr/bin/env bash
# Builds libfalcon_onnx_ops (+ mamba2_harness) for CI:
#   custom-ops/build.sh <build-dir> <onnxruntime-include-dir> [AUTO|ON|OFF]
# the same as
#   cmake -S custom-ops -B <build-dir> -DONNXRUNTIME_INCLUDE_DIR=<dir> -DFALCON_ONNX_CUDA=<AUTO|ON|OFF>
#   cmake --build <build-dir> -j2
# then runs the CPU checks of mamba2_harness (a few seconds) and checks that the library exports only
# RegisterCustomOps.
set -euo pipefail
if [[ $# -lt 2 ]]; then
  echo "usage: $0 <build-dir> <onnxruntime-include-dir> [AUTO|ON|OFF]" >&2
  exit 2
fi
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
build="$1"
cmake -S "$here" -B "$build" -DONNXRUNTIME_INCLUDE_DIR="$2" -DFALCON_ONNX_CUDA="${3:-AUTO}"
cmake --build "$build" -j2
"$build/mamba2_harness" | tail -n 3
"$build/matmul_rows16_check" | tail -n 1
FALCON_ONNX_CPU_ISA=avx2 "$build/matmul_rows16_check" | tail -n 1
FALCON_ONNX_CPU_ISA=generic "$build/matmul_rows16_check" | tail -n 1
"$build/matmul_fp16_check" | tail -n 1
FALCON_ONNX_CPU_ISA=avx2 "$build/matmul_fp16_check" | tail -n 1
FALCON_ONNX_CPU_ISA=generic "$build/matmul_fp16_check" | tail -n 1
library="$build/libfalcon_onnx_ops.so"
if [[ -f "$library" ]] && command -v nm >/dev/null; then
  exports="$(nm -D --defined-only "$library" | awk '{ print $3 }')"
  if [[ "$exports" != "RegisterCustomOps" ]]; then
    echo "unexpected exports from $library: $exports" >&2
    exit 1
  fi
  echo "$library exports only RegisterCustomOps"
fi
