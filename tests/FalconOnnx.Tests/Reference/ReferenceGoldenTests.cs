using FalconOnnx.Tests.Support;

namespace FalconOnnx.Tests.Reference;

/// <summary>
/// The plain C# reference (<see cref="ReferenceFalconH1"/>) against Hugging Face's golden tiny-a outputs: what
/// makes it trustworthy as the judge of exports of configs that HF never ran here.
/// </summary>
public sealed class ReferenceGoldenTests
{
    private const double Tolerance = 1e-4;
    private ReferenceFalconH1 _model = null!;

    [OneTimeSetUp]
    public void Load() => _model = ReferenceFalconH1.Load(TestPaths.TinyA);

    [Test]
    public void Reference_Prefill_MatchesHuggingFaceLogits()
    {
        var ids = Npy.Load<long>(TestPaths.Expected("prefill_input_ids"));
        var expected = Npy.Load<float>(TestPaths.Expected("prefill_logits"));
        var logits = _model.ForwardSequence(_model.NewState(1), ids.Data);
        double difference = Compare.MaxAbs(logits, expected.Data);
        TestContext.Out.WriteLine($"reference prefill max abs difference: {difference:E2}");
        Assert.That(difference, Is.LessThanOrEqualTo(Tolerance));
    }

    [Test]
    public void Reference_LeftPaddedBatch_MatchesHuggingFaceWhereMaskIsOne()
    {
        var ids = Npy.Load<long>(TestPaths.Expected("batch_input_ids"));
        var mask = Npy.Load<long>(TestPaths.Expected("batch_attention_mask"));
        var positions = Npy.Load<long>(TestPaths.Expected("batch_position_ids"));
        var expected = Npy.Load<float>(TestPaths.Expected("batch_logits"));
        var logits = _model.Forward(_model.NewState(2), ids.Data, mask.Data, positions.Data);
        int vocab = _model.Config.VocabSize, length = (int)ids.Shape[1];
        double worst = 0;
        for (int b = 0; b < 2; b++)
            for (int t = 0; t < length; t++)
                if (mask.Data[b * length + t] != 0)
                    worst = Math.Max(worst, Compare.MaxAbs(logits.AsSpan((b * length + t) * vocab, vocab), expected.Row(b, t)));
        TestContext.Out.WriteLine($"reference batch max abs difference: {worst:E2}");
        Assert.Multiple(() =>
        {
            Assert.That(worst, Is.LessThanOrEqualTo(Tolerance));
            Assert.That(logits.All(float.IsFinite), Is.True, "pad positions must stay finite");
        });
    }

    [Test]
    public void Reference_GreedyGenerationWithCache_MatchesEveryStepAndToken()
    {
        int vocab = _model.Config.VocabSize;
        var state = _model.NewState(1);
        var (generated, worst) = GoldenGeneration.Replay(ids => _model.ForwardSequence(state, ids), vocab);
        TestContext.Out.WriteLine($"reference generation: max abs step-logit difference {worst:E2}");
        Assert.Multiple(() =>
        {
            Assert.That(generated, Is.EqualTo(GoldenGeneration.ExpectedIds));
            Assert.That(worst, Is.LessThanOrEqualTo(Tolerance));
        });
    }

    /// <summary>The ABI's multi-token continuation, which HF cannot do: chunks of 5, 1 and the rest equal one prefill.</summary>
    [Test]
    public void Reference_ChunkedPrefill_EqualsHuggingFacePrefill()
    {
        var ids = Npy.Load<long>(TestPaths.Expected("prefill_input_ids")).Data;
        var expected = Npy.Load<float>(TestPaths.Expected("prefill_logits")).Data;
        var state = _model.NewState(1);
        var logits = new List<float>();
        foreach (var (start, length) in new[] { (0, 5), (5, 1), (6, ids.Length - 6) })
            logits.AddRange(_model.ForwardSequence(state, ids.AsSpan(start, length)));
        double difference = Compare.MaxAbs(logits.ToArray(), expected);
        TestContext.Out.WriteLine($"reference chunked prefill max abs difference: {difference:E2}");
        Assert.That(difference, Is.LessThanOrEqualTo(Tolerance));
    }
}
