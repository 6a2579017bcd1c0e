namespace FalconOnnx.Synthesis;

/// <summary>The μP multipliers of one Falcon-H1 size (falcon-h1.md §1.2, multiplier table).</summary>
/// <param name="Ssm">Scales of the z, x, B, C and dt blocks of the in_proj output.</param>
/// <param name="Mlp">Scales of the MLP: [gate, down].</param>
public sealed record MupMultipliers(
    double Embedding,
    double LmHead,
    double Key,
    double AttentionIn,
    double AttentionOut,
    double SsmIn,
    double SsmOut,
    double[] Ssm,
    double[] Mlp)
{
    /// <summary>Falcon-H1-0.5B-Instruct.</summary>
    public static readonly MupMultipliers HalfB = new(
        Embedding: 5.656854249492381,
        LmHead: 0.0390625,
        Key: 0.39062499999999994,
        AttentionIn: 1.0,
        AttentionOut: 0.9375,
        SsmIn: 1.25,
        SsmOut: 0.23570226039551587,
        Ssm: [0.3535533905932738, 0.25, 0.3535533905932738, 0.5, 0.3535533905932738],
        Mlp: [0.8838834764831844, 0.5859375]);

    /// <summary>Falcon-H1-1.5B-Deep-Instruct.</summary>
    public static readonly MupMultipliers OnePointFiveBDeep = new(
        Embedding: 5.656854249492381,
        LmHead: 0.03125,
        Key: 0.17677669529663687,
        AttentionIn: 1.0,
        AttentionOut: 0.5,
        SsmIn: 1.0,
        SsmOut: 0.23570226039551587,
        Ssm: [0.3535533905932738, 0.25, 0.1767766952966369, 0.5, 0.3535533905932738],
        Mlp: [0.7071067811865476, 0.3125]);

    /// <summary>Falcon-H1-7B-Instruct.</summary>
    public static readonly MupMultipliers SevenB = new(
        Embedding: 5.656854249492381,
        LmHead: 0.013020833333333334,
        Key: 0.030690398488999456,
        AttentionIn: 1.0,
        AttentionOut: 0.10416666666666667,
        SsmIn: 0.4166666666666667,
        SsmOut: 0.11785113019775793,
        Ssm: [0.3535533905932738, 0.25, 0.1767766952966369, 0.5, 0.3535533905932738],
        Mlp: [0.2946278254943948, 0.032552083333333336]);

    /// <summary>Falcon-H1-34B-Instruct.</summary>
    public static readonly MupMultipliers ThirtyFourB = new(
        Embedding: 5.656854249492381,
        LmHead: 0.0078125,
        Key: 0.011048543456039804,
        AttentionIn: 1.0,
        AttentionOut: 0.0375,
        SsmIn: 0.25,
        SsmOut: 0.08838834764831845,
        Ssm: [0.3535533905932738, 0.25, 0.1767766952966369, 0.5, 0.3535533905932738],
        Mlp: [0.1767766952966369, 0.011160714285714284]);

    /// <summary>
    /// The multipliers of 1.5B and 3B were not found (falcon-h1.md §1.2). Only two observations hold in all four
    /// known sizes: <c>embedding_multiplier</c> = 4·√2 and <c>lm_head_multiplier</c> = 40 / hidden_size; those two
    /// follow the formulas, every other multiplier is copied from <paramref name="nearest"/>, an assumption.
    /// </summary>
    public static MupMultipliers Observed(int hiddenSize, MupMultipliers nearest) =>
        nearest with { Embedding = 4 * Math.Sqrt(2), LmHead = 40.0 / hiddenSize };
}

/// <summary>
/// The shape of a synthetic checkpoint: every <c>config.json</c> field that changes the graph, with the values
/// every preset shares as defaults (Falcon-H1's special token ids, untied embeddings, biases as released).
/// </summary>
public sealed record SynthPreset
{
    public required string Name { get; init; }
    public required string Description { get; init; }

    public required int VocabSize { get; init; }
    public required int HiddenSize { get; init; }
    public required int NumHiddenLayers { get; init; }
    public required int NumAttentionHeads { get; init; }
    public required int NumKeyValueHeads { get; init; }
    public required int HeadDim { get; init; }
    public required int IntermediateSize { get; init; }
    public required int MaxPositionEmbeddings { get; init; }
    public double RopeTheta { get; init; } = 1e11;
    public double RmsNormEps { get; init; } = 1e-5;
    public bool AttentionBias { get; init; }
    public bool MlpBias { get; init; }

