using FalconOnnx.Export;
using FalconOnnx.Runtime;
using FalconOnnx.Runtime.Generation;
using FalconOnnx.Tests.Support;
using Microsoft.ML.OnnxRuntime;

namespace FalconOnnx.Tests.Export;

/// <summary>
/// An export with <c>--logits last</c>: the graph runs lm_head on the last position only, and every call still gives
/// Hugging Face's logits for that position, for one sequence, a left-padded batch and a prompt fed in chunks.
/// </summary>
public sealed class LastPositionLogitsTests
{
    private const double Tolerance = 1e-4;
    private string _folder = "";

    [OneTimeSetUp]
    public void ExportOnce()
    {
        _folder = TestPaths.NewTemp("tiny-a-last-logits");
        FalconH1Exporter.Export(TestPaths.TinyA, _folder, new ExportOptions { LastPositionLogits = true });
    }

    [OneTimeTearDown]
    public void Remove() => Directory.Delete(_folder, recursive: true);

    [Test]
    public void Graph_DeclaresOnePositionOfLogits_AndTheManifestSaysSo()
    {
        using var session = new InferenceSession(Path.Combine(_folder, "model.onnx"));
        var logits = session.OutputMetadata["logits"];
        Assert.Multiple(() =>
        {
            Assert.That(ModelManifest.Load(_folder).Graph.Logits, Is.EqualTo("last"));
            Assert.That(logits.Dimensions[1..], Is.EqualTo(new[] { 1, ModelManifest.Load(_folder).Dimensions.VocabSize }));
        });
    }

    [Test]
    public void Prefill_LastPosition_MatchesHuggingFace([Values(1, 3, 64)] int chunk)
    {
        var ids = Npy.Load<long>(TestPaths.Expected("prefill_input_ids"));
        var expected = Npy.Load<float>(TestPaths.Expected("prefill_logits"));
        int length = (int)ids.Shape[1];
        using var model = FalconModel.Load(_folder, new FalconModelOptions { IntraOpThreads = 1 });
        using var state = model.CreateState(1, length, chunk);
        var real = Enumerable.Repeat(1L, length).ToArray();
        float[] logits = [];
        for (int start = 0; start < length; start += chunk)
        {
            int count = Math.Min(chunk, length - start);
            logits = state.Forward(ids.Data.AsSpan(start, count), real.AsSpan(start, count), count).ToArray();
        }
        double difference = Compare.MaxAbs(logits, expected.Row(0, length - 1));
        TestContext.Out.WriteLine($"last-position max abs difference, chunks of {chunk}: {difference:E2}");
        Assert.That(difference, Is.LessThanOrEqualTo(Tolerance));
    }

    [Test]
    public void LeftPaddedBatch_EveryRowsLastToken_MatchesHuggingFace()
    {
        var ids = Npy.Load<long>(TestPaths.Expected("batch_input_ids"));
        var mask = Npy.Load<long>(TestPaths.Expected("batch_attention_mask"));
        var expected = Npy.Load<float>(TestPaths.Expected("batch_logits"));
        int length = (int)ids.Shape[1];
        using var model = FalconModel.Load(_folder, new FalconModelOptions { IntraOpThreads = 1 });
        using var state = model.CreateState(2, length);
        var logits = state.Forward(ids.Data, mask.Data, length).ToArray();
        int vocab = model.Dimensions.VocabSize;
        double worst = Enumerable.Range(0, 2).Max(b => Compare.MaxAbs(logits.AsSpan(b * vocab, vocab), expected.Row(b, length - 1)));
        TestContext.Out.WriteLine($"batch last-position max abs difference: {worst:E2}");
        Assert.That(worst, Is.LessThanOrEqualTo(Tolerance));
    }

    [Test]
    public void Generator_GivesTheGoldenGreedyTokens()
    {
        using var model = FalconModel.Load(_folder, new FalconModelOptions { IntraOpThreads = 1 });
        using var generator = new Generator(model, new GeneratorOptions { Capacity = 64, PrefillChunk = 4 });
        generator.Append(TinyAExports.PromptIds);
        var golden = TinyAExports.GoldenNewIds;
        Assert.That(generator.Generate(GenerationOptions.Greedy with { MaxNewTokens = golden.Length }).ToArray(), Is.EqualTo(golden));
    }

    [Test]
    public void Eval_OfALastLogitsExport_SaysToExportEveryPosition()
    {
        var (exit, _, stderr) = CliRunner.Run("eval", "--reference", TinyAExports.Get(), "--candidate", _folder, "--sequences", "1", "--sequence-length", "8");
        Assert.Multiple(() =>
        {
            Assert.That(exit, Is.Not.EqualTo(0));
            Assert.That(stderr.Trim().Split('\n'), Has.Length.EqualTo(1), stderr);
            Assert.That(stderr, Does.Contain(_folder).And.Contain("--logits all"));
        });
    }

    [Test]
    public void ExportCommand_UnknownLogitsValue_IsRefusedBeforeWriting()
    {
        string output = TestPaths.NewTemp("bad-logits");
        var (exit, _, stderr) = CliRunner.Run("export", "-i", TestPaths.TinyA, "-o", output, "--logits", "first");
        Assert.Multiple(() =>
        {
            Assert.That(exit, Is.Not.EqualTo(0));
            Assert.That(stderr, Does.Contain("first"));
            Assert.That(Directory.Exists(output), Is.False);
        });
    }
}
