using FalconOnnx.Benchmarks.Race;
using LLama;
using LLama.Common;
using LLama.Native;

namespace FalconOnnx.Benchmarks.Peer;

/// <summary>
/// The peer: llama.cpp through LLamaSharp's native API on a GGUF file, one sequence, the same chunk size as ours,
/// logits only for the last token of each call (what a generating application asks for).
/// </summary>
public sealed class LlamaCppRaceEngine : IRaceEngine
{
    private static readonly LLamaSeqId Sequence = LLamaSeqId.Zero;

    private readonly LLamaWeights _weights;
    private readonly LLamaContext _context;
    private readonly LLamaBatch _batch = new();
    private readonly float[] _logits;
    private int _length;

    /// <param name="keyValueType">Element type of llama.cpp's KV cache (ours is always float32).</param>
    /// <param name="flashAttention">
    /// null: llama.cpp's default (auto, which enables it on CPU). Its CPU flash attention rounds through float16
    /// even over a float32 cache (about 1e-3 in the logits), so exactness checks turn it off.
    /// </param>
    public LlamaCppRaceEngine(string ggufPath, int threads, int capacity, GGMLType keyValueType, bool? flashAttention)
    {
        LlamaCppLibrary.EnsureLoaded();
        var parameters = new ModelParams(ggufPath)
        {
            // Rounded up so llama.cpp's padded context still holds every position.
            ContextSize = (uint)((capacity + 255) / 256 * 256),
            BatchSize = RaceProtocol.PrefillChunk,
            UBatchSize = RaceProtocol.PrefillChunk,
            SeqMax = 1,
            Threads = threads,
            BatchThreads = threads,
            GpuLayerCount = 0,
            TypeK = keyValueType,
            TypeV = keyValueType,
            FlashAttention = flashAttention,
        };
        _weights = LLamaWeights.LoadFromFile(parameters);
        _context = _weights.CreateContext(parameters);
        _logits = new float[_weights.Vocab.Count];
        Description = $"llama.cpp (LLamaSharp {LlamaCppLibrary.LLamaSharpVersion}), {Path.GetFileName(ggufPath)}, KV {keyValueType.ToString().Replace("GGML_TYPE_", "")}, flash attention {FlashAttentionName(flashAttention)}";
    }

    public string Description { get; }

    public static string FlashAttentionName(bool? flashAttention) => flashAttention switch { null => "auto", true => "on", false => "off" };

    public void Reset()
    {
        _context.NativeHandle.MemoryClear(true);
        _length = 0;
    }

    public void Prefill(IReadOnlyList<int> tokens)
    {
        for (int start = 0; start < tokens.Count; start += RaceProtocol.PrefillChunk)
        {
            int count = Math.Min(RaceProtocol.PrefillChunk, tokens.Count - start);
            _batch.Clear();
            for (int i = 0; i < count; i++)
                _batch.Add(tokens[start + i], _length + i, Sequence, logits: i == count - 1);
            Decode(count);
        }
    }

    public float[] NextTokenLogits() => (float[])_logits.Clone();

    public int[] DecodeGreedy(int steps)
    {
        var chosen = new int[steps + 1];
        chosen[0] = RaceProtocol.ArgMax(_logits);
        for (int step = 0; step < steps; step++)
        {
            _batch.Clear();
            _batch.Add(chosen[step], _length, Sequence, logits: true);
            Decode(1);
            chosen[step + 1] = RaceProtocol.ArgMax(_logits);
        }
        return chosen;
    }

    private void Decode(int count)
    {
        var result = _context.NativeHandle.Decode(_batch);
        if (result != DecodeResult.Ok) throw new InvalidOperationException($"llama_decode returned {result} at position {_length}");
        _length += count;
        _context.NativeHandle.GetLogitsIth(_batch.TokenCount - 1).CopyTo(_logits);
    }

    public object Snapshot() => new LlamaCppSnapshot(_context.GetState(Sequence), _length, (float[])_logits.Clone());

    public void Restore(object snapshot)
    {
        var saved = (LlamaCppSnapshot)snapshot;
        _context.NativeHandle.MemoryClear(true);
        _context.LoadState(saved.State, Sequence);
        _length = saved.Length;
        saved.Logits.CopyTo(_logits, 0);
    }

    private sealed record LlamaCppSnapshot(LLamaContext.SequenceState State, int Length, float[] Logits);

    public void Dispose()
    {
        _context.Dispose();
        _weights.Dispose();
    }
}
