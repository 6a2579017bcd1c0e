using FalconOnnx.Checkpoints;

namespace FalconOnnx.Benchmarks.Gguf;

/// <summary>
/// Writes a Hugging Face Falcon-H1 checkpoint as an F32 GGUF file that llama.cpp's <c>falcon-h1</c> architecture
/// loads: the tensor names and shapes of llama.cpp's <c>llama_model_falcon_h1::load_arch_tensors</c>, the metadata
/// keys its <c>load_arch_hparams</c> reads, and exactly the weight transformations of its converter
/// (<c>convert_hf_to_gguf.py</c>, <c>FalconH1Model</c> over <c>Mamba2Model</c>; falcon-h1.md §5.1): every μP
/// multiplier folded into the weights in float32, <c>A = −exp(A_log)</c>, the depthwise conv weight squeezed, the
/// gated norm reshaped per group. Tensors are streamed block by block from the memory-mapped safetensors, so
/// memory stays small whatever the model size.
/// </summary>
public static class FalconH1Gguf
{
    /// <summary>llama.cpp's architecture name; every model key is prefixed with it.</summary>
    public const string Architecture = "falcon-h1";

    /// <summary>llama_ftype LLAMA_FTYPE_ALL_F32.</summary>
    private const uint FileTypeAllF32 = 0;

    public static long Write(string checkpointFolder, string outputPath, CancellationToken cancellationToken = default)
    {
        using var checkpoint = Checkpoint.Open(checkpointFolder);
        var c = checkpoint.Config;
        RejectWhatLlamaCppComputesDifferently(c, checkpoint.Directory);
        var metadata = Metadata(c, Path.GetFileName(Path.TrimEndingDirectorySeparator(checkpointFolder)));
        metadata.AddRange(GgufVocabulary.Read(checkpointFolder, c).Metadata());
        return GgufWriter.Write(outputPath, metadata, Tensors(checkpoint), cancellationToken: cancellationToken);
    }

    /// <summary>
    /// llama.cpp's Falcon-H1 graph always gates before the grouped norm and never clamps dt, and its converter
    /// scales every bias like its weight (attention_in_multiplier included); a GGUF of such a checkpoint would run
    /// a different model, so it is refused instead of written. No released Falcon-H1 size is affected.
    /// </summary>
    private static void RejectWhatLlamaCppComputesDifferently(FalconH1Config c, string folder)
    {
        if (c.MambaRmsNorm && c.MambaNormBeforeGate)
            throw new GgufException($"{folder}/config.json: field 'mamba_norm_before_gate' is true; llama.cpp's Falcon-H1 graph always applies the gate before the norm, so its GGUF would compute a different model");
        if (c.TimeStepLimit != (0.0, double.PositiveInfinity))
            throw new GgufException($"{folder}/config.json: field 'time_step_limit' is [{c.TimeStepLimit.Min}, {c.TimeStepLimit.Max}]; llama.cpp's Falcon-H1 graph does not clamp dt, so its GGUF would compute a different model");
        foreach (var (field, set) in new[] { ("attention_bias", c.AttentionBias), ("mlp_bias", c.MlpBias), ("mamba_proj_bias", c.MambaProjBias), ("projectors_bias", c.ProjectorsBias) })
            if (set)
                throw new GgufException($"{folder}/config.json: field '{field}' is true; llama.cpp's converter scales these biases by the input multipliers of their weights, so its GGUF would compute a different model");
    }

