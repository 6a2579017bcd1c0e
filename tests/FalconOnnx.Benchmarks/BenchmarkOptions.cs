using FalconOnnx.Export;
using LLama.Native;

namespace FalconOnnx.Benchmarks;

/// <summary>What one run of the suite measures and where it keeps its files.</summary>
public sealed record BenchmarkOptions
{
    /// <summary>A synthesis preset: 0.5b, 1.5b-deep, ...</summary>
    public required string Size { get; init; }
    public required int Threads { get; init; }
    public required IReadOnlyList<PrecisionPair> Precisions { get; init; }
    public required IReadOnlyList<int> Depths { get; init; }
    /// <summary>Where results.md and results.png go.</summary>
    public required string OutputFolder { get; init; }
    /// <summary>Where the checkpoint, exports and GGUF files are kept and reused between runs.</summary>
    public required string WorkFolder { get; init; }
    public int PromptTokens { get; init; } = 512;
    public int DecodeSteps { get; init; } = 128;
    /// <summary>Measured runs after the warm-up; the best is reported.</summary>
    public int Runs { get; init; } = 2;
    public ulong Seed { get; init; } = 1;
    /// <summary>llama.cpp's KV cache element type; F32 matches our float32 caches.</summary>
    public GGMLType PeerKeyValueType { get; init; } = GGMLType.GGML_TYPE_F32;
    /// <summary>llama.cpp's flash attention in the race; null is its default (auto).</summary>
    public bool? PeerFlashAttention { get; init; }
    /// <summary>
    /// Our Mamba-2 lowering: FalconOnnx's fused operator by default (our runtime's fastest path on the CPU), or ONNX
    /// Runtime's contrib operators (ort), the portable default of <c>falcon-onnx export</c>.
    /// </summary>
    public SsmLowering OursSsm { get; init; } = SsmLowering.Custom;
    /// <summary>
    /// Our exports return the last position's logits only, like llama.cpp, which computes logits for the last token of
    /// a prompt batch; false races exports with logits for every position (the exporter's default).
    /// </summary>
    public bool OursLastPositionLogits { get; init; } = true;
    /// <summary>Our int4 weights through FalconOnnx's falcon_onnx.MatMulInt4 (the default) or MatMulNBits.</summary>
    public bool OursCustomInt4 { get; init; } = true;
    /// <summary>
    /// Our int8 weights (int8 exports, and the int8 lm_head of int4 exports) through FalconOnnx's falcon_onnx.MatMulInt8
    /// (the default) or MatMulNBits.
    /// </summary>
    public bool OursCustomInt8 { get; init; } = true;
    /// <summary>
    /// Our int8 exports keep the embedding and lm_head in float16 (falcon_onnx.MatMulFp16, Gather + Cast): int8's
    /// configuration that keeps fp32's top-1 token. False races the exporter's default, everything int8 like Q8_0.
    /// </summary>
    public bool OursInt8HalfVocabulary { get; init; }
    /// <summary>Rebuild the checkpoint, exports and GGUF files even when the work folder has them.</summary>
    public bool Fresh { get; init; }

    public int Capacity => Depths.Max() + PromptTokens + DecodeSteps + 1;
}
