using FalconOnnx.Graphs.Blocks;
using FalconOnnx.Models;

namespace FalconOnnx.Export;

/// <summary>How the Mamba-2 mixer is written into the graph.</summary>
public enum SsmLowering
{
    /// <summary>ONNX Runtime's com.microsoft.CausalConvWithState and LinearAttention.</summary>
    Ort,
    /// <summary>Standard ONNX operators only (runs in any ONNX runtime).</summary>
    Onnx,
    /// <summary>FalconOnnx's fused falcon_onnx.Mamba2Mixer operator (libfalcon_onnx_ops, CPU and CUDA).</summary>
    Custom,
}

/// <summary>How attention and its KV cache are written into the graph.</summary>
public enum AttentionLowering
{
    /// <summary>com.microsoft.GroupQueryAttention, KV in one max-length buffer shared by past and present.</summary>
    Gqa,
    /// <summary>Standard operators, present = Concat(past, new).</summary>
    Concat,
}

public sealed record ExportOptions
{
    public SsmLowering Ssm { get; init; } = SsmLowering.Ort;

    /// <summary>
    /// Null: GroupQueryAttention with the ort lowering, standard operators with onnx, and standard operators
    /// where GroupQueryAttention cannot serve the model (its rotary needs a head size that is a multiple of 16).
    /// </summary>
    public AttentionLowering? Attention { get; init; }

    public AttentionLowering ResolveAttention(int headDim) => Attention
        ?? (Ssm == SsmLowering.Onnx || headDim % 16 != 0 || GqaLacksKernels ? AttentionLowering.Concat : AttentionLowering.Gqa);

    /// <summary>CUDA's GroupQueryAttention has float16 and bfloat16 kernels only.</summary>
    private bool GqaLacksKernels => Target == ExecutionTarget.Cuda && Precision is not (Precision.Fp16 or Precision.Bf16);

    /// <summary>
    /// Logits of the last position only, [batch, 1, vocab], instead of every new position: a prefill call then runs
    /// lm_head once instead of once per prompt token and holds one row of logits. Generation (our runtime and
    /// onnxruntime-genai) needs no more; teacher-forced evaluation (<c>falcon-onnx eval</c>) needs every position.
    /// </summary>
    public bool LastPositionLogits { get; init; }

    /// <summary>Replace an existing output folder.</summary>
    public bool Force { get; init; }

    public Precision Precision { get; init; } = Precision.Fp32;

    /// <summary>The device the export is for; fp16 and bf16 need CUDA (ONNX Runtime's CPU kernels lack them).</summary>
    public ExecutionTarget Target { get; init; } = ExecutionTarget.Cpu;

    public QuantizationSettings Quantization { get; init; } = new();

    /// <summary>Per-weight overrides, pattern=precision (see <see cref="PrecisionPolicy"/>).</summary>
    public IReadOnlyList<string> TensorPrecisions { get; init; } = [];

    /// <summary>
    /// The released checkpoint the input is (a models.json repo id); null: config.json's <c>_name_or_path</c> or a
    /// Hugging Face cache folder name tells, if either names one. The config is checked against that entry.
    /// </summary>
    public string? ModelId { get; init; }

    public static SsmLowering ParseSsm(string text) => text switch
    {
        "ort" => SsmLowering.Ort,
        "onnx" => SsmLowering.Onnx,
        "custom" => SsmLowering.Custom,
        _ => throw new FalconOnnxException($"--ssm: unknown Mamba-2 lowering '{text}' (expected ort, onnx or custom)"),
    };

    public static string Name(SsmLowering ssm) => ssm switch
    {
        SsmLowering.Ort => "ort",
        SsmLowering.Onnx => "onnx",
        SsmLowering.Custom => "custom",
        _ => throw new ArgumentOutOfRangeException(nameof(ssm)),
    };

    public static AttentionLowering ParseAttention(string text) => text switch
    {
        "gqa" => AttentionLowering.Gqa,
        "concat" => AttentionLowering.Concat,
        _ => throw new FalconOnnxException($"--attention: unknown attention lowering '{text}' (expected gqa or concat)"),
    };

