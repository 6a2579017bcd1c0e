using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using FalconOnnx.Checkpoints;

namespace FalconOnnx.Models;

/// <summary>One released Falcon-H1 checkpoint as models.json describes it.</summary>
public sealed record ModelEntry
{
    /// <summary>The Hugging Face repo id, e.g. tiiuae/Falcon-H1-7B-Instruct.</summary>
    public required string Id { get; init; }
    /// <summary>The size label: 0.5B, 1.5B, 1.5B-Deep, 3B, 7B or 34B.</summary>
    public required string Size { get; init; }
    /// <summary>Base or Instruct.</summary>
    public required string Variant { get; init; }
    /// <summary>falcon-h1.md's own parameter count P(total) for this size (§1.2).</summary>
    public required double DocumentedParameters { get; init; }
    /// <summary>The tokenizer family; the sizes that share one share the vocabulary.</summary>
    public required string Tokenizer { get; init; }
    public required int ContextLength { get; init; }
    /// <summary>The config.json fields that shape the graph, with Hugging Face's names and values.</summary>
    public required JsonObject ConfigJson { get; init; }
    /// <summary><see cref="ConfigJson"/> parsed as a checkpoint's config.json is.</summary>
    public required FalconH1Config Config { get; init; }
    /// <summary>Values falcon-h1.md marks as inferred, assumed or not found: field (or group) and why.</summary>
    public required IReadOnlyDictionary<string, string> Uncertain { get; init; }
    /// <summary>The memory figures as stored; <see cref="MemoryPlan"/> computes them.</summary>
    public required JsonObject Memory { get; init; }

    /// <summary>The repo name without the organisation, e.g. Falcon-H1-7B-Instruct.</summary>
    public string Name => Id[(Id.IndexOf('/') + 1)..];
}

/// <summary>A recommended export for one target (models.json "targets").</summary>
public sealed record ExportTarget(string Name, Precision Precision, ExecutionTarget Ep, string Ssm, string Attention);

/// <summary>
/// models.json, embedded in this assembly: the released Falcon-H1 checkpoints with their shapes, the recommended
/// export per target, and memory figures. The single source of the released shapes: synth presets, the
/// exporter's config check and <c>plan</c> all read it.
/// </summary>
public static class ModelCatalog
{
    public const string ResourceName = "FalconOnnx.models.json";

    private static readonly Lazy<(IReadOnlyList<ModelEntry> Models, IReadOnlyList<ExportTarget> Targets)> Loaded = new(() => Parse(ReadResource()));

    public static IReadOnlyList<ModelEntry> Models => Loaded.Value.Models;

    public static IReadOnlyList<ExportTarget> Targets => Loaded.Value.Targets;

    public static string Ids => string.Join(", ", Models.Select(m => m.Id));

    /// <summary>The entry with this repo id (case-insensitive), or null.</summary>
    public static ModelEntry? TryFind(string id) =>
        Models.FirstOrDefault(m => string.Equals(m.Id, id, StringComparison.OrdinalIgnoreCase));

    public static ModelEntry Find(string id) => TryFind(id)
        ?? throw new FalconOnnxException($"unknown model id '{id}'; models.json knows {Ids}");

    /// <summary>The text of the embedded models.json.</summary>
    public static string ReadResource()
    {
        using var stream = typeof(ModelCatalog).Assembly.GetManifestResourceStream(ResourceName)
            ?? throw new InvalidOperationException($"embedded resource {ResourceName} is missing from the build");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }

    /// <summary>
    /// A config to plan for: a models.json repo id, a checkpoint folder (its config.json) or an exported folder (the
    /// source config its manifest keeps). Returns a label for it and the config.
    /// </summary>
    public static (string Label, FalconH1Config Config) ResolveConfig(string idOrFolder)
    {
        if (TryFind(idOrFolder) is { } entry) return (entry.Id, entry.Config);
        if (Directory.Exists(idOrFolder))
        {
            string config = Path.Combine(idOrFolder, Checkpoint.ConfigFileName);
            if (File.Exists(config)) return (idOrFolder, FalconH1Config.Load(config));
            if (File.Exists(Path.Combine(idOrFolder, Runtime.ModelManifest.FileName)))
            {
                var manifest = Runtime.ModelManifest.Load(idOrFolder);
                return (idOrFolder, FalconH1Config.Parse(manifest.Source.Config, Path.Combine(idOrFolder, Runtime.ModelManifest.FileName) + " (source config)"));
            }
            throw new FalconOnnxException($"{idOrFolder}: neither a checkpoint ({Checkpoint.ConfigFileName}) nor an exported folder ({Runtime.ModelManifest.FileName})");
        }
        throw new FalconOnnxException($"--model: '{idOrFolder}' is neither a folder nor a model id of models.json ({Ids})");
    }

