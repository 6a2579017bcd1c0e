namespace FalconOnnx.Runtime.Evaluation;

/// <summary>How close a candidate export's next-token distributions are to a reference's.</summary>
/// <param name="Positions">Positions compared (every token of every sequence).</param>
/// <param name="MeanKl">Mean KL(reference ‖ candidate) in nats.</param>
/// <param name="P99Kl">99th percentile of the per-position KL.</param>
/// <param name="Top1Agreement">Fraction of positions where both models' most likely token is the same.</param>
/// <param name="ReferencePerplexity">exp(mean negative log-likelihood of the actual next token), reference.</param>
/// <param name="CandidatePerplexity">The same for the candidate.</param>
public sealed record ComparisonResult(int Positions, double MeanKl, double P99Kl, double MaxKl, double Top1Agreement,
    double ReferencePerplexity, double CandidatePerplexity);

/// <summary>
/// Teacher-forced comparison of two exports of the same model (e.g. fp32 against int4): both read the same token
/// sequences and their logits are compared at every position.
/// </summary>
public static class ModelComparison
{
    public static ComparisonResult Compare(FalconModel reference, FalconModel candidate, IReadOnlyList<IReadOnlyList<int>> sequences,
        int chunk = 256, Action<int, int>? progress = null, CancellationToken cancellationToken = default)
    {
        if (reference.Dimensions.VocabSize != candidate.Dimensions.VocabSize)
            throw new FalconModelException($"the models have different vocabularies ({reference.Dimensions.VocabSize} and {candidate.Dimensions.VocabSize})");
        if (sequences.Count == 0 || sequences.Any(s => s.Count < 2)) throw new FalconModelException("give sequences of at least 2 tokens to compare");
        reference.RequireEveryPositionLogits();
        candidate.RequireEveryPositionLogits();
        int vocab = reference.Dimensions.VocabSize, total = sequences.Sum(s => s.Count), done = 0;
        var kl = new List<double>(total);
        int agree = 0;
        double referenceNll = 0, candidateNll = 0;
        int predicted = 0;
        var p = new double[vocab];
        var q = new double[vocab];
        foreach (var sequence in sequences)
        {
            using var a = reference.CreateState(1, sequence.Count, chunk);
            using var b = candidate.CreateState(1, sequence.Count, chunk);
            var ids = sequence.Select(id => (long)id).ToArray();
            var real = Enumerable.Repeat(1L, ids.Length).ToArray();
            for (int start = 0; start < ids.Length; start += chunk)
            {
                cancellationToken.ThrowIfCancellationRequested();
                int count = Math.Min(chunk, ids.Length - start);
                var referenceLogits = a.ForwardEveryPosition(ids.AsSpan(start, count), real.AsSpan(start, count), count).ToArray();
                var candidateLogits = b.ForwardEveryPosition(ids.AsSpan(start, count), real.AsSpan(start, count), count);
                for (int t = 0; t < count; t++)
                {
                    int referenceTop = LogSoftmax(referenceLogits.AsSpan(t * vocab, vocab), p);
                    int candidateTop = LogSoftmax(candidateLogits.Slice(t * vocab, vocab), q);
                    double divergence = 0;
                    for (int v = 0; v < vocab; v++) divergence += Math.Exp(p[v]) * (p[v] - q[v]);
                    kl.Add(Math.Max(0, divergence));
                    if (referenceTop == candidateTop) agree++;
                    int position = start + t;
                    if (position + 1 < ids.Length)
                    {
                        referenceNll -= p[ids[position + 1]];
                        candidateNll -= q[ids[position + 1]];
                        predicted++;
                    }
                }
                done += count;
                progress?.Invoke(done, total);
            }
        }
        kl.Sort();
        return new ComparisonResult(kl.Count, kl.Average(), kl[(int)Math.Min(kl.Count - 1, Math.Ceiling(0.99 * kl.Count) - 1)], kl[^1],
            (double)agree / kl.Count, Math.Exp(referenceNll / predicted), Math.Exp(candidateNll / predicted));
    }

    /// <summary>log-softmax of a row in double; returns the argmax.</summary>
    private static int LogSoftmax(ReadOnlySpan<float> logits, double[] output)
    {
        int best = 0;
        for (int i = 1; i < logits.Length; i++) if (logits[i] > logits[best]) best = i;
        double max = logits[best], sum = 0;
        for (int i = 0; i < logits.Length; i++) sum += Math.Exp(logits[i] - max);
        double log = max + Math.Log(sum);
        for (int i = 0; i < logits.Length; i++) output[i] = logits[i] - log;
        return best;
    }
}
