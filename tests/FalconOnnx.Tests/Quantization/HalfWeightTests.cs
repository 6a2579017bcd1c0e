using FalconOnnx.Export;
using FalconOnnx.Models;
using FalconOnnx.Runtime;
using FalconOnnx.Runtime.Generation;
using FalconOnnx.Tests.Support;

namespace FalconOnnx.Tests.Quantization;

/// <summary>
/// fp16 weights in a quantized export (<c>--tensor-precision NAME=fp16</c>): Linear weights through
/// falcon_onnx.MatMulFp16, the embedding through Gather and Cast, activations float32. The accuracy they buy for
/// int8 is measured in <see cref="QuantizedExportTests"/>.
/// </summary>
public sealed class HalfWeightTests
{
    private static readonly string[] HalfVocabulary = ["lm_head.weight=fp16", "model.embed_tokens.weight=fp16"];

    private string _checkpoint = "", _allHalf = "", _halfVocabulary = "";
    private CheckpointVariant _variant = null!;

    [OneTimeSetUp]
    public void Export()
    {
        // Tied embeddings: the one checkpoint table becomes the float16 gather table and, with the lm_head multiplier
        // folded, the float16 lm_head.
        _variant = VariantCheckpoints.Named("tied-embeddings");
        _checkpoint = TestPaths.NewTemp("half-tied");
        VariantCheckpoints.Write(_variant, _checkpoint);
        _allHalf = TestPaths.NewTemp("half-all");
        FalconH1Exporter.Export(_checkpoint, _allHalf, new ExportOptions { Precision = Precision.Int8, TensorPrecisions = ["*=fp16"] });
        _halfVocabulary = TestPaths.NewTemp("half-vocabulary");
        FalconH1Exporter.Export(_checkpoint, _halfVocabulary, new ExportOptions { Precision = Precision.Int8, TensorPrecisions = HalfVocabulary });
    }

    [OneTimeTearDown]
    public void Remove()
    {
        foreach (string folder in new[] { _checkpoint, _allHalf, _halfVocabulary })
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
    }

    private long[] Ids() => Enumerable.Range(0, 24).Select(i => (long)((i * 37 + 5) % (_variant.Vocab - 16) + 16)).ToArray();

    private float[] ReferenceLogits(long[] ids)
    {
        var reference = ReferenceFalconH1.Load(_checkpoint);
        return reference.Forward(reference.NewState(1), ids, Enumerable.Repeat(1L, ids.Length).ToArray(), Enumerable.Range(0, ids.Length).Select(i => (long)i).ToArray());
    }

    [Test]
    public void EveryWeightInFp16_MatchesTheReference_WithinFloat16Rounding()
    {
        // Every Linear (in_proj, out_proj, qkv, o, gate_up, down, lm_head: widths from 64 to 256, none a multiple of the
        // kernel's tile) goes through MatMulFp16, so this checks the operator inside ONNX Runtime on all of them.
        using var model = FalconModel.Load(_allHalf, new FalconModelOptions { IntraOpThreads = 2 });
        var weights = model.Manifest.Options.Quantization!.Weights;
        var ids = Ids();
        var expected = ReferenceLogits(ids);
        using var state = model.CreateState(1, 32);
        var logits = state.ForwardEveryPosition(ids, Enumerable.Repeat(1L, ids.Length).ToArray(), ids.Length).ToArray();
        double worst = Compare.MaxAbs(logits, expected), range = expected.Max() - expected.Min();
        TestContext.Out.WriteLine($"every weight fp16: max abs difference {worst:E2} over a logit range of {range:0.00}");
        Assert.Multiple(() =>
        {
            Assert.That(weights.Values.Distinct(), Is.EqualTo(new[] { "fp16" }), "every quantizable weight took the override");
            Assert.That(File.Exists(Path.Combine(_allHalf, model.Manifest.CustomOpsLibrary!)), Is.True, "the folder carries the operator library");
            Assert.That(model.Manifest.Options.Quantization.Method, Does.Contain("MatMulFp16"));
            // float16 keeps 11 significant bits (relative rounding 2^-12): far inside int8's error (about 1% of the range here).
            Assert.That(worst, Is.LessThan(2e-3 * range));
        });
    }