    public required int MambaDSsm { get; init; }
    public required int MambaNHeads { get; init; }
    public required int MambaDHead { get; init; }
    public required int MambaNGroups { get; init; }
    public required int MambaDState { get; init; }
    public int MambaDConv { get; init; } = 4;
    /// <summary>Written to config.json as released configs do; unused because mamba_d_ssm is set.</summary>
    public int MambaExpand { get; init; } = 2;
    public required int MambaChunkSize { get; init; }
    public bool MambaConvBias { get; init; } = true;
    public bool MambaProjBias { get; init; }
    public bool ProjectorsBias { get; init; }
    public required bool MambaRmsNorm { get; init; }
    public bool MambaNormBeforeGate { get; init; }

    public bool TieWordEmbeddings { get; init; }
    public required MupMultipliers Multipliers { get; init; }

    public int PadTokenId { get; init; } = 0;
    public int BosTokenId { get; init; } = 1;
    public int EosTokenId { get; init; } = 11;

    /// <summary>
    /// Upper bound on the synthetic tokenizer's size; the trainer stops earlier when its sample text supports no
    /// more merges. It may be (far) below <see cref="VocabSize"/>: embedding rows past it are simply never used.
    /// </summary>
    public required int TokenizerVocabSize { get; init; }
}

/// <summary>
/// The presets of <c>falcon-onnx synth</c>: a tiny model for tests, and the shapes of the six released Falcon-H1
/// sizes (falcon-h1.md §1.2). Where the doc marks a value as not found, the doc's inferred or assumed value is
/// used and the line says so.
/// </summary>
public static class SynthPresets
{
    /// <summary>Large enough to exercise every code path (GQA, groups of heads, the gated norm), small enough to
    /// export and run in well under a second. Tokenizer and vocabulary are the same size.</summary>
    public static readonly SynthPreset Tiny = new()
    {
        Name = "tiny",
        Description = "2 layers, hidden 64, for tests",
        VocabSize = 384,
        HiddenSize = 64,
        NumHiddenLayers = 2,
        NumAttentionHeads = 4,
        NumKeyValueHeads = 2,
        HeadDim = 16,
        IntermediateSize = 128,
        MaxPositionEmbeddings = 2048,
        MambaDSsm = 128,
        MambaNHeads = 8,
        MambaDHead = 16,
        MambaNGroups = 1,
        MambaDState = 16,
        MambaChunkSize = 16,
        MambaRmsNorm = true,
        Multipliers = MupMultipliers.HalfB,
        TokenizerVocabSize = 384,
    };

    public static readonly SynthPreset HalfB = new()
    {
        Name = "0.5b",
        Description = "Falcon-H1-0.5B shapes",
        VocabSize = 32784,
        HiddenSize = 1024,
        NumHiddenLayers = 36,
        NumAttentionHeads = 8,
        NumKeyValueHeads = 2,
        HeadDim = 64,
        IntermediateSize = 2048,
        MaxPositionEmbeddings = 16384,
        MambaDSsm = 1536,
        MambaNHeads = 24,
        MambaDHead = 64,
        MambaNGroups = 1,
        MambaDState = 128,
        MambaChunkSize = 128,
        MambaRmsNorm = false,
        Multipliers = MupMultipliers.HalfB,
        TokenizerVocabSize = LargeTokenizer,
    };

    public static readonly SynthPreset OnePointFiveB = new()
    {
        Name = "1.5b",
        Description = "Falcon-H1-1.5B shapes",
        VocabSize = 65537, // third-party test config
        HiddenSize = 2048,
        NumHiddenLayers = 24,
        NumAttentionHeads = 8,
        NumKeyValueHeads = 2,
        HeadDim = 128,
        IntermediateSize = 4608, // third-party test config
        MaxPositionEmbeddings = 131072, // assumed: "128K" per the HF model docs
        MambaDSsm = 3072,
        MambaNHeads = 48,
        MambaDHead = 64,
        MambaNGroups = 1,
        MambaDState = 256,
        MambaChunkSize = 128, // not found: the value of 0.5B, 1.5B-Deep, 3B and 34B
        MambaRmsNorm = true, // not found: true inferred by analogy
        MambaNormBeforeGate = false, // not found: every released config read uses false
        Multipliers = MupMultipliers.Observed(2048, nearest: MupMultipliers.OnePointFiveBDeep), // not found: same parameter budget
        TokenizerVocabSize = LargeTokenizer,
    };

