using FalconOnnx.Export;
using LLama.Native;

namespace FalconOnnx.Benchmarks;

/// <summary>
/// One row group of the race: our export precision beside the llama.cpp file type of the same bit width.
/// </summary>
/// <param name="Name">The name on the command line (--precisions).</param>
/// <param name="PeerFileType">llama.cpp's quantization of the F32 GGUF; null races the F32 GGUF itself.</param>
/// <param name="OursExport">Export options of our side; null when this build cannot export the precision.</param>
/// <param name="OursUnavailableReason">Why our side is missing, for the report.</param>
public sealed record PrecisionPair(string Name, string OursLabel, string PeerLabel, LLamaFtype? PeerFileType, ExportOptions? OursExport, string? OursUnavailableReason)
{
    public bool HasOurs => OursExport is not null;

    /// <summary>File name of the peer's GGUF for this pair.</summary>
    public string PeerFileName(string size) => $"{size}-{PeerLabel.ToLowerInvariant()}.gguf";
}

/// <summary>
/// The one place where a precision on the command line becomes export options for our side and a llama.cpp file
/// type for the peer. Both quantized sides use blocks of 32 (Q8_0/Q4_0 are symmetric blocks of 32); our int4
/// keeps the embedding and lm_head in int8 where llama.cpp's Q4_0 keeps output.weight in Q6_K.
/// </summary>
public static class PrecisionPairs
{
    public static IReadOnlyList<PrecisionPair> All { get; } =
    [
        new("fp32", "fp32", "F32", null, new ExportOptions(), null),
        new("int8", "int8", "Q8_0", LLamaFtype.MOSTLY_Q8_0, new ExportOptions { Precision = FalconOnnx.Models.Precision.Int8 }, null),
        new("int4", "int4", "Q4_0", LLamaFtype.MOSTLY_Q4_0, new ExportOptions { Precision = FalconOnnx.Models.Precision.Int4 }, null),
    ];

    public static PrecisionPair Find(string name) =>
        All.FirstOrDefault(p => string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase))
        ?? throw new ArgumentException($"unknown precision '{name}'; the precisions are {string.Join(", ", All.Select(p => p.Name))}");
}
