using System.Text.Json;
using System.Text.Json.Nodes;
using FalconOnnx.Checkpoints;
using FalconOnnx.Models;

namespace FalconOnnx.Tests.Models;

/// <summary>models.json against falcon-h1.md §1.2 (its per-size and μP tables, transcribed below) and its own arithmetic.</summary>
public sealed class ModelCatalogTests
{
    private static readonly string[] Sizes = ["0.5B", "1.5B", "1.5B-Deep", "3B", "7B", "34B"];

    private static ModelEntry Instruct(string size) => ModelCatalog.Find($"tiiuae/Falcon-H1-{size}-Instruct");

    [Test]
    public void ModelsJson_ListsEveryReleasedCheckpoint()
    {
        var expected = Sizes.SelectMany(s => new[] { $"tiiuae/Falcon-H1-{s}-Base", $"tiiuae/Falcon-H1-{s}-Instruct" });
        Assert.That(ModelCatalog.Models.Select(m => m.Id), Is.EqualTo(expected));
        Assert.That(ModelCatalog.Models.Select(m => (m.Size, m.Variant)), Is.EqualTo(Sizes.SelectMany(s => new[] { (s, "Base"), (s, "Instruct") })));
    }

    [Test]
    public void ModelsJson_BaseAndInstruct_ShareTheirShapes()
    {
        foreach (string size in Sizes)
        {
            var a = ModelCatalog.Find($"tiiuae/Falcon-H1-{size}-Base");
            var b = Instruct(size);
            Assert.That(JsonNode.DeepEquals(a.ConfigJson, b.ConfigJson), size);
            Assert.That((a.Tokenizer, a.ContextLength, a.DocumentedParameters), Is.EqualTo((b.Tokenizer, b.ContextLength, b.DocumentedParameters)), size);
            Assert.That(a.Uncertain.ContainsKey("base"), size, "a Base entry says its values were read from the Instruct config");
        }
    }

    /// <summary>falcon-h1.md §1.2, per-size table: widths, heads, SSM shape, derived conv_dim and in_proj rows, flags.</summary>
    [TestCase("0.5B", 1024, 36, 8, 2, 64, 512, 128, 2048, 1536, 24, 64, 1, 128, 1792, 3352, 128, false, 16384, 32784)]
    [TestCase("1.5B", 2048, 24, 8, 2, 128, 1024, 256, 4608, 3072, 48, 64, 1, 256, 3584, 6704, 128, true, 131072, 65537)]
    [TestCase("1.5B-Deep", 1280, 66, 6, 2, 128, 768, 256, 3072, 1536, 24, 64, 1, 256, 2048, 3608, 128, true, 131072, 65537)]
    [TestCase("3B", 2560, 32, 10, 2, 128, 1280, 256, 6144, 4096, 32, 128, 1, 256, 4608, 8736, 128, true, 131072, 65537)]
    [TestCase("7B", 3072, 44, 12, 2, 128, 1536, 256, 12288, 3072, 24, 128, 1, 256, 3584, 6680, 256, true, 262144, 130049)]
    [TestCase("34B", 5120, 72, 20, 4, 128, 2560, 512, 21504, 4096, 32, 128, 2, 256, 5120, 9248, 128, true, 262144, 261120)]
    public void ModelsJson_Shapes_MatchTheDocTable(string size, int hidden, int layers, int heads, int kvHeads, int headDim, int qDim, int kvDim,
        int intermediate, int dSsm, int mambaHeads, int mambaHeadDim, int groups, int dState, int convDim, int inProj, int chunk, bool mambaNorm,
        int maxPositions, int vocab)
    {
        foreach (var m in ModelCatalog.Models.Where(m => m.Size == size))
        {
            var c = m.Config;
            Assert.Multiple(() =>
            {
                Assert.That((c.HiddenSize, c.NumHiddenLayers, c.NumAttentionHeads, c.NumKeyValueHeads, c.HeadDim, c.QueryDim, c.KeyValueDim),
                    Is.EqualTo((hidden, layers, heads, kvHeads, headDim, qDim, kvDim)), m.Id);
                Assert.That((c.IntermediateSize, c.MambaDSsm, c.MambaNHeads, c.MambaDHead, c.MambaNGroups, c.MambaDState, c.MambaDConv),
                    Is.EqualTo((intermediate, dSsm, mambaHeads, mambaHeadDim, groups, dState, 4)), m.Id);
                Assert.That((c.ConvDim, c.InProjDim, c.MambaChunkSize, c.MambaRmsNorm), Is.EqualTo((convDim, inProj, chunk, mambaNorm)), m.Id);
                Assert.That((c.MaxPositionEmbeddings, m.ContextLength, c.VocabSize), Is.EqualTo((maxPositions, maxPositions, vocab)), m.Id);
                // Shared by every size: gate-then-norm, biases as released, untied, RoPE 1e11, eps 1e-5, ids 0 / 1 / 11.
                Assert.That((c.MambaNormBeforeGate, c.MambaConvBias, c.MambaProjBias, c.ProjectorsBias, c.AttentionBias, c.MlpBias, c.TieWordEmbeddings),
                    Is.EqualTo((false, true, false, false, false, false, false)), m.Id);
                Assert.That((c.RopeTheta, c.RmsNormEps, c.PadTokenId, c.BosTokenId, c.EosTokenIds.Single()), Is.EqualTo((1e11, 1e-5, 0, 1, 11)), m.Id);
            });
        }
    }

