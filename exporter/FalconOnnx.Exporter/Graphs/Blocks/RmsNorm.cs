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

    /// <summary>
    /// (x + residual, RMSNorm(x + residual)) as one com.microsoft.SkipSimplifiedLayerNormalization node (float32): the
    /// residual Add and the norm after it in one kernel.
    /// </summary>
    public static (Value Normalized, Value Sum) AfterResidual(GraphBuilder g, Value x, Value residual, Value weight, double eps)
    {
        g.Import("com.microsoft", 1);
        // Outputs: normalized, mean and inv_std_var (not wanted: left out), the sum.
        var outputs = g.Node("SkipSimplifiedLayerNormalization", [x, residual, weight], 4,
            new Dictionary<string, object> { ["epsilon"] = (float)eps }, "com.microsoft", null, 1, 2);
        return (outputs[0], outputs[3]);
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
