using FalconOnnx.Checkpoints;
using FalconOnnx.Onnx;

namespace FalconOnnx.Graphs.Blocks;

/// <summary>
/// Weights of one Mamba-2 mixer. in_proj already carries ssm_in_multiplier and the μP vector, out_proj the
/// ssm_out_multiplier; A_log and D are per head ([heads]).
/// </summary>
public sealed record Mamba2Weights(LinearWeight InProj, Value? InProjBias, Value ConvWeight, Value? ConvBias, Value DtBias,
    Value ALog, Value D, Value? NormWeight, LinearWeight OutProj, Value? OutProjBias)
{
    /// <summary>A = −exp(A_log), computed in the graph in float32 as HF does (ONNX Runtime folds it at load).</summary>
    public Value A(GraphBuilder g) => g.Neg(g.Exp(ALog));
}

/// <summary>Geometry and flags of the mixer, from config.json.</summary>
public sealed record Mamba2Shape(int Heads, int HeadDim, int Groups, int StateSize, int ConvKernel, int ChunkSize,
    bool RmsNorm, bool NormBeforeGate, double Eps, (double Min, double Max) TimeStepLimit)
{
    public int Inner => Heads * HeadDim;
    public int GroupedState => Groups * StateSize;
    public int ConvChannels => Inner + 2 * GroupedState;

    public static Mamba2Shape From(FalconH1Config c) => new(c.MambaNHeads, c.MambaDHead, c.MambaNGroups, c.MambaDState,
        c.MambaDConv, c.MambaChunkSize, c.MambaRmsNorm, c.MambaNormBeforeGate, c.RmsNormEps, c.TimeStepLimit);
}

/// <summary>The recurrent state of one layer: past inputs and the names of the present outputs.</summary>
public sealed record Mamba2State(Value PastConv, Value PastRecurrent, string PresentConvName, string PresentRecurrentName);

/// <summary>
/// What differs between the Mamba-2 lowerings: the mixer core from the in_proj output (z | x | B | C | dt) to
/// the gated (and normed) output that feeds out_proj, with the conv and recurrent states.
/// </summary>
public interface IMamba2Core
{
    /// <summary>Name recorded in the manifest (<c>ort</c>, <c>onnx</c>, ...).</summary>
    string Name { get; }

    Value Build(GraphBuilder g, Mamba2Weights w, Mamba2Shape s, Value projected, Value mask, Mamba2State state,
        out Value presentConv, out Value presentRecurrent);
}

/// <summary>The Falcon-H1 mixer: in_proj, a lowering's core, out_proj (falcon-h1.md §2.5).</summary>
public static class Mamba2
{
    /// <param name="mask">[batch, seq, 1] float: 1 for real tokens, 0 for left padding.</param>
    /// <param name="compute">The type of x; the mixer core always computes in float32, like its states.</param>
    public static Value Build(GraphBuilder g, IMamba2Core core, Mamba2Weights w, Mamba2Shape s, Value x, Value mask,
        Mamba2State state, out Value presentConv, out Value presentRecurrent, ElementType compute = ElementType.Float)
    {
        // Padding contributes nothing: the mixer input is zeroed, and with an in_proj bias the projection too,
        // so pads never enter the conv window or the state (model-abi.md, stricter than HF with a bias).
        var typedMask = compute == ElementType.Float ? mask : g.Cast(mask, compute);
        var projected = Linear.Build(g, g.Mul(x, typedMask), w.InProj, w.InProjBias);
        if (w.InProjBias is not null) projected = g.Mul(projected, typedMask);
        if (compute != ElementType.Float) projected = g.Cast(projected, ElementType.Float);
        var gated = core.Build(g, w, s, projected, mask, state, out presentConv, out presentRecurrent);
        if (compute != ElementType.Float) gated = g.Cast(gated, compute);
        return Linear.Build(g, gated, w.OutProj, w.OutProjBias);
    }

    /// <summary>Splits the in_proj output into z (gate), xBC (conv input) and raw dt.</summary>
    public static (Value Gate, Value ConvInput, Value RawDt) Split(GraphBuilder g, Mamba2Shape s, Value projected)
    {
        var parts = g.Split(projected, -1, s.Inner, s.ConvChannels, s.Heads);
        return (parts[0], parts[1], parts[2]);
    }

    /// <summary>dt = softplus(raw + dt_bias), clamped to time_step_limit when it is not (0, ∞), zero at pads.</summary>
    public static Value TimeStep(GraphBuilder g, Mamba2Shape s, Value rawDt, Value dtBias, Value mask)
    {
        var dt = g.Softplus(g.Add(rawDt, dtBias));
        var (min, max) = s.TimeStepLimit;
        if (min > 0 || !double.IsPositiveInfinity(max))
            dt = g.Clip(dt, g.Scalar((float)min), double.IsPositiveInfinity(max) ? null : g.Scalar((float)max));
        // dt = 0 keeps the state unchanged at a pad (decay exp(0) = 1, no input), even a non-zero state.
        return g.Mul(dt, mask);
    }

    /// <summary>y + D·x, then the gate SiLU(z) and the grouped RMSNorm in the configured order.</summary>
    public static Value Epilogue(GraphBuilder g, Mamba2Weights w, Mamba2Shape s, Value y, Value x, Value gate)
    {
        // D scales each head's channels: view [.., heads, head_dim] against D as [heads, 1].
        var skip = g.Reshape(g.Mul(g.Reshape(x, 0, 0, s.Heads, s.HeadDim), g.Unsqueeze(w.D, -1)), 0, 0, s.Inner);
        y = g.Add(y, skip);
        if (!s.RmsNorm) return g.Mul(y, g.Silu(gate));
        if (s.NormBeforeGate)
            return g.Mul(RmsNorm.Grouped(g, y, w.NormWeight!, s.Eps, s.Groups, s.Inner), g.Silu(gate));
        return RmsNorm.Grouped(g, g.Mul(y, g.Silu(gate)), w.NormWeight!, s.Eps, s.Groups, s.Inner);
    }
}
