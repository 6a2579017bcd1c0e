using FalconOnnx.Onnx;

namespace FalconOnnx.Graphs.Blocks;

/// <summary>q|k|v fused into one [hidden, q + 2·kv] matrix; scale, attention_in and key multipliers folded in.</summary>
public sealed record AttentionWeights(Value Qkv, Value? QkvBias, Value Output, Value? OutputBias);

/// <summary>The cache of one layer: past inputs and the names of the present outputs.</summary>
public sealed record KvCache(Value PastKey, Value PastValue, string PresentKeyName, string PresentValueName);

/// <summary>Geometry of grouped-query attention.</summary>
public sealed record AttentionShape(int Heads, int KeyValueHeads, int HeadDim);

/// <summary>
/// Causal grouped-query attention with a concatenated KV cache, in standard operators. Query heads of one
/// KV head are contiguous, so the queries are viewed as [batch, kv_heads, group·seq, head_dim] and
/// multiplied with the unexpanded keys: no copy of K or V per query head.
/// </summary>
public static class Attention
{
    public static Value Build(GraphBuilder g, AttentionWeights w, AttentionShape s, Value x, KvCache cache,
        Rope rope, Value attentionBias, out Value presentKey, out Value presentValue)
    {
        int q = s.Heads * s.HeadDim, kv = s.KeyValueHeads * s.HeadDim;
        var qkv = g.Split(Linear.Build(g, x, w.Qkv, w.QkvBias), -1, q, kv, kv);
        var query = rope.Apply(g, Heads(g, qkv[0], s.Heads, s.HeadDim), s.HeadDim);
        var key = rope.Apply(g, Heads(g, qkv[1], s.KeyValueHeads, s.HeadDim), s.HeadDim);
        var value = Heads(g, qkv[2], s.KeyValueHeads, s.HeadDim);

        presentKey = g.Output(g.Concat(2, cache.PastKey, key), cache.PresentKeyName);
        presentValue = g.Output(g.Concat(2, cache.PastValue, value), cache.PresentValueName);

        // hd^-0.5 is folded into the query weights, so scores need no scaling here.
        var groupedQuery = g.Reshape(query, 0, s.KeyValueHeads, -1, s.HeadDim);
        var scores = g.Reshape(g.MatMul(groupedQuery, g.Transpose(presentKey, 0, 1, 3, 2)), 0, s.Heads, -1, 0);
        var probabilities = g.Softmax(g.Add(scores, attentionBias));
        var context = g.MatMul(g.Reshape(probabilities, 0, s.KeyValueHeads, -1, 0), presentValue);
        context = g.Transpose(g.Reshape(context, 0, s.Heads, -1, s.HeadDim), 0, 2, 1, 3);
        return Linear.Build(g, g.Reshape(context, 0, 0, q), w.Output, w.OutputBias);
    }

    /// <summary>[batch, seq, heads·hd] → [batch, heads, seq, hd].</summary>
    private static Value Heads(GraphBuilder g, Value x, int heads, int headDim)
        => g.Transpose(g.Reshape(x, 0, 0, heads, headDim), 0, 2, 1, 3);

    /// <summary>
    /// The additive mask [batch, 1, seq, total]: 0 where a query may see a key (key position ≤ query position
    /// and key not padding), the float minimum elsewhere. The minimum is finite, so a padding query that sees
    /// no key gets a uniform softmax instead of NaN (a NaN would reach real tokens through 0 · NaN).
    /// </summary>
    public static Value Bias(GraphBuilder g, Value attentionMask, Value newTokens, Value totalTokens)
    {
        var one = g.ScalarInt64(1);
        var total = g.Squeeze(totalTokens, 0);
        var keyPositions = g.Range(g.ScalarInt64(0), total, one);
        var queryPositions = g.Range(g.Squeeze(g.Sub(totalTokens, newTokens), 0), total, one);
        var causal = g.LessOrEqual(g.Unsqueeze(keyPositions, 0), g.Unsqueeze(queryPositions, 1));
        var notPadding = g.Unsqueeze(g.Cast(attentionMask, ElementType.Bool), 1, 2);
        return g.Where(g.And(causal, notPadding), g.Scalar(0f), g.Scalar(float.MinValue));
    }
}
