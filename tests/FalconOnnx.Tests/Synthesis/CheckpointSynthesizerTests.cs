using FalconOnnx.Checkpoints;
using FalconOnnx.Export;
using FalconOnnx.Synthesis;
using FalconOnnx.Tests.Support;

namespace FalconOnnx.Tests.Synthesis;

public sealed class CheckpointSynthesizerTests
{
    private readonly TempFolders _temp = new();

    [TearDown]
    public void Remove() => _temp.RemoveAll();

    private string Temp(string name) => _temp.New(name);

    private string Synthesize(ulong seed, CheckpointDType dtype = CheckpointDType.BF16, SynthPreset? preset = null)
    {
        string folder = Temp($"synth-{seed}-{dtype}");
        CheckpointSynthesizer.Synthesize(preset ?? SynthPresets.Tiny, seed, folder, dtype);
        return folder;
    }

    [TestCase(CheckpointDType.BF16)]
    [TestCase(CheckpointDType.F32)]
    public void Synth_Tiny_OpensAsValidCheckpoint(CheckpointDType dtype)
    {
        string folder = Synthesize(1, dtype);
        using var checkpoint = Checkpoint.Open(folder);
        var c = checkpoint.Config;
        var p = SynthPresets.Tiny;
        Assert.Multiple(() =>
        {
            Assert.That(checkpoint.Tensors, Has.Count.EqualTo(2 * 17 + 3));
            Assert.That(checkpoint.Tensors.Values.Select(t => t.DType), Is.All.EqualTo(dtype));
            Assert.That((c.VocabSize, c.HiddenSize, c.NumHiddenLayers, c.NumAttentionHeads, c.NumKeyValueHeads, c.HeadDim),
                Is.EqualTo((p.VocabSize, p.HiddenSize, p.NumHiddenLayers, p.NumAttentionHeads, p.NumKeyValueHeads, p.HeadDim)));
            Assert.That((c.MambaDSsm, c.MambaNHeads, c.MambaDHead, c.MambaDState, c.MambaNGroups, c.MambaChunkSize),
                Is.EqualTo((128, 8, 16, 16, 1, 16)));
            Assert.That((c.MambaRmsNorm, c.MambaNormBeforeGate, c.TieWordEmbeddings, c.RopeTheta), Is.EqualTo((true, false, false, 1e11)));
            Assert.That((c.PadTokenId, c.BosTokenId, c.EosTokenIds.Single()), Is.EqualTo((0, 1, 11)));
            Assert.That(c.Source["torch_dtype"]!.GetValue<string>(), Is.EqualTo(dtype == CheckpointDType.BF16 ? "bfloat16" : "float32"));
            foreach (string file in FalconH1Exporter.TokenizerFiles.Where(f => f != "chat_template.jinja"))
                Assert.That(File.Exists(Path.Combine(folder, file)), file);
        });
    }

    [Test]
    public void Synth_SameSeed_GivesIdenticalBytes()
    {
        string a = Synthesize(7), b = Synthesize(7);
        foreach (string file in Directory.EnumerateFiles(a).Select(f => Path.GetFileName(f)))
            Assert.That(File.ReadAllBytes(Path.Combine(b, file)), Is.EqualTo(File.ReadAllBytes(Path.Combine(a, file))), file);
    }

    [Test]
    public void Synth_OtherSeed_GivesOtherWeights()
    {
        string a = Synthesize(7), b = Synthesize(8);
        using var first = Checkpoint.Open(a);
        using var second = Checkpoint.Open(b);
        foreach (var (name, tensor) in first.Tensors)
            Assert.That(Floats(second[name]), Is.Not.EqualTo(Floats(tensor)), name);
    }

    [Test]
    public void Synth_ThreadCount_DoesNotChangeBytes()
    {
        // Embedding and lm_head of 8192 x 64 span eight random blocks each, so threads really split them.
        var preset = SynthPresets.Tiny with { VocabSize = 8192 };
        string serial = Temp("serial"), parallel = Temp("parallel");
        CheckpointSynthesizer.Synthesize(preset, 3, serial, CheckpointDType.BF16, false, null, maxDegreeOfParallelism: 1, CancellationToken.None);
        CheckpointSynthesizer.Synthesize(preset, 3, parallel, CheckpointDType.BF16, false, null, maxDegreeOfParallelism: 4, CancellationToken.None);
        Assert.That(File.ReadAllBytes(Path.Combine(parallel, Checkpoint.SingleFileName)),
            Is.EqualTo(File.ReadAllBytes(Path.Combine(serial, Checkpoint.SingleFileName))));
    }

    [Test]
    public void Synth_Fp32AndBf16_HoldTheSameDraws()
    {
        using var bf16 = Checkpoint.Open(Synthesize(5, CheckpointDType.BF16));
        using var fp32 = Checkpoint.Open(Synthesize(5, CheckpointDType.F32));
        foreach (var (name, tensor) in fp32.Tensors)
        {
            var wide = Floats(tensor);
            var rounded = new ushort[wide.Length];
            FloatConversion.SingleToBFloat16(wide, rounded);
            var expected = new float[wide.Length];
            FloatConversion.BFloat16ToSingle(rounded, expected);
            Assert.That(Floats(bf16[name]), Is.EqualTo(expected), name);
        }
    }

