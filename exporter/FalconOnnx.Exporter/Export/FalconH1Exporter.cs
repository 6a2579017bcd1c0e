using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using FalconOnnx.Checkpoints;
using FalconOnnx.Graphs;
using FalconOnnx.Graphs.Blocks;
using FalconOnnx.Models;
using FalconOnnx.Onnx;
using FalconOnnx.Runtime;

namespace FalconOnnx.Export;

/// <summary>What an export has done so far: the tensor just written and the running counts.</summary>
public readonly record struct ExportProgress(string Stage, string? Tensor, int TensorsDone, int TensorCount, long BytesDone, long TotalBytes);

public sealed record ExportResult(string Folder, IReadOnlyList<(string Name, long Bytes)> Files, TimeSpan Elapsed)
{
    public long TotalBytes => Files.Sum(f => f.Bytes);
}

/// <summary>
/// Hugging Face Falcon-H1 checkpoint folder in, exported folder (model-abi.md) out: model.onnx with its
/// external data, genai_config.json, the manifest and the tokenizer files.
/// </summary>
public static class FalconH1Exporter
{
    public const string ModelFileName = "model.onnx";
    public const string DataFileName = "model.onnx.data";
    public const string GenAiConfigFileName = "genai_config.json";

    /// <summary>Files copied from the checkpoint when present.</summary>
    public static readonly string[] TokenizerFiles =
        ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json", "chat_template.jinja"];

