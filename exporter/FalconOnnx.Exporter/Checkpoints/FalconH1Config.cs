using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace FalconOnnx.Checkpoints;

/// <summary>
/// A Falcon-H1 <c>config.json</c>, every field that changes the forward pass, with Hugging Face's class
/// defaults (transformers v5) where a field is absent. <see cref="Parse"/> checks types, ranges and the
/// relations between fields and names the offending field and value in its error.
/// </summary>
public sealed record FalconH1Config
{
    public required int VocabSize { get; init; }
    public required int HiddenSize { get; init; }
    public required int NumHiddenLayers { get; init; }
    public required int NumAttentionHeads { get; init; }
    public required int NumKeyValueHeads { get; init; }
    public required int HeadDim { get; init; }
    public required int IntermediateSize { get; init; }
    public required double RmsNormEps { get; init; }
    public required int MaxPositionEmbeddings { get; init; }
    public required double RopeTheta { get; init; }
    public required bool AttentionBias { get; init; }
    public required bool MlpBias { get; init; }

    public required int MambaDSsm { get; init; }
    public required int MambaNHeads { get; init; }
    public required int MambaDHead { get; init; }
    public required int MambaNGroups { get; init; }
    public required int MambaDState { get; init; }
    public required int MambaDConv { get; init; }
    public required int MambaChunkSize { get; init; }
    public required bool MambaConvBias { get; init; }
    public required bool MambaProjBias { get; init; }
    public required bool ProjectorsBias { get; init; }
    public required bool MambaRmsNorm { get; init; }
    public required bool MambaNormBeforeGate { get; init; }
    /// <summary>Clamp of dt after softplus; (0, +inf) is a no-op.</summary>
    public required (double Min, double Max) TimeStepLimit { get; init; }

    public required bool TieWordEmbeddings { get; init; }
    public required double EmbeddingMultiplier { get; init; }
    public required double LmHeadMultiplier { get; init; }
    public required double KeyMultiplier { get; init; }
    public required double AttentionInMultiplier { get; init; }
    public required double AttentionOutMultiplier { get; init; }
    public required double SsmInMultiplier { get; init; }
    public required double SsmOutMultiplier { get; init; }
    /// <summary>μP scales of the z, x, B, C and dt blocks of the in_proj output.</summary>
    public required double[] SsmMultipliers { get; init; }
    /// <summary>μP scales of the MLP: [gate, down].</summary>
    public required double[] MlpMultipliers { get; init; }

    public required int PadTokenId { get; init; }
    public required int BosTokenId { get; init; }
    public required int[] EosTokenIds { get; init; }

    /// <summary>The file as read, kept verbatim for the export manifest.</summary>
    public required JsonObject Source { get; init; }

    public int QueryDim => NumAttentionHeads * HeadDim;
    public int KeyValueDim => NumKeyValueHeads * HeadDim;
    /// <summary>Channels of the depthwise conv: x | B | C.</summary>
    public int ConvDim => MambaDSsm + 2 * MambaNGroups * MambaDState;
    /// <summary>Rows of in_proj: z | x | B | C | dt.</summary>
    public int InProjDim => 2 * MambaDSsm + 2 * MambaNGroups * MambaDState + MambaNHeads;

    public static FalconH1Config Load(string path)
    {
        if (!File.Exists(path)) throw new FalconOnnxException($"{path}: file not found");
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(File.ReadAllText(path), documentOptions: new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        }
        catch (JsonException e)
        {
            throw new FalconOnnxException($"{path}: not valid JSON ({FirstLine(e.Message)})", e);
        }
        if (root is not JsonObject obj) throw new FalconOnnxException($"{path}: expected a JSON object at the top level");
        return Parse(obj, path);
    }

    private static string FirstLine(string text) => text.Split('\n')[0].Trim();