    /// <summary>
    /// The entry a checkpoint comes from: <paramref name="explicitId"/> when given (it must be known), else
    /// config.json's <c>_name_or_path</c> when it names a known repo (as an id or as a path ending in the repo
    /// name), else a Hugging Face cache folder (<c>models--tiiuae--Falcon-H1-7B-Instruct/snapshots/...</c>).
    /// </summary>
    public static ModelEntry? Identify(string? explicitId, FalconH1Config config, string directory)
    {
        if (explicitId is not null) return Find(explicitId);
        if (config.Source["_name_or_path"] is { } node && node.GetValueKind() == JsonValueKind.String)
        {
            string name = node.GetValue<string>().TrimEnd('/', '\\');
            if (TryFind(name) is { } byId) return byId;
            string last = name[(name.LastIndexOfAny(['/', '\\']) + 1)..];
            if (Models.FirstOrDefault(m => string.Equals(m.Name, last, StringComparison.OrdinalIgnoreCase)) is { } byName) return byName;
        }
        foreach (string part in Path.GetFullPath(directory).Split(Path.DirectorySeparatorChar))
            if (part.StartsWith("models--", StringComparison.Ordinal) && TryFind(part["models--".Length..].Replace("--", "/")) is { } cached)
                return cached;
        return null;
    }

    /// <summary>
    /// One line per graph-shaping value where <paramref name="config"/> differs from the entry, naming the field,
    /// both values and, where models.json's value is uncertain, why.
    /// </summary>
    public static IReadOnlyList<string> Differences(FalconH1Config config, ModelEntry entry)
    {
        var lines = new List<string>();
        foreach (var (field, group, read) in Fields)
        {
            object actual = read(config), expected = read(entry.Config);
            if (Same(actual, expected)) continue;
            string? why = entry.Uncertain.GetValueOrDefault(field) ?? (group is null ? null : entry.Uncertain.GetValueOrDefault(group));
            lines.Add($"config.json field '{field}' is {Text(actual)}; models.json has {Text(expected)} for {entry.Id}"
                + (why is null ? "" : $" (models.json's value is uncertain: {why})"));
        }
        return lines;
    }

    /// <summary>Every config value compared with models.json, as HF names it, and the uncertainty group it belongs to.</summary>
    private static readonly (string Field, string? Group, Func<FalconH1Config, object> Read)[] Fields =
    [
        ("vocab_size", null, c => c.VocabSize),
        ("hidden_size", null, c => c.HiddenSize),
        ("num_hidden_layers", null, c => c.NumHiddenLayers),
        ("num_attention_heads", null, c => c.NumAttentionHeads),
        ("num_key_value_heads", null, c => c.NumKeyValueHeads),
        ("head_dim", null, c => c.HeadDim),
        ("intermediate_size", null, c => c.IntermediateSize),
        ("rms_norm_eps", null, c => c.RmsNormEps),
        ("max_position_embeddings", null, c => c.MaxPositionEmbeddings),
        ("rope_theta", null, c => c.RopeTheta),
        ("attention_bias", "biases", c => c.AttentionBias),
        ("mlp_bias", "biases", c => c.MlpBias),
        ("mamba_d_ssm", null, c => c.MambaDSsm),
        ("mamba_n_heads", null, c => c.MambaNHeads),
        ("mamba_d_head", null, c => c.MambaDHead),
        ("mamba_n_groups", null, c => c.MambaNGroups),
        ("mamba_d_state", null, c => c.MambaDState),
        ("mamba_d_conv", null, c => c.MambaDConv),
        ("mamba_chunk_size", null, c => c.MambaChunkSize),
        ("mamba_conv_bias", "biases", c => c.MambaConvBias),
        ("mamba_proj_bias", "biases", c => c.MambaProjBias),
        ("projectors_bias", "biases", c => c.ProjectorsBias),
        ("mamba_rms_norm", null, c => c.MambaRmsNorm),
        ("mamba_norm_before_gate", null, c => c.MambaNormBeforeGate),
        ("tie_word_embeddings", null, c => c.TieWordEmbeddings),
        ("embedding_multiplier", "multipliers", c => c.EmbeddingMultiplier),
        ("lm_head_multiplier", "multipliers", c => c.LmHeadMultiplier),
        ("key_multiplier", "multipliers", c => c.KeyMultiplier),
        ("attention_in_multiplier", "multipliers", c => c.AttentionInMultiplier),
        ("attention_out_multiplier", "multipliers", c => c.AttentionOutMultiplier),
        ("ssm_in_multiplier", "multipliers", c => c.SsmInMultiplier),
        ("ssm_out_multiplier", "multipliers", c => c.SsmOutMultiplier),
        ("ssm_multipliers", "multipliers", c => c.SsmMultipliers),
        ("mlp_multipliers", "multipliers", c => c.MlpMultipliers),
        ("pad_token_id", null, c => c.PadTokenId),
        ("bos_token_id", null, c => c.BosTokenId),
        ("eos_token_id", null, c => c.EosTokenIds),
    ];

