using FalconOnnx.Onnx;

namespace FalconOnnx.Graphs.Blocks;

/// <summary>
/// The <c>ort</c> lowering: ONNX Runtime's contrib operators com.microsoft.CausalConvWithState (conv + SiLU
/// with its state) and com.microsoft.LinearAttention with the gated rule, which is the Mamba-2 recurrence
/// S_t = exp(dt·A)·S_{t−1} + B_tᵀ(dt·x_t), y_t = C_t·S_t with q = C, k = B, v = dt·x, decay = dt·A.
/// </summary>
public sealed class Mamba2OrtCore : IMamba2Core
{
    public string Name => "ort";

    public Value Build(GraphBuilder g, Mamba2Weights w, Mamba2Shape s, Value projected, Value mask, Mamba2State state,
        out Value presentConv, out Value presentRecurrent)
    {
        g.Import("com.microsoft", 1);
        var (gate, convInput, rawDt) = Mamba2.Split(g, s, projected);

        var bias = w.ConvBias ?? g.Constant(new float[s.ConvChannels], [s.ConvChannels]);
        var conv = g.Node("CausalConvWithState", [g.Transpose(convInput, 0, 2, 1), w.ConvWeight, bias, state.PastConv], 2,
            new Dictionary<string, object> { ["activation"] = "silu" }, "com.microsoft");
        presentConv = g.Output(conv[1], state.PresentConvName);
        var activated = g.Mul(g.Transpose(conv[0], 0, 2, 1), mask);
        var xbc = g.Split(activated, -1, s.Inner, s.GroupedState, s.GroupedState);
        var dt = Mamba2.TimeStep(g, s, rawDt, w.DtBias, mask);

        var value = g.Reshape(g.Mul(g.Reshape(xbc[0], 0, 0, s.Heads, s.HeadDim), g.Unsqueeze(dt, -1)), 0, 0, s.Inner);
        var decay = g.Mul(dt, w.A(g));
        var scan = g.Node("LinearAttention", [PerHead(g, s, xbc[2]), PerHead(g, s, xbc[1]), value, state.PastRecurrent, decay], 2,
            new Dictionary<string, object>
            {
                ["update_rule"] = "gated",
                ["scale"] = 1.0f,
                ["q_num_heads"] = (long)s.Heads,
                ["kv_num_heads"] = (long)s.Heads,
            }, "com.microsoft");
        presentRecurrent = g.Output(scan[1], state.PresentRecurrentName);
        return Mamba2.Epilogue(g, w, s, scan[0], xbc[0], gate);
    }

    /// <summary>B or C from [batch, seq, groups·N] to [batch, seq, heads·N]: each group serves heads/groups contiguous heads.</summary>
    private static Value PerHead(GraphBuilder g, Mamba2Shape s, Value grouped)
    {
        if (s.Groups == s.Heads) return grouped;
        var expanded = g.Expand(g.Reshape(grouped, 0, 0, s.Groups, 1, s.StateSize), g.Constant(1, 1, 1, s.Heads / s.Groups, 1));
        return g.Reshape(expanded, 0, 0, s.Heads * s.StateSize);
    }
}