    public static FalconH1Config Parse(JsonObject json, string file = "config.json")
    {
        var r = new FieldReader(json, file);
        string modelType = r.String("model_type", null) ?? throw r.Error("model_type", "is missing");
        if (modelType != "falcon_h1")
            throw r.Error("model_type", $"is \"{modelType}\"; only \"falcon_h1\" is supported");

        string act = r.String("hidden_act", "silu")!;
        if (act is not ("silu" or "swish")) throw r.Error("hidden_act", $"is \"{act}\"; Falcon-H1 uses \"silu\"");
        if (json["layers_block_type"] is JsonArray blocks)
            foreach (var b in blocks)
                if (b?.GetValueKind() != JsonValueKind.String || b.GetValue<string>() is not ("hybrid" or "attention"))
                    throw r.Error("layers_block_type", $"contains {b?.ToJsonString() ?? "null"}; every Falcon-H1 layer is hybrid");

        int hidden = r.PositiveInt("hidden_size", 4096);
        int heads = r.PositiveInt("num_attention_heads", 32);
        int kvHeads = r.OptionalPositiveInt("num_key_value_heads") ?? heads;
        int headDim = r.OptionalPositiveInt("head_dim") ?? (hidden % heads == 0 ? hidden / heads : throw r.Error("head_dim", $"is missing and hidden_size {hidden} is not divisible by num_attention_heads {heads}"));
        if (heads % kvHeads != 0)
            throw r.Error("num_attention_heads", $"({heads}) is not divisible by num_key_value_heads ({kvHeads})");
        if (headDim % 2 != 0) throw r.Error("head_dim", $"({headDim}) must be even for rotary embeddings");

        double ropeTheta = ReadRopeTheta(r, json);
        if (json["rope_scaling"] is JsonObject scaling && scaling["rope_type"]?.ToString() is { } type && type != "default")
            throw r.Error("rope_scaling", $"has rope_type \"{type}\"; only unscaled (\"default\") RoPE is supported");
        if (json["partial_rotary_factor"] is { } prf && prf.GetValueKind() == JsonValueKind.Number && prf.GetValue<double>() != 1.0)
            throw r.Error("partial_rotary_factor", $"is {prf}; Falcon-H1 rotates the whole head");

        int mambaHeads = r.PositiveInt("mamba_n_heads", 128);
        // Absent: the class default 1024. Explicitly null: mamba_expand x hidden_size (HF's rule).
        int dSsm = !json.ContainsKey("mamba_d_ssm") ? 1024
            : json["mamba_d_ssm"] is null ? r.PositiveInt("mamba_expand", 2) * hidden
            : r.PositiveInt("mamba_d_ssm", 1024);
        int dHead;
        if (json["mamba_d_head"] is { } dh && dh.GetValueKind() == JsonValueKind.String)
        {
            if (dh.GetValue<string>() != "auto") throw r.Error("mamba_d_head", $"is \"{dh.GetValue<string>()}\"; expected an integer or \"auto\"");
            if (dSsm % mambaHeads != 0) throw r.Error("mamba_d_ssm", $"({dSsm}) is not divisible by mamba_n_heads ({mambaHeads})");
            dHead = dSsm / mambaHeads;
        }
        else
        {
            dHead = r.OptionalPositiveInt("mamba_d_head") ?? (dSsm % mambaHeads == 0 ? dSsm / mambaHeads : throw r.Error("mamba_d_ssm", $"({dSsm}) is not divisible by mamba_n_heads ({mambaHeads})"));
        }
        if (mambaHeads * dHead != dSsm)
            throw r.Error("mamba_d_ssm", $"is {dSsm} but mamba_n_heads ({mambaHeads}) x mamba_d_head ({dHead}) = {mambaHeads * dHead}");
        int groups = r.PositiveInt("mamba_n_groups", 1);
        if (mambaHeads % groups != 0)
            throw r.Error("mamba_n_heads", $"({mambaHeads}) is not divisible by mamba_n_groups ({groups})");
        int dConv = r.PositiveInt("mamba_d_conv", 4);
        if (dConv < 2) throw r.Error("mamba_d_conv", $"is {dConv}; the causal conv needs a kernel of at least 2");

        var eos = r.IntOrIntArray("eos_token_id", [2]);
        int vocab = r.PositiveInt("vocab_size", 128000);
        int pad = r.OptionalInt("pad_token_id") ?? 0;
        int bos = r.OptionalInt("bos_token_id") ?? 1;
        foreach (var (field, id) in new[] { ("pad_token_id", pad), ("bos_token_id", bos) }.Concat(eos.Select(e => ("eos_token_id", e))))
            if (id < 0 || id >= vocab) throw r.Error(field, $"({id}) is outside the vocabulary [0, {vocab})");

        var limit = ReadTimeStepLimit(r, json);
        var config = new FalconH1Config
        {
            VocabSize = vocab,
            HiddenSize = hidden,
            NumHiddenLayers = r.PositiveInt("num_hidden_layers", 32),
            NumAttentionHeads = heads,
            NumKeyValueHeads = kvHeads,
            HeadDim = headDim,
            IntermediateSize = r.PositiveInt("intermediate_size", 14336),
            RmsNormEps = r.PositiveDouble("rms_norm_eps", 1e-5),
            MaxPositionEmbeddings = r.PositiveInt("max_position_embeddings", 8192),
            RopeTheta = ropeTheta,
            AttentionBias = r.Bool("attention_bias", false),
            MlpBias = r.Bool("mlp_bias", false),
            MambaDSsm = dSsm,
            MambaNHeads = mambaHeads,
            MambaDHead = dHead,
            MambaNGroups = groups,
            MambaDState = r.PositiveInt("mamba_d_state", 256),
            MambaDConv = dConv,
            MambaChunkSize = r.PositiveInt("mamba_chunk_size", 256),
            MambaConvBias = r.Bool("mamba_conv_bias", true),
            MambaProjBias = r.Bool("mamba_proj_bias", false),
            ProjectorsBias = r.Bool("projectors_bias", false),
            MambaRmsNorm = r.Bool("mamba_rms_norm", false),
            MambaNormBeforeGate = r.Bool("mamba_norm_before_gate", true),
            TimeStepLimit = limit,
            TieWordEmbeddings = r.Bool("tie_word_embeddings", false),
            EmbeddingMultiplier = r.FiniteDouble("embedding_multiplier", 1.0),
            LmHeadMultiplier = r.FiniteDouble("lm_head_multiplier", 1.0),
            KeyMultiplier = r.FiniteDouble("key_multiplier", 1.0),
            AttentionInMultiplier = r.FiniteDouble("attention_in_multiplier", 1.0),
            AttentionOutMultiplier = r.FiniteDouble("attention_out_multiplier", 1.0),
            SsmInMultiplier = r.FiniteDouble("ssm_in_multiplier", 1.0),
            SsmOutMultiplier = r.FiniteDouble("ssm_out_multiplier", 1.0),
            SsmMultipliers = r.DoubleArray("ssm_multipliers", [1, 1, 1, 1, 1], 5),
            MlpMultipliers = r.DoubleArray("mlp_multipliers", [1, 1], 2),
            PadTokenId = pad,
            BosTokenId = bos,
            EosTokenIds = eos,
            Source = (JsonObject)json.DeepClone(),
        };
        return config;
    }