    private static List<KeyValuePair<string, GgufValue>> Metadata(FalconH1Config c, string name)
    {
        var metadata = new List<KeyValuePair<string, GgufValue>>();
        void Add(string key, GgufValue value) => metadata.Add(new(key, value));
        void Model(string key, GgufValue value) => Add($"{Architecture}.{key}", value);
        Add("general.architecture", GgufValue.String(Architecture));
        Add("general.name", GgufValue.String(name));
        Add("general.file_type", GgufValue.UInt32(FileTypeAllF32));
        Model("vocab_size", GgufValue.UInt32((uint)c.VocabSize));
        Model("context_length", GgufValue.UInt32((uint)c.MaxPositionEmbeddings));
        Model("embedding_length", GgufValue.UInt32((uint)c.HiddenSize));
        Model("feed_forward_length", GgufValue.UInt32((uint)c.IntermediateSize));
        Model("block_count", GgufValue.UInt32((uint)c.NumHiddenLayers));
        Model("attention.head_count", GgufValue.UInt32((uint)c.NumAttentionHeads));
        Model("attention.head_count_kv", GgufValue.UInt32((uint)c.NumKeyValueHeads));
        // head_dim is not hidden/heads in any released size (falcon-h1.md §5 pitfall 1); llama.cpp takes the
        // rotary width from key_length too.
        Model("attention.key_length", GgufValue.UInt32((uint)c.HeadDim));
        Model("attention.value_length", GgufValue.UInt32((uint)c.HeadDim));
        Model("attention.layer_norm_rms_epsilon", GgufValue.Float32((float)c.RmsNormEps));
        Model("rope.freq_base", GgufValue.Float32((float)c.RopeTheta));
        Model("ssm.conv_kernel", GgufValue.UInt32((uint)c.MambaDConv));
        Model("ssm.inner_size", GgufValue.UInt32((uint)c.MambaDSsm));
        Model("ssm.state_size", GgufValue.UInt32((uint)c.MambaDState));
        // llama.cpp carries the number of Mamba heads in the time-step rank key.
        Model("ssm.time_step_rank", GgufValue.UInt32((uint)c.MambaNHeads));
        Model("ssm.group_count", GgufValue.UInt32((uint)c.MambaNGroups));
        return metadata;
    }

