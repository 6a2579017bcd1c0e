namespace FalconOnnx.Models;

/// <summary>How an export stores its weights.</summary>
public enum Precision
{
    Fp32,
    Fp16,
    Bf16,
    /// <summary>8-bit integers in blocks of <see cref="Precisions.BlockSize"/> along the input axis, one scale per block.</summary>
    Int8,
    /// <summary>4-bit integers in blocks of <see cref="Precisions.BlockSize"/> along the input axis, one scale per block.</summary>
    Int4,
}

/// <summary>Where an export runs.</summary>
public enum ExecutionTarget
{
    Cpu,
    Cuda,
}

/// <summary>
/// The one place that says what each precision stores and computes in, for <see cref="MemoryPlan"/> and models.json:
/// <list type="bullet">
/// <item>Weights: every 2-D tensor (the embedding table, every Linear, lm_head) takes 4 bytes per parameter in fp32,
/// 2 in fp16 and bf16; int8 and int4 store blocks of 32 values along the input axis (a row of the [out, in] weight)
/// as 8 or 4 bits each plus one float32 scale per block (the activations' type, as MatMulNBits wants), symmetric
/// with no zero point: 1 + 4/32 = 1.125 and 0.5 + 4/32 = 0.625 bytes per parameter. An int4 export keeps the
/// embedding, lm_head and projections with fewer than 256 inputs in int8 (Export.PrecisionPolicy).
/// In fp32, int8 and int4 every other tensor (norms, conv, A_log, D, dt_bias, biases) stays float32; in fp16 and bf16
/// the layer norms and Linear biases take 2 bytes and the Mamba-2 parameters stay float32 (counted at 2 here, a
/// difference of a few kilobytes per layer).</item>
/// <item>Activations and the KV cache: float32 for fp32, int8 and int4 (MatMulNBits runs with float32 activations),
/// float16 for fp16 and bfloat16 for bf16.</item>
/// <item>Conv and recurrent (SSM) states: float32 always (model-abi.md).</item>
/// </list>
/// </summary>
public static class Precisions
{
    public const int BlockSize = 32;
    public const int ScaleBytes = sizeof(float);
    public const int StateBytes = sizeof(float);

    public static IReadOnlyList<Precision> All { get; } = [Precision.Fp32, Precision.Fp16, Precision.Bf16, Precision.Int8, Precision.Int4];

    public static string Names => string.Join(", ", All.Select(Name));

    public static string Name(this Precision precision) => precision switch
    {
        Precision.Fp32 => "fp32",
        Precision.Fp16 => "fp16",
        Precision.Bf16 => "bf16",
        Precision.Int8 => "int8",
        Precision.Int4 => "int4",
        _ => throw new ArgumentOutOfRangeException(nameof(precision)),
    };

    public static Precision Parse(string text, string option = "--precision") =>
        All.Cast<Precision?>().FirstOrDefault(p => string.Equals(Name(p!.Value), text, StringComparison.OrdinalIgnoreCase))
        ?? throw new FalconOnnxException($"{option}: unknown precision '{text}' (expected {Names})");

    public static bool IsQuantized(this Precision p) => p is Precision.Int8 or Precision.Int4;

    public static int Bits(this Precision p) => p switch
    {
        Precision.Int8 => 8,
        Precision.Int4 => 4,
        _ => throw new ArgumentOutOfRangeException(nameof(p)),
    };

    public static string Name(ExecutionTarget target) => target == ExecutionTarget.Cpu ? "cpu" : "cuda";

    public static ExecutionTarget ParseTarget(string text) => text.ToLowerInvariant() switch
    {
        "cpu" => ExecutionTarget.Cpu,
        "cuda" => ExecutionTarget.Cuda,
        _ => throw new FalconOnnxException($"--ep: unknown execution provider '{text}' (expected cpu or cuda)"),
    };

    /// <summary>Where a precision runs unless told otherwise: 16-bit exports on CUDA, the others on the CPU.</summary>
    public static ExecutionTarget DefaultTarget(Precision precision) =>
        precision is Precision.Fp16 or Precision.Bf16 ? ExecutionTarget.Cuda : ExecutionTarget.Cpu;

    /// <summary>Bytes of a weight matrix stored [rows, columns] (columns = the input axis).</summary>
    public static long MatrixBytes(Precision precision, long rows, long columns) => precision switch
    {
        Precision.Fp32 => rows * columns * 4,
        Precision.Fp16 or Precision.Bf16 => rows * columns * 2,
        Precision.Int8 => rows * Blocks(columns) * (BlockSize + ScaleBytes),
        Precision.Int4 => rows * Blocks(columns) * (BlockSize / 2 + ScaleBytes),
        _ => throw new ArgumentOutOfRangeException(nameof(precision)),
    };

    /// <summary>Bytes of a tensor that is not a weight matrix (vectors, the depthwise conv).</summary>
    public static long OtherBytes(Precision precision, long elements) =>
        elements * (precision is Precision.Fp16 or Precision.Bf16 ? 2 : 4);

    /// <summary>Bytes per element of activations and of the KV cache.</summary>
    public static int ComputeBytes(Precision precision, ExecutionTarget target) => precision switch
    {
        Precision.Fp32 => 4,
        Precision.Fp16 or Precision.Bf16 => 2,
        _ => 4,
    };

    /// <summary>The KV cache's element type, as the manifest names it.</summary>
    public static string KvDtype(Precision precision, ExecutionTarget target) => precision switch
    {
        Precision.Fp16 => "float16",
        Precision.Bf16 => "bfloat16",
        _ => "float32",
    };

    private static long Blocks(long columns) => (columns + BlockSize - 1) / BlockSize;
}
