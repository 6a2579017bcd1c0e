using FalconOnnx.Onnx;

namespace FalconOnnx.Graphs.Blocks;

/// <summary>Rotary position embedding, "rotate_half" (NeoX) form over the whole head.</summary>
public sealed class Rope
{
    private Rope(Value cos, Value sin)
    {
        Cos = cos;
        Sin = sin;
    }

    /// <summary>cos(position · inv_freq) as [batch, seq, 1, head_dim], shared by every layer and head.</summary>
    public Value Cos { get; }

    public Value Sin { get; }

    /// <summary>
    /// The tables from position_ids, in float32 like Hugging Face: inv_freq[i] = 1 / theta^(2i/d), angles =
    /// position · inv_freq (a single rounding, as HF's K=1 matmul), then concat(angles, angles).
    /// </summary>
    /// <param name="compute">The tables are computed in float32 and cast to the compute type, as HF does.</param>
    public static Rope Build(GraphBuilder g, Value positionIds, int headDim, double theta, ElementType compute = ElementType.Float)
    {
        int half = headDim / 2;
        var inverseFrequencies = new float[half];
        float thetaF = (float)theta;
        for (int i = 0; i < half; i++) inverseFrequencies[i] = 1f / MathF.Pow(thetaF, (float)(2 * i) / headDim);
        var positions = g.Unsqueeze(g.Cast(positionIds, ElementType.Float), -1);
        var angles = g.Mul(positions, g.Constant(inverseFrequencies, [half]));
        var full = g.Unsqueeze(g.Concat(-1, angles, angles), 2);
        Value Typed(Value v) => compute == ElementType.Float ? v : g.Cast(v, compute);
        return new Rope(Typed(g.Cos(full)), Typed(g.Sin(full)));
    }

    /// <summary>x' = x·cos + rotate_half(x)·sin for x as [batch, seq, heads, head_dim].</summary>
    public Value Apply(GraphBuilder g, Value x, int headDim)
    {
        var halves = g.Split(x, -1, headDim / 2, headDim / 2);
        var rotated = g.Concat(-1, g.Neg(halves[1]), halves[0]);
        return g.Add(g.Mul(x, Cos), g.Mul(rotated, Sin));
    }
}
