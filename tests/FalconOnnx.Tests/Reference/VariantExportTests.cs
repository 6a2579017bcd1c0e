using FalconOnnx.Export;
using FalconOnnx.Tests.Support;

namespace FalconOnnx.Tests.Reference;

/// <summary>
/// Exports of the variant checkpoints (config flags the golden tiny-a does not exercise) against the plain C#
/// reference, for each Mamba-2 lowering: prefill, a left-padded batch, chunked continuation and greedy decoding.
/// </summary>
[TestFixtureSource(nameof(Cases))]
public sealed class VariantExportTests(string variantName, SsmLowering ssm, AttentionLowering? attention)
{
    private const double Tolerance = 1e-4;
    private const int PrefillLength = 37;
    private const int PromptLength = 12;
    private const int DecodeSteps = 8;

    private CheckpointVariant _variant = null!;
    private string _checkpoint = "";
    private string _export = "";
    private ReferenceFalconH1 _reference = null!;
    private OnnxStepper _model = null!;

    public static IEnumerable<TestFixtureData> Cases =>
        from variant in VariantCheckpoints.All
        from lowering in new (SsmLowering, AttentionLowering?)[] { (SsmLowering.Ort, null), (SsmLowering.Ort, AttentionLowering.Concat), (SsmLowering.Onnx, null), (SsmLowering.Custom, AttentionLowering.Concat) }
        select new TestFixtureData(variant.Name, lowering.Item1, lowering.Item2);

    [OneTimeSetUp]
    public void ExportOnce()
    {
        _variant = VariantCheckpoints.Named(variantName);
        _checkpoint = TestPaths.NewTemp(variantName);
        VariantCheckpoints.Write(_variant, _checkpoint);
        _export = TestPaths.NewTemp(variantName + "-" + ExportOptions.Name(ssm) + "-" + attention);
        FalconH1Exporter.Export(_checkpoint, _export, new ExportOptions { Ssm = ssm, Attention = attention });
        _reference = ReferenceFalconH1.Load(_checkpoint);
        _model = new OnnxStepper(_export);
    }

    [OneTimeTearDown]
    public void Remove()
    {
        _model?.Dispose();
        foreach (string folder in new[] { _checkpoint, _export })
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
    }

    private int Vocab => _variant.Vocab;

    /// <summary>Token ids in [3, vocab), away from pad, bos and eos; deterministic per variant and purpose.</summary>
    private long[] Tokens(int count, int purpose)
    {
        var random = new Random(_variant.Seed * 1000 + purpose);
        return Enumerable.Range(0, count).Select(_ => (long)random.Next(3, Vocab)).ToArray();
    }

    private void Report(string what, double difference) =>
        TestContext.Out.WriteLine($"{variantName} [{ExportOptions.Name(ssm)}, {_model.Manifest.Graph.Attention}] {what}: max abs difference {difference:E2}");

    [Test]
    public void Export_Prefill_MatchesReference()
    {
        var ids = Tokens(PrefillLength, 1);
        var expected = _reference.ForwardSequence(_reference.NewState(1), ids);
        var logits = _model.RunSequence(_model.NewState(1), ids);
        double difference = Compare.MaxAbs(logits, expected);
        Report("prefill", difference);
        Assert.That(difference, Is.LessThanOrEqualTo(Tolerance));
    }

    /// <summary>
    /// The multi-token continuation of the ABI: chunks of 2 (no longer than the conv's history), 1, 6 and the rest
    /// equal one prefill, with states in separate buffers or updated in place as GenAI binds them.
    /// </summary>
    [TestCase(false)]
    [TestCase(true)]
    public void Export_ChunkedContinuation_MatchesReferencePrefill(bool inPlaceStates)
    {
        var ids = Tokens(PrefillLength, 1);
        var expected = _reference.ForwardSequence(_reference.NewState(1), ids);
        using var inPlace = inPlaceStates ? new OnnxStepper(_export, inPlaceStates: true) : null;
        var model = inPlace ?? _model;
        var state = model.NewState(1);
        var logits = new List<float>();
        foreach (var (start, length) in new[] { (0, 2), (2, 1), (3, 6), (9, PrefillLength - 9) })
            logits.AddRange(model.RunSequence(state, ids.AsSpan(start, length)));
        double difference = Compare.MaxAbs(logits.ToArray(), expected);
        Report($"chunked continuation{(inPlaceStates ? ", states in place" : "")}", difference);
        Assert.That(difference, Is.LessThanOrEqualTo(Tolerance));
    }

