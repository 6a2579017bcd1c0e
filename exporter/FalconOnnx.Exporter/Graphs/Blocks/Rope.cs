using FalconOnnx.Onnx;

namespace FalconOnnx.Graphs.Blocks;

/// <summary>
/// Rotary position embedding, "rotate_half" (NeoX) form over the whole head. The tables hold, in float32 like Hugging
/// Face, angles = position · inv_freq with inv_freq[i] = 1 / theta^(2i/d) (a single rounding, as HF's K=1 matmul),
/// and their cos and sin cast to the compute type.
/// </summary>
public sealed class Rope
{
    private readonly bool _perToken;

    private Rope(Value cos, Value sin, bool perToken)
    {
        Cos = cos;
        Sin = sin;
        _perToken = perToken;
    }

    /// <summary>cos of the angles: [batch, seq, 1, head_dim] per token, or [positions, head_dim / 2] by position.</summary>
    public Value Cos { get; }

    /// <summary>sin of the angles, shaped as <see cref="Cos"/>.</summary>
    public Value Sin { get; }

    /// <summary>Tables of this call's tokens from position_ids, for <see cref="Apply"/>.</summary>
    public static Rope PerToken(GraphBuilder g, Value positionIds, int headDim, double theta, ElementType compute)
    {
        var angles = g.Mul(g.Unsqueeze(g.Cast(positionIds, ElementType.Float), -1), InverseFrequencies(g, headDim, theta));
        // [batch, seq, 1, head_dim]: concat(angles, angles), shared by every layer and head.
        var full = g.Unsqueeze(g.Concat(-1, angles, angles), 2);
        return new Rope(Typed(g, g.Cos(full), compute), Typed(g, g.Sin(full), compute), perToken: true);
    }

    /// <summary>
    /// Tables of every position 0 .. <paramref name="positions"/> − 1 ([positions, head_dim / 2]), the cos_cache and
    /// sin_cache that com.microsoft.GroupQueryAttention rotates with. They depend on no input, so ONNX Runtime folds
    /// them once when it loads the model.
    /// </summary>
    public static Rope ByPosition(GraphBuilder g, int positions, int headDim, double theta, ElementType compute)
    {
        var all = g.Range(g.ScalarInt64(0), g.ScalarInt64(positions), g.ScalarInt64(1));
        var angles = g.Mul(g.Unsqueeze(g.Cast(all, ElementType.Float), -1), InverseFrequencies(g, headDim, theta));
        return new Rope(Typed(g, g.Cos(angles), compute), Typed(g, g.Sin(angles), compute), perToken: false);
    }

    /// <summary>x' = x·cos + rotate_half(x)·sin for x as [batch, seq, heads·head_dim], with per-token tables.</summary>
    public Value Apply(GraphBuilder g, Value x, int heads, int headDim)
    {
        if (!_perToken) throw new InvalidOperationException("tables by position rotate inside GroupQueryAttention; Apply needs per-token tables");
        var perHead = g.Reshape(x, 0, 0, heads, headDim);
        var halves = g.Split(perHead, -1, headDim / 2, headDim / 2);
        var rotated = g.Concat(-1, g.Neg(halves[1]), halves[0]);
        return g.Reshape(g.Add(g.Mul(perHead, Cos), g.Mul(rotated, Sin)), 0, 0, heads * headDim);
    }

    private static Value InverseFrequencies(GraphBuilder g, int headDim, double theta)
    {
        int half = headDim / 2;
        var inverseFrequencies = new float[half];
        float thetaF = (float)theta;
        for (int i = 0; i < half; i++) inverseFrequencies[i] = 1f / MathF.Pow(thetaF, (float)(2 * i) / headDim);
        return g.Constant(inverseFrequencies, [half]);
    }

    private static Value Typed(GraphBuilder g, Value v, ElementType compute) => compute == ElementType.Float ? v : g.Cast(v, compute);
}
