namespace FalconOnnx.Runtime.Generation;

/// <summary>How tokens are chosen and when generation stops.</summary>
public sealed record GenerationOptions
{
    public int MaxNewTokens { get; init; } = 256;

    /// <summary>0 means greedy (always the most likely token).</summary>
    public float Temperature { get; init; }

    /// <summary>Token ids that end generation (the model's eos ids when null). The stop token is not emitted.</summary>
    public IReadOnlyList<int>? StopTokens { get; init; }

    public void Validate()
    {
        if (MaxNewTokens < 1) throw new FalconModelException($"max new tokens must be at least 1, got {MaxNewTokens}");
        if (!(Temperature >= 0) || float.IsInfinity(Temperature)) throw new FalconModelException($"temperature must be a finite number >= 0, got {Temperature}");
    }
}
