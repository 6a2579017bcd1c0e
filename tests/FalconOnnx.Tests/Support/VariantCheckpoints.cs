using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using FalconOnnx.Checkpoints;

namespace FalconOnnx.Tests.Support;

/// <summary>
/// A tiny Falcon-H1 configuration that differs from the golden tiny-a in the fields released checkpoints use
/// (falcon-h1.md §1.2, §5): its dimensions and flags, from which both config.json and the tensor list are
/// written, independently of the exporter's own tensor table.
/// </summary>
public sealed record CheckpointVariant
{
    public required string Name { get; init; }
    public required int Seed { get; init; }
    public CheckpointDType DType { get; init; } = CheckpointDType.F32;

    public int HiddenSize { get; init; } = 32;
    public int Layers { get; init; } = 2;
    public int Heads { get; init; } = 4;
    public int KeyValueHeads { get; init; } = 2;
    public int HeadDim { get; init; } = 8;
    public int Intermediate { get; init; } = 64;
    public int Vocab { get; init; } = 128;
    public double RmsNormEps { get; init; } = 1e-5;
    public double RopeTheta { get; init; } = 10000;

    public int DSsm { get; init; } = 64;
    public int MambaHeads { get; init; } = 8;
    public int Groups { get; init; } = 1;
    public int DState { get; init; } = 8;
    public int DConv { get; init; } = 4;
    public int ChunkSize { get; init; } = 16;

    public bool AttentionBias { get; init; }
    public bool MlpBias { get; init; }
    public bool MambaProjBias { get; init; }
    public bool ProjectorsBias { get; init; }
    public bool MambaConvBias { get; init; } = true;
    public bool MambaRmsNorm { get; init; } = true;
    public bool NormBeforeGate { get; init; } = true;
    public bool TieWordEmbeddings { get; init; }
    /// <summary>null: the field is left out (HF's (0, inf), a no-op).</summary>
    public (double Min, double Max)? TimeStepLimit { get; init; }

    /// <summary>transformers v5 spelling: <c>rope_parameters</c> instead of <c>rope_theta</c>, <c>dtype</c>, and <c>mamba_d_head: "auto"</c>.</summary>
    public bool V5Fields { get; init; }

    /// <summary><c>mamba_d_ssm: null</c>, which HF reads as mamba_expand × hidden_size; <see cref="DSsm"/> must equal that.</summary>
    public bool DSsmFromExpand { get; init; }

    public int MambaHeadDim => DSsm / MambaHeads;
    public int ConvDim => DSsm + 2 * Groups * DState;
    public int InProjRows => 2 * DSsm + 2 * Groups * DState + MambaHeads;

    public override string ToString() => Name;
}

