using FalconOnnx.Onnx;

namespace FalconOnnx.Graphs.Blocks;

/// <summary>q|k|v fused into one [hidden, q + 2·kv] matrix; scale, attention_in and key multipliers folded in.</summary>
public sealed record AttentionWeights(LinearWeight Qkv, Value? QkvBias, LinearWeight Output, Value? OutputBias);

/// <summary>The cache of one layer: past inputs and the names of the present outputs.</summary>
public sealed record KvCache(Value PastKey, Value PastValue, string PresentKeyName, string PresentValueName);

/// <summary>Geometry of grouped-query attention.</summary>
public sealed record AttentionShape(int Heads, int KeyValueHeads, int HeadDim)
{
    public int QueryWidth => Heads * HeadDim;
    public int KeyValueWidth => KeyValueHeads * HeadDim;
}

/// <summary>
/// What the whole graph shares for attention: RoPE tables and the additive mask (both in the compute type),
/// the lengths, and the compute type itself.
/// </summary>
public sealed record AttentionContext(Rope Rope, Value Bias, Value NewTokens, Value TotalTokens, Value BatchSize, ElementType Compute);

/// <summary>
/// How RoPE, the scores, softmax and KV cache are written; the projections around them are shared
/// (<see cref="Attention"/>). The projection arrives packed as [batch, seq, (heads + 2·kv_heads)·hd], q | k | v.
/// </summary>
public interface IAttentionCore
{
    string Name { get; }

    /// <summary>True when present KV is written into the past buffer (allocated once at the maximum length).</summary>
    bool SharesKvBuffer { get; }

    /// <summary>The rotary tables this core reads, built once per graph and shared by every layer.</summary>
    Rope BuildRope(GraphBuilder g, Value positionIds, int headDim, double theta, int maxPositions, ElementType compute);

    Value Build(GraphBuilder g, AttentionShape s, Value qkv, KvCache cache, AttentionContext context);
}

/// <summary>Causal grouped-query attention with RoPE (falcon-h1.md §2.4).</summary>
public static class Attention
{
    public static Value Build(GraphBuilder g, IAttentionCore core, AttentionWeights w, AttentionShape s, Value x, KvCache cache, AttentionContext context)
    {
        var output = core.Build(g, s, Linear.Build(g, x, w.Qkv, w.QkvBias), cache, context);
        return Linear.Build(g, output, w.Output, w.OutputBias);
    }

    /// <summary>
    /// The additive mask [batch, 1, seq, total]: 0 where a query may see a key (key position ≤ query position
    /// and key not padding), the float minimum elsewhere. The minimum is finite, so a padding query that sees
    /// no key gets a uniform softmax instead of NaN (a NaN would reach real tokens through 0 · NaN).
    /// </summary>
    public static Value Bias(GraphBuilder g, Value attentionMask, Value newTokens, Value totalTokens, ElementType compute = ElementType.Float)
    {
        var one = g.ScalarInt64(1);
        var total = g.Squeeze(totalTokens, 0);
        var keyPositions = g.Range(g.ScalarInt64(0), total, one);
        var queryPositions = g.Range(g.Squeeze(g.Sub(totalTokens, newTokens), 0), total, one);
        var causal = g.LessOrEqual(g.Unsqueeze(keyPositions, 0), g.Unsqueeze(queryPositions, 1));
        var notPadding = g.Unsqueeze(g.Cast(attentionMask, ElementType.Bool), 1, 2);
        // The type's own finite minimum: float.MinValue would overflow float16 to -inf.
        float minimum = compute == ElementType.Float16 ? -65504f : float.MinValue;
        return g.Where(g.And(causal, notPadding), g.Scalar(0f, compute), g.Scalar(minimum, compute));
    }
}

/// <summary>
/// Standard operators: present = Concat(past, new) (grows by the new tokens each call), scores by MatMul.
/// Query heads of one KV head are contiguous, so queries are viewed as [batch, kv_heads, group·seq, hd] and
/// multiplied with the unexpanded keys: no copy of K or V per query head.
/// </summary>
public sealed class ConcatAttentionCore : IAttentionCore
{
    public string Name => "concat";

    public bool SharesKvBuffer => false;

    public Rope BuildRope(GraphBuilder g, Value positionIds, int headDim, double theta, int maxPositions, ElementType compute)
        => Rope.PerToken(g, positionIds, headDim, theta, compute);

