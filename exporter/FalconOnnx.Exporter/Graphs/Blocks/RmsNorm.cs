using FalconOnnx.Onnx;

namespace FalconOnnx.Graphs.Blocks;

/// <summary>RMSNorm: x · rsqrt(mean(x²) + eps) · weight, over the last axis or over groups of it.</summary>
public static class RmsNorm
{
    /// <summary>
    /// Written as Pow → ReduceMean → Add → Sqrt → Div → Mul, the pattern ONNX Runtime fuses into its
    /// SimplifiedLayerNormalization kernel, while the file stays standard ONNX.
    /// </summary>
    /// <param name="compute">The type of x and weight; a 16-bit x is normalized in float32 and cast back before
    /// the weight multiplies it, as Hugging Face does.</param>
    public static Value Build(GraphBuilder g, Value x, Value weight, double eps, ElementType compute = ElementType.Float)
    {
        var input = compute == ElementType.Float ? x : g.Cast(x, ElementType.Float);
        var variance = g.ReduceMean(g.Pow(input, 2f), -1);
        var normalized = g.Div(input, g.Sqrt(g.Add(variance, g.Scalar((float)eps))));
        return g.Mul(compute == ElementType.Float ? normalized : g.Cast(normalized, compute), weight);
    }

    /// <summary>RMSNorm within <paramref name="groups"/> contiguous groups of the last axis (width <paramref name="width"/>).</summary>
    public static Value Grouped(GraphBuilder g, Value x, Value weight, double eps, int groups, int width)
    {
        if (groups == 1) return Build(g, x, weight, eps);
        var grouped = g.Reshape(x, 0, 0, groups, width / groups);
        var variance = g.ReduceMean(g.Pow(grouped, 2f), -1);
        var normalized = g.Reshape(g.Div(grouped, g.Sqrt(g.Add(variance, g.Scalar((float)eps)))), 0, 0, width);
        return g.Mul(normalized, weight);
    }
}
