using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace FalconOnnx.Runtime;

/// <summary>
/// <c>falcon_onnx.json</c>, the manifest of an exported folder (model-abi.md): what the graph expects and how it
/// was made. The exporter writes it; the runtime reads it before it trusts the folder.
/// </summary>
public sealed record ModelManifest
{
    public const string FileName = "falcon_onnx.json";

    /// <summary>The graph interface version this runtime understands.</summary>
    public const int CurrentAbiVersion = 1;

    public required string Format { get; init; } = "falcon-onnx";
    public required int AbiVersion { get; init; }
    public required string ModelType { get; init; }
    public required string ExporterVersion { get; init; }
    public required ManifestGraph Graph { get; init; }
    public required ManifestDimensions Dimensions { get; init; }
    public required ManifestExportOptions Options { get; init; }
    public required ManifestSource Source { get; init; }
    /// <summary>File name (inside the folder) of the custom-operator library the graph needs, or null.</summary>
    public string? CustomOpsLibrary { get; init; }
    public required ManifestTokens Tokens { get; init; }

    public static readonly JsonSerializerOptions JsonOptions = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    };

    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);

    /// <summary>Reads and checks the manifest of <paramref name="folder"/>.</summary>
    public static ModelManifest Load(string folder)
    {
        string path = Path.Combine(folder, FileName);
        if (!Directory.Exists(folder)) throw new FalconModelException($"{folder}: folder not found");
        if (!File.Exists(path))
            throw new FalconModelException($"{folder}: not a FalconOnnx export ({FileName} is missing; create one with `falcon-onnx export`)");
        ModelManifest? manifest;
        try
        {
            var node = JsonNode.Parse(File.ReadAllText(path));
            if (node?["abi_version"] is { } abi && abi.GetValueKind() == JsonValueKind.Number && abi.GetValue<int>() != CurrentAbiVersion)
                throw new FalconModelException($"{path}: abi_version {abi.GetValue<int>()} is not supported by this runtime (it reads version {CurrentAbiVersion}); re-export the model with a matching falcon-onnx");
            manifest = node.Deserialize<ModelManifest>(JsonOptions);
        }
        catch (JsonException e)
        {
            throw new FalconModelException($"{path}: invalid manifest ({e.Message.Split('\n')[0]})", e);
        }
        if (manifest is null || manifest.Format != "falcon-onnx")
            throw new FalconModelException($"{path}: 'format' must be \"falcon-onnx\"");
        return manifest;
    }
}

public sealed record ManifestGraph
{
    public required string File { get; init; }
    public required string? DataFile { get; init; }
    public required int IrVersion { get; init; }
    public required Dictionary<string, int> Opsets { get; init; }
    /// <summary>"all": logits for every new token; "last": only the last position.</summary>
    public required string Logits { get; init; }
    public required string KvDtype { get; init; }
    public required string StateDtype { get; init; }
    /// <summary>"gqa" (com.microsoft.GroupQueryAttention) or "concat" (standard operators).</summary>
    public required string Attention { get; init; }
    /// <summary>True when present KV outputs are written into the max-length past buffers.</summary>
    public required bool PastPresentShareBuffer { get; init; }
}

public sealed record ManifestDimensions
{
    public required int VocabSize { get; init; }
    public required int HiddenSize { get; init; }
    public required int NumLayers { get; init; }
    public required int NumAttentionHeads { get; init; }
    public required int NumKeyValueHeads { get; init; }
    public required int HeadDim { get; init; }
    public required int ConvDim { get; init; }
    public required int ConvKernel { get; init; }
    public required int MambaHeads { get; init; }
    public required int MambaHeadDim { get; init; }
    public required int MambaStateSize { get; init; }
    public required int ContextLength { get; init; }
}

public sealed record ManifestExportOptions
{
    public required string Precision { get; init; }
    public required string Ssm { get; init; }
    public required string TargetEp { get; init; }
    public required ManifestQuantization? Quantization { get; init; }
}

public sealed record ManifestQuantization
{
    public required string Method { get; init; }
    public required int BlockSize { get; init; }
    public required bool Symmetric { get; init; }
    /// <summary>MatMulNBits accuracy_level: 4 quantizes activations to int8 on the CPU.</summary>
    public required int AccuracyLevel { get; init; }
    public required List<string> Overrides { get; init; }
    /// <summary>Precision of each weight by its name in the export.</summary>
    public required Dictionary<string, string> Weights { get; init; }
}

public sealed record ManifestSource
{
    public required JsonObject Config { get; init; }
    public required List<ManifestFile> Files { get; init; }
}

public sealed record ManifestFile
{
    public required string Name { get; init; }
    public required long Bytes { get; init; }
    public required string Sha256 { get; init; }
}

public sealed record ManifestTokens
{
    public required int BosTokenId { get; init; }
    public required int[] EosTokenIds { get; init; }
    public required int PadTokenId { get; init; }
}
