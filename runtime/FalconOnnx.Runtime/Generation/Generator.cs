using FalconOnnx.Runtime.Inference;

namespace FalconOnnx.Runtime.Generation;

/// <summary>Sizes of a <see cref="Generator"/>'s caches.</summary>
public sealed record GeneratorOptions
{
    /// <summary>Sequences generated together.</summary>
    public int Batch { get; init; } = 1;

    /// <summary>Tokens each sequence can hold; null takes min(context length, 4096).</summary>
    public int? Capacity { get; init; }

    /// <summary>
    /// Prompt tokens per forward call; longer prompts are fed in chunks. Null takes
    /// <see cref="FalconModel.DefaultPrefillChunk"/>: 128 on the CPU, 512 on CUDA.
    /// </summary>
    public int? PrefillChunk { get; init; }
}

/// <summary>
/// Generates tokens for one sequence, or for a batch of prompts, over caches allocated once
/// (<see cref="InferenceState"/>). The sequence is kept between calls: <see cref="Append"/> feeds only new
/// tokens, so a conversation never re-runs its history, and <see cref="Snapshot"/>/<see cref="Restore"/>
/// branch it. A token that was chosen but not yet run through the model (the last one of a generation, or
/// the stop token) is kept pending and fed first by the next call.
/// </summary>
public sealed class Generator : IDisposable
{
    private readonly InferenceState _state;
    private readonly Sampler[] _samplers;
    private readonly List<int> _fed;
    private readonly List<int> _pending = [];
    private readonly float[] _logits;
    private bool _logitsValid;
    private readonly long[] _one = new long[1];
    private readonly long[] _real = [1];

    public Generator(FalconModel model, GeneratorOptions? options = null)
    {
        options ??= new GeneratorOptions();
        Model = model;
        _state = model.CreateState(options.Batch, options.Capacity, options.PrefillChunk);
        // Sized for the whole context, so a decode step never grows it.
        _fed = new List<int>(_state.Capacity);
        _samplers = Enumerable.Range(0, options.Batch).Select(_ => new Sampler(model.Dimensions.VocabSize)).ToArray();
        _logits = new float[model.Dimensions.VocabSize];
    }

    public FalconModel Model { get; }

    public InferenceState State => _state;

    /// <summary>Tokens of the sequence so far: fed to the model, then pending.</summary>
    public IReadOnlyList<int> Tokens => [.. _fed, .. _pending];

    /// <summary>Token positions still free.</summary>
    public int Remaining => _state.Capacity - _fed.Count - _pending.Count;

    /// <summary>Feeds tokens to the sequence (chunked); afterwards the next token can be generated.</summary>
    public void Append(IReadOnlyList<int> tokens, CancellationToken cancellationToken = default)
    {
        RequireSingle();
        if (tokens.Count + _pending.Count > Remaining + _pending.Count)
            throw new FalconModelException($"{tokens.Count} more tokens do not fit: the sequence holds {_fed.Count + _pending.Count} of {_state.Capacity}");
        var all = new long[_pending.Count + tokens.Count];
        for (int i = 0; i < _pending.Count; i++) all[i] = _pending[i];
        for (int i = 0; i < tokens.Count; i++) all[_pending.Count + i] = CheckId(tokens[i]);
        Feed(all, cancellationToken);
    }

    private long CheckId(int id)
    {
        if ((uint)id >= (uint)Model.Dimensions.VocabSize)
            throw new FalconModelException($"token id {id} is outside the vocabulary [0, {Model.Dimensions.VocabSize})");
        return id;
    }

