using FalconOnnx.Models;
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

    [Test]
    public void Presets_OfTheReleasedSizes_AreTheInstructCheckpointsOfModelsJson()
    {
        var released = SynthPresets.All.Skip(1).ToList();
        Assert.That(released.Select(p => (p.Name, p.ModelId)), Is.EqualTo(new[]
        {
            ("0.5b", "tiiuae/Falcon-H1-0.5B-Instruct"), ("1.5b", "tiiuae/Falcon-H1-1.5B-Instruct"), ("1.5b-deep", "tiiuae/Falcon-H1-1.5B-Deep-Instruct"),
            ("3b", "tiiuae/Falcon-H1-3B-Instruct"), ("7b", "tiiuae/Falcon-H1-7B-Instruct"), ("34b", "tiiuae/Falcon-H1-34B-Instruct"),
        }));
        foreach (var preset in released)
        {
            var entry = ModelCatalog.Find(preset.ModelId!);
            Assert.That(ModelCatalog.Differences(CheckpointSynthesizer.Config(preset), entry), Is.Empty, preset.Name);
            Assert.That(CheckpointSynthesizer.ParameterCount(CheckpointSynthesizer.Config(preset)), Is.EqualTo(entry.Memory["parameters"]!.GetValue<long>()), preset.Name);
        }
    }

    [Test]
    public void Like_WithFewerLayers_KeepsEveryWidth()
    {
        var entry = ModelCatalog.Find("tiiuae/Falcon-H1-34B-Base");
        var c = CheckpointSynthesizer.Config(SynthPresets.Like("tiiuae/Falcon-H1-34B-Base", layers: 8));
        Assert.That(ModelCatalog.Differences(c, entry), Is.EqualTo(new[] { "config.json field 'num_hidden_layers' is 8; models.json has 72 for tiiuae/Falcon-H1-34B-Base" }));
        Assert.That(c.Source["_name_or_path"]!.GetValue<string>(), Is.EqualTo("tiiuae/Falcon-H1-34B-Base"));
        var error = Assert.Throws<FalconOnnxException>(() => SynthPresets.Like("tiiuae/Falcon-H1-34B-Base", layers: 73));
        Assert.That(error!.Message, Is.EqualTo("--layers must be between 1 and 72 (tiiuae/Falcon-H1-34B-Base has 72 layers), got 73"));
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
    public void Preset_Find_IgnoresCase() => Assert.That(SynthPresets.Find("1.5B-Deep").ModelId, Is.EqualTo("tiiuae/Falcon-H1-1.5B-Deep-Instruct"));

    [Test]
    public void Preset_Unknown_IsRejectedListingThePresets()
    {
        var error = Assert.Throws<FalconOnnxException>(() => SynthPresets.Find("13b"));
        Assert.That(error!.Message, Is.EqualTo("unknown preset '13b'; the presets are tiny, 0.5b, 1.5b, 1.5b-deep, 3b, 7b, 34b"));
    }
}
