using FalconOnnx.Export;
using FalconOnnx.Tests.Support;

namespace FalconOnnx.Tests.Export;

/// <summary>The exported tiny-a against the logits of Hugging Face's FalconH1ForCausalLM (golden/tiny-a).</summary>
[TestFixture(SsmLowering.Ort)]
[TestFixture(SsmLowering.Onnx)]
[TestFixture(SsmLowering.Custom)]
public sealed class GoldenTinyATests(SsmLowering ssm)
{
    private const double Tolerance = 1e-4;
    private string _folder = "";

    [OneTimeSetUp]
    public void ExportOnce()
    {
        _folder = TestPaths.NewTemp("tiny-a-" + ExportOptions.Name(ssm));
        FalconH1Exporter.Export(TestPaths.TinyA, _folder, new ExportOptions { Ssm = ssm });
    }

    [OneTimeTearDown]
    public void Remove() => Directory.Delete(_folder, recursive: true);

    [Test]
    public void Prefill_MatchesHuggingFaceLogits()
    {
        var ids = Npy.Load<long>(TestPaths.Expected("prefill_input_ids"));
        var expected = Npy.Load<float>(TestPaths.Expected("prefill_logits"));
        using var model = new OnnxStepper(_folder);
        var logits = model.RunSequence(model.NewState(1), ids.Data);
        double difference = Compare.MaxAbs(logits, expected.Data);
        TestContext.Out.WriteLine($"prefill max abs difference: {difference:E2}");
        Assert.That(difference, Is.LessThanOrEqualTo(Tolerance));
    }

    [Test]
    public void LeftPaddedBatch_MatchesHuggingFaceWhereMaskIsOne()
    {
        var ids = Npy.Load<long>(TestPaths.Expected("batch_input_ids"));
        var mask = Npy.Load<long>(TestPaths.Expected("batch_attention_mask"));
        var positions = Npy.Load<long>(TestPaths.Expected("batch_position_ids"));
        var expected = Npy.Load<float>(TestPaths.Expected("batch_logits"));
        var alone = Npy.Load<float>(TestPaths.Expected("batch_logits_rows_run_alone"));
        using var model = new OnnxStepper(_folder);
        var logits = model.Run(model.NewState(2), ids.Data, mask.Data, positions.Data);
        int vocab = model.Dims.VocabSize, length = (int)ids.Shape[1];
        double worst = 0, worstAlone = 0;
        for (int b = 0; b < 2; b++)
            for (int t = 0; t < length; t++)
            {
                if (mask.Data[b * length + t] == 0) continue;
                var got = logits.AsSpan((b * length + t) * vocab, vocab);
                worst = Math.Max(worst, Compare.MaxAbs(got, expected.Row(b, t)));
                worstAlone = Math.Max(worstAlone, Compare.MaxAbs(got, alone.Row(b, t)));
            }
        TestContext.Out.WriteLine($"batch max abs difference: {worst:E2} (HF padded), {worstAlone:E2} (rows alone)");
        Assert.Multiple(() =>
        {
            Assert.That(worst, Is.LessThanOrEqualTo(Tolerance), "against HF's padded batch");
            Assert.That(worstAlone, Is.LessThanOrEqualTo(Tolerance), "against each row run alone");
            Assert.That(logits.All(float.IsFinite), Is.True, "pad positions must not produce NaN or infinity");
        });
    }

    [Test]
    public void GreedyGenerationWithCache_MatchesEveryStepAndToken()
    {
        using var model = new OnnxStepper(_folder);
        int vocab = model.Dims.VocabSize;
        var state = model.NewState(1);
        var (generated, worst) = GoldenGeneration.Replay(ids => model.RunSequence(state, ids), vocab);
        TestContext.Out.WriteLine($"generation: max abs step-logit difference {worst:E2}");
        Assert.Multiple(() =>
        {
            Assert.That(generated, Is.EqualTo(GoldenGeneration.ExpectedIds));
            Assert.That(worst, Is.LessThanOrEqualTo(Tolerance));
        });
    }
}