    /// <summary>Every tensor in llama.cpp's names, ggml dimension order and folded values.</summary>
    public static List<GgufTensorSource> Tensors(Checkpoint checkpoint)
    {
        var c = checkpoint.Config;
        var tensors = new List<GgufTensorSource>();
        long h = c.HiddenSize, v = c.VocabSize;
        TensorEntry Layer(int i, string suffix) => checkpoint[FalconH1Tensors.Layer(i, suffix)];
        void Add(string name, TensorEntry source, long[] dimensions, Func<long, float[]>? rowFactors = null, bool negativeExp = false)
        {
            if (dimensions.Aggregate(1L, (a, b) => a * b) != source.ElementCount)
                throw new GgufException($"tensor '{source.Name}' {source.ShapeText} does not fit GGUF tensor '{name}' [{string.Join(", ", dimensions)}]");
            long rowLength = dimensions[0];
            tensors.Add(new GgufTensorSource(name, dimensions, (first, destination) =>
            {
                source.ReadFloats(first, destination);
                if (rowFactors is not null)
                    for (int k = 0; k < destination.Length; k++)
                        foreach (float factor in rowFactors((first + k) / rowLength)) destination[k] *= factor;
                if (negativeExp)
                    for (int k = 0; k < destination.Length; k++) destination[k] = -MathF.Exp(destination[k]);
            }));
        }
        // The converter multiplies float32 tensors by Python floats one multiplier at a time, so the product is
        // rounded to float32 after each factor; the same factors in the same order are applied here.
        static Func<long, float[]> Scale(params double[] factors)
        {
            var singles = factors.Select(f => (float)f).ToArray();
            return _ => singles;
        }

        Add("token_embd.weight", checkpoint[FalconH1Tensors.Embedding], [h, v], Scale(c.EmbeddingMultiplier));
        for (int i = 0; i < c.NumHiddenLayers; i++)
        {
            string blk = $"blk.{i}.";
            Add(blk + "attn_norm.weight", Layer(i, "input_layernorm.weight"), [h]);
            Add(blk + "attn_q.weight", Layer(i, "self_attn.q_proj.weight"), [h, c.QueryDim], Scale(c.AttentionInMultiplier));
            Add(blk + "attn_k.weight", Layer(i, "self_attn.k_proj.weight"), [h, c.KeyValueDim], Scale(c.KeyMultiplier, c.AttentionInMultiplier));
            Add(blk + "attn_v.weight", Layer(i, "self_attn.v_proj.weight"), [h, c.KeyValueDim], Scale(c.AttentionInMultiplier));
            Add(blk + "attn_output.weight", Layer(i, "self_attn.o_proj.weight"), [c.QueryDim, h], Scale(c.AttentionOutMultiplier));

            Add(blk + "ssm_in.weight", Layer(i, "mamba.in_proj.weight"), [h, c.InProjDim], InProjectionRowFactors(c));
            Add(blk + "ssm_conv1d.weight", Layer(i, "mamba.conv1d.weight"), [c.MambaDConv, c.ConvDim]);
            if (c.MambaConvBias) Add(blk + "ssm_conv1d.bias", Layer(i, "mamba.conv1d.bias"), [c.ConvDim]);
            Add(blk + "ssm_dt.bias", Layer(i, "mamba.dt_bias"), [c.MambaNHeads]);
            // ssm_a and ssm_d carry no ".weight" suffix in llama.cpp's tensor table; both are [Hm, 1] in PyTorch order.
            Add(blk + "ssm_a", Layer(i, "mamba.A_log"), [1, c.MambaNHeads], negativeExp: true);
            Add(blk + "ssm_d", Layer(i, "mamba.D"), [1, c.MambaNHeads]);
            if (c.MambaRmsNorm) Add(blk + "ssm_norm.weight", Layer(i, "mamba.norm.weight"), [c.MambaDSsm / c.MambaNGroups, c.MambaNGroups]);
            Add(blk + "ssm_out.weight", Layer(i, "mamba.out_proj.weight"), [c.MambaDSsm, h], Scale(c.SsmOutMultiplier));

            Add(blk + "ffn_norm", Layer(i, "pre_ff_layernorm.weight"), [h]);
            Add(blk + "ffn_gate.weight", Layer(i, "feed_forward.gate_proj.weight"), [h, c.IntermediateSize], Scale(c.MlpMultipliers[0]));
            Add(blk + "ffn_up.weight", Layer(i, "feed_forward.up_proj.weight"), [h, c.IntermediateSize]);
            Add(blk + "ffn_down.weight", Layer(i, "feed_forward.down_proj.weight"), [c.IntermediateSize, h], Scale(c.MlpMultipliers[1]));
        }
        Add("output_norm.weight", checkpoint[FalconH1Tensors.FinalNorm], [h]);
        // With tied embeddings llama.cpp would reuse token_embd, already scaled by embedding_multiplier and without
        // lm_head_multiplier (falcon-h1.md §5.1); an explicit output tensor keeps the logits right.
        var head = c.TieWordEmbeddings ? checkpoint[FalconH1Tensors.Embedding] : checkpoint[FalconH1Tensors.LmHead];
        Add("output.weight", head, [h, v], Scale(c.LmHeadMultiplier));
        return tensors;
    }

    /// <summary>
    /// ssm_in_multiplier, then the ssm_multipliers entry of the row's block z | x | B | C | dt (falcon-h1.md §2.5
    /// step 4), in the converter's order: the whole tensor first, then each row block in place.
    /// </summary>
    private static Func<long, float[]> InProjectionRowFactors(FalconH1Config c)
    {
        int ds = c.MambaDSsm, gn = c.MambaNGroups * c.MambaDState;
        var blocks = c.SsmMultipliers.Select(m => new[] { (float)c.SsmInMultiplier, (float)m }).ToArray();
        return row => blocks[row < ds ? 0 : row < 2 * ds ? 1 : row < 2 * ds + gn ? 2 : row < 2 * ds + 2 * gn ? 3 : 4];
    }
}