    [Test]
    public void HalfVocabulary_GeneratesTheSameTokens_InTheRuntimeAndInGenAi()
    {
        var prompt = Ids()[..10].Select(id => (int)id).ToArray();
        int[] runtimeTokens;
        using (var model = FalconModel.Load(_halfVocabulary, new FalconModelOptions { IntraOpThreads = 2 }))
        using (var generator = new Generator(model, new GeneratorOptions { Capacity = 64, PrefillChunk = 4 }))
        {
            var weights = model.Manifest.Options.Quantization!.Weights;
            Assert.That(weights["lm_head.weight"], Is.EqualTo("fp16"));
            Assert.That(weights["model.embed_tokens.weight"], Is.EqualTo("fp16"));
            Assert.That(weights.Where(w => w.Key.StartsWith("model.layers.", StringComparison.Ordinal)).Select(w => w.Value).Distinct(), Is.EqualTo(new[] { "int8" }));
            generator.Append(prompt);
            runtimeTokens = generator.Generate(GenerationOptions.Greedy with { MaxNewTokens = 12, StopTokens = [] }).ToArray();
        }
        Assert.That(GenAiGreedy.Generate(_halfVocabulary, prompt, runtimeTokens.Length), Is.EqualTo(runtimeTokens));
    }

    [Test]
    public void HalfLinear_ForCuda_IsRefusedAndNothingWritten()
    {
        string output = TestPaths.NewTemp("half-cuda");
        var (exit, _, stderr) = CliRunner.Run("export", "-i", TestPaths.TinyA, "-o", output, "--precision", "int8", "--ep", "cuda",
            "--tensor-precision", "lm_head.weight=fp16");
        Assert.Multiple(() =>
        {
            Assert.That(exit, Is.Not.EqualTo(0));
            Assert.That(stderr.Trim(), Does.StartWith("error: --tensor-precision: lm_head.weight in fp16").And.Contain("CPU kernel only"));
            Assert.That(stderr.Trim().Split('\n'), Has.Length.EqualTo(1));
            Assert.That(Directory.Exists(output), Is.False, "nothing written");
        });
    }

    [TestCase("lm_head.weight=bf16", "mixes bf16 into a int8 export")]
    [TestCase("lm_head.weight", "is not pattern=precision")]
    [TestCase("lm_head.weight=fp8", "'fp8'")]
    public void BadOverride_IsRefusedAndNothingWritten(string entry, string message)
    {
        string output = TestPaths.NewTemp("bad-override");
        var (exit, _, stderr) = CliRunner.Run("export", "-i", TestPaths.TinyA, "-o", output, "--precision", "int8", "--tensor-precision", entry);
        Assert.Multiple(() =>
        {
            Assert.That(exit, Is.Not.EqualTo(0));
            Assert.That(stderr, Does.Contain(message));
            Assert.That(Directory.Exists(output), Is.False, "nothing written");
        });
    }

    [Test]
    public void Policy_FirstMatchingOverrideWins_ThenTheDefaults()
    {
        var policy = new PrecisionPolicy(Precision.Int4, ["lm_head.weight=fp16", "*.mamba.*=int8", "*=int4"]);
        Assert.Multiple(() =>
        {
            Assert.That(policy.For("lm_head.weight", WeightKind.LmHead, 1024), Is.EqualTo(Precision.Fp16));
            Assert.That(policy.For("model.layers.3.mamba.in_proj.weight", WeightKind.Linear, 1024), Is.EqualTo(Precision.Int8));
            Assert.That(policy.For("model.embed_tokens.weight", WeightKind.Embedding, 1024), Is.EqualTo(Precision.Int4));
            Assert.That(new PrecisionPolicy(Precision.Int4).For("model.embed_tokens.weight", WeightKind.Embedding, 1024), Is.EqualTo(Precision.Int8));
            Assert.That(new PrecisionPolicy(Precision.Int4).For("model.layers.0.feed_forward.down_proj.weight", WeightKind.Linear, 128), Is.EqualTo(Precision.Int8));
        });
    }
}
