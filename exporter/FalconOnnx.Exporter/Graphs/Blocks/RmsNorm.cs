using FalconOnnx.Onnx;

namespace FalconOnnx.Graphs.Blocks;

/// <summary>RMSNorm: x · rsqrt(mean(x²) + eps) · weight, over the last axis or over groups of it.</summary>
public static class RmsNorm
{
    /// <summary>
    /// Written as Pow → ReduceMean → Add → Sqrt → Div → Mul, the pattern ONNX Runtime fuses into its
    /// SimplifiedLayerNormalization kernel, while the file stays standard ONNX.
    /// </summary>
    public static Value Build(GraphBuilder g, Value x, Value weight, double eps)
    {
        var variance = g.ReduceMean(g.Pow(x, 2f), -1);
        var normalized = g.Div(x, g.Sqrt(g.Add(variance, g.Scalar((float)eps))));
        return g.Mul(normalized, weight);
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
