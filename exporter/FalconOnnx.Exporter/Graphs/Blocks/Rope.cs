using FalconOnnx.Onnx;

namespace FalconOnnx.Graphs.Blocks;

/// <summary>Rotary position embedding, "rotate_half" (NeoX) form over the whole head.</summary>
public sealed class Rope
{
    private readonly Value _cos, _sin;
    private readonly Value? _rowOfToken;

    private Rope(Value cos, Value sin, Value? rowOfToken)
    {
        _cos = cos;
        _sin = sin;
        _rowOfToken = rowOfToken;
    }

    /// <summary>
    /// The tables from position_ids, in float32 like Hugging Face: inv_freq[i] = 1 / theta^(2i/d), angles =
    /// position · inv_freq (a single rounding, as HF's K=1 matmul), cos and sin of them, cast to the compute type.
    /// </summary>
    /// <param name="fused">Rotate with com.microsoft.RotaryEmbedding, one node per tensor instead of fourteen
    /// standard ones (a decode step of the 0.5B model runs ~500 fewer nodes). Its tables are indexed by a row per
    /// token: the rows here are this call's tokens, so any position_ids (left padding included) rotate as HF's.</param>
    public static Rope Build(GraphBuilder g, Value positionIds, int headDim, double theta, ElementType compute, bool fused)
    {
        int half = headDim / 2;
        var inverseFrequencies = new float[half];
        float thetaF = (float)theta;
        for (int i = 0; i < half; i++) inverseFrequencies[i] = 1f / MathF.Pow(thetaF, (float)(2 * i) / headDim);
        var positions = g.Unsqueeze(g.Cast(positionIds, ElementType.Float), -1);
        var angles = g.Mul(positions, g.Constant(inverseFrequencies, [half]));
        Value Typed(Value v) => compute == ElementType.Float ? v : g.Cast(v, compute);
        if (fused)
        {
            // [batch·seq, half] tables and [batch, seq] row numbers 0 .. batch·seq − 1.
            var rows = g.Reshape(angles, -1, half);
            var rowOfToken = g.Reshape(g.Range(g.ScalarInt64(0), g.Size(positionIds), g.ScalarInt64(1)), g.Shape(positionIds));
            return new Rope(Typed(g.Cos(rows)), Typed(g.Sin(rows)), rowOfToken);
        }
        // [batch, seq, 1, head_dim]: concat(angles, angles), shared by every layer and head.
        var full = g.Unsqueeze(g.Concat(-1, angles, angles), 2);
        return new Rope(Typed(g.Cos(full)), Typed(g.Sin(full)), null);
    }

    /// <summary>x' = x·cos + rotate_half(x)·sin for x as [batch, seq, heads·head_dim].</summary>
    public Value Apply(GraphBuilder g, Value x, int heads, int headDim)
    {
        if (_rowOfToken is not null)
        {
            g.Import("com.microsoft", 1);
            return g.Node("RotaryEmbedding", [x, _rowOfToken, _cos, _sin], 1,
                new Dictionary<string, object> { ["interleaved"] = 0L, ["num_heads"] = (long)heads }, "com.microsoft")[0];
        }
        var perHead = g.Reshape(x, 0, 0, heads, headDim);
        var halves = g.Split(perHead, -1, headDim / 2, headDim / 2);
        var rotated = g.Concat(-1, g.Neg(halves[1]), halves[0]);
        return g.Reshape(g.Add(g.Mul(perHead, _cos), g.Mul(rotated, _sin)), 0, 0, heads * headDim);
    }
}
