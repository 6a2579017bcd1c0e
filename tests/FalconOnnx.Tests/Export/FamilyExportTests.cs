using System.Diagnostics;
using FalconOnnx.Checkpoints;
using FalconOnnx.Export;
using FalconOnnx.Models;
using FalconOnnx.Synthesis;
using FalconOnnx.Tests.Support;

namespace FalconOnnx.Tests.Export;

/// <summary>
/// Every released size exports, loads and decodes: a synthesized checkpoint with 2 layers at the size's real
/// widths (hidden, heads, head_dim, intermediate, Mamba-2 heads, groups, state), from models.json.
/// <para>
/// The vocabulary is cut to <see cref="Vocabulary"/> tokens: the embedding and lm_head alone would be 2 x 261120 x
/// 5120 values for 34B (5.3 GB in float32 after export), more than a test machine should hold for one test.
/// Everything else is full width; 34B's two layers are still 0.86 billion parameters (1.8 GB of bf16, 3.6 GB
/// exported), so the sizes run one after another and each cleans up before the next.
/// </para>
/// </summary>
[NonParallelizable]
public sealed class FamilyExportTests
{
    private const int Vocabulary = 4096;
    private const int Layers = 2;

    [TestCase("tiiuae/Falcon-H1-0.5B-Instruct")]
    [TestCase("tiiuae/Falcon-H1-1.5B-Instruct")]
    [TestCase("tiiuae/Falcon-H1-1.5B-Deep-Instruct")]
    [TestCase("tiiuae/Falcon-H1-3B-Instruct")]
    [TestCase("tiiuae/Falcon-H1-7B-Instruct")]
    [TestCase("tiiuae/Falcon-H1-34B-Instruct")]
    public void Export_TwoLayersAtTheRealWidths_LoadsAndDecodes(string modelId)
    {
        var entry = ModelCatalog.Find(modelId);
        var preset = SynthPresets.Like(modelId, Layers) with { VocabSize = Vocabulary };
        string checkpoint = TestPaths.NewTemp("family-hf"), exported = TestPaths.NewTemp("family-onnx");
        var clock = Stopwatch.StartNew();
        try
        {
            CheckpointSynthesizer.Synthesize(preset, 7, checkpoint);
            var synthesized = clock.Elapsed;
            var warnings = new List<string>();
            FalconH1Exporter.Export(checkpoint, exported, new ExportOptions(), warning: warnings.Add);
            var exportedAt = clock.Elapsed;
            Assert.That(warnings, Has.Count.EqualTo(2), "only the two reductions differ from the released shape");
            Assert.That(warnings[0], Does.StartWith($"config.json field 'vocab_size' is {Vocabulary}; models.json has {entry.Config.VocabSize} for {modelId}"));
            Assert.That(warnings[1], Is.EqualTo($"config.json field 'num_hidden_layers' is {Layers}; models.json has {entry.Config.NumHiddenLayers} for {modelId}"));

            using var model = new OnnxStepper(exported, inPlaceStates: true);
            var c = entry.Config;
            var d = model.Dims;
            Assert.That((d.HiddenSize, d.NumAttentionHeads, d.NumKeyValueHeads, d.HeadDim, d.ConvDim, d.MambaHeads, d.MambaHeadDim, d.MambaStateSize),
                Is.EqualTo((c.HiddenSize, c.NumAttentionHeads, c.NumKeyValueHeads, c.HeadDim, c.ConvDim, c.MambaNHeads, c.MambaDHead, c.MambaDState)));

            // Prefill five tokens, then three greedy steps from the cache.
            var state = model.NewState(1);
            var logits = model.RunSequence(state, [1, 17, 400, 2048, 4095]);
            Assert.That(logits, Has.Length.EqualTo(5 * Vocabulary).And.All.Matches<float>(float.IsFinite));
            var generated = new List<long>();
            for (int step = 0; step < 3; step++)
            {
                long next = ArgMax(logits.AsSpan(logits.Length - Vocabulary));
                generated.Add(next);
                logits = model.RunSequence(state, [next]);
                Assert.That(logits, Has.Length.EqualTo(Vocabulary).And.All.Matches<float>(float.IsFinite), $"step {step}");
            }
            Assert.That(state.PastLength, Is.EqualTo(8));
            TestContext.Out.WriteLine($"{modelId}: {CheckpointSynthesizer.ParameterCount(CheckpointSynthesizer.Config(preset)):N0} parameters; " +
                $"synth {synthesized.TotalSeconds:0.0} s, export {(exportedAt - synthesized).TotalSeconds:0.0} s, load and decode {(clock.Elapsed - exportedAt).TotalSeconds:0.0} s; tokens {string.Join(",", generated)}");
        }
        finally
        {
            foreach (string folder in new[] { checkpoint, exported })
                if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>34B: two groups of B/C (the gated norm normalizes per group) and four KV heads for 20 query heads.</summary>
    [Test]
    public void ModelsJson_ThirtyFourBLayout_IsTwoGroupsAndFourKeyValueHeads()
    {
        var c = ModelCatalog.Find("tiiuae/Falcon-H1-34B-Instruct").Config;
        Assert.That((c.MambaNGroups, c.NumKeyValueHeads, c.NumAttentionHeads / c.NumKeyValueHeads, c.ConvDim), Is.EqualTo((2, 4, 5, 4096 + 2 * 2 * 256)));
        var deep = ModelCatalog.Find("tiiuae/Falcon-H1-1.5B-Deep-Instruct").Config;
        Assert.That((deep.NumHiddenLayers, deep.HiddenSize, deep.NumAttentionHeads, deep.NumKeyValueHeads, deep.QueryDim), Is.EqualTo((66, 1280, 6, 2, 768)),
            "1.5B-Deep: narrow and deep, three query heads per KV head, attention width below the hidden size");
    }

    private static long ArgMax(ReadOnlySpan<float> values)
    {
        int best = 0;
        for (int i = 1; i < values.Length; i++)
            if (values[i] > values[best]) best = i;
        return best;
    }
}
