using FalconOnnx.Checkpoints;
using FalconOnnx.Graphs.Blocks;
using FalconOnnx.Onnx;

namespace FalconOnnx.Graphs;

/// <summary>
/// The Falcon-H1 decoder (falcon-h1.md §2) with the inputs and outputs of model-abi.md. Every layer runs
/// attention and the Mamba-2 mixer on the same normalized input and adds both to the residual.
/// </summary>
public static class FalconH1Graph
{
    public const int Opset = 21;

    /// <param name="weights">Makes the initializers in the precision the export asks for.</param>
    /// <param name="compute">Activations and KV cache: float32, or float16/bfloat16 for CUDA exports. Mamba-2
    /// states and logits are float32 whatever it is.</param>
    /// <param name="fusions">Kernels that do the work of several nodes, where the export's runtime has them.</param>
    /// <param name="lastPositionLogits">Logits [batch, 1, vocab] of the last position (rows are left-padded, so it is
    /// every row's last token) instead of [batch, sequence, vocab].</param>
    public static GraphBuilder Build(Checkpoint checkpoint, IMamba2Core mamba, IAttentionCore attentionCore, Func<GraphBuilder, FalconH1Weights> weights,
        ElementType compute = ElementType.Float, bool lastPositionLogits = false, GraphFusions? fusions = null)
    {
        var c = checkpoint.Config;
        fusions ??= new GraphFusions();
        var g = new GraphBuilder("main");
        g.Import("", Opset);
        var w = weights(g);
        var attention = new AttentionShape(c.NumAttentionHeads, c.NumKeyValueHeads, c.HeadDim);
        var mixer = Mamba2Shape.From(c);

        var inputIds = g.Input("input_ids", ElementType.Int64, "batch_size", "sequence_length");
        var attentionMask = g.Input("attention_mask", ElementType.Int64, "batch_size", "total_sequence_length");
        var positionIds = g.Input("position_ids", ElementType.Int64, "batch_size", "sequence_length");
        var layers = Enumerable.Range(0, c.NumHiddenLayers).Select(i => LayerInputs(g, c, i, compute)).ToArray();

        var newTokens = g.ShapeOf(inputIds, 1);
        var totalTokens = g.ShapeOf(attentionMask, 1);
        var context = new AttentionContext(attentionCore.BuildRope(g, positionIds, c.HeadDim, c.RopeTheta, c.MaxPositionEmbeddings, compute),
            Attention.Bias(g, attentionMask, newTokens, totalTokens, compute), newTokens, totalTokens, g.ShapeOf(inputIds, 0), compute);
        var newTokenMask = g.Slice(attentionMask, g.Sub(totalTokens, newTokens), totalTokens, g.Constant(1L));
        var mambaMask = g.Unsqueeze(g.Cast(newTokenMask, ElementType.Float), -1);

        var h = w.Embedding().Lookup(g, inputIds);
        Value? feedForward = null;  // the previous layer's last branch, not yet added to the residual stream h
        for (int i = 0; i < c.NumHiddenLayers; i++)
        {
            using var scope = g.Scope($"layers.{i}");
            var (kv, state) = layers[i];
            (var u, h) = AddAndNorm(g, h, feedForward, w.InputNorm(i), c.RmsNormEps, compute, fusions.ResidualNorms);
            var m = Mamba2.Build(g, mamba, w.Mamba(i), mixer, u, mambaMask, state, out _, out _, compute);
            var a = Attention.Build(g, attentionCore, w.Attention(i), attention, u, kv, context);
            (var v, h) = AddAndNorm(g, h, g.Add(m, a), w.PreFeedForwardNorm(i), c.RmsNormEps, compute, fusions.ResidualNorms);
            feedForward = SwiGlu.Build(g, w.FeedForward(i), v, c.IntermediateSize, fusions.SwiGluKernel);
        }
        if (feedForward is not null) h = g.Add(h, feedForward);
        if (lastPositionLogits) h = g.Slice(h, axis: 1, start: -1, end: long.MaxValue);
        var logits = Linear.Build(g, RmsNorm.Build(g, h, w.FinalNorm(), c.RmsNormEps, compute), w.LmHead(), null);
        if (compute != ElementType.Float) logits = g.Cast(logits, ElementType.Float);
        g.ListOutputFirst(lastPositionLogits
            ? g.Output(logits, "logits", ElementType.Float, "batch_size", 1, c.VocabSize)
            : g.Output(logits, "logits", ElementType.Float, "batch_size", "sequence_length", c.VocabSize));
        AnnotatePresentOutputs(g, c, attentionCore.SharesKvBuffer, compute);
        return g;
    }