    /// <summary>Row 0 holds 19 real tokens, row 1 seven left pads then 12 real ones; positions as HF's generate() makes them.</summary>
    private (long[] Ids, long[] Mask, long[] Positions, long[] ShortRow) PaddedBatch()
    {
        const int length = 19, pads = 7;
        var full = Tokens(length, 2);
        var shortRow = Tokens(length - pads, 3);
        var ids = full.Concat(Enumerable.Repeat(0L, pads)).Concat(shortRow).ToArray();
        var mask = Enumerable.Repeat(1L, length + pads).Concat(Enumerable.Repeat(1L, length - pads)).ToArray();
        mask.AsSpan(length, pads).Clear();
        var positions = Enumerable.Range(0, length).Select(p => (long)p)
            .Concat(Enumerable.Repeat(1L, pads))
            .Concat(Enumerable.Range(0, length - pads).Select(p => (long)p)).ToArray();
        return (ids, mask, positions, shortRow);
    }

    [Test]
    public void Export_LeftPaddedBatch_MatchesReferenceWhereMaskIsOne()
    {
        var (ids, mask, positions, _) = PaddedBatch();
        var expected = _reference.Forward(_reference.NewState(2), ids, mask, positions);
        var logits = _model.Run(_model.NewState(2), ids, mask, positions);
        int length = ids.Length / 2;
        double worst = 0;
        for (int row = 0; row < 2; row++)
            for (int t = 0; t < length; t++)
                if (mask[row * length + t] != 0)
                    worst = Math.Max(worst, Compare.MaxAbs(logits.AsSpan((row * length + t) * Vocab, Vocab), expected.AsSpan((row * length + t) * Vocab, Vocab)));
        Report("left-padded batch", worst);
        Assert.Multiple(() =>
        {
            Assert.That(worst, Is.LessThanOrEqualTo(Tolerance));
            Assert.That(logits.All(float.IsFinite), Is.True, "pad positions must not produce NaN or infinity");
        });
    }

    /// <summary>
    /// The padded batch in chunks of 5, 1 and 13: the padded row's first two calls hold only pads (its queries
    /// see no key at all) and must leave its states untouched; the last call mixes one pad with real tokens.
    /// </summary>
    [Test]
    public void Export_LeftPaddedBatchInChunks_MatchesReferenceWhereMaskIsOne()
    {
        // GroupQueryAttention cannot continue a batch of several rows with more than one token per call.
        if (_model.Manifest.Graph.Attention == "gqa") Assert.Ignore("not supported by GroupQueryAttention exports");
        var (ids, mask, positions, _) = PaddedBatch();
        var expected = _reference.Forward(_reference.NewState(2), ids, mask, positions);
        int length = ids.Length / 2;
        var state = _model.NewState(2);
        var logits = new float[expected.Length];
        foreach (var (start, count) in new[] { (0, 5), (5, 1), (6, length - 6) })
        {
            long[] Rows(long[] source, int from, int n) => [.. source.AsSpan(from, n), .. source.AsSpan(length + from, n)];
            var chunk = _model.Run(state, Rows(ids, start, count), Rows(mask, 0, start + count), Rows(positions, start, count));
            for (int row = 0; row < 2; row++)
                chunk.AsSpan(row * count * Vocab, count * Vocab).CopyTo(logits.AsSpan((row * length + start) * Vocab));
        }
        double worst = 0;
        for (int row = 0; row < 2; row++)
            for (int t = 0; t < length; t++)
                if (mask[row * length + t] != 0)
                    worst = Math.Max(worst, Compare.MaxAbs(logits.AsSpan((row * length + t) * Vocab, Vocab), expected.AsSpan((row * length + t) * Vocab, Vocab)));
        Report("left-padded batch in chunks", worst);
        Assert.Multiple(() =>
        {
            Assert.That(worst, Is.LessThanOrEqualTo(Tolerance));
            Assert.That(logits.All(float.IsFinite), Is.True, "calls holding only pads must not produce NaN or infinity");
        });
    }