    /// <summary>v4 writes <c>rope_theta</c>; v5 writes <c>rope_parameters: {rope_type, rope_theta}</c>.</summary>
    private static double ReadRopeTheta(FieldReader r, JsonObject json)
    {
        if (json["rope_parameters"] is JsonObject parameters)
        {
            string type = parameters["rope_type"]?.ToString() ?? "default";
            if (type != "default") throw r.Error("rope_parameters.rope_type", $"is \"{type}\"; only \"default\" RoPE is supported");
            var theta = parameters["rope_theta"];
            if (theta is not null)
            {
                if (theta.GetValueKind() != JsonValueKind.Number || theta.GetValue<double>() is not (> 0 and < double.PositiveInfinity))
                    throw r.Error("rope_parameters.rope_theta", $"must be a positive number, got {theta.ToJsonString()}");
                return theta.GetValue<double>();
            }
        }
        else if (json["rope_parameters"] is { } other)
        {
            throw r.Error("rope_parameters", $"must be an object, got {other.ToJsonString()}");
        }
        // transformers v4's FalconH1Config default; every released checkpoint sets 1e11 explicitly.
        return r.PositiveDouble("rope_theta", 1e5);
    }

    private static (double, double) ReadTimeStepLimit(FieldReader r, JsonObject json)
    {
        if (json["time_step_limit"] is not JsonArray array) return (0.0, double.PositiveInfinity);
        if (array.Count != 2) throw r.Error("time_step_limit", $"must have 2 entries, got {array.ToJsonString()}");
        double Bound(JsonNode? n, double infinity) => n switch
        {
            null => infinity,
            _ when n.GetValueKind() == JsonValueKind.Number => n.GetValue<double>(),
            _ when n.GetValueKind() == JsonValueKind.String && n.GetValue<string>() is "inf" or "Infinity" => double.PositiveInfinity,
            _ => throw r.Error("time_step_limit", $"has a non-numeric entry {n.ToJsonString()}"),
        };
        double min = Bound(array[0], 0.0), max = Bound(array[1], double.PositiveInfinity);
        if (!(min >= 0) || !(max > min)) throw r.Error("time_step_limit", $"must satisfy 0 <= min < max, got [{min}, {max}]");
        return (min, max);
    }