    /// <summary>h + branch and its RMSNorm; with no branch (the first layer), h and its RMSNorm.</summary>
    private static (Value Normalized, Value Residual) AddAndNorm(GraphBuilder g, Value h, Value? branch, Value weight, double eps,
        ElementType compute, bool fused)
    {
        if (branch is null) return (RmsNorm.Build(g, h, weight, eps, compute), h);
        if (fused) return RmsNorm.AfterResidual(g, branch, h, weight, eps);
        var sum = g.Add(h, branch);
        return (RmsNorm.Build(g, sum, weight, eps, compute), sum);
    }

    private static (KvCache, Mamba2State) LayerInputs(GraphBuilder g, FalconH1Config c, int i, ElementType kv)
    {
        var key = g.Input($"past_key_values.{i}.key", kv, "batch_size", c.NumKeyValueHeads, "past_sequence_length", c.HeadDim);
        var value = g.Input($"past_key_values.{i}.value", kv, "batch_size", c.NumKeyValueHeads, "past_sequence_length", c.HeadDim);
        var conv = g.Input($"past_key_values.{i}.conv_state", ElementType.Float, "batch_size", c.ConvDim, c.MambaDConv - 1);
        var recurrent = g.Input($"past_key_values.{i}.recurrent_state", ElementType.Float, "batch_size", c.MambaNHeads, c.MambaDState, c.MambaDHead);
        return (new KvCache(key, value, $"present.{i}.key", $"present.{i}.value"),
            new Mamba2State(conv, recurrent, $"present.{i}.conv_state", $"present.{i}.recurrent_state"));
    }

    /// <summary>Types and shapes of the present outputs, as model-abi.md declares them.</summary>
    private static void AnnotatePresentOutputs(GraphBuilder g, FalconH1Config c, bool sharedKv, ElementType kv)
    {
        // A shared KV buffer keeps its (maximum) length; otherwise present holds past + new tokens.
        string kvLength = sharedKv ? "present_sequence_length" : "total_sequence_length";
        foreach (var output in g.Outputs)
        {
            string name = output.Name;
            if (name.EndsWith(".key", StringComparison.Ordinal) || name.EndsWith(".value", StringComparison.Ordinal))
                g.Annotate(output, kv, "batch_size", c.NumKeyValueHeads, kvLength, c.HeadDim);
            else if (name.EndsWith(".conv_state", StringComparison.Ordinal))
                g.Annotate(output, ElementType.Float, "batch_size", c.ConvDim, c.MambaDConv - 1);
            else if (name.EndsWith(".recurrent_state", StringComparison.Ordinal))
                g.Annotate(output, ElementType.Float, "batch_size", c.MambaNHeads, c.MambaDState, c.MambaDHead);
        }
    }
}

/// <summary>Kernels that do the work of several nodes; each needs a runtime that has it.</summary>
/// <param name="ResidualNorms">Each residual Add and the RMSNorm after it as one
/// com.microsoft.SkipSimplifiedLayerNormalization (float32 graphs for ONNX Runtime): two kernels fewer per layer.</param>
/// <param name="SwiGluKernel">SwiGLU's Split, SiLU and Mul as one falcon_onnx.SwiGlu (CPU graphs that load FalconOnnx's
/// operator library anyway): two kernels fewer per layer.</param>
public sealed record GraphFusions(bool ResidualNorms = false, bool SwiGluKernel = false);
