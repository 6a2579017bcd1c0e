using Microsoft.ML.OnnxRuntime;

namespace FalconOnnx.Runtime;

public enum ExecutionProvider
{
    Cpu,
    Cuda,
}

/// <summary>How <see cref="FalconModel.Load"/> creates its ONNX Runtime session.</summary>
public sealed record FalconModelOptions
{
    public ExecutionProvider ExecutionProvider { get; init; } = ExecutionProvider.Cpu;

    /// <summary>CUDA device ordinal.</summary>
    public int DeviceId { get; init; }

    /// <summary>Threads of one operator; 0 lets ONNX Runtime choose (one per physical core).</summary>
    public int IntraOpThreads { get; init; }

    public GraphOptimizationLevel GraphOptimization { get; init; } = GraphOptimizationLevel.ORT_ENABLE_ALL;

    /// <summary>
    /// ONNX Runtime's memory patterns: after a call, the intermediate tensors of that input shape are planned into one
    /// block that later calls of the same shape take whole from the arena. Off by default: the block comes on top of
    /// the arena memory the first call left behind (int4 0.5B, prompt of 512 tokens, 2 threads: 50 MiB more peak with
    /// prefill chunks of 512 tokens, 25 MiB with 128), and speed does not change measurably (timed in turn: prefill
    /// and decode within 1 %); decode steps hardly repeat a shape anyway (the attention mask grows by one each step).
    /// </summary>
    public bool MemoryPattern { get; init; }

    /// <summary>
    /// After loading, drop the process's resident pages of the memory-mapped weight file (Linux). ONNX Runtime reads
    /// model.onnx.data through mappings and repacks the quantized weights into memory of its own; what it read stays
    /// resident though unused: the MatMulNBits scales stay mapped (its x64 kernels read the packed copy; int4 0.5B:
    /// 58 MiB). Only mappings without changes of their own are dropped, so nothing is lost: a page read later (an
    /// embedding row) comes back from the page cache on first use. Int4 0.5B: 58 MiB less peak, same speed.
    /// </summary>
    public bool ReleaseMappedWeightPages { get; init; } = true;

    /// <summary>
    /// ONNX Runtime session configuration entries, e.g. <c>session.disable_prepacking = 1</c>: quantized weights are
    /// then read from the memory-mapped file as stored instead of being copied into a packed layout at load.
    /// </summary>
    public IReadOnlyDictionary<string, string> SessionConfig { get; init; } = new Dictionary<string, string>();

    /// <summary>Path of the custom-operator library; null takes the manifest's file from the model folder.</summary>
    public string? CustomOpsLibrary { get; init; }

    /// <summary>
    /// When set, ONNX Runtime records every operator call of the session (a Chrome trace JSON file whose name starts
    /// with this prefix); <see cref="FalconModel.EndProfiling"/> writes it. Costs a few percent of speed.
    /// </summary>
    public string? ProfilePrefix { get; init; }
}
