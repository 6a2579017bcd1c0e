using FalconOnnx.Checkpoints;

namespace FalconOnnx.Synthesis;

/// <summary>How the values of one synthetic tensor are drawn.</summary>
internal abstract record WeightInit
{
    /// <summary>Draws values in order from <paramref name="random"/>: a shorter fill is a prefix of a longer one.</summary>
    public abstract void Fill(ref RandomStream random, Span<float> values);

    public sealed record Normal(float Mean, float Std) : WeightInit
    {
        public override void Fill(ref RandomStream random, Span<float> values) => random.FillNormal(values, Mean, Std);
    }

    public sealed record Uniform(float Low, float High) : WeightInit
    {
        public override void Fill(ref RandomStream random, Span<float> values) => random.FillUniform(values, Low, High);
    }

    /// <summary>ln(U[low, high)): Mamba-2's A_log, so that A = −exp(A_log) is uniform in (−high, −low].</summary>
    public sealed record LogOfUniform(float Low, float High) : WeightInit
    {
        public override void Fill(ref RandomStream random, Span<float> values)
        {
            random.FillUniform(values, Low, High);
            foreach (ref float v in values) v = RandomStream.Ln(v);
        }
    }

    /// <summary>
    /// Mamba-2's dt_bias: dt log-uniform in [min, max], floored, then the inverse of softplus, so that
    /// softplus(dt_bias) = dt when the in_proj dt row is zero. Drawn for the small [heads] tensor only, so the
    /// exp and log here are the platform's (rounded to float, a last-ulp difference in double never shows).
    /// </summary>
    public sealed record InverseSoftplusOfLogUniform(double Min, double Max, double Floor) : WeightInit
    {
        public override void Fill(ref RandomStream random, Span<float> values)
        {
            random.FillUniform(values, 0f, 1f);
            double logMin = Math.Log(Min), logMax = Math.Log(Max);
            foreach (ref float v in values)
            {
                double dt = Math.Max(Math.Exp(logMin + v * (logMax - logMin)), Floor);
                v = (float)(dt + Math.Log(-double.ExpM1(-dt)));
            }
        }
    }

    /// <summary>
    /// The initialisation of each Falcon-H1 tensor, by its Hugging Face name (falcon-h1.md §4.1). Close to how the
    /// model is trained from scratch, scaled so that the random model's activations and logits stay O(1):
    /// <list type="bullet">
    /// <item>Linear weights: N(0, 0.02), the usual <c>initializer_range</c>. The projections that write into the
    /// residual stream (attention o_proj, mamba out_proj, MLP down_proj) use 0.02/√(2·layers), GPT-2's scaling,
    /// so that 2·layers branch outputs added to the residual do not grow it with depth.</item>
    /// <item>Embeddings: N(0, 1/embedding_multiplier), so the scaled embeddings that enter the first layer have unit
    /// RMS like a normalised hidden state (0.02 would leave them at 0.11 for the released multiplier 4·√2).</item>
    /// <item>lm_head: N(0, 1/(√hidden · lm_head_multiplier)), so the logits of a unit-RMS final hidden state have
    /// unit spread. With 0.02 and the μP multiplier they would be ~0.01 apart and every greedy choice a near-tie
    /// that float rounding could flip between runtimes.</item>
    /// <item>RMSNorm weights: 1 + N(0, 0.02): a trained norm is not all ones, and a graph that drops the weight
    /// must not pass by luck.</item>
    /// <item>conv1d weight: U(±1/√d_conv), PyTorch's Conv1d default for a depthwise kernel (fan-in d_conv);
    /// conv1d bias and every other bias: N(0, 0.02), small beside the signal.</item>
    /// <item>A_log = ln(U[1, 16]) and dt_bias = softplus⁻¹(dt), dt log-uniform in [0.001, 0.1] floored at 1e-4:
    /// the Mamba-2 initialisation (A_init_range, time_step_min/max/floor).</item>
    /// <item>D: 1 + N(0, 0.02), Mamba-2's ones with the same small noise as the norms.</item>
    /// </list>
    /// </summary>
    public static WeightInit For(string name, FalconH1Config c)
    {
        const float Std = 0.02f;
        if (name == FalconH1Tensors.Embedding) return new Normal(0, (float)(1 / c.EmbeddingMultiplier));
        if (name == FalconH1Tensors.LmHead) return new Normal(0, (float)(1 / (Math.Sqrt(c.HiddenSize) * c.LmHeadMultiplier)));
        if (name == FalconH1Tensors.FinalNorm) return new Normal(1, Std);

        string suffix = name[(name.IndexOf('.', "model.layers.".Length) + 1)..];
        return suffix switch
        {
            "input_layernorm.weight" or "pre_ff_layernorm.weight" or "mamba.norm.weight" => new Normal(1, Std),
            "self_attn.o_proj.weight" or "mamba.out_proj.weight" or "feed_forward.down_proj.weight"
                => new Normal(0, Std / MathF.Sqrt(2 * c.NumHiddenLayers)),
            "mamba.conv1d.weight" => new Uniform(-1 / MathF.Sqrt(c.MambaDConv), 1 / MathF.Sqrt(c.MambaDConv)),
            "mamba.A_log" => new LogOfUniform(1, 16),
            "mamba.dt_bias" => new InverseSoftplusOfLogUniform(0.001, 0.1, 1e-4),
            "mamba.D" => new Normal(1, Std),
            "self_attn.q_proj.weight" or "self_attn.k_proj.weight" or "self_attn.v_proj.weight" or "mamba.in_proj.weight"
                or "feed_forward.gate_proj.weight" or "feed_forward.up_proj.weight" => new Normal(0, Std),
            _ when suffix.EndsWith(".bias", StringComparison.Ordinal) => new Normal(0, Std),
            _ => throw new InvalidOperationException($"no initialisation for tensor '{name}'"),
        };
    }
}
