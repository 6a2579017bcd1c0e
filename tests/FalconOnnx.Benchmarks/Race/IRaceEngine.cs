namespace FalconOnnx.Benchmarks.Race;

/// <summary>
/// One side of the race: a model that keeps one sequence of token ids, feeds prompts in chunks and decodes
/// greedily. Both sides implement the same four operations so that <see cref="RaceProtocol"/> times them the
/// same way.
/// </summary>
public interface IRaceEngine : IDisposable
{
    /// <summary>What runs, for the report (library, weights file, precision).</summary>
    string Description { get; }

    /// <summary>Forgets the sequence.</summary>
    void Reset();

    /// <summary>Feeds tokens after the sequence so far, in chunks of at most <see cref="RaceProtocol.PrefillChunk"/>.</summary>
    void Prefill(IReadOnlyList<int> tokens);

    /// <summary>Logits of the next token after the sequence so far (valid after a prefill or decode).</summary>
    float[] NextTokenLogits();

    /// <summary>
    /// Greedy decoding: takes the argmax of the current logits, feeds it, and repeats, <paramref name="steps"/>
    /// forward calls of one token each. Returns the steps + 1 tokens chosen (the last one is not fed).
    /// </summary>
    int[] DecodeGreedy(int steps);

    /// <summary>An opaque copy of the sequence's caches and states, for <see cref="Restore"/>.</summary>
    object Snapshot();

    void Restore(object snapshot);
}
