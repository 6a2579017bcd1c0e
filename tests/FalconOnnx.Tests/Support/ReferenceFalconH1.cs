using FalconOnnx.Checkpoints;

namespace FalconOnnx.Tests.Support;

/// <summary>
/// The caches of one <see cref="ReferenceFalconH1"/> sequence batch, per layer and row: attention keys and values
/// of every position seen (pads included, the mask hides them), the last d_conv − 1 raw x|B|C conv inputs
/// (oldest first) and the SSM state h laid out [head, p, n] in double precision.
/// </summary>
public sealed class ReferenceState
{
    internal ReferenceState(int batch, ReferenceLayerCache[,] caches)
    {
        Batch = batch;
        Caches = caches;
    }

    public int Batch { get; }

    /// <summary>Positions already processed (past_seq of the ABI).</summary>
    public int PastLength { get; internal set; }

    /// <summary>[layer, row].</summary>
    internal ReferenceLayerCache[,] Caches { get; }
}

internal sealed class ReferenceLayerCache(int convDim, int convHistory, int ssmSize)
{
    public List<double[]> Keys { get; } = [];
    public List<double[]> Values { get; } = [];
    /// <summary>[channel, k] for k = 0 … d_conv − 2, oldest first.</summary>
    public double[] ConvInputs { get; } = new double[convDim * convHistory];
    public double[] Ssm { get; } = new double[ssmSize];
}

/// <summary>
/// A plain, independent Falcon-H1 forward pass written from falcon-h1.md §2–3 and model-abi.md, for tiny
/// checkpoints: weights widened to double, every μP multiplier applied at run time where Hugging Face applies it
/// (nothing folded), attention over an explicit key list, the Mamba-2 mixer as the sequential recurrence
/// token by token. It shares only the checkpoint reader with the exporter.
/// <para>
/// Semantics are the ABI's, which continue exactly where HF cannot: any number of new tokens from any cache.
/// Left pads are exact no-ops: at a pad the mixer input, the raw x|B|C (after in_proj, bias and μP), the
/// post-conv x|B|C and dt are zero, so neither the conv state nor the SSM state moves; attention never
/// attends to a pad key, and a query that sees no key at all gets a zero attention output instead of a NaN.
/// </para>
/// </summary>
public sealed class ReferenceFalconH1
{
    private readonly double[] _embedding;
    private readonly Linear _lmHead;
    private readonly double[] _finalNorm;
    private readonly LayerWeights[] _layers;
    private readonly double[] _inverseFrequencies;

    private ReferenceFalconH1(FalconH1Config config, double[] embedding, Linear lmHead, double[] finalNorm, LayerWeights[] layers)
    {
        Config = config;
        _embedding = embedding;
        _lmHead = lmHead;
        _finalNorm = finalNorm;
        _layers = layers;
        int half = config.HeadDim / 2;
        _inverseFrequencies = new double[half];
        for (int i = 0; i < half; i++) _inverseFrequencies[i] = 1.0 / Math.Pow(config.RopeTheta, 2.0 * i / config.HeadDim);
    }

    public FalconH1Config Config { get; }

    private sealed record Linear(double[] Weight, int Out, int In, double[]? Bias)
    {
        /// <summary>y = W·x (+ b), W stored [out, in] as in the checkpoint.</summary>
        public double[] Apply(ReadOnlySpan<double> x)
        {
            var y = new double[Out];
            for (int o = 0; o < Out; o++)
            {
                var row = Weight.AsSpan(o * In, In);
                double sum = Bias?[o] ?? 0;
                for (int i = 0; i < In; i++) sum += row[i] * x[i];
                y[o] = sum;
            }
            return y;
        }
    }

    private sealed record LayerWeights(
        double[] InputNorm, Linear Query, Linear Key, Linear Value, Linear Output,
        Linear InProj, double[] ConvWeight, double[]? ConvBias, double[] DtBias, double[] A, double[] D, double[]? MambaNorm, Linear OutProj,
        double[] PreFeedForwardNorm, Linear Gate, Linear Up, Linear Down);