    /// <summary>Numbers equal up to float formatting (0.390625 written as 0.39062499999999994 is the same multiplier).</summary>
    private static bool Same(object a, object b) => (a, b) switch
    {
        (double x, double y) => Math.Abs(x - y) <= 1e-12 * Math.Max(Math.Abs(x), Math.Abs(y)),
        (double[] x, double[] y) => x.Length == y.Length && x.Zip(y).All(p => Same(p.First, p.Second)),
        (int[] x, int[] y) => x.SequenceEqual(y),
        _ => a.Equals(b),
    };

    private static string Text(object value) => value switch
    {
        bool b => b ? "true" : "false",
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        double[] a => "[" + string.Join(", ", a.Select(d => Text(d))) + "]",
        int[] a => a.Length == 1 ? Text(a[0]) : "[" + string.Join(", ", a) + "]",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    /// <summary>Context of the "at_4k" memory figures.</summary>
    public const int ShortContext = 4096;

    /// <summary>
    /// The "memory" object of a models.json entry, from <see cref="MemoryPlan"/> at batch 1: parameters, weight
    /// bytes per precision, KV bytes per token per compute type, state bytes per sequence, and the memory each
    /// target needs at 4096 tokens and at the full context length.
    /// </summary>
    public static JsonObject ComputeMemory(FalconH1Config config, int contextLength)
    {
        var weights = new JsonObject();
        foreach (var p in Precisions.All) weights[Precisions.Name(p)] = MemoryPlan.Compute(config, p, 1).WeightBytes;
        var fp32 = MemoryPlan.Compute(config, Precision.Fp32, 1);
        var fp16 = MemoryPlan.Compute(config, Precision.Fp16, 1);
        JsonObject Totals(int context)
        {
            var totals = new JsonObject();
            foreach (var t in Targets) totals[t.Name] = MemoryPlan.Compute(config, t.Precision, context, 1, t.Ep).TotalBytes;
            return totals;
        }
        return new JsonObject
        {
            ["parameters"] = fp32.Parameters,
            ["weights_bytes"] = weights,
            ["kv_bytes_per_token"] = new JsonObject { ["float32"] = fp32.KvBytesPerToken, ["float16"] = fp16.KvBytesPerToken },
            ["state_bytes_per_sequence"] = fp32.StateBytesPerSequence,
            ["total_bytes_at_4k"] = Totals(ShortContext),
            ["total_bytes_at_context_length"] = Totals(contextLength),
        };
    }

    internal static (IReadOnlyList<ModelEntry>, IReadOnlyList<ExportTarget>) Parse(string json)
    {
        const string file = "models.json";
        var root = JsonNode.Parse(json)?.AsObject() ?? throw new InvalidOperationException($"{file}: not a JSON object");
        var targets = root["targets"]!.AsObject().Select(t => new ExportTarget(t.Key,
            Precisions.Parse(t.Value!["precision"]!.GetValue<string>()),
            Precisions.ParseTarget(t.Value["ep"]!.GetValue<string>()),
            t.Value["ssm"]!.GetValue<string>(),
            t.Value["attention"]!.GetValue<string>())).ToList();
        var models = new List<ModelEntry>();
        foreach (var node in root["models"]!.AsArray())
        {
            var m = node!.AsObject();
            string id = m["id"]!.GetValue<string>();
            var configJson = m["config"]!.AsObject();
            var parsable = (JsonObject)configJson.DeepClone();
            parsable["model_type"] = "falcon_h1";
            models.Add(new ModelEntry
            {
                Id = id,
                Size = m["size"]!.GetValue<string>(),
                Variant = m["variant"]!.GetValue<string>(),
                DocumentedParameters = m["documented_parameters"]!.GetValue<double>(),
                Tokenizer = m["tokenizer"]!.GetValue<string>(),
                ContextLength = m["context_length"]!.GetValue<int>(),
                ConfigJson = configJson,
                Config = FalconH1Config.Parse(parsable, $"{file} ({id})"),
                Uncertain = m["uncertain"]!.AsObject().ToDictionary(u => u.Key, u => u.Value!.GetValue<string>()),
                Memory = m["memory"]?.AsObject() ?? [],
            });
        }
        return (models, targets);
    }
}