    /// <summary>falcon-h1.md §1.2, μP table (the -Instruct configs of 0.5B, 1.5B-Deep, 7B and 34B).</summary>
    [TestCase("0.5B", 0.0390625, 0.39062499999999994, 0.9375, 1.25, 0.23570226039551587, 0.3535533905932738, 0.3535533905932738, 0.8838834764831844, 0.5859375)]
    [TestCase("1.5B-Deep", 0.03125, 0.17677669529663687, 0.5, 1.0, 0.23570226039551587, 0.3535533905932738, 0.1767766952966369, 0.7071067811865476, 0.3125)]
    [TestCase("7B", 0.013020833333333334, 0.030690398488999456, 0.10416666666666667, 0.4166666666666667, 0.11785113019775793, 0.3535533905932738, 0.1767766952966369, 0.2946278254943948, 0.032552083333333336)]
    [TestCase("34B", 0.0078125, 0.011048543456039804, 0.0375, 0.25, 0.08838834764831845, 0.3535533905932738, 0.1767766952966369, 0.1767766952966369, 0.011160714285714284)]
    public void ModelsJson_Multipliers_MatchTheDocTable(string size, double lmHead, double key, double attentionOut, double ssmIn, double ssmOut,
        double ssmZ, double ssmB, double mlpGate, double mlpDown)
    {
        var c = Instruct(size).Config;
        Assert.That((c.EmbeddingMultiplier, c.LmHeadMultiplier, c.KeyMultiplier, c.AttentionInMultiplier, c.AttentionOutMultiplier, c.SsmInMultiplier, c.SsmOutMultiplier),
            Is.EqualTo((5.656854249492381, lmHead, key, 1.0, attentionOut, ssmIn, ssmOut)));
        Assert.That(c.SsmMultipliers, Is.EqualTo(new[] { ssmZ, 0.25, ssmB, 0.5, 0.3535533905932738 }));
        Assert.That(c.MlpMultipliers, Is.EqualTo(new[] { mlpGate, mlpDown }));
        Assert.That(Instruct(size).Uncertain.ContainsKey("multipliers"), Is.False);
    }

    /// <summary>The doc found no multipliers for 1.5B and 3B: models.json follows its two observations and says so.</summary>
    [TestCase("1.5B", 2048, "1.5B-Deep")]
    [TestCase("3B", 2560, "7B")]
    public void ModelsJson_MultipliersNotFound_FollowTheObservedFormulasAndAreMarked(string size, int hidden, string nearest)
    {
        var c = Instruct(size).Config;
        var near = Instruct(nearest).Config;
        Assert.That(c.EmbeddingMultiplier, Is.EqualTo(4 * Math.Sqrt(2)).Within(1e-15));
        Assert.That(c.LmHeadMultiplier, Is.EqualTo(40.0 / hidden));
        Assert.That((c.KeyMultiplier, c.AttentionOutMultiplier, c.SsmInMultiplier, c.SsmOutMultiplier), Is.EqualTo((near.KeyMultiplier, near.AttentionOutMultiplier, near.SsmInMultiplier, near.SsmOutMultiplier)));
        Assert.That(Instruct(size).Uncertain["multipliers"], Does.Contain("not found").And.Contain(nearest));
    }

    /// <summary>falcon-h1.md §1.2's P(total): its own count from the same dimensions (3B's equals the published 3,149,400,000).</summary>
    [TestCase("0.5B", 521.4e6)]
    [TestCase("1.5B", 1.5549e9)]
    [TestCase("1.5B-Deep", 1.5549e9)]
    [TestCase("3B", 3.1494e9)]
    [TestCase("7B", 7.5857e9)]
    [TestCase("34B", 33.643e9)]
    public void ModelsJson_ParameterCount_IsWithinOnePercentOfTheDocumentedSize(string size, double documented)
    {
        foreach (var m in ModelCatalog.Models.Where(m => m.Size == size))
        {
            long counted = CheckpointParameters(m.Config);
            Assert.That(m.DocumentedParameters, Is.EqualTo(documented), m.Id);
            Assert.That((double)counted, Is.EqualTo(documented).Within(1).Percent, m.Id);
            Assert.That(m.Memory["parameters"]!.GetValue<long>(), Is.EqualTo(counted), m.Id);
        }
    }

