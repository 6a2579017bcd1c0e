using FalconOnnx.Benchmarks.Race;
using FalconOnnx.Runtime;
using FalconOnnx.Runtime.Generation;

namespace FalconOnnx.Benchmarks.Ours;

/// <summary>
/// Our side: an exported folder through FalconOnnx.Runtime's <see cref="Generator"/>, as an application runs it
/// (chunked prefill, caches bound in place, greedy sampling through the runtime's sampler).
/// </summary>
public sealed class OnnxRaceEngine : IRaceEngine
{
    private readonly FalconModel _model;
    private readonly Generator _generator;

    public OnnxRaceEngine(string exportFolder, int threads, int capacity)
    {
        _model = FalconModel.Load(exportFolder, new FalconModelOptions { IntraOpThreads = threads });
        _generator = new Generator(_model, new GeneratorOptions { Capacity = capacity, PrefillChunk = RaceProtocol.PrefillChunk });
        Description = $"FalconOnnx.Runtime, {_model.Manifest.Options.Precision}, ssm {_model.Manifest.Options.Ssm}, attention {_model.Manifest.Graph.Attention}";
    }

    public string Description { get; }

    public FalconModel Model => _model;

    public void Reset() => _generator.Reset();

    public void Prefill(IReadOnlyList<int> tokens) => _generator.Append(tokens);

    /// <summary>
    /// Logits after the generator's whole sequence. The generator keeps its logits to itself, so they are recomputed
    /// on a state of their own, with the same chunks (only for checking agreement; never timed).
    /// </summary>
    public float[] NextTokenLogits()
    {
        var ids = _generator.Tokens.Select(t => (long)t).ToArray();
        var real = Enumerable.Repeat(1L, ids.Length).ToArray();
        using var state = _model.CreateState(1, ids.Length, RaceProtocol.PrefillChunk);
        float[] logits = [];
        for (int start = 0; start < ids.Length; start += state.MaxChunk)
        {
            int count = Math.Min(state.MaxChunk, ids.Length - start);
            logits = state.Forward(ids.AsSpan(start, count), real.AsSpan(start, count), count).ToArray();
        }
        return logits;
    }

    public int[] DecodeGreedy(int steps)
    {
        var options = GenerationOptions.Greedy with { MaxNewTokens = steps + 1, StopTokens = [] };
        return _generator.Generate(options).ToArray();
    }

    public object Snapshot() => _generator.Snapshot();

    public void Restore(object snapshot) => _generator.Restore((GeneratorSnapshot)snapshot);

    public void Dispose()
    {
        _generator.Dispose();
        _model.Dispose();
    }
}
