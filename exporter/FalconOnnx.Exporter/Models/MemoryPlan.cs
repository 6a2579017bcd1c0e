using FalconOnnx.Checkpoints;
using FalconOnnx.Runtime;

namespace FalconOnnx.Models;

/// <summary>
/// What running a Falcon-H1 export needs, from its config alone (<see cref="Precisions"/> says how each precision
/// stores weights and computes):
/// <list type="bullet">
/// <item>weights: every tensor of the checkpoint at the precision's bytes (a tied lm_head is exported as its own
/// matrix, so it counts twice);</item>
/// <item>KV cache: layers × batch × context × 2 (key, value) × kv_heads × head_dim at the compute type;</item>
/// <item>states: layers × batch × (conv_dim × (d_conv − 1) + mamba_heads × d_state × mamba_head_dim) in float32;</item>
/// <item>activations, a rough bound for one prefill call of <see cref="PrefillChunk"/> tokens (the runtime's
/// default on the target, <see cref="DefaultPrefillChunk"/>): the logits [batch, chunk, vocab] ([batch, 1, vocab] for
/// an export with last-position logits), the attention probabilities [batch, heads, chunk, context] and three tensors
/// of the widest projection [batch, chunk, max(2·intermediate, in_proj rows, q+k+v)];</item>
/// <item>rotary tables: cos and sin [max_position_embeddings, head_dim / 2] at the compute type, which ONNX Runtime
/// computes once at load for GroupQueryAttention (the default attention; a concat export computes them per call);</item>
/// <item>folder: the weights plus the 64 KiB alignment of large tensors and the graph file (both measured).</item>
/// </list>
/// The memory needed is weights + rotary tables + KV + states + activations; ONNX Runtime's own arenas and the process come on top.
/// </summary>
public sealed record MemoryPlan
{
    /// <summary>Bytes of model.onnx per decoder layer and fixed (measured: 7B 459 KiB for 44 layers, 34B 87 KiB for 8).</summary>
    internal const long GraphBytesPerLayer = 11 << 10, GraphBytesFixed = 8 << 10;

    /// <summary>Alignment padding per tensor of 64 KiB or more (measured: 2.3 MiB over 7B's 398 such tensors, when small
    /// tensors still sat between large ones; the writer now puts large tensors first, so this is an upper estimate).</summary>
    internal const long PaddingPerLargeTensor = 8 << 10;

    public required FalconH1Config Config { get; init; }
    public required Precision Precision { get; init; }
    public required ExecutionTarget Target { get; init; }
    public required int Context { get; init; }
    public required int Batch { get; init; }
    public required int PrefillChunk { get; init; }
    public bool LastPositionLogits { get; init; }

    public required long Parameters { get; init; }
    public required long WeightBytes { get; init; }
    public required long KvBytes { get; init; }
    public required long StateBytes { get; init; }
    public required long ActivationBytes { get; init; }
    public required long RotaryTableBytes { get; init; }
    public required long FolderBytes { get; init; }

    public long TotalBytes => WeightBytes + RotaryTableBytes + KvBytes + StateBytes + ActivationBytes;

    /// <summary>KV cache bytes per token of context, all layers, one sequence.</summary>
    public long KvBytesPerToken => (long)Config.NumHiddenLayers * 2 * Config.KeyValueDim * Precisions.ComputeBytes(Precision, Target);

    /// <summary>Conv and recurrent state bytes of one sequence, all layers.</summary>
    public long StateBytesPerSequence => (long)Config.NumHiddenLayers * Precisions.StateBytes
        * ((long)Config.ConvDim * (Config.MambaDConv - 1) + (long)Config.MambaNHeads * Config.MambaDState * Config.MambaDHead);

    /// <summary>The runtime's prefill chunk on the target's execution provider.</summary>
    public static int DefaultPrefillChunk(ExecutionTarget target) =>
        FalconModel.DefaultPrefillChunk(target == ExecutionTarget.Cuda ? ExecutionProvider.Cuda : ExecutionProvider.Cpu);

    /// <param name="tensorPrecisions">The export's per-weight overrides (<c>--tensor-precision</c>), matched as the export
    /// matches them.</param>
    public static MemoryPlan Compute(FalconH1Config c, Precision precision, int context, int batch = 1,
        ExecutionTarget? target = null, int? prefillChunk = null, bool lastPositionLogits = false, IReadOnlyList<string>? tensorPrecisions = null)
    {
        if (context <= 0) throw new FalconOnnxException($"--context must be a positive number of tokens, got {context}");
        if (batch <= 0) throw new FalconOnnxException($"--batch must be positive, got {batch}");
        var ep = target ?? Precisions.DefaultTarget(precision);
        int chunk = Math.Min(prefillChunk ?? DefaultPrefillChunk(ep), context);
        var tensors = FalconH1Tensors.Expected(c);

        long parameters = 0, weights = 0;
        int largeTensors = 0;
        // The export's own rule per weight (an int4 export keeps some weights int8), with the same overrides.
        var policy = new Export.PrecisionPolicy(precision, tensorPrecisions);
        foreach (var (name, shape) in tensors)
        {
            long elements = shape.Aggregate(1L, (a, b) => a * b);
            parameters += elements;
            var kind = name == FalconH1Tensors.Embedding ? Export.WeightKind.Embedding : name == FalconH1Tensors.LmHead ? Export.WeightKind.LmHead : Export.WeightKind.Linear;
            long bytes = shape.Length == 2 ? Precisions.MatrixBytes(policy.For(FalconH1Tensors.ExportName(name), kind, (int)shape[1]), shape[0], shape[1]) : Precisions.OtherBytes(precision, elements);
            weights += bytes;
            if (bytes >= 64 << 10) largeTensors++;
        }
        if (c.TieWordEmbeddings)
        {
            weights += Precisions.MatrixBytes(policy.For(FalconH1Tensors.LmHead, Export.WeightKind.LmHead, c.HiddenSize), c.VocabSize, c.HiddenSize);
            largeTensors++;
        }

        int a = Precisions.ComputeBytes(precision, ep);
        long widest = Math.Max(2L * c.IntermediateSize, Math.Max(c.InProjDim, c.QueryDim + 2L * c.KeyValueDim));
        long logitRows = lastPositionLogits ? 1 : chunk;
        long activations = (long)batch * a * (logitRows * c.VocabSize + chunk * ((long)c.NumAttentionHeads * context + 3 * widest));

        var plan = new MemoryPlan
        {
            Config = c,
            Precision = precision,
            Target = ep,
            Context = context,
            Batch = batch,
            PrefillChunk = chunk,
            LastPositionLogits = lastPositionLogits,
            Parameters = parameters,
            WeightBytes = weights,
            KvBytes = 0,
            StateBytes = 0,
            ActivationBytes = activations,
            RotaryTableBytes = (long)c.MaxPositionEmbeddings * c.HeadDim * a,
            FolderBytes = weights + largeTensors * PaddingPerLargeTensor + GraphBytesFixed + c.NumHiddenLayers * GraphBytesPerLayer,
        };
        return plan with
        {
            KvBytes = plan.KvBytesPerToken * context * batch,
            StateBytes = plan.StateBytesPerSequence * batch,
        };
    }
}
