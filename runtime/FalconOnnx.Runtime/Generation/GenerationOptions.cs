namespace FalconOnnx.Runtime.Generation;

/// <summary>How tokens are chosen and when generation stops. Validated before any work starts.</summary>
public sealed record GenerationOptions
{
    public int MaxNewTokens { get; init; } = 256;

    /// <summary>0 means greedy (always the most likely token); otherwise logits are divided by it.</summary>
    public float Temperature { get; init; } = 0.7f;

    /// <summary>Keep only the k most likely tokens; 0 keeps all.</summary>
    public int TopK { get; init; }

    /// <summary>Keep the smallest set of tokens whose probability reaches p; 1 keeps all.</summary>
    public float TopP { get; init; } = 1f;

    /// <summary>Drop tokens less likely than min_p × the most likely one; 0 keeps all.</summary>
    public float MinP { get; init; }

    /// <summary>HF's repetition penalty over the prompt and generated tokens; 1 is none.</summary>
    public float RepetitionPenalty { get; init; } = 1f;

    /// <summary>Seed of the sampler, for reproducible runs; null draws one.</summary>
    public int? Seed { get; init; }

    /// <summary>Token ids that end generation; null takes the model's eos ids. The stop token is not emitted.</summary>
    public IReadOnlyList<int>? StopTokens { get; init; }

    /// <summary>Texts that end generation; the text is cut before the stop string.</summary>
    public IReadOnlyList<string> StopStrings { get; init; } = [];

    public static GenerationOptions Greedy { get; } = new() { Temperature = 0 };

    public bool IsGreedy => Temperature == 0;

    public void Validate()
    {
        if (MaxNewTokens < 1) throw new FalconModelException($"max new tokens must be at least 1, got {MaxNewTokens}");
        if (!float.IsFinite(Temperature) || Temperature < 0) throw new FalconModelException($"temperature must be a finite number >= 0, got {Temperature}");
        if (TopK < 0) throw new FalconModelException($"top-k must be >= 0, got {TopK}");
        if (!(TopP > 0 && TopP <= 1)) throw new FalconModelException($"top-p must be in (0, 1], got {TopP}");
        if (!(MinP >= 0 && MinP < 1)) throw new FalconModelException($"min-p must be in [0, 1), got {MinP}");
        if (!float.IsFinite(RepetitionPenalty) || RepetitionPenalty <= 0) throw new FalconModelException($"repetition penalty must be a positive number, got {RepetitionPenalty}");
        if (StopStrings.Any(string.IsNullOrEmpty)) throw new FalconModelException("stop strings must not be empty");
    }
}
