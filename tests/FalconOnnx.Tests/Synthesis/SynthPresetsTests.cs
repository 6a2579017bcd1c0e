using FalconOnnx.Synthesis;

namespace FalconOnnx.Tests.Synthesis;

public sealed class SynthPresetsTests
{
    [Test]
    public void Preset_HalfB_ConfigHasTheDocumentedDimensions()
    {
        var c = CheckpointSynthesizer.Config(SynthPresets.Find("0.5b"));
        Assert.Multiple(() =>
        {
            Assert.That((c.HiddenSize, c.NumHiddenLayers, c.NumAttentionHeads, c.NumKeyValueHeads, c.HeadDim, c.IntermediateSize),
                Is.EqualTo((1024, 36, 8, 2, 64, 2048)));
            Assert.That((c.QueryDim, c.KeyValueDim), Is.EqualTo((512, 128)));
            Assert.That((c.MambaDSsm, c.MambaNHeads, c.MambaDHead, c.MambaNGroups, c.MambaDState, c.MambaDConv, c.MambaChunkSize),
                Is.EqualTo((1536, 24, 64, 1, 128, 4, 128)));
            Assert.That((c.ConvDim, c.InProjDim), Is.EqualTo((1792, 3352)));
            Assert.That((c.VocabSize, c.MaxPositionEmbeddings, c.RopeTheta, c.RmsNormEps), Is.EqualTo((32784, 16384, 1e11, 1e-5)));
            Assert.That((c.MambaRmsNorm, c.MambaNormBeforeGate, c.MambaConvBias, c.MambaProjBias, c.ProjectorsBias, c.TieWordEmbeddings),
                Is.EqualTo((false, false, true, false, false, false)));
            Assert.That((c.EmbeddingMultiplier, c.LmHeadMultiplier, c.KeyMultiplier, c.AttentionOutMultiplier, c.SsmInMultiplier, c.SsmOutMultiplier),
                Is.EqualTo((5.656854249492381, 0.0390625, 0.39062499999999994, 0.9375, 1.25, 0.23570226039551587)));
            Assert.That(c.SsmMultipliers, Is.EqualTo(new[] { 0.3535533905932738, 0.25, 0.3535533905932738, 0.5, 0.3535533905932738 }));
            Assert.That(c.MlpMultipliers, Is.EqualTo(new[] { 0.8838834764831844, 0.5859375 }));
        });
    }

    /// <summary>P(total) of falcon-h1.md §1.2, the doc's own count from the same dimensions.</summary>
    [TestCase("0.5b", 521.4e6)]
    [TestCase("1.5b", 1.5549e9)]
    [TestCase("1.5b-deep", 1.5549e9)]
    [TestCase("3b", 3.1494e9)]
    [TestCase("7b", 7.5857e9)]
    [TestCase("34b", 33.643e9)]
    public void Preset_ParameterCount_MatchesTheDoc(string name, double documented)
    {
        long count = CheckpointSynthesizer.ParameterCount(CheckpointSynthesizer.Config(SynthPresets.Find(name)));
        Assert.That((double)count, Is.EqualTo(documented).Within(0.5).Percent);
    }

    [Test]
    public void Preset_ThreeB_CountsThePublishedParameters()
    {
        // 3,149,400,000 published for Falcon-H1-3B-Instruct; the doc matches it only with the gated norm.
        long count = CheckpointSynthesizer.ParameterCount(CheckpointSynthesizer.Config(SynthPresets.ThreeB));
        Assert.That((double)count, Is.EqualTo(3.1494e9).Within(0.001).Percent);
    }

    [Test]
    public void Presets_ShareTokensAndNormSettings()
    {
        foreach (var preset in SynthPresets.All)
        {
            var c = CheckpointSynthesizer.Config(preset);
            Assert.That((c.PadTokenId, c.BosTokenId, c.EosTokenIds.Single(), c.TieWordEmbeddings, c.RmsNormEps), Is.EqualTo((0, 1, 11, false, 1e-5)), preset.Name);
            Assert.That(c.Source["model_type"]!.GetValue<string>(), Is.EqualTo("falcon_h1"), preset.Name);
            Assert.That(c.Source["architectures"]![0]!.GetValue<string>(), Is.EqualTo("FalconH1ForCausalLM"), preset.Name);
        }
    }

    [Test]
    public void Presets_WithoutPublishedMultipliers_FollowTheObservedFormulas()
    {
        foreach (var (preset, hidden) in new[] { (SynthPresets.OnePointFiveB, 2048), (SynthPresets.ThreeB, 2560) })
        {
            Assert.That(preset.Multipliers.Embedding, Is.EqualTo(4 * Math.Sqrt(2)).Within(1e-15), preset.Name);
            Assert.That(preset.Multipliers.LmHead, Is.EqualTo(40.0 / hidden), preset.Name);
        }
        Assert.That(SynthPresets.OnePointFiveB.Multipliers.LmHead, Is.EqualTo(0.01953125));
    }

    [Test]
    public void Preset_Find_IgnoresCase() => Assert.That(SynthPresets.Find("1.5B-Deep"), Is.SameAs(SynthPresets.OnePointFiveBDeep));

    [Test]
    public void Preset_Unknown_IsRejectedListingThePresets()
    {
        var error = Assert.Throws<FalconOnnxException>(() => SynthPresets.Find("13b"));
        Assert.That(error!.Message, Is.EqualTo("unknown preset '13b'; the presets are tiny, 0.5b, 1.5b, 1.5b-deep, 3b, 7b, 34b"));
    }
}