    [Test]
    public void Synth_Tiny_WeightsHaveTheDocumentedScales()
    {
        using var checkpoint = Checkpoint.Open(Synthesize(11, CheckpointDType.F32));
        var c = checkpoint.Config;
        float[] Layer(string suffix) => Floats(checkpoint[FalconH1Tensors.Layer(0, suffix)]);
        Assert.Multiple(() =>
        {
            AssertMoments(Floats(checkpoint[FalconH1Tensors.Embedding]), 0, 1 / c.EmbeddingMultiplier, "embedding");
            AssertMoments(Floats(checkpoint[FalconH1Tensors.LmHead]), 0, 1 / (Math.Sqrt(c.HiddenSize) * c.LmHeadMultiplier), "lm_head");
            AssertMoments(Layer("mamba.in_proj.weight"), 0, 0.02, "in_proj");
            AssertMoments(Layer("feed_forward.down_proj.weight"), 0, 0.02 / Math.Sqrt(2 * c.NumHiddenLayers), "down_proj");
            AssertMoments(Layer("input_layernorm.weight"), 1, 0.02, "input_layernorm", tolerance: 0.3);
            Assert.That(Layer("mamba.conv1d.weight"), Is.All.InRange(-0.5f, 0.5f), "conv1d in ±1/√4");
            Assert.That(Layer("mamba.A_log"), Is.All.InRange(0f, (float)Math.Log(16)), "A_log = ln U[1, 16]");
            var dt = Layer("mamba.dt_bias").Select(b => Math.Log(1 + Math.Exp(b)));
            Assert.That(dt, Is.All.InRange(0.001 * 0.999, 0.1 * 1.001), "softplus(dt_bias) in [0.001, 0.1]");
            Assert.That(Layer("mamba.D"), Is.All.InRange(0.9f, 1.1f), "D near 1");
        });
    }

    [Test]
    public void Synth_Tiny_ExportsAndRunsWithUnitScaleLogits()
    {
        string checkpoint = Synthesize(2);
        string exported = Temp("exported");
        FalconH1Exporter.Export(checkpoint, exported, new ExportOptions());
        using var model = new OnnxStepper(exported);
        long[] ids = [1, 40, 300, 17, 99, 255, 383, 2];
        var logits = model.RunSequence(model.NewState(1), ids);
        Assert.That(logits, Is.All.Matches<float>(float.IsFinite));
        double mean = logits.Average(v => (double)v), std = Math.Sqrt(logits.Average(v => (v - mean) * (v - mean)));
        Assert.That(std, Is.InRange(0.3, 3.0), "logits of a unit-RMS hidden state have unit spread by construction");
    }

    [Test]
    public void Synth_ExistingOutput_NeedsForce()
    {
        string folder = Synthesize(1);
        var error = Assert.Throws<FalconOnnxException>(() => CheckpointSynthesizer.Synthesize(SynthPresets.Tiny, 2, folder));
        Assert.That(error!.Message, Does.Contain(folder).And.Contain("--force").And.Not.Contain("\n"));
        CheckpointSynthesizer.Synthesize(SynthPresets.Tiny, 2, folder, force: true);
        Assert.That(File.ReadAllBytes(Path.Combine(folder, Checkpoint.SingleFileName)),
            Is.EqualTo(File.ReadAllBytes(Path.Combine(Synthesize(2), Checkpoint.SingleFileName))));
    }

    [Test]
    public void Synth_Cancelled_LeavesNothing()
    {
        string folder = Temp("cancelled");
        using var cancellation = new CancellationTokenSource();
        cancellation.Cancel();
        Assert.Catch<OperationCanceledException>(() =>
            CheckpointSynthesizer.Synthesize(SynthPresets.Tiny, 1, folder, cancellationToken: cancellation.Token));
        string parent = Path.GetDirectoryName(folder)!, name = Path.GetFileName(folder);
        Assert.That(Directory.EnumerateFileSystemEntries(parent).Select(Path.GetFileName).Where(e => e!.Contains(name)), Is.Empty);
    }

    [Test]
    public void Synth_Progress_ReachesTheFileSize()
    {
        string folder = Temp("progress");
        var reports = new List<SynthProgress>();
        CheckpointSynthesizer.Synthesize(SynthPresets.Tiny, 1, folder, progress: reports.Add);
        var last = reports[^1];
        using var checkpoint = Checkpoint.Open(folder);
        Assert.Multiple(() =>
        {
            Assert.That(reports.Select(r => r.BytesDone), Is.Ordered);
            Assert.That(last.BytesDone, Is.EqualTo(last.TotalBytes));
            Assert.That(last.TotalBytes, Is.EqualTo(checkpoint.Tensors.Values.Sum(t => t.ByteLength)));
            Assert.That(last.TensorsDone, Is.EqualTo(last.TensorCount).And.EqualTo(checkpoint.Tensors.Count));
        });
    }

    private static float[] Floats(TensorEntry tensor)
    {
        var values = new float[tensor.ElementCount];
        tensor.ReadFloats(0, values);
        return values;
    }

    private static void AssertMoments(float[] values, double mean, double std, string what, double tolerance = 0.1)
    {
        double m = values.Average(v => (double)v);
        double s = Math.Sqrt(values.Average(v => (v - m) * (v - m)));
        Assert.That(m, Is.EqualTo(mean).Within(3 * std / Math.Sqrt(values.Length) + 1e-3 * std), $"{what} mean");
        Assert.That(s, Is.EqualTo(std).Within(tolerance * std), $"{what} std");
    }
}