    [Test]
    public void ModelsJson_ThreeB_CountsThePublishedParameters() =>
        // 3,149,400,000 published for Falcon-H1-3B-Instruct; the doc matches it only with the gated norm.
        Assert.That((double)CheckpointParameters(Instruct("3B").Config), Is.EqualTo(3.1494e9).Within(0.001).Percent);

    /// <summary>The count written out by hand from §4.1's tensor table, independently of FalconH1Tensors.</summary>
    private static long CheckpointParameters(FalconH1Config c)
    {
        long h = c.HiddenSize;
        long attention = h * c.QueryDim + 2 * h * c.KeyValueDim + c.QueryDim * h;
        long mamba = (long)c.InProjDim * h + c.ConvDim * (c.MambaDConv + 1L) + 3L * c.MambaNHeads + (c.MambaRmsNorm ? c.MambaDSsm : 0) + (long)c.MambaDSsm * h;
        long layer = 2 * h + attention + mamba + 3 * h * c.IntermediateSize;
        return 2L * c.VocabSize * h + h + c.NumHiddenLayers * layer;
    }

    [Test]
    public void ModelsJson_MemoryFigures_FollowTheArithmetic()
    {
        var expected = new JsonObject();
        bool same = true;
        foreach (var m in ModelCatalog.Models)
        {
            var computed = ModelCatalog.ComputeMemory(m.Config, m.ContextLength);
            expected[m.Id] = computed;
            same &= JsonNode.DeepEquals(m.Memory, computed);
        }
        if (same) return;
        string path = Path.Combine(TestContext.CurrentContext.WorkDirectory, "models.memory.expected.json");
        File.WriteAllText(path, expected.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        Assert.Fail($"models.json 'memory' differs from MemoryPlan; the expected objects, by id, are in {path}");
    }

    [Test]
    public void MemoryPlan_SevenB_ByHand()
    {
        var c = Instruct("7B").Config;
        // KV: 44 layers x (key + value) x 2 KV heads x 128 x 4 bytes. States: 44 x 4 bytes x (3584 x 3 + 24 x 256 x 128).
        var fp32 = MemoryPlan.Compute(c, Precision.Fp32, 4096);
        Assert.That(fp32.KvBytesPerToken, Is.EqualTo(44 * 2 * 2 * 128 * 4));
        Assert.That(fp32.KvBytes, Is.EqualTo(44L * 2 * 2 * 128 * 4 * 4096));
        Assert.That(fp32.StateBytes, Is.EqualTo(44L * 4 * (3584 * 3 + 24 * 256 * 128)));
        Assert.That(fp32.WeightBytes, Is.EqualTo(4 * fp32.Parameters));
        // int4: the layer projections in blocks of 32 along their input axis at 16 + 4 bytes (a float32 scale); the
        // embedding and lm_head (130049 x 3072 each) in int8 at 32 + 4 bytes; every width here is a multiple of 32.
        var int4 = MemoryPlan.Compute(c, Precision.Int4, 4096);
        long vectors = 3072 + 44L * (2 * 3072 + 3584 * 5 + 3 * 24 + 3072);
        long table = 130049L * 3072;
        Assert.That(int4.WeightBytes, Is.EqualTo((fp32.Parameters - vectors - 2 * table) / 32 * 20 + 2 * table / 32 * 36 + 4 * vectors));
        Assert.That(int4.KvBytes, Is.EqualTo(fp32.KvBytes), "int4 keeps a float32 KV cache (MatMulNBits runs with float32 activations)");
        Assert.That(MemoryPlan.Compute(c, Precision.Int4, 4096, target: ExecutionTarget.Cuda).KvBytes, Is.EqualTo(fp32.KvBytes));
        Assert.That(MemoryPlan.Compute(c, Precision.Bf16, 4096, batch: 3).KvBytes, Is.EqualTo(3 * fp32.KvBytes / 2));
        Assert.That(MemoryPlan.Compute(c, Precision.Bf16, 4096, batch: 3).StateBytes, Is.EqualTo(3 * fp32.StateBytes), "states stay float32");
    }

    [Test]
    public void Precisions_BytesPerParameter()
    {
        Assert.That(Precisions.MatrixBytes(Precision.Int8, 1, 32 * 1000) / 32000.0, Is.EqualTo(1.125));
        Assert.That(Precisions.MatrixBytes(Precision.Int4, 1, 32 * 1000) / 32000.0, Is.EqualTo(0.625));
        Assert.That(Precisions.MatrixBytes(Precision.Int4, 2, 33), Is.EqualTo(2 * 2 * 20), "a partial block is stored whole");
        Assert.That(Precisions.MatrixBytes(Precision.Bf16, 3, 5), Is.EqualTo(30));
    }

    [Test]
    public void ModelsJson_Tokenizer_FollowsTheVocabulary()
    {
        var families = ModelCatalog.Models.GroupBy(m => m.Tokenizer).ToList();
        Assert.That(families.Select(f => f.Key), Is.EqualTo(new[] { "falcon-h1-32k", "falcon-h1-65k", "falcon-h1-130k", "falcon-h1-261k" }));
        foreach (var family in families)
            Assert.That(family.Select(m => m.Config.VocabSize).Distinct().Count(), Is.EqualTo(1), family.Key);
    }

    [Test]
    public void ModelsJson_Targets_AreTheRecommendedExports()
    {
        Assert.That(ModelCatalog.Targets.Select(t => (t.Name, t.Precision, t.Ep)), Is.EqualTo(new[]
        {
            ("cpu-int4", Precision.Int4, ExecutionTarget.Cpu),
            ("cpu-int8", Precision.Int8, ExecutionTarget.Cpu),
            ("cuda-fp16", Precision.Fp16, ExecutionTarget.Cuda),
            ("cuda-bf16", Precision.Bf16, ExecutionTarget.Cuda),
        }));
    }

    [Test]
    public void Identify_ByExplicitId_NameOrPath_OrHubCacheFolder()
    {
        var c = Instruct("7B").Config;
        FalconH1Config With(string? nameOrPath)
        {
            var source = (JsonObject)c.Source.DeepClone();
            source["_name_or_path"] = nameOrPath;
            return c with { Source = source };
        }
        Assert.Multiple(() =>
        {
            Assert.That(ModelCatalog.Identify("TIIUAE/falcon-h1-34b-base", c, "/tmp/x")!.Id, Is.EqualTo("tiiuae/Falcon-H1-34B-Base"));
            Assert.That(ModelCatalog.Identify(null, With("tiiuae/Falcon-H1-7B-Instruct"), "/tmp/x")!.Id, Is.EqualTo("tiiuae/Falcon-H1-7B-Instruct"));
            Assert.That(ModelCatalog.Identify(null, With("/models/Falcon-H1-3B-Base/"), "/tmp/x")!.Id, Is.EqualTo("tiiuae/Falcon-H1-3B-Base"));
            Assert.That(ModelCatalog.Identify(null, With("my-finetune"), "/tmp/x"), Is.Null);
            Assert.That(ModelCatalog.Identify(null, With(null), "/root/.cache/huggingface/hub/models--tiiuae--Falcon-H1-0.5B-Base/snapshots/abc")!.Id,
                Is.EqualTo("tiiuae/Falcon-H1-0.5B-Base"));
        });
        var error = Assert.Throws<FalconOnnxException>(() => ModelCatalog.Identify("tiiuae/Falcon-H1-13B", c, "/tmp/x"));
        Assert.That(error!.Message, Does.StartWith("unknown model id 'tiiuae/Falcon-H1-13B'; models.json knows tiiuae/Falcon-H1-0.5B-Base, "));
    }

    [Test]
    public void Differences_NameEachFieldAndSayWhenModelsJsonIsUnsure()
    {
        var entry = Instruct("1.5B");
        Assert.That(ModelCatalog.Differences(entry.Config, entry), Is.Empty);
        var changed = entry.Config with { NumHiddenLayers = 2, IntermediateSize = 4600, KeyMultiplier = 0.5, MambaDConv = 4 };
        Assert.That(ModelCatalog.Differences(changed, entry), Is.EqualTo(new[]
        {
            "config.json field 'num_hidden_layers' is 2; models.json has 24 for tiiuae/Falcon-H1-1.5B-Instruct",
            "config.json field 'intermediate_size' is 4600; models.json has 4608 for tiiuae/Falcon-H1-1.5B-Instruct (models.json's value is uncertain: third-party test config)",
            "config.json field 'key_multiplier' is 0.5; models.json has 0.17677669529663687 for tiiuae/Falcon-H1-1.5B-Instruct (models.json's value is uncertain: "
                + entry.Uncertain["multipliers"] + ")",
        }));
        // Float formatting is not a difference.
        var reformatted = entry.Config with { KeyMultiplier = entry.Config.KeyMultiplier * (1 + 1e-15) };
        Assert.That(ModelCatalog.Differences(reformatted, entry), Is.Empty);
    }
}