    /// <param name="warning">Called with one line for each way the checkpoint's config differs from its models.json
    /// entry (when the model is known); the export goes on.</param>
    public static ExportResult Export(string input, string output, ExportOptions options,
        Action<ExportProgress>? progress = null, CancellationToken cancellationToken = default, Action<string>? warning = null)
    {
        var clock = Stopwatch.StartNew();
        using var checkpoint = Checkpoint.Open(input);
        options.Validate(checkpoint.Config);
        foreach (string difference in Differences(checkpoint.Config, input, options)) warning?.Invoke(difference);
        using var folder = OutputFolder.Create(output, options.Force, mustNotContain: input);
        var checksums = Task.Run(() => Checksums(checkpoint, cancellationToken), cancellationToken);

        var core = options.CreateCore();
        var attention = options.CreateAttentionCore(checkpoint.Config.HeadDim);
        var policy = new PrecisionPolicy(options.Precision, options.TensorPrecisions);
        FalconH1Weights? weights = null;
        var compute = options.Precision switch
        {
            Precision.Fp16 => ElementType.Float16,
            Precision.Bf16 => ElementType.BFloat16,
            _ => ElementType.Float,
        };
        // --ssm onnx keeps standard norms; the other lowerings need ONNX Runtime anyway. SwiGlu has a CPU kernel only.
        var fusions = new GraphFusions(
            ResidualNorms: compute == ElementType.Float && options.Ssm != SsmLowering.Onnx,
            SwiGluKernel: compute == ElementType.Float && options.NeedsCustomOps && options.Target == ExecutionTarget.Cpu);
        var graph = FalconH1Graph.Build(checkpoint, core, attention, g => weights = new FalconH1Weights(g, checkpoint, policy, options.Quantization, compute), compute,
            options.LastPositionLogits, fusions);
        options.CheckHalfLinears(weights!.HalfLinears);
        bool needsLibrary = options.NeedsCustomOps || weights.HalfLinears.Count > 0;
        progress?.Invoke(new ExportProgress("weights", null, 0, graph.Initializers.Count, 0, 0));
        OnnxModelWriter.Write(graph, folder.Staging, ModelFileName, DataFileName,
            new Dictionary<string, string> { ["falcon_onnx.abi_version"] = ModelManifest.CurrentAbiVersion.ToString() },
            p => progress?.Invoke(new ExportProgress("weights", p.TensorName, p.TensorsWritten, p.TensorCount, p.BytesWritten, p.TotalBytes)),
            cancellationToken);

        var config = checkpoint.Config;
        foreach (string name in TokenizerFiles)
        {
            string source = Path.Combine(input, name);
            if (File.Exists(source)) File.Copy(source, Path.Combine(folder.Staging, name));
        }
        string? library = null;
        if (needsLibrary)
        {
            // The folder carries its operator library, so ONNX Runtime, GenAI and the runtime find it beside the model.
            library = Mamba2CustomCore.LibraryFileName;
            File.Copy(Mamba2CustomCore.BuiltLibraryPath, Path.Combine(folder.Staging, library));
        }
        bool hasData = File.Exists(Path.Combine(folder.Staging, DataFileName));
        var manifest = Manifest(config, core.Name, attention, graph, checksums.GetAwaiter().GetResult(), hasData, library, options, weights!.Precisions, compute.OnnxName());
        WriteText(Path.Combine(folder.Staging, ModelManifest.FileName), manifest.ToJson());
        WriteText(Path.Combine(folder.Staging, GenAiConfigFileName), GenAiConfig.Create(config, manifest).ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        cancellationToken.ThrowIfCancellationRequested();

        folder.Commit();
        var files = Directory.EnumerateFiles(folder.Target).Order(StringComparer.Ordinal)
            .Select(f => (Path.GetFileName(f), new FileInfo(f).Length)).ToList();
        return new ExportResult(folder.Target, files, clock.Elapsed);
    }

    /// <summary>
    /// How the checkpoint's config.json differs from its models.json entry, one line each; empty when it matches or
    /// the model is not known (<see cref="ExportOptions.ModelId"/>). Reads config.json only, so a caller can show
    /// the lines before a long export starts.
    /// </summary>
    public static IReadOnlyList<string> CheckConfig(string input, ExportOptions options) => Directory.Exists(input)
        ? Differences(FalconH1Config.Load(Path.Combine(input, Checkpoint.ConfigFileName)), input, options)
        : []; // Export names the missing folder.

    private static IReadOnlyList<string> Differences(FalconH1Config config, string input, ExportOptions options) =>
        ModelCatalog.Identify(options.ModelId, config, input) is { } known ? ModelCatalog.Differences(config, known) : [];

    private static void WriteText(string path, string text) => File.WriteAllText(path, text + "\n");

    private static ModelManifest Manifest(FalconH1Config c, string ssm, IAttentionCore attention, GraphBuilder graph,
        List<ManifestFile> sources, bool hasData, string? library, ExportOptions options, Dictionary<string, string> precisions, string kvDtype) => new()
    {
        Format = "falcon-onnx",
        AbiVersion = ModelManifest.CurrentAbiVersion,
        ModelType = "falcon_h1",
        ExporterVersion = typeof(FalconH1Exporter).Assembly.GetName().Version?.ToString() ?? "0",
        Graph = new ManifestGraph
        {
            File = ModelFileName,
            DataFile = hasData ? DataFileName : null,
            IrVersion = OnnxModelWriter.IrVersion,
            Opsets = graph.OpsetImports.ToDictionary(o => o.Key == "" ? "ai.onnx" : o.Key, o => o.Value),
            Logits = options.LastPositionLogits ? "last" : "all",
            KvDtype = kvDtype,
            StateDtype = "float32",
            Attention = attention.Name,
            PastPresentShareBuffer = attention.SharesKvBuffer,
        },
        Dimensions = new ManifestDimensions
        {
            VocabSize = c.VocabSize,
            HiddenSize = c.HiddenSize,
            NumLayers = c.NumHiddenLayers,
            NumAttentionHeads = c.NumAttentionHeads,
            NumKeyValueHeads = c.NumKeyValueHeads,
            HeadDim = c.HeadDim,
            ConvDim = c.ConvDim,
            ConvKernel = c.MambaDConv,
            MambaHeads = c.MambaNHeads,
            MambaHeadDim = c.MambaDHead,
            MambaStateSize = c.MambaDState,
            ContextLength = c.MaxPositionEmbeddings,
        },
        Options = new ManifestExportOptions
        {
            Precision = options.Precision.Name(),
            Ssm = ssm,
            TargetEp = options.Target == ExecutionTarget.Cuda ? "cuda" : "cpu",
            Quantization = !options.Precision.IsQuantized() ? null : new ManifestQuantization
            {
                Method = QuantizationMethod(options.Quantization, precisions),
                BlockSize = options.Quantization.BlockSize,
                Symmetric = options.Quantization.Symmetric,
                AccuracyLevel = options.Quantization.AccuracyLevel,
                Overrides = [.. options.TensorPrecisions],
                Weights = precisions,
            },
        },
        Source = new ManifestSource { Config = (JsonObject)c.Source.DeepClone(), Files = sources },
        CustomOpsLibrary = library,
        Tokens = new ManifestTokens { BosTokenId = c.BosTokenId, EosTokenIds = c.EosTokenIds, PadTokenId = c.PadTokenId },
    };

    /// <summary>Which operators hold the quantized weights, for the manifest.</summary>
    private static string QuantizationMethod(QuantizationSettings quantization, Dictionary<string, string> precisions)
    {
        string Operator(Precision precision) => quantization.Custom(precision) ? $"{Mamba2CustomCore.Domain}.{Rows16Linear.OperatorName(precision.Bits())}" : "MatMulNBits";
        string matrices = quantization.CustomInt4 || quantization.CustomInt8
            ? $"{Operator(Precision.Int4)} for int4, {Operator(Precision.Int8)} for int8"
            : "MatMulNBits";
        return $"block-wise round-to-nearest ({matrices}, GatherBlockQuantized)" +
            (precisions.ContainsValue("fp16") ? "; fp16 weights as float16 (falcon_onnx.MatMulFp16, Gather + Cast)" : "");
    }

    /// <summary>SHA-256 of every source weight file, read sequentially beside the export.</summary>
    private static List<ManifestFile> Checksums(Checkpoint checkpoint, CancellationToken cancellationToken)
    {
        var files = new List<ManifestFile>();
        foreach (var file in checkpoint.Files)
        {
            using var stream = new FileStream(file.Path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, FileOptions.SequentialScan);
            using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var buffer = new byte[1 << 20];
            int read;
            while ((read = stream.Read(buffer)) > 0)
            {
                cancellationToken.ThrowIfCancellationRequested();
                sha.AppendData(buffer, 0, read);
            }
            files.Add(new ManifestFile { Name = Path.GetFileName(file.Path), Bytes = file.FileLength, Sha256 = Convert.ToHexStringLower(sha.GetHashAndReset()) });
        }
        return files;
    }
}
