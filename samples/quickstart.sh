#!/usr/bin/env bash
# Quick start, fully offline: build the CLI, synthesize a tiny random Falcon-H1 checkpoint in Hugging Face
# layout, export it to ONNX, show the exported folder and generate from it. Pass an output folder
# (default: out). The weights are random, so the generated text is gibberish; the pipeline is the real one.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-out}
dotnet build exporter/FalconOnnx.Cli -c Release -v quiet -nologo
cli=(dotnet exporter/FalconOnnx.Cli/bin/Release/net10.0/linux-x64/falcon-onnx.dll)
"${cli[@]}" synth --preset tiny --seed 1 --output "$out/tiny-hf" --force
"${cli[@]}" export --input "$out/tiny-hf" --output "$out/tiny-onnx" --force
"${cli[@]}" inspect "$out/tiny-onnx"
"${cli[@]}" generate "$out/tiny-onnx" --prompt "The falcon flies over" --max-new-tokens 24 --seed 1
