using FalconOnnx.Checkpoints;
using FalconOnnx.Export;
using FalconOnnx.Graphs.Blocks;
using FalconOnnx.Graphs.Quantization;
using FalconOnnx.Onnx;
using FalconOnnx.Models;

namespace FalconOnnx.Graphs;

/// <summary>
/// The checkpoint's tensors as graph initializers, with every μP multiplier folded into the weights where that
/// is exact in real arithmetic (falcon-h1.md §2, §5.1). Each fold is a scale of output rows of a Linear,
/// which equals scaling that Linear's output; a bias belongs to the Linear, so it is scaled by the
/// multipliers that HF applies after the Linear and not by those applied to its input.
/// </summary>
/// <param name="compute">Element type of the dense weights the activations meet (projections, embedding, layer norms
/// and Linear biases); the Mamba-2 mixer's own parameters stay float32, as its computation does.</param>
public sealed class FalconH1Weights(GraphBuilder g, Checkpoint checkpoint, PrecisionPolicy policy, QuantizationSettings quantization,
    ElementType compute = ElementType.Float)
{
    private readonly FalconH1Config _c = checkpoint.Config;

    /// <summary>The precision each weight got, by name (recorded in the manifest).</summary>
    public Dictionary<string, string> Precisions { get; } = new(StringComparer.Ordinal);

    /// <summary>The Linear weights kept float16 in a float32 graph (falcon_onnx.MatMulFp16, from the operator library).</summary>
    public List<string> HalfLinears { get; } = [];

    /// <summary>A weight the policy keeps float16 while the activations are float32 (an override in a quantized export).</summary>
    private bool IsHalfInFloatGraph(Precision precision) => precision == Precision.Fp16 && compute == ElementType.Float;

    private TensorEntry T(string name) => checkpoint[name];

    private TensorEntry L(int layer, string suffix) => checkpoint[FalconH1Tensors.Layer(layer, suffix)];

    private TensorEntry? OptionalL(int layer, string suffix) => checkpoint.Optional(FalconH1Tensors.Layer(layer, suffix));

    private Value Matrix(string name, params RowSource[] sources) => g.Initializer(name, new FoldedTensor(sources, transpose: true, type: compute));

    /// <summary>A vector the activations meet (norm weight, Linear bias): in the compute type.</summary>
    private Value TypedVector(string name, params RowSource[] sources) =>
        g.Initializer(name, new FoldedTensor(sources, transpose: false, [sources.Sum(s => s.Rows)], compute));

    /// <summary>A Linear layer's weight in the precision the policy gives its name.</summary>
    private LinearWeight Linear(string name, WeightKind kind, params RowSource[] sources)
    {
        var precision = policy.For(name, kind, (int)sources[0].Columns);
        Precisions[name] = precision.Name();
        if (IsHalfInFloatGraph(precision))
        {
            HalfLinears.Add(name);
            return new HalfLinear(g.Initializer(name, new FoldedTensor(sources, transpose: false, type: ElementType.Float16)));
        }
        if (!precision.IsQuantized()) return new DenseLinear(Matrix(name, sources));
        if (quantization.Custom(precision))
        {
            var interleaved = new QuantizedWeight(sources, quantization.Quantizer(precision), QuantizedLayout.Rows16);
            return new Rows16Linear(g.Initializer(name + ".quantized", interleaved.Packed), g.Initializer(name + ".scales", interleaved.Scales),
                interleaved.Columns, interleaved.Rows, precision.Bits());
        }
        var weight = new QuantizedWeight(sources, quantization.Quantizer(precision));
        return new QuantizedLinear(g.Initializer(name + ".quantized", weight.Packed), g.Initializer(name + ".scales", weight.Scales),
            weight.ZeroPoints is null ? null : g.Initializer(name + ".zero_points", weight.ZeroPoints),
            weight.Columns, weight.Rows, precision.Bits(), quantization.BlockSize, quantization.AccuracyLevel);
    }

    private Value Vector(string name, params RowSource[] sources) => g.Initializer(name, new FoldedTensor(sources, transpose: false, [sources.Sum(s => s.Rows)]));

    private static Func<int, double> Constant(double scale) => _ => scale;

    /// <summary>
    /// embedding_multiplier folded into the table: Gather then scale = scale then Gather. A quantized table is
    /// quantized along the hidden axis, so a gathered row dequantizes to the row the dense table holds.
    /// </summary>
    public EmbeddingWeight Embedding()
    {
        const string name = "model.embed_tokens.weight";
        var source = new RowSource(T(FalconH1Tensors.Embedding), Constant(_c.EmbeddingMultiplier));
        var precision = policy.For(name, WeightKind.Embedding, _c.HiddenSize);
        Precisions[name] = precision.Name();
        if (IsHalfInFloatGraph(precision)) return new HalfEmbedding(g.Initializer(name, new FoldedTensor([source], transpose: false, type: ElementType.Float16)));
        if (!precision.IsQuantized()) return new DenseEmbedding(g.Initializer(name, new FoldedTensor([source], transpose: false, type: compute)));
        var weight = new QuantizedWeight([source], quantization.Quantizer(precision), QuantizedLayout.Gather);
        return new QuantizedEmbedding(g.Initializer(name + ".quantized", weight.Packed), g.Initializer(name + ".scales", weight.Scales),
            weight.ZeroPoints is null ? null : g.Initializer(name + ".zero_points", weight.ZeroPoints), precision.Bits(), quantization.BlockSize);
    }

    /// <summary>
    /// lm_head_multiplier folded into the output matrix. With tied embeddings the matrix is built from the
    /// embedding table again (with its own multiplier folded), so both stay exact, at the cost of a second copy.
    /// </summary>
    public LinearWeight LmHead()
    {
        var source = _c.TieWordEmbeddings ? T(FalconH1Tensors.Embedding) : T(FalconH1Tensors.LmHead);
        return Linear("lm_head.weight", WeightKind.LmHead, new RowSource(source, Constant(_c.LmHeadMultiplier)));
    }

    public Value FinalNorm() => TypedVector("model.final_layernorm.weight", new RowSource(T(FalconH1Tensors.FinalNorm)));

    public Value InputNorm(int i) => TypedVector($"model.layers.{i}.input_layernorm.weight", new RowSource(L(i, "input_layernorm.weight")));

    public Value PreFeedForwardNorm(int i) => TypedVector($"model.layers.{i}.pre_ff_layernorm.weight", new RowSource(L(i, "pre_ff_layernorm.weight")));

    /// <summary>
    /// q|k|v fused. attention_in_multiplier scales the input of all three (weights only, not biases);
    /// key_multiplier scales k's output (weight and bias); hd^-0.5, the score scale, scales q's output
    /// (RoPE is linear, so scaling q before the rotation is the same). attention_out_multiplier scales o.
    /// </summary>
    public AttentionWeights Attention(int i)
    {
        double input = _c.AttentionInMultiplier, key = _c.KeyMultiplier, scale = 1.0 / Math.Sqrt(_c.HeadDim);
        var qkv = Linear($"model.layers.{i}.self_attn.qkv_proj.weight", WeightKind.Linear,
            new RowSource(L(i, "self_attn.q_proj.weight"), Constant(input * scale)),
            new RowSource(L(i, "self_attn.k_proj.weight"), Constant(input * key)),
            new RowSource(L(i, "self_attn.v_proj.weight"), Constant(input)));
        var output = Linear($"model.layers.{i}.self_attn.o_proj.weight", WeightKind.Linear, new RowSource(L(i, "self_attn.o_proj.weight"), Constant(_c.AttentionOutMultiplier)));
        Value? qkvBias = null, outputBias = null;
        if (_c.AttentionBias)
        {
            qkvBias = TypedVector($"model.layers.{i}.self_attn.qkv_proj.bias",
                new RowSource(L(i, "self_attn.q_proj.bias"), Constant(scale)),
                new RowSource(L(i, "self_attn.k_proj.bias"), Constant(key)),
                new RowSource(L(i, "self_attn.v_proj.bias")));
            outputBias = TypedVector($"model.layers.{i}.self_attn.o_proj.bias", new RowSource(L(i, "self_attn.o_proj.bias"), Constant(_c.AttentionOutMultiplier)));
        }
        return new AttentionWeights(qkv, qkvBias, output, outputBias);
    }

    /// <summary>
    /// in_proj rows z | x | B | C | dt scaled by ssm_multipliers (the μP vector, applied to the output, so the
    /// bias too) and the weight also by ssm_in_multiplier (applied to the input). out_proj (weight and bias)
    /// by ssm_out_multiplier. A_log and D stay per head as stored.
    /// </summary>
    public Mamba2Weights Mamba(int i)
    {
        var mup = MupVector();
        double ssmIn = _c.SsmInMultiplier, ssmOut = _c.SsmOutMultiplier;
        string prefix = $"model.layers.{i}.mamba.";
        var inProj = Linear(prefix + "in_proj.weight", WeightKind.Linear, new RowSource(L(i, "mamba.in_proj.weight"), row => ssmIn * mup(row)));
        Value? inBias = OptionalL(i, "mamba.in_proj.bias") is { } ib ? TypedVector(prefix + "in_proj.bias", new RowSource(ib, mup)) : null;
        var convEntry = L(i, "mamba.conv1d.weight");
        var conv = g.Initializer(prefix + "conv1d.weight", new FoldedTensor([new RowSource(convEntry)], transpose: false, convEntry.Shape));
        Value? convBias = OptionalL(i, "mamba.conv1d.bias") is { } cb ? Vector(prefix + "conv1d.bias", new RowSource(cb)) : null;
        var dtBias = Vector(prefix + "dt_bias", new RowSource(L(i, "mamba.dt_bias")));
        var aLog = Vector(prefix + "A_log", new RowSource(L(i, "mamba.A_log")));
        var d = Vector(prefix + "D", new RowSource(L(i, "mamba.D")));
        Value? norm = OptionalL(i, "mamba.norm.weight") is { } nw ? Vector(prefix + "norm.weight", new RowSource(nw)) : null;
        var outProj = Linear(prefix + "out_proj.weight", WeightKind.Linear, new RowSource(L(i, "mamba.out_proj.weight"), Constant(ssmOut)));
        Value? outBias = OptionalL(i, "mamba.out_proj.bias") is { } ob ? TypedVector(prefix + "out_proj.bias", new RowSource(ob, Constant(ssmOut))) : null;
        return new Mamba2Weights(inProj, inBias, conv, convBias, dtBias, aLog, d, norm, outProj, outBias);
    }

    /// <summary>gate|up fused: mlp_multipliers[0] scales the gate's output (inside the SiLU), [1] the down projection's.</summary>
    public SwiGluWeights FeedForward(int i)
    {
        double gate = _c.MlpMultipliers[0], down = _c.MlpMultipliers[1];
        string prefix = $"model.layers.{i}.feed_forward.";
        var gateUp = Linear(prefix + "gate_up_proj.weight", WeightKind.Linear,
            new RowSource(L(i, "feed_forward.gate_proj.weight"), Constant(gate)),
            new RowSource(L(i, "feed_forward.up_proj.weight")));
        var downProj = Linear(prefix + "down_proj.weight", WeightKind.Linear, new RowSource(L(i, "feed_forward.down_proj.weight"), Constant(down)));
        Value? gateUpBias = null, downBias = null;
        if (_c.MlpBias)
        {
            gateUpBias = TypedVector(prefix + "gate_up_proj.bias",
                new RowSource(L(i, "feed_forward.gate_proj.bias"), Constant(gate)),
                new RowSource(L(i, "feed_forward.up_proj.bias")));
            downBias = TypedVector(prefix + "down_proj.bias", new RowSource(L(i, "feed_forward.down_proj.bias"), Constant(down)));
        }
        return new SwiGluWeights(gateUp, gateUpBias, downProj, downBias);
    }

    /// <summary>The μP vector over the in_proj rows z | x | B | C | dt (falcon-h1.md §2.5 step 4).</summary>
    private Func<int, double> MupVector()
    {
        int ds = _c.MambaDSsm, gn = _c.MambaNGroups * _c.MambaDState;
        var m = _c.SsmMultipliers;
        return row => row < ds ? m[0] : row < 2 * ds ? m[1] : row < 2 * ds + gn ? m[2] : row < 2 * ds + 2 * gn ? m[3] : m[4];
    }

}