/// <summary>
/// Writes random Falcon-H1 checkpoints in Hugging Face layout (config.json + model.safetensors), deterministic
/// from the variant's seed. Scales follow tiny-a's intent: every activation O(1), logits O(1), each μP
/// multiplier at least 0.25 away from 1 (so forgetting or misplacing one shows), biases and the conv large
/// enough to matter, and dt spread from 0.002 to about 1 (so a time_step_limit clamp bites at both ends).
/// </summary>
public static class VariantCheckpoints
{
    public static readonly IReadOnlyList<CheckpointVariant> All =
    [
        // 34B's flags: gated norm gate-first over 2 groups; one KV head for four query heads; head_dim != H/nh.
        new() { Name = "gate-first-norm-2-groups-gqa-4-to-1", Seed = 11, HiddenSize = 48, Heads = 4, KeyValueHeads = 1, HeadDim = 16,
            Intermediate = 96, Vocab = 160, DSsm = 64, MambaHeads = 4, Groups = 2, NormBeforeGate = false, ChunkSize = 8 },
        // 0.5B's flags: no mamba norm (plain y·SiLU(z)); head_dim 12 with H/nh = 8.
        new() { Name = "no-mamba-norm-head-dim-12", Seed = 12, HiddenSize = 32, Heads = 4, KeyValueHeads = 2, HeadDim = 12,
            DSsm = 48, MambaHeads = 6, DState = 16, MambaRmsNorm = false, ChunkSize = 16 },
        // Every optional Linear bias on, the conv bias off: pads must not leak in_proj's bias into the conv.
        new() { Name = "all-biases-no-conv-bias", Seed = 13, HiddenSize = 64, Heads = 4, KeyValueHeads = 2, HeadDim = 16,
            Intermediate = 128, Vocab = 192, DSsm = 64, MambaHeads = 8, AttentionBias = true, MlpBias = true, MambaProjBias = true,
            ProjectorsBias = true, MambaConvBias = false, NormBeforeGate = false },
        // Falcon-H1-Tiny's tying: no lm_head.weight; logits = embed_tokens · h · lm_head_multiplier.
        new() { Name = "tied-embeddings", Seed = 14, HiddenSize = 32, Heads = 2, KeyValueHeads = 2, HeadDim = 16,
            Vocab = 256, DSsm = 64, MambaHeads = 4, DState = 16, TieWordEmbeddings = true },
        // A real dt clamp and the released RoPE base; three B/C groups of four heads.
        new() { Name = "dt-limit-rope-theta-1e11", Seed = 15, HiddenSize = 48, Heads = 6, KeyValueHeads = 3, HeadDim = 8,
            Intermediate = 96, DSsm = 96, MambaHeads = 12, Groups = 3, TimeStepLimit = (0.01, 0.05), RopeTheta = 1e11 },
        // bf16 storage as released; gate-first norm over 2 groups.
        new() { Name = "bf16-weights", Seed = 16, DType = CheckpointDType.BF16, HiddenSize = 64, Heads = 4, KeyValueHeads = 2, HeadDim = 16,
            Intermediate = 128, Vocab = 256, DSsm = 128, MambaHeads = 8, Groups = 2, DState = 16, NormBeforeGate = false },
        // transformers v5 config spelling, and the SSM width given as mamba_expand × hidden_size.
        new() { Name = "v5-rope-parameters-auto-d-head", Seed = 17, HiddenSize = 32, Heads = 4, KeyValueHeads = 4, HeadDim = 8,
            DSsm = 96, MambaHeads = 8, RopeTheta = 5e5, V5Fields = true, DSsmFromExpand = true },
        // A 3-tap conv, one head per B/C group, a chunk length that divides nothing, a smaller eps.
        new() { Name = "conv-kernel-3-group-per-head", Seed = 18, HiddenSize = 32, Heads = 4, KeyValueHeads = 2, HeadDim = 8,
            DSsm = 32, MambaHeads = 4, Groups = 4, DState = 8, DConv = 3, ChunkSize = 5, RmsNormEps = 1e-6 },
    ];

    public static CheckpointVariant Named(string name) => All.Single(v => v.Name == name);

