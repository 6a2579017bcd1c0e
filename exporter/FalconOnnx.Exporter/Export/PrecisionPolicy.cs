using System.Text.RegularExpressions;
using FalconOnnx.Graphs.Blocks;
using FalconOnnx.Graphs.Quantization;
using FalconOnnx.Models;

namespace FalconOnnx.Export;

/// <summary>What a weight is, for the precision policy.</summary>
public enum WeightKind
{
    /// <summary>A projection inside a layer (attention, Mamba-2 in/out, MLP).</summary>
    Linear,
    LmHead,
    Embedding,
}

/// <summary>
/// The precision of each weight: a default per kind of weight for the export's precision, then the user's
/// overrides (<c>pattern=precision</c>, '*' matching any text, first match wins) on the weight's name in the
/// export (e.g. <c>*.mamba.in_proj.weight=int8</c>, <c>lm_head.weight=int4</c>). Defaults: int8 everything
/// int8; int4 the layer projections in int4, but int8 for the embedding and lm_head, which every token goes
/// through, and for projections narrower than <see cref="NarrowInput"/> inputs, where the int4 rounding errors
/// of a few terms do not average out and the bytes saved are negligible. Norms, conv, A_log, D and dt_bias
/// always stay float32. fp16 in a quantized export keeps a weight in float16 with float32 activations: a Linear
/// through FalconOnnx's falcon_onnx.MatMulFp16 (CPU; ONNX Runtime's CPU MatMul has no float16 kernel on x86-64), the
/// embedding through Gather and Cast. For the vocabulary weights of an int8 export
/// (<c>lm_head.weight=fp16</c>, <c>model.embed_tokens.weight=fp16</c>) that is the measured way to int8 logits
/// that keep fp32's top-1 token: their rounding moves the logits directly, a layer's is averaged by the layers after it.
/// </summary>
public sealed class PrecisionPolicy
{
    private readonly List<(Regex Pattern, string Text, Precision Precision)> _overrides = [];

    public PrecisionPolicy(Precision precision, IEnumerable<string>? overrides = null)
    {
        Precision = precision;
        foreach (string entry in overrides ?? [])
        {
            if (!precision.IsQuantized())
                throw new FalconOnnxException($"--tensor-precision applies to int8 and int4 exports, not {precision.Name()}");
            int equals = entry.LastIndexOf('=');
            if (equals <= 0 || equals == entry.Length - 1)
                throw new FalconOnnxException($"--tensor-precision: '{entry}' is not pattern=precision (e.g. *.mamba.in_proj.weight=int8)");
            string pattern = entry[..equals];
            var target = Precisions.Parse(entry[(equals + 1)..], "--tensor-precision");
            if (target.IsQuantized() != precision.IsQuantized() && target is not (Precision.Fp32 or Precision.Fp16))
                throw new FalconOnnxException($"--tensor-precision: '{entry}' mixes {target.Name()} into a {precision.Name()} export (quantized exports take int8, int4, fp16 or fp32 per tensor)");
            _overrides.Add((new Regex("^" + Regex.Escape(pattern).Replace("\\*", ".*") + "$"), pattern, target));
        }
    }

    public Precision Precision { get; }

    public IReadOnlyList<string> Overrides => _overrides.Select(o => $"{o.Text}={o.Precision.Name()}").ToList();

    /// <summary>Projections with fewer inputs than this stay int8 in an int4 export.</summary>
    public const int NarrowInput = 256;

    public Precision For(string name, WeightKind kind, int inputWidth)
    {
        foreach (var (pattern, _, precision) in _overrides)
            if (pattern.IsMatch(name)) return precision;
        return Precision == Precision.Int4 && (kind != WeightKind.Linear || inputWidth < NarrowInput) ? Precision.Int8 : Precision;
    }
}

/// <summary>The block quantization settings of an export.</summary>
/// <param name="CustomInt4">int4 weights through FalconOnnx's falcon_onnx.MatMulInt4 (custom-ops, CPU) instead of
/// com.microsoft.MatMulNBits: its own weight layout (16 rows interleaved, blocks of 32, symmetric), read from the
/// mapped file as stored (no repacked copy), with int8 activations per block like accuracy_level 4.</param>
/// <param name="CustomInt8">The same for int8 weights, through falcon_onnx.MatMulInt8.</param>
public sealed record QuantizationSettings(int BlockSize = 32, bool Symmetric = true, int AccuracyLevel = 4, bool CustomInt4 = false, bool CustomInt8 = false)
{
    /// <summary>Whether weights of <paramref name="precision"/> go through FalconOnnx's MatMulInt4 / MatMulInt8.</summary>
    public bool Custom(Precision precision) => precision switch
    {
        Precision.Int4 => CustomInt4,
        Precision.Int8 => CustomInt8,
        _ => false,
    };

    public static readonly int[] BlockSizes = [16, 32, 64, 128];

    public BlockQuantizer Quantizer(Precision precision) => new(precision.Bits(), BlockSize, Symmetric);

    public void Validate()
    {
        if (!BlockSizes.Contains(BlockSize))
            throw new FalconOnnxException($"--block-size: {BlockSize} is not supported (expected one of {string.Join(", ", BlockSizes)})");
        if (AccuracyLevel is < 0 or > 4)
            throw new FalconOnnxException($"--accuracy-level: {AccuracyLevel} is outside 0..4");
        foreach (var (custom, bits) in new[] { (CustomInt4, 4), (CustomInt8, 8) })
        {
            if (custom && (BlockSize != 32 || !Symmetric))
                throw new FalconOnnxException($"--int{bits}-matmul custom: {Mamba2CustomCore.Domain}.{Rows16Linear.OperatorName(bits)} takes symmetric blocks of 32 (got --block-size {BlockSize}{(Symmetric ? "" : " --zero-points")})");
            // The operators always quantize activations per block, as level 4 does: any other level would be ignored.
            if (custom && AccuracyLevel != 4)
                throw new FalconOnnxException($"--int{bits}-matmul custom --accuracy-level {AccuracyLevel}: {Mamba2CustomCore.Domain}.{Rows16Linear.OperatorName(bits)} quantizes activations to int8 per block, as accuracy_level 4 does; use --int{bits}-matmul ort for another level");
        }
    }
}
