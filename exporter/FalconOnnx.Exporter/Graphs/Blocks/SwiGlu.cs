using FalconOnnx.Onnx;

namespace FalconOnnx.Graphs.Blocks;

/// <summary>gate and up fused into one [hidden, 2·intermediate] projection (gate first); μP folded into the weights.</summary>
public sealed record SwiGluWeights(LinearWeight GateUp, Value? GateUpBias, LinearWeight Down, Value? DownBias);

/// <summary>SwiGLU feed-forward: down( up(x) · SiLU(gate(x)) ).</summary>
public static class SwiGlu
{
    /// <param name="kernel">The activation as one falcon_onnx.SwiGlu (custom-ops/include/falcon_onnx/swiglu.h).</param>
    public static Value Build(GraphBuilder g, SwiGluWeights w, Value x, int intermediate, bool kernel = false)
    {
        var gateUp = Linear.Build(g, x, w.GateUp, w.GateUpBias);
        Value activated;
        if (kernel)
        {
            g.Import(Mamba2CustomCore.Domain, Mamba2CustomCore.Version);
            activated = g.Node("SwiGlu", [gateUp], 1, null, Mamba2CustomCore.Domain)[0];
        }
        else
        {
            var parts = g.Split(gateUp, -1, intermediate, intermediate);
            activated = g.Mul(parts[1], g.Silu(parts[0]));
        }
        return Linear.Build(g, activated, w.Down, w.DownBias);
    }
}

/// <summary>y = x · W (+ b).</summary>
public static class Linear
{
    public static Value Build(GraphBuilder g, Value x, LinearWeight weight, Value? bias)
    {
        var y = weight.Apply(g, x);
        return bias is null ? y : g.Add(y, bias);
    }
}

/// <summary>The weight of a Linear layer, dense or quantized; it knows the operator that applies it.</summary>
public abstract record LinearWeight
{
    public abstract Value Apply(GraphBuilder g, Value x);
}

/// <summary>A dense weight stored [in, out] for MatMul.</summary>
public sealed record DenseLinear(Value Weight) : LinearWeight
{
    public override Value Apply(GraphBuilder g, Value x) => g.MatMul(x, Weight);
}

/// <summary>
/// A block-quantized weight for com.microsoft.MatMulNBits (packed [out, blocks, bytes], scales, zero points).
/// <paramref name="AccuracyLevel"/> 4 lets the CPU kernel quantize activations to int8 (fastest). For 8-bit weights it is the
/// only fast level on the CPU in ONNX Runtime 1.31: levels 1-3 dequantize the whole weight on every call (a 0.5B int8
/// export decodes at ~1 token/s instead of ~18 on 2 cores).
/// </summary>
public sealed record QuantizedLinear(Value Packed, Value Scales, Value? ZeroPoints, int In, int Out, int Bits, int BlockSize, int AccuracyLevel) : LinearWeight
{
    public override Value Apply(GraphBuilder g, Value x)
    {
        g.Import("com.microsoft", 1);
        return g.Node("MatMulNBits", ZeroPoints is null ? [x, Packed, Scales] : [x, Packed, Scales, ZeroPoints], 1,
            new Dictionary<string, object>
            {
                ["K"] = (long)In,
                ["N"] = (long)Out,
                ["bits"] = (long)Bits,
                ["block_size"] = (long)BlockSize,
                ["accuracy_level"] = (long)AccuracyLevel,
            }, "com.microsoft")[0];
    }
}

/// <summary>
/// An int4 or int8 weight for FalconOnnx's falcon_onnx.MatMulInt4 / MatMulInt8
/// (custom-ops/include/falcon_onnx/matmul_rows16.h): packed [ceil(out / 16), in / 32, 64 · bits] in rows of 16
/// interleaved, scales [ceil(out / 16), in / 32, 16]; symmetric blocks of 32, activations quantized to int8 per
/// block by the kernel.
/// </summary>
public sealed record Rows16Linear(Value Packed, Value Scales, int In, int Out, int Bits) : LinearWeight
{
    /// <summary>The operator for weights of <paramref name="bits"/> bits: MatMulInt4 or MatMulInt8.</summary>
    public static string OperatorName(int bits) => bits == 8 ? "MatMulInt8" : "MatMulInt4";

    public override Value Apply(GraphBuilder g, Value x)
    {
        g.Import(Mamba2CustomCore.Domain, 1);
        return g.Node(OperatorName(Bits), [x, Packed, Scales], 1, new Dictionary<string, object> { ["N"] = (long)Out }, Mamba2CustomCore.Domain)[0];
    }
}

/// <summary>
/// A float16 weight [out, in] (the checkpoint's own layout) met by float32 activations, through FalconOnnx's
/// falcon_onnx.MatMulFp16 (custom-ops/include/falcon_onnx/matmul_fp16.h; CPU).
/// </summary>
public sealed record HalfLinear(Value Weight) : LinearWeight
{
    public override Value Apply(GraphBuilder g, Value x)
    {
        g.Import(Mamba2CustomCore.Domain, 1);
        return g.Node("MatMulFp16", [x, Weight], 1, new Dictionary<string, object>(), Mamba2CustomCore.Domain)[0];
    }
}

/// <summary>The token embedding table, dense or block-quantized.</summary>
public abstract record EmbeddingWeight
{
    public abstract Value Lookup(GraphBuilder g, Value ids);
}

public sealed record DenseEmbedding(Value Table) : EmbeddingWeight
{
    public override Value Lookup(GraphBuilder g, Value ids) => g.Gather(Table, ids);
}

/// <summary>A float16 table in a graph whose activations are float32: the gathered rows are cast.</summary>
public sealed record HalfEmbedding(Value Table) : EmbeddingWeight
{
    public override Value Lookup(GraphBuilder g, Value ids) => g.Cast(g.Gather(Table, ids), ElementType.Float);
}

/// <summary>com.microsoft.GatherBlockQuantized over a table quantized along the hidden axis.</summary>
public sealed record QuantizedEmbedding(Value Packed, Value Scales, Value? ZeroPoints, int Bits, int BlockSize) : EmbeddingWeight
{
    public override Value Lookup(GraphBuilder g, Value ids)
    {
        g.Import("com.microsoft", 1);
        return g.Node("GatherBlockQuantized", ZeroPoints is null ? [Packed, ids, Scales] : [Packed, ids, Scales, ZeroPoints], 1,
            new Dictionary<string, object>
            {
                ["bits"] = (long)Bits,
                ["block_size"] = (long)BlockSize,
                ["gather_axis"] = 0L,
                ["quantize_axis"] = 1L,
            }, "com.microsoft")[0];
    }
}