    public static ReferenceFalconH1 Load(string folder)
    {
        using var checkpoint = Checkpoint.Open(folder);
        var c = checkpoint.Config;
        double[] Read(string name) => ReadTensor(checkpoint[name]);
        double[] L(int i, string suffix) => Read(FalconH1Tensors.Layer(i, suffix));
        Linear Projection(int i, string name, int outputs, int inputs, bool hasBias) =>
            new(L(i, name + ".weight"), outputs, inputs, hasBias ? L(i, name + ".bias") : null);

        var layers = new LayerWeights[c.NumHiddenLayers];
        for (int i = 0; i < layers.Length; i++)
        {
            var aLog = L(i, "mamba.A_log");
            layers[i] = new LayerWeights(
                InputNorm: L(i, "input_layernorm.weight"),
                Query: Projection(i, "self_attn.q_proj", c.QueryDim, c.HiddenSize, c.AttentionBias),
                Key: Projection(i, "self_attn.k_proj", c.KeyValueDim, c.HiddenSize, c.AttentionBias),
                Value: Projection(i, "self_attn.v_proj", c.KeyValueDim, c.HiddenSize, c.AttentionBias),
                Output: Projection(i, "self_attn.o_proj", c.HiddenSize, c.QueryDim, c.AttentionBias),
                InProj: Projection(i, "mamba.in_proj", c.InProjDim, c.HiddenSize, c.MambaProjBias),
                ConvWeight: L(i, "mamba.conv1d.weight"),
                ConvBias: c.MambaConvBias ? L(i, "mamba.conv1d.bias") : null,
                DtBias: L(i, "mamba.dt_bias"),
                A: aLog.Select(v => -Math.Exp(v)).ToArray(),
                D: L(i, "mamba.D"),
                MambaNorm: c.MambaRmsNorm ? L(i, "mamba.norm.weight") : null,
                OutProj: Projection(i, "mamba.out_proj", c.HiddenSize, c.MambaDSsm, c.ProjectorsBias),
                PreFeedForwardNorm: L(i, "pre_ff_layernorm.weight"),
                Gate: Projection(i, "feed_forward.gate_proj", c.IntermediateSize, c.HiddenSize, c.MlpBias),
                Up: Projection(i, "feed_forward.up_proj", c.IntermediateSize, c.HiddenSize, c.MlpBias),
                Down: Projection(i, "feed_forward.down_proj", c.HiddenSize, c.IntermediateSize, c.MlpBias));
        }
        var embedding = Read(FalconH1Tensors.Embedding);
        // Tied: the output layer is the raw embedding table (embedding_multiplier is applied to activations, not to it).
        var lmHead = new Linear(c.TieWordEmbeddings ? embedding : Read(FalconH1Tensors.LmHead), c.VocabSize, c.HiddenSize, null);
        return new ReferenceFalconH1(c, embedding, lmHead, Read(FalconH1Tensors.FinalNorm), layers);
    }

    private static double[] ReadTensor(TensorEntry entry)
    {
        var values = new float[entry.ElementCount];
        entry.ReadFloats(0, values);
        return Array.ConvertAll(values, v => (double)v);
    }

    public ReferenceState NewState(int batch)
    {
        var c = Config;
        var caches = new ReferenceLayerCache[c.NumHiddenLayers, batch];
        for (int l = 0; l < c.NumHiddenLayers; l++)
            for (int b = 0; b < batch; b++)
                caches[l, b] = new ReferenceLayerCache(c.ConvDim, c.MambaDConv - 1, c.MambaNHeads * c.MambaDHead * c.MambaDState);
        return new ReferenceState(batch, caches);
    }

