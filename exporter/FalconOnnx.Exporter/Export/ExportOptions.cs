using FalconOnnx.Graphs.Blocks;

namespace FalconOnnx.Export;

/// <summary>How the Mamba-2 mixer is written into the graph.</summary>
public enum SsmLowering
{
    /// <summary>ONNX Runtime's com.microsoft.CausalConvWithState and LinearAttention.</summary>
    Ort,
    /// <summary>Standard ONNX operators only (runs in any ONNX runtime).</summary>
    Onnx,
}

public sealed record ExportOptions
{
    public SsmLowering Ssm { get; init; } = SsmLowering.Ort;

    /// <summary>Replace an existing output folder.</summary>
    public bool Force { get; init; }

    public static SsmLowering ParseSsm(string text) => text switch
    {
        "ort" => SsmLowering.Ort,
        "onnx" => SsmLowering.Onnx,
        _ => throw new FalconOnnxException($"--ssm: unknown Mamba-2 lowering '{text}' (expected ort or onnx)"),
    };

    public static string Name(SsmLowering ssm) => ssm switch
    {
        SsmLowering.Ort => "ort",
        SsmLowering.Onnx => "onnx",
        _ => throw new ArgumentOutOfRangeException(nameof(ssm)),
    };

    internal IMamba2Core CreateCore() => Ssm switch
    {
        SsmLowering.Ort => new Mamba2OrtCore(),
        SsmLowering.Onnx => new Mamba2OnnxCore(),
        _ => throw new ArgumentOutOfRangeException(nameof(Ssm)),
    };
}
