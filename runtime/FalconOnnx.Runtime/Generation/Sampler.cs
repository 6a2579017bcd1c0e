namespace FalconOnnx.Runtime.Generation;

/// <summary>
/// Chooses the next token from a row of logits, in Hugging Face's order: repetition penalty, temperature,
/// top-k, top-p, min-p, then a draw. Scratch buffers are allocated once for the vocabulary, so a step
/// allocates nothing.
/// </summary>
public sealed class Sampler
{
    private readonly float[] _scores;
    private readonly float[] _sorted;
    private readonly int[] _order;
    private readonly bool[] _seen;
    private readonly List<int> _seenIds = [];
    private Random _random = new();
    private GenerationOptions _options = GenerationOptions.Greedy;

    public Sampler(int vocabularySize)
    {
        _scores = new float[vocabularySize];
        _sorted = new float[vocabularySize];
        _order = new int[vocabularySize];
        _seen = new bool[vocabularySize];
    }

    /// <summary>Starts a generation: options, seed, and the tokens the repetition penalty starts from.</summary>
    public void Start(GenerationOptions options, IEnumerable<int> context)
    {
        _options = options;
        _random = options.Seed is { } seed ? new Random(seed) : new Random();
        foreach (int id in _seenIds) _seen[id] = false;
        _seenIds.Clear();
        if (options.RepetitionPenalty != 1f)
            foreach (int id in context) Observe(id);
    }

    /// <summary>Records a token for the repetition penalty.</summary>
    public void Observe(int id)
    {
        if ((uint)id < (uint)_seen.Length && !_seen[id])
        {
            _seen[id] = true;
            _seenIds.Add(id);
        }
    }

    public int Next(ReadOnlySpan<float> logits)
    {
        var scores = _scores.AsSpan(0, logits.Length);
        logits.CopyTo(scores);
        float penalty = _options.RepetitionPenalty;
        if (penalty != 1f)
            foreach (int id in _seenIds)
                scores[id] = scores[id] > 0 ? scores[id] / penalty : scores[id] * penalty;
        if (_options.IsGreedy) return Sampling.ArgMax(scores);

        float temperature = _options.Temperature;
        for (int i = 0; i < scores.Length; i++) scores[i] /= temperature;

        // Candidates sorted by score, best first (Array.Sort with keys sorts in place, no allocation).
        var order = _order.AsSpan(0, scores.Length);
        var sorted = _sorted.AsSpan(0, scores.Length);
        for (int i = 0; i < order.Length; i++)
        {
            order[i] = i;
            sorted[i] = -scores[i];
        }
        sorted.Sort(order);
        int count = _options.TopK > 0 ? Math.Min(_options.TopK, order.Length) : order.Length;

        // Softmax over the candidates (sorted holds negated scores).
        float max = -sorted[0];
        double total = 0;
        for (int i = 0; i < count; i++)
        {
            float p = MathF.Exp(-sorted[i] - max);
            sorted[i] = p;
            total += p;
        }
        if (_options.TopP < 1f)
        {
            double cumulative = 0;
            for (int i = 0; i < count; i++)
            {
                cumulative += sorted[i] / total;
                if (cumulative >= _options.TopP)
                {
                    count = i + 1;
                    break;
                }
            }
        }
        if (_options.MinP > 0f)
        {
            float threshold = _options.MinP * sorted[0];
            int kept = 1;
            while (kept < count && sorted[kept] >= threshold) kept++;
            count = kept;
        }
        double mass = 0;
        for (int i = 0; i < count; i++) mass += sorted[i];
        double draw = _random.NextDouble() * mass;
        for (int i = 0; i < count; i++)
        {
            draw -= sorted[i];
            if (draw <= 0) return order[i];
        }
        return order[count - 1];
    }
}
