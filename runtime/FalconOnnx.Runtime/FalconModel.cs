using Microsoft.ML.OnnxRuntime;
using FalconOnnx.Runtime.Inference;
using FalconOnnx.Runtime.Text;

namespace FalconOnnx.Runtime;

/// <summary>
/// An exported Falcon-H1 folder loaded into an ONNX Runtime session. Thread-safe to share; each
/// <see cref="InferenceState"/> (one batch of sequences with its caches) is used by one caller at a time.
/// </summary>
public sealed class FalconModel : IDisposable
{
    private FalconModel(string folder, ModelManifest manifest, InferenceSession session, FalconModelOptions options)
    {
        Folder = folder;
        Manifest = manifest;
        Session = session;
        Options = options;
    }

    public string Folder { get; }

    public ModelManifest Manifest { get; }

    public FalconModelOptions Options { get; }

    internal InferenceSession Session { get; }

    public ManifestDimensions Dimensions => Manifest.Dimensions;

    private FalconTokenizer? _tokenizer;

    /// <summary>The folder's tokenizer.json, loaded on first use.</summary>
    public FalconTokenizer Tokenizer => _tokenizer ??= LoadTokenizer();

    private ModelChatTemplate? _chatTemplate;

    /// <summary>The folder's chat template (chat_template.jinja or tokenizer_config.json), ChatML when it has none.</summary>
    public ModelChatTemplate ChatTemplate => _chatTemplate ??= ModelChatTemplate.Load(Folder);

    public bool HasTokenizer => File.Exists(Path.Combine(Folder, "tokenizer.json"));

    private FalconTokenizer LoadTokenizer()
    {
        string path = Path.Combine(Folder, "tokenizer.json");
        if (!File.Exists(path))
            throw new FalconModelException($"{path}: this model folder has no tokenizer; drive it with token ids (--prompt-ids) or copy the checkpoint's tokenizer.json into it");
        return FalconTokenizer.Load(path);
    }

    public static FalconModel Load(string folder, FalconModelOptions? options = null)
    {
        options ??= new FalconModelOptions();
        var manifest = ModelManifest.Load(folder);
        string graph = Path.Combine(folder, manifest.Graph.File);
        if (!File.Exists(graph)) throw new FalconModelException($"{graph}: graph file named by {ModelManifest.FileName} is missing");
        if (manifest.Graph.DataFile is { } data && !File.Exists(Path.Combine(folder, data)))
            throw new FalconModelException($"{Path.Combine(folder, data)}: external data named by {ModelManifest.FileName} is missing");

        using var sessionOptions = CreateSessionOptions(options);
        if (CustomOpsLibrary(folder, manifest, options) is { } library) sessionOptions.RegisterCustomOpLibrary(library);
        if (options.ExecutionProvider == ExecutionProvider.Cuda) AppendCuda(sessionOptions, options.DeviceId);
        InferenceSession session;
        try
        {
            session = new InferenceSession(graph, sessionOptions);
        }
        catch (OnnxRuntimeException e)
        {
            throw new FalconModelException($"{graph}: ONNX Runtime could not load the model: {e.Message.Split('\n')[0]}", e);
        }
        if (options.ReleaseMappedWeightPages && manifest.Graph.DataFile is { } dataFile) MappedFilePages.Release(Path.Combine(folder, dataFile));
        return new FalconModel(folder, manifest, session, options);
    }

    /// <summary>The session options of <paramref name="options"/>, before the custom operators and the execution provider.</summary>
    internal static SessionOptions CreateSessionOptions(FalconModelOptions options)
    {
        var sessionOptions = new SessionOptions
        {
            GraphOptimizationLevel = options.GraphOptimization,
            IntraOpNumThreads = options.IntraOpThreads,
            EnableMemoryPattern = options.MemoryPattern,
            LogId = "falcon-onnx",
        };
        if (options.ProfilePrefix is { } prefix)
        {
            // The prefix first: setting EnableProfiling hands ONNX Runtime the prefix set at that moment.
            sessionOptions.ProfileOutputPathPrefix = prefix;
            sessionOptions.EnableProfiling = true;
        }
        foreach (var (key, value) in options.SessionConfig) sessionOptions.AddSessionConfigEntry(key, value);
        return sessionOptions;
    }

