using FalconOnnx.Runtime.Inference;

namespace FalconOnnx.Runtime.Generation;

/// <summary>
/// Generates token ids for one sequence: prefill in chunks, then one token per step, reusing one
/// <see cref="InferenceState"/> (its caches are allocated once).
/// </summary>
public sealed class TokenGenerator(InferenceState state)
{
    public InferenceState State { get; } = state;

    public IEnumerable<int> Generate(IReadOnlyList<int> prompt, GenerationOptions options, CancellationToken cancellationToken = default)
    {
        options.Validate();
        if (State.Batch != 1) throw new FalconModelException($"TokenGenerator drives one sequence; this state holds {State.Batch}");
        if (prompt.Count == 0) throw new FalconModelException("the prompt is empty: give at least one token");
        if (State.Length + prompt.Count + options.MaxNewTokens > State.Capacity)
            throw new FalconModelException($"prompt ({prompt.Count} tokens) + max new tokens ({options.MaxNewTokens}) exceed the context of {State.Capacity - State.Length} tokens left");
        return Run(prompt, options, cancellationToken);
    }

    private IEnumerable<int> Run(IReadOnlyList<int> prompt, GenerationOptions options, CancellationToken cancellationToken)
    {
        var stops = options.StopTokens ?? State.Model.Manifest.Tokens.EosTokenIds;
        var logits = Prefill(prompt, cancellationToken);
        int next = Sampling.ArgMax(logits);
        State.Reserve(State.Length + options.MaxNewTokens);
        long[] token = new long[1];
        long[] real = [1];
        for (int generated = 0; generated < options.MaxNewTokens; generated++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (stops.Contains(next)) yield break;
            yield return next;
            if (generated + 1 == options.MaxNewTokens) yield break;
            token[0] = next;
            next = Sampling.ArgMax(State.Forward(token, real, 1));
        }
    }

    private ReadOnlySpan<float> Prefill(IReadOnlyList<int> prompt, CancellationToken cancellationToken)
    {
        var ids = new long[prompt.Count];
        for (int i = 0; i < ids.Length; i++) ids[i] = prompt[i];
        var real = new long[ids.Length];
        Array.Fill(real, 1L);
        ReadOnlySpan<float> logits = default;
        for (int start = 0; start < ids.Length; start += State.MaxChunk)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int count = Math.Min(State.MaxChunk, ids.Length - start);
            logits = State.Forward(ids.AsSpan(start, count), real.AsSpan(start, count), count);
        }
        return logits;
    }
}
