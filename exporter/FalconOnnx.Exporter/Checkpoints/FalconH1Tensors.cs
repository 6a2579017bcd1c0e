namespace FalconOnnx.Checkpoints;

/// <summary>Hugging Face tensor names of a Falcon-H1 checkpoint (falcon-h1.md §4.1) and their shapes.</summary>
public static class FalconH1Tensors
{
    public const string Embedding = "model.embed_tokens.weight";
    public const string FinalNorm = "model.final_layernorm.weight";
    public const string LmHead = "lm_head.weight";

    public static string Layer(int layer, string suffix) => $"model.layers.{layer}.{suffix}";

    /// <summary>
    /// The name a checkpoint weight has in an export, where q, k and v are one matrix (<c>self_attn.qkv_proj</c>) and
    /// gate and up another (<c>feed_forward.gate_up_proj</c>); the names precision overrides match.
    /// </summary>
    public static string ExportName(string name)
    {
        foreach (var (parts, fused) in Fused)
            foreach (string part in parts)
                if (name.EndsWith(part, StringComparison.Ordinal)) return name[..^part.Length] + fused;
        return name;
    }

    private static readonly (string[] Parts, string Fused)[] Fused =
    [
        ([".self_attn.q_proj.weight", ".self_attn.k_proj.weight", ".self_attn.v_proj.weight"], ".self_attn.qkv_proj.weight"),
        ([".feed_forward.gate_proj.weight", ".feed_forward.up_proj.weight"], ".feed_forward.gate_up_proj.weight"),
    ];

    /// <summary>Every tensor the config calls for, with its [out, in] shape, in checkpoint order.</summary>
    public static IReadOnlyDictionary<string, long[]> Expected(FalconH1Config c)
    {
        var tensors = new Dictionary<string, long[]>(StringComparer.Ordinal) { [Embedding] = [c.VocabSize, c.HiddenSize] };
        for (int i = 0; i < c.NumHiddenLayers; i++)
        {
            void Add(string suffix, params long[] shape) => tensors[Layer(i, suffix)] = shape;
            Add("input_layernorm.weight", c.HiddenSize);
            Add("self_attn.q_proj.weight", c.QueryDim, c.HiddenSize);
            Add("self_attn.k_proj.weight", c.KeyValueDim, c.HiddenSize);
            Add("self_attn.v_proj.weight", c.KeyValueDim, c.HiddenSize);
            Add("self_attn.o_proj.weight", c.HiddenSize, c.QueryDim);
            if (c.AttentionBias)
            {
                Add("self_attn.q_proj.bias", c.QueryDim);
                Add("self_attn.k_proj.bias", c.KeyValueDim);
                Add("self_attn.v_proj.bias", c.KeyValueDim);
                Add("self_attn.o_proj.bias", c.HiddenSize);
            }
            Add("mamba.in_proj.weight", c.InProjDim, c.HiddenSize);
            if (c.MambaProjBias) Add("mamba.in_proj.bias", c.InProjDim);
            Add("mamba.conv1d.weight", c.ConvDim, 1, c.MambaDConv);
            if (c.MambaConvBias) Add("mamba.conv1d.bias", c.ConvDim);
            Add("mamba.dt_bias", c.MambaNHeads);
            Add("mamba.A_log", c.MambaNHeads);
            Add("mamba.D", c.MambaNHeads);
            if (c.MambaRmsNorm) Add("mamba.norm.weight", c.MambaDSsm);
            Add("mamba.out_proj.weight", c.HiddenSize, c.MambaDSsm);
            if (c.ProjectorsBias) Add("mamba.out_proj.bias", c.HiddenSize);
            Add("pre_ff_layernorm.weight", c.HiddenSize);
            Add("feed_forward.gate_proj.weight", c.IntermediateSize, c.HiddenSize);
            Add("feed_forward.up_proj.weight", c.IntermediateSize, c.HiddenSize);
            Add("feed_forward.down_proj.weight", c.HiddenSize, c.IntermediateSize);
            if (c.MlpBias)
            {
                Add("feed_forward.gate_proj.bias", c.IntermediateSize);
                Add("feed_forward.up_proj.bias", c.IntermediateSize);
                Add("feed_forward.down_proj.bias", c.HiddenSize);
            }
        }
        tensors[FinalNorm] = [c.HiddenSize];
        if (!c.TieWordEmbeddings) tensors[LmHead] = [c.VocabSize, c.HiddenSize];
        return tensors;
    }
}