    /// <summary>Typed access to config fields with errors that name the file, the field and the value.</summary>
    private readonly struct FieldReader(JsonObject json, string file)
    {
        public FalconOnnxException Error(string field, string problem) => new($"{file}: field '{field}' {problem}");

        private JsonNode? Get(string field) => json.TryGetPropertyValue(field, out var node) ? node : null;

        public string? String(string field, string? fallback)
        {
            var node = Get(field);
            if (node is null) return fallback;
            if (node.GetValueKind() != JsonValueKind.String) throw Error(field, $"must be a string, got {node.ToJsonString()}");
            return node.GetValue<string>();
        }

        public bool Bool(string field, bool fallback)
        {
            var node = Get(field);
            if (node is null) return fallback;
            return node.GetValueKind() switch
            {
                JsonValueKind.True => true,
                JsonValueKind.False => false,
                _ => throw Error(field, $"must be true or false, got {node.ToJsonString()}"),
            };
        }

        public int? OptionalInt(string field)
        {
            var node = Get(field);
            if (node is null) return null;
            if (node.GetValueKind() != JsonValueKind.Number || !node.AsValue().TryGetValue(out long v) || v is < int.MinValue or > int.MaxValue)
                throw Error(field, $"must be an integer, got {node.ToJsonString()}");
            return (int)v;
        }

        public int? OptionalPositiveInt(string field)
        {
            int? v = OptionalInt(field);
            if (v is <= 0) throw Error(field, $"must be a positive integer, got {v}");
            return v;
        }

        public int PositiveInt(string field, int fallback) => OptionalPositiveInt(field) ?? fallback;

        public double FiniteDouble(string field, double fallback)
        {
            var node = Get(field);
            if (node is null) return fallback;
            if (node.GetValueKind() != JsonValueKind.Number || !double.IsFinite(node.GetValue<double>()))
                throw Error(field, $"must be a finite number, got {node.ToJsonString()}");
            return node.GetValue<double>();
        }

        public double PositiveDouble(string field, double fallback)
        {
            double v = FiniteDouble(field, fallback);
            if (v <= 0) throw Error(field, $"must be positive, got {v.ToString(CultureInfo.InvariantCulture)}");
            return v;
        }

        public double[] DoubleArray(string field, double[] fallback, int length)
        {
            var node = Get(field);
            if (node is null) return fallback;
            if (node is not JsonArray array || array.Count != length || array.Any(e => e is null || e.GetValueKind() != JsonValueKind.Number || !double.IsFinite(e.GetValue<double>())))
                throw Error(field, $"must be a list of {length} finite numbers, got {node.ToJsonString()}");
            return array.Select(e => e!.GetValue<double>()).ToArray();
        }

        public int[] IntOrIntArray(string field, int[] fallback)
        {
            var node = Get(field);
            if (node is null) return fallback;
            if (node.GetValueKind() == JsonValueKind.Number) return [OptionalInt(field)!.Value];
            if (node is JsonArray array && array.Count > 0 && array.All(e => e is not null && e.GetValueKind() == JsonValueKind.Number && e.AsValue().TryGetValue(out int _)))
                return array.Select(e => e!.GetValue<int>()).ToArray();
            throw Error(field, $"must be an integer or a non-empty list of integers, got {node.ToJsonString()}");
        }
    }
}
