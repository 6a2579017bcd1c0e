using FalconOnnx.Export;
using FalconOnnx.Runtime;
using FalconOnnx.Runtime.Generation;
using FalconOnnx.Tests.Support;

namespace FalconOnnx.Tests.Runtime;

public sealed class GeneratorTests
{
    private static FalconModel Load(AttentionLowering? attention = null) => FalconModel.Load(TinyAExports.Get(SsmLowering.Ort, attention), new FalconModelOptions { IntraOpThreads = 1 });

    [Test]
    public void Greedy_ReproducesGoldenIdsAndStepLogits([Values(null, AttentionLowering.Concat)] AttentionLowering? attention)
    {
        using var model = Load(attention);
        var expectedLogits = Npy.Load<float>(TestPaths.Expected("gen_step_logits"));
        using var state = model.CreateState(1, 64, prefillChunk: 5);
        var prompt = TinyAExports.PromptIds.Select(id => (long)id).ToArray();
        var real = Enumerable.Repeat(1L, prompt.Length).ToArray();
        ReadOnlySpan<float> logits = default;
        for (int start = 0; start < prompt.Length; start += 5)
        {
            int count = Math.Min(5, prompt.Length - start);
            logits = state.Forward(prompt.AsSpan(start, count), real.AsSpan(start, count), count);
        }
        double worst = 0;
        var golden = TinyAExports.GoldenNewIds;
        for (int k = 0; k < golden.Length; k++)
        {
            worst = Math.Max(worst, Compare.MaxAbs(logits, expectedLogits.Row(0, k)));
            Assert.That(Sampling.ArgMax(logits), Is.EqualTo(golden[k]), $"step {k}");
            logits = state.Forward(new long[] { golden[k] }, new long[] { 1 }, 1);
        }
        Assert.That(worst, Is.LessThanOrEqualTo(1e-4));

        using var generator = new Generator(model, new GeneratorOptions { Capacity = 64 });
        generator.Append(TinyAExports.PromptIds);
        Assert.That(generator.Generate(GenerationOptions.Greedy with { MaxNewTokens = golden.Length }).ToArray(), Is.EqualTo(golden));
    }

    [Test]
    public void SameSeed_GivesSameSampledTokens_OtherSeedDiffers()
    {
        using var model = Load();
        using var generator = new Generator(model, new GeneratorOptions { Capacity = 64 });
        int[] Sample(int seed)
        {
            generator.Reset();
            generator.Append(TinyAExports.PromptIds);
            return generator.Generate(new GenerationOptions { MaxNewTokens = 24, Temperature = 1.5f, TopK = 50, TopP = 0.95f, MinP = 0.01f, RepetitionPenalty = 1.1f, Seed = seed, StopTokens = [] }).ToArray();
        }
        var first = Sample(7);
        Assert.Multiple(() =>
        {
            Assert.That(Sample(7), Is.EqualTo(first));
            Assert.That(Sample(8), Is.Not.EqualTo(first));
            Assert.That(first, Is.Not.EqualTo(TinyAExports.GoldenNewIds), "sampling at temperature 1.5 should leave the greedy path");
        });
    }

    [Test]
    public void Batch_GivesEachPromptsSingleRunResult([Values(null, AttentionLowering.Concat)] AttentionLowering? attention)
    {
        using var model = Load(attention);
        var prompts = new[] { TinyAExports.PromptIds, TinyAExports.PromptIds[..5], TinyAExports.PromptIds[3..] };
        var options = GenerationOptions.Greedy with { MaxNewTokens = 10, StopTokens = [] };
        using var single = new Generator(model, new GeneratorOptions { Capacity = 64, PrefillChunk = 4 });
        var alone = prompts.Select(p =>
        {
            single.Reset();
            single.Append(p);
            return single.Generate(options).ToArray();
        }).ToArray();
        using var batch = new Generator(model, new GeneratorOptions { Batch = 3, Capacity = 64, PrefillChunk = 4 });
        var together = batch.GenerateBatch(prompts, options);
        for (int b = 0; b < prompts.Length; b++) Assert.That(together[b], Is.EqualTo(alone[b]), $"prompt {b}");
    }