    public Value Build(GraphBuilder g, AttentionShape s, Value qkv, KvCache cache, AttentionContext context)
    {
        var parts = g.Split(qkv, -1, s.QueryWidth, s.KeyValueWidth, s.KeyValueWidth);
        var query = context.Rope.Apply(g, parts[0], s.Heads, s.HeadDim);
        var key = context.Rope.Apply(g, parts[1], s.KeyValueHeads, s.HeadDim);
        var value = parts[2];
        var presentKey = g.Output(g.Concat(2, cache.PastKey, Heads(g, key, s.KeyValueHeads, s.HeadDim)), cache.PresentKeyName);
        var presentValue = g.Output(g.Concat(2, cache.PastValue, Heads(g, value, s.KeyValueHeads, s.HeadDim)), cache.PresentValueName);

        // hd^-0.5 is folded into the query weights, so scores need no scaling here.
        var groupedQuery = g.Reshape(Heads(g, query, s.Heads, s.HeadDim), 0, s.KeyValueHeads, -1, s.HeadDim);
        var scores = g.Add(g.Reshape(g.MatMul(groupedQuery, g.Transpose(presentKey, 0, 1, 3, 2)), 0, s.Heads, -1, 0), context.Bias);
        // Softmax in float32 for 16-bit types, as Hugging Face's eager attention does.
        var probabilities = context.Compute == ElementType.Float ? g.Softmax(scores) : g.Cast(g.Softmax(g.Cast(scores, ElementType.Float)), context.Compute);
        var attended = g.MatMul(g.Reshape(probabilities, 0, s.KeyValueHeads, -1, 0), presentValue);
        attended = g.Transpose(g.Reshape(attended, 0, s.Heads, -1, s.HeadDim), 0, 2, 1, 3);
        return g.Reshape(attended, 0, 0, s.QueryWidth);
    }

    /// <summary>[batch, seq, heads·hd] → [batch, heads, seq, hd].</summary>
    private static Value Heads(GraphBuilder g, Value x, int heads, int headDim)
        => g.Transpose(g.Reshape(x, 0, 0, heads, headDim), 0, 2, 1, 3);
}

/// <summary>
/// com.microsoft.GroupQueryAttention: the KV cache may be one max-length buffer bound as both past and present
/// (written in place at the current length), and only the valid keys are read. Every row uses the batch's
/// total length (seqlens_k = total − 1); left padding is masked by the attention bias instead. It takes q | k | v
/// packed and rotates q and k itself (do_rotary), one node where a Split and two RotaryEmbedding nodes stood.
/// </summary>
public sealed class GroupQueryAttentionCore : IAttentionCore
{
    public string Name => "gqa";

    public bool SharesKvBuffer => true;

    /// <summary>
    /// GroupQueryAttention counts a token's position from the first slot of its row, padding included, so a left-padded
    /// row's positions are HF's position_ids plus its padding. RoPE scores depend only on the difference of two
    /// positions, so the shift changes no score (beyond rounding); position_ids is not read.
    /// </summary>
    public Rope BuildRope(GraphBuilder g, Value positionIds, int headDim, double theta, int maxPositions, ElementType compute)
        => Rope.ByPosition(g, maxPositions, headDim, theta, compute);

    public Value Build(GraphBuilder g, AttentionShape s, Value qkv, KvCache cache, AttentionContext context)
    {
        g.Import("com.microsoft", 1);
        var seqlens = g.Cast(g.Expand(g.Sub(context.TotalTokens, g.Constant(1L)), context.BatchSize), ElementType.Int32);
        var total = g.Cast(g.Squeeze(context.TotalTokens, 0), ElementType.Int32);
        var outputs = g.Node("GroupQueryAttention",
            [qkv, null, null, cache.PastKey, cache.PastValue, seqlens, total, context.Rope.Cos, context.Rope.Sin, null, context.Bias], 3,
            new Dictionary<string, object>
            {
                ["num_heads"] = (long)s.Heads,
                ["kv_num_heads"] = (long)s.KeyValueHeads,
                // hd^-0.5 is folded into the query weights.
                ["scale"] = 1.0f,
                ["do_rotary"] = 1L,
                ["rotary_interleaved"] = 0L,
            }, "com.microsoft");
        g.Output(outputs[1], cache.PresentKeyName);
        g.Output(outputs[2], cache.PresentValueName);
        return outputs[0];
    }
}