    /// <summary>
    /// Runs new tokens <paramref name="ids"/> [batch, T] at <paramref name="positions"/> [batch, T] with the mask
    /// [batch, past + T] (1 = real, 0 = pad) and returns logits [batch, T, vocab]; the state moves on by T.
    /// </summary>
    public float[] Forward(ReferenceState state, long[] ids, long[] mask, long[] positions)
    {
        var c = Config;
        int batch = state.Batch, tokens = ids.Length / batch, total = mask.Length / batch, past = state.PastLength;
        if (ids.Length != batch * tokens || positions.Length != ids.Length || tokens == 0)
            throw new ArgumentException($"ids ({ids.Length}) and positions ({positions.Length}) must both be [batch {batch}, T >= 1]");
        if (mask.Length != batch * total || total != past + tokens)
            throw new ArgumentException($"mask covers {total} positions per row, expected past {past} + new {tokens}");

        var logits = new float[batch * tokens * c.VocabSize];
        for (int b = 0; b < batch; b++)
        {
            var rowMask = mask.AsSpan(b * total, total);
            var hidden = new double[tokens][];
            for (int t = 0; t < tokens; t++)
            {
                long id = ids[b * tokens + t];
                if (id < 0 || id >= c.VocabSize) throw new ArgumentOutOfRangeException(nameof(ids), $"token {id} outside the vocabulary");
                hidden[t] = _embedding.AsSpan((int)id * c.HiddenSize, c.HiddenSize).ToArray();
                Scale(hidden[t], c.EmbeddingMultiplier);
            }
            for (int l = 0; l < c.NumHiddenLayers; l++)
            {
                var w = _layers[l];
                var cache = state.Caches[l, b];
                // Token by token: a token's layer output needs only this layer's caches, which earlier tokens filled.
                for (int t = 0; t < tokens; t++)
                {
                    bool real = rowMask[past + t] != 0;
                    var h = hidden[t];
                    var u = RmsNorm(h, w.InputNorm, c.RmsNormEps);
                    var mamba = Mamba(w, cache, u, real);
                    var attention = Attention(w, cache, u, positions[b * tokens + t], rowMask[..(past + t + 1)]);
                    for (int i = 0; i < h.Length; i++) h[i] += mamba[i] + attention[i];
                    var feedForward = FeedForward(w, RmsNorm(h, w.PreFeedForwardNorm, c.RmsNormEps));
                    for (int i = 0; i < h.Length; i++) h[i] += feedForward[i];
                }
            }
            for (int t = 0; t < tokens; t++)
            {
                var row = _lmHead.Apply(RmsNorm(hidden[t], _finalNorm, c.RmsNormEps));
                var destination = logits.AsSpan((b * tokens + t) * c.VocabSize, c.VocabSize);
                for (int v = 0; v < row.Length; v++) destination[v] = (float)(row[v] * c.LmHeadMultiplier);
            }
        }
        state.PastLength = total;
        return logits;
    }

    /// <summary>One sequence [T] from the current state of a batch-1 state, mask all ones, positions past … past+T−1.</summary>
    public float[] ForwardSequence(ReferenceState state, ReadOnlySpan<long> ids)
    {
        var positions = new long[ids.Length];
        for (int i = 0; i < ids.Length; i++) positions[i] = state.PastLength + i;
        return Forward(state, ids.ToArray(), Enumerable.Repeat(1L, state.PastLength + ids.Length).ToArray(), positions);
    }