    public static readonly SynthPreset OnePointFiveBDeep = new()
    {
        Name = "1.5b-deep",
        Description = "Falcon-H1-1.5B-Deep shapes",
        VocabSize = 65537,
        HiddenSize = 1280,
        NumHiddenLayers = 66,
        NumAttentionHeads = 6,
        NumKeyValueHeads = 2,
        HeadDim = 128,
        IntermediateSize = 3072,
        MaxPositionEmbeddings = 131072,
        MambaDSsm = 1536,
        MambaNHeads = 24,
        MambaDHead = 64,
        MambaNGroups = 1,
        MambaDState = 256,
        MambaChunkSize = 128,
        MambaRmsNorm = true,
        MambaNormBeforeGate = false, // not found: every released config read uses false
        Multipliers = MupMultipliers.OnePointFiveBDeep,
        TokenizerVocabSize = LargeTokenizer,
    };

    public static readonly SynthPreset ThreeB = new()
    {
        Name = "3b",
        Description = "Falcon-H1-3B shapes",
        VocabSize = 65537, // uncertain: a third-party test config has 65536; 65537 is the 1.5B tokenizer family's size
        HiddenSize = 2560,
        NumHiddenLayers = 32,
        NumAttentionHeads = 10,
        NumKeyValueHeads = 2,
        HeadDim = 128,
        IntermediateSize = 6144, // third-party test config
        MaxPositionEmbeddings = 131072, // third-party test config
        MambaDSsm = 4096,
        MambaNHeads = 32,
        MambaDHead = 128,
        MambaNGroups = 1,
        MambaDState = 256,
        MambaChunkSize = 128, // third-party test config
        MambaRmsNorm = true, // inferred: only with the norm does the count match the published 3,149,400,000
        MambaNormBeforeGate = false, // not found: every released config read uses false
        Multipliers = MupMultipliers.Observed(2560, nearest: MupMultipliers.SevenB), // not found: 7B is the nearest width
        TokenizerVocabSize = LargeTokenizer,
    };

    public static readonly SynthPreset SevenB = new()
    {
        Name = "7b",
        Description = "Falcon-H1-7B shapes",
        VocabSize = 130049,
        HiddenSize = 3072,
        NumHiddenLayers = 44,
        NumAttentionHeads = 12,
        NumKeyValueHeads = 2,
        HeadDim = 128,
        IntermediateSize = 12288,
        MaxPositionEmbeddings = 262144,
        MambaDSsm = 3072,
        MambaNHeads = 24,
        MambaDHead = 128,
        MambaNGroups = 1,
        MambaDState = 256,
        MambaChunkSize = 256,
        MambaRmsNorm = true,
        MambaNormBeforeGate = false, // not found: every released config read uses false
        Multipliers = MupMultipliers.SevenB,
        TokenizerVocabSize = LargeTokenizer,
    };

    public static readonly SynthPreset ThirtyFourB = new()
    {
        Name = "34b",
        Description = "Falcon-H1-34B shapes",
        VocabSize = 261120,
        HiddenSize = 5120,
        NumHiddenLayers = 72,
        NumAttentionHeads = 20,
        NumKeyValueHeads = 4,
        HeadDim = 128,
        IntermediateSize = 21504,
        MaxPositionEmbeddings = 262144,
        MambaDSsm = 4096,
        MambaNHeads = 32,
        MambaDHead = 128,
        MambaNGroups = 2,
        MambaDState = 256,
        MambaChunkSize = 128,
        MambaRmsNorm = true,
        MambaNormBeforeGate = false,
        Multipliers = MupMultipliers.ThirtyFourB,
        TokenizerVocabSize = LargeTokenizer,
    };

    public static IReadOnlyList<SynthPreset> All { get; } = [Tiny, HalfB, OnePointFiveB, OnePointFiveBDeep, ThreeB, SevenB, ThirtyFourB];

    public static string Names => string.Join(", ", All.Select(p => p.Name));

    /// <summary>The preset called <paramref name="name"/> (case-insensitive).</summary>
    public static SynthPreset Find(string name) =>
        All.FirstOrDefault(p => string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase))
        ?? throw new FalconOnnxException($"unknown preset '{name}'; the presets are {Names}");

    /// <summary>The released sizes' tokenizers are far larger; a sample text of a few paragraphs supports about this many.</summary>
    private const int LargeTokenizer = 2048;
}