    /// <summary>
    /// model-abi.md's strict padding: the padded row, and three decode steps after it, equal that row run alone,
    /// also with in_proj's bias (where HF's own padding leaks the bias into the conv, falcon-h1.md §3.3).
    /// Holds for the reference by construction and must hold for the export.
    /// </summary>
    [Test]
    public void Export_PaddedRowAndItsDecodeSteps_EqualTheRowRunAlone()
    {
        var (ids, mask, positions, shortRow) = PaddedBatch();
        int length = ids.Length / 2, pads = length - shortRow.Length;
        var batch = _model.NewState(2);
        var alone = _model.NewState(1);
        var referenceAlone = _reference.NewState(1);
        var batchLogits = _model.Run(batch, ids, mask, positions);
        var aloneLogits = _model.RunSequence(alone, shortRow);
        var referenceLogits = _reference.ForwardSequence(referenceAlone, shortRow);
        double padded = Compare.MaxAbs(batchLogits.AsSpan((length + pads) * Vocab, shortRow.Length * Vocab), aloneLogits);
        double reference = Compare.MaxAbs(aloneLogits, referenceLogits);
        double decode = 0;
        var next = Tokens(3, 4);
        for (int step = 0; step < next.Length; step++)
        {
            int total = length + step + 1;
            var stepMask = new long[2 * total];
            mask.AsSpan(0, length).CopyTo(stepMask);
            mask.AsSpan(length, length).CopyTo(stepMask.AsSpan(total));
            stepMask.AsSpan(length, step + 1).Fill(1);
            stepMask.AsSpan(total + length, step + 1).Fill(1);
            var stepLogits = _model.Run(batch, [next[step], next[step]], stepMask, [length + step, shortRow.Length + step]);
            var aloneStep = _model.RunSequence(alone, [next[step]]);
            var referenceStep = _reference.ForwardSequence(referenceAlone, [next[step]]);
            decode = Math.Max(decode, Compare.MaxAbs(stepLogits.AsSpan(Vocab, Vocab), aloneStep));
            reference = Math.Max(reference, Compare.MaxAbs(aloneStep, referenceStep));
        }
        Report("padded row vs alone", Math.Max(padded, decode));
        Assert.Multiple(() =>
        {
            Assert.That(padded, Is.LessThanOrEqualTo(Tolerance), "padded prefill row vs the row alone");
            Assert.That(decode, Is.LessThanOrEqualTo(Tolerance), "decode steps after the padded prefill vs after the row alone");
            Assert.That(reference, Is.LessThanOrEqualTo(Tolerance), "the row alone vs the reference");
        });
    }

    [Test]
    public void Export_GreedyDecode_MatchesReferenceTokensAndLogits()
    {
        var prompt = Tokens(PromptLength, 5);
        var referenceState = _reference.NewState(1);
        var state = _model.NewState(1);
        var expected = _reference.ForwardSequence(referenceState, prompt).AsSpan((PromptLength - 1) * Vocab).ToArray();
        var step = _model.RunSequence(state, prompt).AsSpan((PromptLength - 1) * Vocab).ToArray();
        var expectedIds = new List<long>();
        var ids = new List<long>();
        double worst = Compare.MaxAbs(step, expected);
        for (int k = 0; k < DecodeSteps; k++)
        {
            expectedIds.Add(Compare.ArgMax(expected));
            ids.Add(Compare.ArgMax(step));
            expected = _reference.ForwardSequence(referenceState, [expectedIds[^1]]);
            step = _model.RunSequence(state, [ids[^1]]);
            worst = Math.Max(worst, Compare.MaxAbs(step, expected));
        }
        Report("greedy decode", worst);
        Assert.Multiple(() =>
        {
            Assert.That(ids, Is.EqualTo(expectedIds));
            Assert.That(worst, Is.LessThanOrEqualTo(Tolerance));
        });
    }
}
