using FalconOnnx.Checkpoints;
using FalconOnnx.Models;

namespace FalconOnnx.Synthesis;

/// <summary>The μP multipliers of a synthetic checkpoint (falcon-h1.md §1.2, multiplier table).</summary>
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
    public static MupMultipliers From(FalconH1Config c) => new(c.EmbeddingMultiplier, c.LmHeadMultiplier, c.KeyMultiplier,
        c.AttentionInMultiplier, c.AttentionOutMultiplier, c.SsmInMultiplier, c.SsmOutMultiplier, c.SsmMultipliers, c.MlpMultipliers);
}

/// <summary>
/// The shape of a synthetic checkpoint: every <c>config.json</c> field that changes the graph, with the values
/// every preset shares as defaults (Falcon-H1's special token ids, untied embeddings, biases as released).
/// </summary>
public sealed record SynthPreset
{
    public required string Name { get; init; }
    public required string Description { get; init; }
    /// <summary>The released checkpoint whose shapes these are, written to config.json as <c>_name_or_path</c>; null for tiny.</summary>
    public string? ModelId { get; init; }

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
/// The shapes <c>falcon-onnx synth</c> writes: a tiny model for tests, kept here, and every released checkpoint,
/// read from models.json (<see cref="ModelCatalog"/>). The presets 0.5b, 1.5b, 1.5b-deep, 3b, 7b and 34b are
/// short names for the -Instruct checkpoints (the source of the known μP multipliers).
/// </summary>
public static class SynthPresets
{
    /// <summary>Large enough to exercise every code path (GQA, groups of heads, the gated norm), small enough to
    /// export and run in well under a second. Tokenizer and vocabulary are the same size; the μP multipliers are
    /// 0.5B's.</summary>
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
        Multipliers = MupMultipliers.From(ModelCatalog.Find("tiiuae/Falcon-H1-0.5B-Instruct").Config),
        TokenizerVocabSize = 384,
    };

    public static IReadOnlyList<SynthPreset> All { get; } =
        [Tiny, .. ModelCatalog.Models.Where(m => m.Variant == "Instruct").Select(m => Like(m.Id) with { Name = m.Size.ToLowerInvariant() })];

    public static string Names => string.Join(", ", All.Select(p => p.Name));

    /// <summary>The preset called <paramref name="name"/> (case-insensitive).</summary>
    public static SynthPreset Find(string name) =>
        All.FirstOrDefault(p => string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase))
        ?? throw new FalconOnnxException($"unknown preset '{name}'; the presets are {Names}");

    /// <summary>
    /// The exact shapes of a released checkpoint (models.json), optionally with fewer layers. Only the synthetic
    /// tokenizer is smaller (see <see cref="SynthPreset.TokenizerVocabSize"/>); the vocabulary is the real one.
    /// </summary>
    public static SynthPreset Like(string modelId, int? layers = null)
    {
        var m = ModelCatalog.Find(modelId);
        var c = m.Config;
        if (layers is { } n && (n < 1 || n > c.NumHiddenLayers))
            throw new FalconOnnxException($"--layers must be between 1 and {c.NumHiddenLayers} ({m.Id} has {c.NumHiddenLayers} layers), got {n}");
        return new SynthPreset
        {
            Name = m.Id,
            Description = $"{m.Id} shapes",
            ModelId = m.Id,
            VocabSize = c.VocabSize,
            HiddenSize = c.HiddenSize,
            NumHiddenLayers = layers ?? c.NumHiddenLayers,
            NumAttentionHeads = c.NumAttentionHeads,
            NumKeyValueHeads = c.NumKeyValueHeads,
            HeadDim = c.HeadDim,
            IntermediateSize = c.IntermediateSize,
            MaxPositionEmbeddings = c.MaxPositionEmbeddings,
            RopeTheta = c.RopeTheta,
            RmsNormEps = c.RmsNormEps,
            AttentionBias = c.AttentionBias,
            MlpBias = c.MlpBias,
            MambaDSsm = c.MambaDSsm,
            MambaNHeads = c.MambaNHeads,
            MambaDHead = c.MambaDHead,
            MambaNGroups = c.MambaNGroups,
            MambaDState = c.MambaDState,
            MambaDConv = c.MambaDConv,
            MambaExpand = m.ConfigJson["mamba_expand"]?.GetValue<int>() ?? 2,
            MambaChunkSize = c.MambaChunkSize,
            MambaConvBias = c.MambaConvBias,
            MambaProjBias = c.MambaProjBias,
            ProjectorsBias = c.ProjectorsBias,
            MambaRmsNorm = c.MambaRmsNorm,
            MambaNormBeforeGate = c.MambaNormBeforeGate,
            TieWordEmbeddings = c.TieWordEmbeddings,
            Multipliers = MupMultipliers.From(c),
            PadTokenId = c.PadTokenId,
            BosTokenId = c.BosTokenId,
            EosTokenId = c.EosTokenIds[0],
            TokenizerVocabSize = LargeTokenizer,
        };
    }

    /// <summary>The released sizes' tokenizers are far larger; a sample text of a few paragraphs supports about this many.</summary>
    private const int LargeTokenizer = 2048;
}