    /// <summary>Creates <paramref name="folder"/> with config.json and model.safetensors.</summary>
    public static void Write(CheckpointVariant v, string folder)
    {
        Directory.CreateDirectory(folder);
        var random = new Random(v.Seed);
        var config = Config(v, random);
        File.WriteAllText(Path.Combine(folder, Checkpoint.ConfigFileName), config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        var tensors = Tensors(v).Select(t => ToWrite(t.Name, t.Shape, t.Values(random, t.Shape), v.DType)).ToList();
        SafetensorsWriter.Write(Path.Combine(folder, Checkpoint.SingleFileName), tensors);
    }

    /// <summary>A μP multiplier 0.25 to 0.6 away from 1, either side.</summary>
    private static double Multiplier(Random random) => Math.Round(1 + (random.Next(2) == 0 ? -1 : 1) * (0.25 + 0.35 * random.NextDouble()), 3);

    private static JsonObject Config(CheckpointVariant v, Random random)
    {
        var config = new JsonObject
        {
            ["architectures"] = new JsonArray("FalconH1ForCausalLM"),
            ["model_type"] = "falcon_h1",
            ["vocab_size"] = v.Vocab,
            ["hidden_size"] = v.HiddenSize,
            ["num_hidden_layers"] = v.Layers,
            ["num_attention_heads"] = v.Heads,
            ["num_key_value_heads"] = v.KeyValueHeads,
            ["head_dim"] = v.HeadDim,
            ["intermediate_size"] = v.Intermediate,
            ["hidden_act"] = "silu",
            ["rms_norm_eps"] = v.RmsNormEps,
            ["max_position_embeddings"] = 2048,
            ["attention_bias"] = v.AttentionBias,
            ["mlp_bias"] = v.MlpBias,
            ["mamba_d_ssm"] = v.DSsmFromExpand ? null : v.DSsm,
            ["mamba_n_heads"] = v.MambaHeads,
            ["mamba_d_head"] = v.V5Fields ? "auto" : v.MambaHeadDim,
            ["mamba_n_groups"] = v.Groups,
            ["mamba_d_state"] = v.DState,
            ["mamba_d_conv"] = v.DConv,
            ["mamba_expand"] = v.DSsmFromExpand ? v.DSsm / v.HiddenSize : 2,
            ["mamba_chunk_size"] = v.ChunkSize,
            ["mamba_conv_bias"] = v.MambaConvBias,
            ["mamba_proj_bias"] = v.MambaProjBias,
            ["projectors_bias"] = v.ProjectorsBias,
            ["mamba_rms_norm"] = v.MambaRmsNorm,
            ["mamba_norm_before_gate"] = v.NormBeforeGate,
            ["tie_word_embeddings"] = v.TieWordEmbeddings,
            ["embedding_multiplier"] = Multiplier(random),
            ["lm_head_multiplier"] = Multiplier(random),
            ["key_multiplier"] = Multiplier(random),
            ["attention_in_multiplier"] = Multiplier(random),
            ["attention_out_multiplier"] = Multiplier(random),
            ["ssm_in_multiplier"] = Multiplier(random),
            ["ssm_out_multiplier"] = Multiplier(random),
            ["ssm_multipliers"] = new JsonArray(Enumerable.Range(0, 5).Select(_ => (JsonNode)Multiplier(random)).ToArray()),
            ["mlp_multipliers"] = new JsonArray(Enumerable.Range(0, 2).Select(_ => (JsonNode)Multiplier(random)).ToArray()),
            ["pad_token_id"] = 0,
            ["bos_token_id"] = 1,
            ["eos_token_id"] = 2,
            ["use_cache"] = true,
        };
        string dtype = v.DType == CheckpointDType.BF16 ? "bfloat16" : "float32";
        if (v.V5Fields)
        {
            config["rope_parameters"] = new JsonObject { ["rope_type"] = "default", ["rope_theta"] = v.RopeTheta };
            config["dtype"] = dtype;
        }
        else
        {
            config["rope_theta"] = v.RopeTheta;
            config["rope_scaling"] = null;
            config["torch_dtype"] = dtype;
        }
        if (v.TimeStepLimit is { } limit) config["time_step_limit"] = new JsonArray(limit.Min, limit.Max);
        return config;
    }

    private sealed record TensorSpec(string Name, long[] Shape, Func<Random, long[], float[]> Values);

    /// <summary>Hugging Face's tensors for the variant (falcon-h1.md §4.1), in checkpoint order.</summary>
    private static IEnumerable<TensorSpec> Tensors(CheckpointVariant v)
    {
        int h = v.HiddenSize, q = v.Heads * v.HeadDim, kv = v.KeyValueHeads * v.HeadDim;
        // Tied, the table is also the output layer: entries N(0, 1/H) keep those logits O(1) as well.
        yield return new("model.embed_tokens.weight", [v.Vocab, h], (r, s) => Normal(r, Count(s), v.TieWordEmbeddings ? 1.0 / Math.Sqrt(h) : 1.0));
        for (int i = 0; i < v.Layers; i++)
        {
            string p = $"model.layers.{i}.";
            yield return new(p + "input_layernorm.weight", [h], NormWeight);
            foreach (var (name, rows, columns) in new[] { ("q_proj", q, h), ("k_proj", kv, h), ("v_proj", kv, h), ("o_proj", h, q) })
            {
                yield return new(p + $"self_attn.{name}.weight", [rows, columns], Matrix);
                if (v.AttentionBias) yield return new(p + $"self_attn.{name}.bias", [rows], Bias);
            }
            // The dt rows twice as large: dt then spans decades, and the dt multiplier moves it visibly.
            int dtRows = 2 * v.DSsm + 2 * v.Groups * v.DState;
            yield return new(p + "mamba.in_proj.weight", [v.InProjRows, h], (r, s) => ScaleRows(Matrix(r, s), h, dtRows, 2f));
            if (v.MambaProjBias) yield return new(p + "mamba.in_proj.bias", [v.InProjRows], Bias);
            yield return new(p + "mamba.conv1d.weight", [v.ConvDim, 1, v.DConv], (r, s) => Normal(r, Count(s), 0.5));
            if (v.MambaConvBias) yield return new(p + "mamba.conv1d.bias", [v.ConvDim], Bias);
            // dt_bias = softplus⁻¹(dt) for dt log-uniform in [0.002, 0.3]; in_proj's dt rows spread it further.
            yield return new(p + "mamba.dt_bias", [v.MambaHeads], (r, s) => Uniform(r, Count(s), Math.Log(0.002), Math.Log(0.3), dt => Math.Log(Math.Exp(Math.Exp(dt)) - 1)));
            yield return new(p + "mamba.A_log", [v.MambaHeads], (r, s) => Uniform(r, Count(s), Math.Log(0.5), Math.Log(8), a => a));
            // D below 1 so that the skip D·x does not drown the state's contribution C·h.
            yield return new(p + "mamba.D", [v.MambaHeads], (r, s) => Uniform(r, Count(s), 0.2, 0.8, d => d));
            if (v.MambaRmsNorm) yield return new(p + "mamba.norm.weight", [v.DSsm], NormWeight);
            // Without the gated norm y·SiLU(z) is several times smaller than O(1); a larger out_proj keeps the branch's share.
            yield return new(p + "mamba.out_proj.weight", [h, v.DSsm], (r, s) => ScaleRows(Matrix(r, s), v.DSsm, 0, v.MambaRmsNorm ? 1f : 4f));
            if (v.ProjectorsBias) yield return new(p + "mamba.out_proj.bias", [h], Bias);
            yield return new(p + "pre_ff_layernorm.weight", [h], NormWeight);
            foreach (var (name, rows, columns) in new[] { ("gate_proj", v.Intermediate, h), ("up_proj", v.Intermediate, h), ("down_proj", h, v.Intermediate) })
            {
                yield return new(p + $"feed_forward.{name}.weight", [rows, columns], Matrix);
                if (v.MlpBias) yield return new(p + $"feed_forward.{name}.bias", [rows], Bias);
            }
        }
        yield return new("model.final_layernorm.weight", [h], NormWeight);
        if (!v.TieWordEmbeddings) yield return new("lm_head.weight", [v.Vocab, h], Matrix);
    }

    private static int Count(long[] shape) => (int)shape.Aggregate(1L, (a, b) => a * b);

    /// <summary>[out, in] with entries N(0, 1/in): outputs keep the scale of their inputs.</summary>
    private static float[] Matrix(Random random, long[] shape) => Normal(random, Count(shape), 1.0 / Math.Sqrt(shape[1]));

    /// <summary>Multiplies rows from <paramref name="firstRow"/> on (row length <paramref name="columns"/>) by <paramref name="factor"/>.</summary>
    private static float[] ScaleRows(float[] values, int columns, int firstRow, float factor)
    {
        for (int i = firstRow * columns; i < values.Length; i++) values[i] *= factor;
        return values;
    }

    private static float[] Bias(Random random, long[] shape) => Normal(random, Count(shape), 0.3);

    private static float[] NormWeight(Random random, long[] shape) => Normal(random, Count(shape), 0.2).Select(w => 1 + w).ToArray();

    private static float[] Normal(Random random, int count, double deviation)
    {
        var values = new float[count];
        for (int i = 0; i < count; i++)
        {
            // Box–Muller; 1 − U keeps the logarithm finite.
            double radius = Math.Sqrt(-2 * Math.Log(1 - random.NextDouble()));
            values[i] = (float)(deviation * radius * Math.Cos(2 * Math.PI * random.NextDouble()));
        }
        return values;
    }

    private static float[] Uniform(Random random, int count, double low, double high, Func<double, double> map)
    {
        var values = new float[count];
        for (int i = 0; i < count; i++) values[i] = (float)map(low + (high - low) * random.NextDouble());
        return values;
    }

    private static TensorToWrite ToWrite(string name, long[] shape, float[] values, CheckpointDType dtype)
    {
        byte[] bytes;
        if (dtype == CheckpointDType.BF16)
        {
            var halves = new ushort[values.Length];
            FloatConversion.SingleToBFloat16(values, halves);
            bytes = MemoryMarshal.AsBytes(halves.AsSpan()).ToArray();
        }
        else
        {
            bytes = MemoryMarshal.AsBytes(values.AsSpan()).ToArray();
        }
        return new TensorToWrite(name, dtype, shape, (offset, destination) => bytes.AsSpan((int)offset, destination.Length).CopyTo(destination));
    }
}