    private static string? CustomOpsLibrary(string folder, ModelManifest manifest, FalconModelOptions options)
    {
        if (manifest.CustomOpsLibrary is null) return null;
        string path = options.CustomOpsLibrary ?? Path.Combine(folder, manifest.CustomOpsLibrary);
        if (!File.Exists(path))
            throw new FalconModelException($"{path}: the custom-operator library this export needs ({manifest.CustomOpsLibrary}, named in {ModelManifest.FileName}) is missing; copy it into the folder or pass its path");
        return Path.GetFullPath(path);
    }

    private static void AppendCuda(SessionOptions options, int deviceId)
    {
        try
        {
            options.AppendExecutionProvider_CUDA(deviceId);
        }
        catch (Exception e) when (e is OnnxRuntimeException or EntryPointNotFoundException or DllNotFoundException)
        {
            throw new FalconModelException(
                $"CUDA execution provider (device {deviceId}) is not available: {e.Message.Split('\n')[0].TrimEnd('.')}. It needs the GPU build " +
                "(dotnet build -p:UseGpu=true, package Microsoft.ML.OnnxRuntime.Gpu.Linux), an NVIDIA driver with CUDA 13 and the CUDA 13 " +
                "runtime libraries (cudart, cuBLAS) plus cuDNN 9 on the library path; run on the CPU instead with ExecutionProvider.Cpu (--ep cpu)", e);
        }
    }

    /// <summary>
    /// Caches for <paramref name="batch"/> sequences of up to <paramref name="capacity"/> tokens each, fed at most
    /// <paramref name="prefillChunk"/> tokens per call (null: <see cref="DefaultPrefillChunk"/> of the execution provider).
    /// </summary>
    public InferenceState CreateState(int batch = 1, int? capacity = null, int? prefillChunk = null)
    {
        int chunk = prefillChunk ?? DefaultPrefillChunk(Options.ExecutionProvider);
        if (chunk < 1) throw new FalconModelException($"prefill chunk must be at least 1 token, got {chunk}");
        int length = capacity ?? Math.Min(Dimensions.ContextLength, 4096);
        if (batch < 1) throw new FalconModelException($"batch size must be at least 1, got {batch}");
        if (length < 1 || length > Dimensions.ContextLength)
            throw new FalconModelException($"context length {length} is outside [1, {Dimensions.ContextLength}] (the model's context length)");
        return new InferenceState(this, batch, length, Math.Min(chunk, length));
    }

    /// <summary>
    /// Prompt tokens per forward call unless a state asks otherwise. A call holds its logits [batch, chunk, vocab] and
    /// ONNX Runtime's intermediate tensors for the whole chunk, so the chunk sets the peak memory of a prefill. On the
    /// CPU 128: on the int4 0.5B (2 threads) the peak is 78 MiB lower than with 512 (logits 16 instead of 64 MiB, a
    /// smaller arena) and prefill is as fast (timed in turn with 512: equal medians for a prompt of 512 tokens, 5 %
    /// faster for 2048), since 128 rows already keep the matrix kernels busy. On CUDA 512 (not measured there):
    /// fewer, larger calls keep the device busy.
    /// </summary>
    public static int DefaultPrefillChunk(ExecutionProvider provider) => provider == ExecutionProvider.Cuda ? 512 : 128;

    /// <summary>True when the graph returns logits for every new position; false for an export with --logits last.</summary>
    public bool HasEveryPositionLogits => Manifest.Graph.Logits == "all";

    /// <summary>Throws, naming the folder, unless the graph returns logits for every new position.</summary>
    public void RequireEveryPositionLogits()
    {
        if (!HasEveryPositionLogits)
            throw new FalconModelException($"{Folder}: this export returns the last position's logits only (logits \"{Manifest.Graph.Logits}\"); every position's logits (teacher forcing, eval) need an export with --logits all");
    }

    /// <summary>
    /// Stops recording operator calls and returns the path of the trace file ONNX Runtime wrote (a model loaded with
    /// <see cref="FalconModelOptions.ProfilePrefix"/>).
    /// </summary>
    public string EndProfiling()
    {
        if (Options.ProfilePrefix is null) throw new InvalidOperationException("this model was loaded without FalconModelOptions.ProfilePrefix");
        return Session.EndProfiling();
    }

    public void Dispose() => Session.Dispose();
}