    /// <summary>
    /// falcon-h1.md §2.4 for one query token: k × key_multiplier after its Linear (bias included), RoPE on q
    /// and k, then softmax(q·kᵀ/√hd) over the visible keys (causal and mask = 1), o_proj, × attention_out.
    /// </summary>
    private double[] Attention(LayerWeights w, ReferenceLayerCache cache, double[] u, long position, ReadOnlySpan<long> visibleMask)
    {
        var c = Config;
        int hd = c.HeadDim, headsPerKv = c.NumAttentionHeads / c.NumKeyValueHeads;
        var input = (double[])u.Clone();
        Scale(input, c.AttentionInMultiplier);
        var q = w.Query.Apply(input);
        var k = w.Key.Apply(input);
        Scale(k, c.KeyMultiplier);
        var v = w.Value.Apply(input);
        for (int head = 0; head < c.NumAttentionHeads; head++) Rotate(q.AsSpan(head * hd, hd), position);
        for (int head = 0; head < c.NumKeyValueHeads; head++) Rotate(k.AsSpan(head * hd, hd), position);
        cache.Keys.Add(k);
        cache.Values.Add(v);

        int keys = visibleMask.Length;
        var context = new double[c.QueryDim];
        var scores = new double[keys];
        double scale = 1.0 / Math.Sqrt(hd);
        for (int head = 0; head < c.NumAttentionHeads; head++)
        {
            int kvHead = head / headsPerKv;
            var query = q.AsSpan(head * hd, hd);
            double max = double.NegativeInfinity;
            for (int j = 0; j < keys; j++)
            {
                if (visibleMask[j] == 0) continue;
                var key = cache.Keys[j].AsSpan(kvHead * hd, hd);
                double dot = 0;
                for (int d = 0; d < hd; d++) dot += query[d] * key[d];
                scores[j] = dot * scale;
                max = Math.Max(max, scores[j]);
            }
            if (double.IsNegativeInfinity(max)) continue;   // a pad query with no visible key: output stays zero
            double sum = 0;
            for (int j = 0; j < keys; j++)
            {
                scores[j] = visibleMask[j] == 0 ? 0 : Math.Exp(scores[j] - max);
                sum += scores[j];
            }
            var output = context.AsSpan(head * hd, hd);
            for (int j = 0; j < keys; j++)
            {
                if (scores[j] == 0) continue;
                var value = cache.Values[j].AsSpan(kvHead * hd, hd);
                double p = scores[j] / sum;
                for (int d = 0; d < hd; d++) output[d] += p * value[d];
            }
        }
        var o = w.Output.Apply(context);
        Scale(o, c.AttentionOutMultiplier);
        return o;
    }

    /// <summary>rotate_half RoPE over the whole head: x' = x·cos + [−x₂, x₁]·sin, angle = position · inv_freq[i mod hd/2].</summary>
    private void Rotate(Span<double> x, long position)
    {
        int half = x.Length / 2;
        for (int i = 0; i < half; i++)
        {
            double angle = position * _inverseFrequencies[i], cos = Math.Cos(angle), sin = Math.Sin(angle);
            double first = x[i], second = x[i + half];
            x[i] = first * cos - second * sin;
            x[i + half] = second * cos + first * sin;
        }
    }

