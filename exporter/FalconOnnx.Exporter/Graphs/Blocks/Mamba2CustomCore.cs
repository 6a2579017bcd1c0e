using FalconOnnx.Onnx;

namespace FalconOnnx.Graphs.Blocks;

/// <summary>
/// The <c>custom</c> lowering: one falcon_onnx.Mamba2Mixer node (custom-ops/, libfalcon_onnx_ops) does
/// everything between in_proj and out_proj, fused, on CPU and CUDA. The contract of its inputs, outputs and
/// attributes is custom-ops/include/falcon_onnx/mamba2_mixer.h.
/// </summary>
public sealed class Mamba2CustomCore : IMamba2Core
{
    public const string Domain = "falcon_onnx";
    public const string Operator = "Mamba2Mixer";
    public const int Version = 1;

    /// <summary>The library's file name on this platform, as CMake builds it.</summary>
    public static string LibraryFileName =>
        OperatingSystem.IsWindows() ? "falcon_onnx_ops.dll" : OperatingSystem.IsMacOS() ? "libfalcon_onnx_ops.dylib" : "libfalcon_onnx_ops.so";

    /// <summary>Where the build puts the library: beside the exporter's assembly.</summary>
    public static string BuiltLibraryPath => Path.Combine(AppContext.BaseDirectory, LibraryFileName);

    public string Name => "custom";

    public Value Build(GraphBuilder g, Mamba2Weights w, Mamba2Shape s, Value projected, Value mask, Mamba2State state,
        out Value presentConv, out Value presentRecurrent)
    {
        g.Import(Domain, Version);
        var (min, max) = s.TimeStepLimit;
        var outputs = g.Node(Operator,
            [projected, w.ConvWeight, w.ConvBias, w.DtBias, w.ALog, w.D, w.NormWeight, AttentionMask(g), state.PastConv, state.PastRecurrent], 3,
            new Dictionary<string, object>
            {
                ["n_heads"] = (long)s.Heads,
                ["head_dim"] = (long)s.HeadDim,
                ["n_groups"] = (long)s.Groups,
                ["d_state"] = (long)s.StateSize,
                ["d_conv"] = (long)s.ConvKernel,
                ["chunk_size"] = (long)s.ChunkSize,
                ["norm_before_gate"] = s.NormBeforeGate ? 1L : 0L,
                ["epsilon"] = (float)s.Eps,
                ["dt_min"] = (float)min,
                ["dt_max"] = double.IsPositiveInfinity(max) ? float.PositiveInfinity : (float)max,
            }, Domain);
        presentConv = g.Output(outputs[1], state.PresentConvName);
        presentRecurrent = g.Output(outputs[2], state.PresentRecurrentName);
        return outputs[0];
    }

    /// <summary>The graph input attention_mask: the operator takes the last T columns as this call's tokens.</summary>
    private static Value AttentionMask(GraphBuilder g) => g.Inputs.First(i => i.Name == "attention_mask");
}