    [Test]
    public void KeptState_EqualsAFreshRunOverTheWholeConversation()
    {
        using var model = Load();
        using var kept = new Generator(model, new GeneratorOptions { Capacity = 128 });
        var greedy = GenerationOptions.Greedy with { MaxNewTokens = 8, StopTokens = [] };
        kept.Append(TinyAExports.PromptIds);
        var reply = kept.Generate(greedy).ToArray();
        kept.Append([5, 6, 7, 8, 9]);                        // turn 2 prefills only the new tokens
        var continued = kept.Generate(greedy).ToArray();
        var history = kept.Tokens.ToArray();

        using var fresh = new Generator(model, new GeneratorOptions { Capacity = 128 });
        fresh.Append([.. TinyAExports.PromptIds, .. reply, 5, 6, 7, 8, 9]);
        Assert.That(fresh.Generate(greedy).ToArray(), Is.EqualTo(continued));

        // The same logits, not only the same argmax: both states fed the full history.
        using var a = model.CreateState(1, 128);
        using var b = model.CreateState(1, 128);
        var all = history.Select(id => (long)id).ToArray();
        var real = Enumerable.Repeat(1L, all.Length).ToArray();
        var turn1 = TinyAExports.PromptIds.Length + reply.Length;
        a.Forward(all.AsSpan(0, turn1), real.AsSpan(0, turn1), turn1);
        var split = a.Forward(all.AsSpan(turn1), real.AsSpan(turn1), all.Length - turn1).ToArray();
        var whole = b.Forward(all, real, all.Length).ToArray();
        Assert.That(Compare.MaxAbs(split, whole), Is.LessThanOrEqualTo(1e-4));
    }

    [Test]
    public void RestoredSnapshot_RegeneratesTheSameTokens()
    {
        using var model = Load();
        using var generator = new Generator(model, new GeneratorOptions { Capacity = 128 });
        generator.Append(TinyAExports.PromptIds);
        var snapshot = generator.Snapshot();
        var options = new GenerationOptions { MaxNewTokens = 16, Temperature = 1.2f, Seed = 3, StopTokens = [] };
        var first = generator.Generate(options).ToArray();
        generator.Append([1, 2, 3]);
        _ = generator.Generate(options).ToArray();
        generator.Restore(snapshot);
        Assert.Multiple(() =>
        {
            Assert.That(generator.Tokens, Is.EqualTo(TinyAExports.PromptIds));
            Assert.That(generator.Generate(options).ToArray(), Is.EqualTo(first));
        });
    }

    [Test]
    public void Cancellation_StopsWithinOneStep_AndTheNextGenerationIsCorrect()
    {
        using var model = Load();
        using var generator = new Generator(model, new GeneratorOptions { Capacity = 128 });
        generator.Append(TinyAExports.PromptIds);
        using var cancellation = new CancellationTokenSource();
        var received = new List<int>();
        Assert.Throws<OperationCanceledException>(() =>
        {
            foreach (int token in generator.Generate(GenerationOptions.Greedy with { MaxNewTokens = 24, StopTokens = [] }, cancellation.Token))
            {
                received.Add(token);
                if (received.Count == 3) cancellation.Cancel();
            }
        });
        Assert.That(received, Has.Count.EqualTo(3), "no token after the one that cancelled");
        Assert.That(received, Is.EqualTo(TinyAExports.GoldenNewIds[..3]));

        // The sequence holds exactly what was generated: continuing gives the golden tokens that follow.
        var rest = generator.Generate(GenerationOptions.Greedy with { MaxNewTokens = 21, StopTokens = [] }).ToArray();
        Assert.That(rest, Is.EqualTo(TinyAExports.GoldenNewIds[3..]));
        generator.Reset();
        generator.Append(TinyAExports.PromptIds);
        Assert.That(generator.Generate(GenerationOptions.Greedy with { MaxNewTokens = 24, StopTokens = [] }).ToArray(), Is.EqualTo(TinyAExports.GoldenNewIds));
    }

    [Test]
    public void DecodeSteps_AllocateNoManagedMemoryAfterWarmUp()
    {
        // Bound: 64 bytes per step on average. The one allocation left per step is ONNX Runtime's managed
        // binding API turning the name "attention_mask" into UTF-8 when the grown mask view is bound.
        const double boundPerStep = 64;
        using var model = Load();
        using var generator = new Generator(model, new GeneratorOptions { Capacity = 256 });
        generator.Append(TinyAExports.PromptIds);
        using var tokens = generator.Generate(new GenerationOptions { MaxNewTokens = 200, Temperature = 1f, Seed = 1, StopTokens = [] }).GetEnumerator();
        for (int i = 0; i < 20; i++) Assert.That(tokens.MoveNext(), Is.True);
        int produced = 0;
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 100; i++) produced += tokens.MoveNext() ? 1 : 0;
        long perStep = (GC.GetAllocatedBytesForCurrentThread() - before) / 100;
        Assert.That(produced, Is.EqualTo(100));
        TestContext.Out.WriteLine($"managed bytes per decode step: {perStep}");
        Assert.That(perStep, Is.LessThanOrEqualTo(boundPerStep));
    }
}