    /// <summary>falcon-h1.md §2.5 for one token, with the ABI's exact pads; returns the branch output × ssm_out_multiplier.</summary>
    private double[] Mamba(LayerWeights w, ReferenceLayerCache cache, double[] u, bool real)
    {
        var c = Config;
        int ds = c.MambaDSsm, gn = c.MambaNGroups * c.MambaDState, convDim = c.ConvDim, kernel = c.MambaDConv;
        int heads = c.MambaNHeads, headDim = c.MambaDHead, stateSize = c.MambaDState, headsPerGroup = heads / c.MambaNGroups;
        var m = c.SsmMultipliers;

        var input = real ? (double[])u.Clone() : new double[u.Length];
        Scale(input, c.SsmInMultiplier);
        var projected = w.InProj.Apply(input);   // bias inside the Linear, so the μP vector scales it too
        for (int r = 0; r < projected.Length; r++)
            projected[r] *= r < ds ? m[0] : r < 2 * ds ? m[1] : r < 2 * ds + gn ? m[2] : r < 2 * ds + 2 * gn ? m[3] : m[4];
        var gate = projected.AsSpan(0, ds);
        var rawConvInput = projected.AsSpan(ds, convDim);
        var rawDt = projected.AsSpan(ds + convDim, heads);
        if (!real) rawConvInput.Clear();

        // Causal depthwise conv: taps 0 … K−2 read the stored inputs (oldest first), tap K−1 the current one.
        var convolved = new double[convDim];
        int history = kernel - 1;
        for (int ch = 0; ch < convDim; ch++)
        {
            var taps = w.ConvWeight.AsSpan(ch * kernel, kernel);
            var stored = cache.ConvInputs.AsSpan(ch * history, history);
            double sum = w.ConvBias?[ch] ?? 0;
            for (int k = 0; k < history; k++) sum += taps[k] * stored[k];
            sum += taps[history] * rawConvInput[ch];
            convolved[ch] = real ? Silu(sum) : 0;
            stored[1..].CopyTo(stored);
            stored[history - 1] = rawConvInput[ch];
        }
        var x = convolved.AsSpan(0, ds);
        var bGroups = convolved.AsSpan(ds, gn);
        var cGroups = convolved.AsSpan(ds + gn, gn);

        var y = new double[ds];
        for (int h = 0; h < heads; h++)
        {
            double dt = Math.Clamp(Softplus(rawDt[h] + w.DtBias[h]), c.TimeStepLimit.Min, c.TimeStepLimit.Max);
            if (!real) dt = 0;   // dA = 1 and no input: the state stays exactly as it was
            double decay = Math.Exp(dt * w.A[h]);
            int g = h / headsPerGroup;
            var bVector = bGroups.Slice(g * stateSize, stateSize);
            var cVector = cGroups.Slice(g * stateSize, stateSize);
            for (int p = 0; p < headDim; p++)
            {
                double xp = x[h * headDim + p];
                var s = cache.Ssm.AsSpan((h * headDim + p) * stateSize, stateSize);
                double sum = 0;
                for (int n = 0; n < stateSize; n++)
                {
                    s[n] = decay * s[n] + dt * xp * bVector[n];
                    sum += cVector[n] * s[n];
                }
                y[h * headDim + p] = sum + w.D[h] * xp;
            }
        }

        var gated = new double[ds];
        if (w.MambaNorm is null)
        {
            for (int i = 0; i < ds; i++) gated[i] = y[i] * Silu(gate[i]);
        }
        else if (c.MambaNormBeforeGate)
        {
            var normalized = GroupRmsNorm(y, w.MambaNorm, c.MambaNGroups, c.RmsNormEps);
            for (int i = 0; i < ds; i++) gated[i] = normalized[i] * Silu(gate[i]);
        }
        else
        {
            for (int i = 0; i < ds; i++) gated[i] = y[i] * Silu(gate[i]);
            gated = GroupRmsNorm(gated, w.MambaNorm, c.MambaNGroups, c.RmsNormEps);
        }
        var output = w.OutProj.Apply(gated);
        Scale(output, c.SsmOutMultiplier);   // bias included: the multiplier is applied to the layer's output
        return output;
    }

    /// <summary>SwiGLU, μP inside: down( up(x) · SiLU(gate(x) · m_gate) ) · m_down, biases inside their Linears.</summary>
    private double[] FeedForward(LayerWeights w, double[] x)
    {
        var gate = w.Gate.Apply(x);
        var up = w.Up.Apply(x);
        for (int i = 0; i < up.Length; i++) up[i] *= Silu(gate[i] * Config.MlpMultipliers[0]);
        var down = w.Down.Apply(up);
        Scale(down, Config.MlpMultipliers[1]);
        return down;
    }

    private static double[] RmsNorm(double[] x, double[] weight, double eps) => GroupRmsNorm(x, weight, 1, eps);

    /// <summary>RMSNorm within <paramref name="groups"/> contiguous groups of equal width, then × weight.</summary>
    private static double[] GroupRmsNorm(double[] x, double[] weight, int groups, double eps)
    {
        var result = new double[x.Length];
        int width = x.Length / groups;
        for (int g = 0; g < groups; g++)
        {
            double squares = 0;
            for (int i = g * width; i < (g + 1) * width; i++) squares += x[i] * x[i];
            double inverse = 1.0 / Math.Sqrt(squares / width + eps);
            for (int i = g * width; i < (g + 1) * width; i++) result[i] = x[i] * inverse * weight[i];
        }
        return result;
    }

    private static void Scale(double[] values, double factor)
    {
        for (int i = 0; i < values.Length; i++) values[i] *= factor;
    }

    private static double Silu(double x) => x / (1 + Math.Exp(-x));

    /// <summary>torch's softplus (β = 1): linear above 20.</summary>
    private static double Softplus(double x) => x > 20 ? x : double.LogP1(Math.Exp(x));
}