    private void Feed(long[] ids, CancellationToken cancellationToken)
    {
        if (ids.Length == 0) return;
        var real = new long[ids.Length];
        Array.Fill(real, 1L);
        for (int start = 0; start < ids.Length; start += _state.MaxChunk)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int count = Math.Min(_state.MaxChunk, ids.Length - start);
            _logitsValid = false;
            var logits = _state.Forward(ids.AsSpan(start, count), real.AsSpan(start, count), count);
            logits.CopyTo(_logits);
            _logitsValid = true;
            for (int i = start; i < start + count; i++) _fed.Add((int)ids[i]);
            if (start == 0) _pending.Clear();
        }
    }

    /// <summary>
    /// Generates up to <see cref="GenerationOptions.MaxNewTokens"/> tokens after what the sequence holds, stopping
    /// before a stop token. Cancelling stops within one step and leaves the sequence usable.
    /// </summary>
    public IEnumerable<int> Generate(GenerationOptions options, CancellationToken cancellationToken = default)
    {
        RequireSingle();
        options.Validate();
        if (_fed.Count + _pending.Count == 0) throw new FalconModelException("the sequence is empty: append a prompt of at least one token first");
        if (options.MaxNewTokens > Remaining)
            throw new FalconModelException($"max new tokens ({options.MaxNewTokens}) exceeds the {Remaining} positions left of the context ({_state.Capacity})");
        return Run(options, cancellationToken);
    }

    private IEnumerable<int> Run(GenerationOptions options, CancellationToken cancellationToken)
    {
        if (_pending.Count > 0 || !_logitsValid) Feed([.. _pending.Select(id => (long)id)], cancellationToken);
        var stops = options.StopTokens ?? Model.Manifest.Tokens.EosTokenIds;
        var sampler = _samplers[0];
        sampler.Start(options, _fed);
        int next = sampler.Next(_logits);
        _state.Reserve(_state.Length + options.MaxNewTokens);
        for (int generated = 0; ; generated++)
        {
            _pending.Add(next);
            if (Contains(stops, next)) yield break;
            yield return next;
            sampler.Observe(next);
            if (generated + 1 == options.MaxNewTokens) yield break;
            cancellationToken.ThrowIfCancellationRequested();
            _one[0] = next;
            _logitsValid = false;
            var logits = _state.Forward(_one, _real, 1);
            _fed.Add(next);
            _pending.Clear();
            next = sampler.Next(logits);
            if (cancellationToken.IsCancellationRequested)
            {
                logits.CopyTo(_logits);
                _logitsValid = true;
                cancellationToken.ThrowIfCancellationRequested();
            }
        }
    }

    private static bool Contains(IReadOnlyList<int> list, int value)
    {
        for (int i = 0; i < list.Count; i++) if (list[i] == value) return true;
        return false;
    }

    /// <summary>
    /// Drops the chosen-but-not-fed stop token that ended the last generation, so the next tokens follow the
    /// last real token (a chat puts its own end-of-turn marker there).
    /// </summary>
    public void DiscardPendingStopToken(IReadOnlyList<int> stopTokens)
    {
        if (_pending.Count == 1 && Contains(stopTokens, _pending[0])) _pending.Clear();
    }

    /// <summary>Forgets the sequence; the caches stay allocated.</summary>
    public void Reset()
    {
        _state.Reset();
        _fed.Clear();
        _pending.Clear();
        _logitsValid = false;
    }

    public GeneratorSnapshot Snapshot()
    {
        RequireSingle();
        return new GeneratorSnapshot(_state.Capture(), [.. _fed], [.. _pending], _logitsValid ? (float[])_logits.Clone() : null);
    }

    public void Restore(GeneratorSnapshot snapshot)
    {
        _state.Restore(snapshot.State);
        _fed.Clear();
        _fed.AddRange(snapshot.Fed);
        _pending.Clear();
        _pending.AddRange(snapshot.Pending);
        _logitsValid = snapshot.Logits is not null;
        snapshot.Logits?.CopyTo(_logits, 0);
    }

    /// <summary>
    /// Generates for several prompts at once: left-padded into one batch, prefilled together, decoded one token
    /// per step for every row until each row stops. Each row gives the tokens its prompt gives alone.
    /// </summary>
    public IReadOnlyList<IReadOnlyList<int>> GenerateBatch(IReadOnlyList<IReadOnlyList<int>> prompts, GenerationOptions options, CancellationToken cancellationToken = default)
    {
        options.Validate();
        int batch = _state.Batch;
        if (prompts.Count != batch) throw new FalconModelException($"this generator holds {batch} sequences, got {prompts.Count} prompts");
        for (int b = 0; b < batch; b++)
            if (prompts[b].Count == 0) throw new FalconModelException($"prompt {b} is empty: give at least one token");
        int longest = prompts.Max(p => p.Count);
        if (longest + options.MaxNewTokens > _state.Capacity)
            throw new FalconModelException($"the longest prompt ({longest} tokens) + max new tokens ({options.MaxNewTokens}) exceed the context of {_state.Capacity}");
        Reset();

        int pad = Model.Manifest.Tokens.PadTokenId;
        var ids = new long[batch * longest];
        var real = new long[batch * longest];
        for (int b = 0; b < batch; b++)
        {
            int padding = longest - prompts[b].Count;
            for (int t = 0; t < longest; t++)
            {
                bool isPad = t < padding;
                ids[b * longest + t] = isPad ? pad : CheckId(prompts[b][t - padding]);
                real[b * longest + t] = isPad ? 0 : 1;
            }
        }
        int chunk = _state.CanContinueBatchWithChunks ? _state.MaxChunk : longest;
        ReadOnlySpan<float> logits = default;
        for (int start = 0; start < longest; start += chunk)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int count = Math.Min(chunk, longest - start);
            var chunkIds = new long[batch * count];
            var chunkReal = new long[batch * count];
            for (int b = 0; b < batch; b++)
            {
                ids.AsSpan(b * longest + start, count).CopyTo(chunkIds.AsSpan(b * count));
                real.AsSpan(b * longest + start, count).CopyTo(chunkReal.AsSpan(b * count));
            }
            logits = _state.Forward(chunkIds, chunkReal, count);
        }

        var stops = options.StopTokens ?? Model.Manifest.Tokens.EosTokenIds;
        var outputs = Enumerable.Range(0, batch).Select(_ => new List<int>()).ToArray();
        var done = new bool[batch];
        var next = new long[batch];
        var stepReal = new long[batch];
        int vocab = Model.Dimensions.VocabSize;
        for (int b = 0; b < batch; b++) _samplers[b].Start(options, prompts[b]);
        _state.Reserve(longest + options.MaxNewTokens);
        for (int step = 0; step < options.MaxNewTokens; step++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            for (int b = 0; b < batch; b++)
            {
                if (done[b]) continue;
                int token = _samplers[b].Next(logits.Slice(b * vocab, vocab));
                if (Contains(stops, token)) done[b] = true;
                else
                {
                    outputs[b].Add(token);
                    _samplers[b].Observe(token);
                }
            }
            if (done.All(d => d) || step + 1 == options.MaxNewTokens) break;
            for (int b = 0; b < batch; b++)
            {
                // A finished row is fed padding: masked out, it changes nothing.
                next[b] = done[b] ? pad : outputs[b][^1];
                stepReal[b] = done[b] ? 0 : 1;
            }
            logits = _state.Forward(next, stepReal, 1);
        }
        Reset();
        return outputs;
    }

    private void RequireSingle()
    {
        if (_state.Batch != 1) throw new FalconModelException($"this generator holds a batch of {_state.Batch}; use GenerateBatch");
    }

    public void Dispose() => _state.Dispose();
}

/// <summary>A <see cref="Generator"/>'s sequence at one moment: caches and tokens.</summary>
public sealed record GeneratorSnapshot(StateSnapshot State, int[] Fed, int[] Pending, float[]? Logits);