    /// <summary>Rejects combinations that contradict each other or the model, before anything is written.</summary>
    public void Validate(FalconOnnx.Checkpoints.FalconH1Config config)
    {
        int headDim = config.HeadDim;
        if (Precision == Precision.Bf16 && Target == ExecutionTarget.Cpu)
            throw new FalconOnnxException("--precision bf16 --ep cpu: ONNX Runtime's CPU kernels have no bfloat16 for this graph (Where, MatMul, GroupQueryAttention); export bf16 for --ep cuda, or use fp32, fp16, int8 or int4 for the CPU");
        _ = new PrecisionPolicy(Precision, TensorPrecisions); // rejects bad overrides
        if (Precision.IsQuantized())
        {
            Quantization.Validate();
            foreach (var (name, width) in new[] { ("hidden_size", config.HiddenSize), ("num_attention_heads x head_dim", config.QueryDim), ("mamba_d_ssm", config.MambaDSsm), ("intermediate_size", config.IntermediateSize) })
                if (width % Quantization.BlockSize != 0)
                    throw new FalconOnnxException($"--block-size {Quantization.BlockSize} does not divide {name} ({width}) of config.json; choose one of {string.Join(", ", QuantizationSettings.BlockSizes.Where(b => config.HiddenSize % b == 0 && config.QueryDim % b == 0 && config.MambaDSsm % b == 0 && config.IntermediateSize % b == 0))}");
        }
        if (Ssm == SsmLowering.Onnx && Attention == AttentionLowering.Gqa)
            throw new FalconOnnxException("--ssm onnx writes standard ONNX operators only; it cannot be combined with --attention gqa (a com.microsoft operator)");
        foreach (var (custom, precision) in new[] { (Quantization.CustomInt4, Precision.Int4), (Quantization.CustomInt8, Precision.Int8) })
        {
            if (!custom) continue;
            string name = precision.Name();
            // An int4 export has int8 weights by default (embedding, lm_head, narrow projections); an int8 export has
            // int4 weights only by override.
            if (!(Precision == precision || (precision == Precision.Int8 && Precision == Precision.Int4) || TensorPrecisions.Any(t => t.EndsWith("=" + name, StringComparison.Ordinal))))
                throw new FalconOnnxException($"--{name}-matmul custom applies to {name} weights; a {Precision.Name()} export has none (use --precision {name})");
            if (Target == ExecutionTarget.Cuda)
                throw new FalconOnnxException($"--{name}-matmul custom --ep cuda: {Mamba2CustomCore.Domain}.{Rows16Linear.OperatorName(precision.Bits())} has a CPU kernel only; use --{name}-matmul ort for CUDA");
        }
        if (NeedsCustomOps)
            RequireOperatorLibrary(Ssm == SsmLowering.Custom ? "--ssm custom" : Quantization.CustomInt4 ? "--int4-matmul custom" : "--int8-matmul custom");
        if (Attention == AttentionLowering.Gqa && GqaLacksKernels)
            throw new FalconOnnxException($"--attention gqa --ep cuda: CUDA's GroupQueryAttention has no {Precision.Name()} kernel; use --attention concat or --precision fp16/bf16");
        if (Attention == AttentionLowering.Gqa && headDim % 16 != 0)
            throw new FalconOnnxException($"--attention gqa: config.json field 'head_dim' is {headDim}; GroupQueryAttention's rotary needs a multiple of 16 (use --attention concat)");
    }

    /// <summary>
    /// Float16 Linear weights in a quantized export run through falcon_onnx.MatMulFp16: a CPU kernel of the operator
    /// library. Checked once the policy has named them, before any weight is written.
    /// </summary>
    public void CheckHalfLinears(IReadOnlyList<string> names)
    {
        if (names.Count == 0) return;
        string which = $"--tensor-precision: {names[0]}{(names.Count > 1 ? $" (and {names.Count - 1} more)" : "")} in fp16 needs falcon_onnx.MatMulFp16";
        if (Target == ExecutionTarget.Cuda)
            throw new FalconOnnxException($"{which}, which has a CPU kernel only; keep Linear weights int8, int4 or fp32 in a --ep cuda export");
        RequireOperatorLibrary(which);
    }

    /// <summary>The folder will carry FalconOnnx's operator library because of <paramref name="why"/>: it must have been built.</summary>
    private static void RequireOperatorLibrary(string why)
    {
        if (!File.Exists(Mamba2CustomCore.BuiltLibraryPath))
            throw new FalconOnnxException($"{why}: the operator library {Mamba2CustomCore.BuiltLibraryPath} was not built (the build needs cmake and a C++17 compiler; see custom-ops/)");
    }

    /// <summary>
    /// True when these options put an operator of FalconOnnx's library in the graph, which the folder then carries
    /// (so does a float16 Linear that the precision policy names, <see cref="CheckHalfLinears"/>).
    /// </summary>
    public bool NeedsCustomOps => Ssm == SsmLowering.Custom || Quantization.CustomInt4 || Quantization.CustomInt8;

    internal IAttentionCore CreateAttentionCore(int headDim) => ResolveAttention(headDim) switch
    {
        AttentionLowering.Gqa => new GroupQueryAttentionCore(),
        AttentionLowering.Concat => new ConcatAttentionCore(),
        _ => throw new ArgumentOutOfRangeException(nameof(Attention)),
    };

    internal IMamba2Core CreateCore() => Ssm switch
    {
        SsmLowering.Ort => new Mamba2OrtCore(),
        SsmLowering.Onnx => new Mamba2OnnxCore(),
        SsmLowering.Custom => new Mamba2CustomCore(),
        _ => throw new ArgumentOutOfRangeException(nameof(Ssm)),
    };
}
