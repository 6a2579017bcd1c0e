using System.Text.Json;
using System.Text.Json.Nodes;
using FalconOnnx.Checkpoints;
using FalconOnnx.Tests.Support;

namespace FalconOnnx.Tests.Reference;

/// <summary>
/// The variant checkpoints are worth testing against: they read back as written, and every μP multiplier and
/// every flag the variant is about moves the reference's logits far beyond the export tolerance (1e-4), so an
/// export that ignored or misplaced one could not pass <see cref="VariantExportTests"/>.
/// </summary>
[TestFixtureSource(nameof(Names))]
public sealed class VariantCheckpointTests(string variantName)
{
    /// <summary>100 × the export tolerance.</summary>
    private const double Visible = 1e-2;

    private CheckpointVariant _variant = null!;
    private string _folder = "";
    private JsonObject _config = null!;
    private long[] _ids = [];
    private float[] _logits = [];

    public static IEnumerable<string> Names => VariantCheckpoints.All.Select(v => v.Name);

    [OneTimeSetUp]
    public void WriteOnce()
    {
        _variant = VariantCheckpoints.Named(variantName);
        _folder = TestPaths.NewTemp(variantName);
        VariantCheckpoints.Write(_variant, _folder);
        _config = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(_folder, Checkpoint.ConfigFileName)))!;
        var random = new Random(_variant.Seed);
        _ids = Enumerable.Range(0, 37).Select(_ => (long)random.Next(3, _variant.Vocab)).ToArray();
        _logits = Prefill(_folder);
    }

    [OneTimeTearDown]
    public void Remove()
    {
        if (Directory.Exists(_folder)) Directory.Delete(_folder, recursive: true);
    }

    private float[] Prefill(string folder)
    {
        var model = ReferenceFalconH1.Load(folder);
        return model.ForwardSequence(model.NewState(1), _ids);
    }

    [Test]
    public void Checkpoint_ReadsBackWithTheVariantsFieldsAndDType()
    {
        using var checkpoint = Checkpoint.Open(_folder);
        var c = checkpoint.Config;
        var v = _variant;
        Assert.Multiple(() =>
        {
            Assert.That((c.HiddenSize, c.NumAttentionHeads, c.NumKeyValueHeads, c.HeadDim), Is.EqualTo((v.HiddenSize, v.Heads, v.KeyValueHeads, v.HeadDim)));
            Assert.That((c.MambaDSsm, c.MambaNHeads, c.MambaDHead, c.MambaNGroups, c.MambaDState, c.MambaDConv),
                Is.EqualTo((v.DSsm, v.MambaHeads, v.MambaHeadDim, v.Groups, v.DState, v.DConv)));
            Assert.That((c.AttentionBias, c.MlpBias, c.MambaProjBias, c.ProjectorsBias, c.MambaConvBias),
                Is.EqualTo((v.AttentionBias, v.MlpBias, v.MambaProjBias, v.ProjectorsBias, v.MambaConvBias)));
            Assert.That((c.MambaRmsNorm, c.MambaNormBeforeGate, c.TieWordEmbeddings), Is.EqualTo((v.MambaRmsNorm, v.NormBeforeGate, v.TieWordEmbeddings)));
            Assert.That(c.RopeTheta, Is.EqualTo(v.RopeTheta));
            Assert.That(c.RmsNormEps, Is.EqualTo(v.RmsNormEps));
            Assert.That(c.TimeStepLimit, Is.EqualTo(v.TimeStepLimit ?? (0.0, double.PositiveInfinity)));
            Assert.That(checkpoint.Tensors.Values.Select(t => t.DType).Distinct(), Is.EqualTo(new[] { v.DType }));
            Assert.That(checkpoint.Optional(FalconH1Tensors.LmHead), v.TieWordEmbeddings ? Is.Null : Is.Not.Null);
        });
    }

    [Test]
    public void Reference_Logits_AreOrderOne()
    {
        double largest = _logits.Max(Math.Abs);
        TestContext.Out.WriteLine($"{variantName}: largest |logit| {largest:F2}");
        Assert.That(largest, Is.InRange(0.5, 50));
    }

    /// <summary>Config edits that keep the tensors: each multiplier back to 1, and the variant's flags flipped.</summary>
    private IEnumerable<(string Change, Action<JsonObject> Edit)> Edits()
    {
        foreach (string name in new[] { "embedding_multiplier", "lm_head_multiplier", "key_multiplier", "attention_in_multiplier",
                     "attention_out_multiplier", "ssm_in_multiplier", "ssm_out_multiplier" })
            yield return ($"{name}=1", c => c[name] = 1.0);
        for (int i = 0; i < 5; i++)
        {
            int index = i;
            yield return ($"ssm_multipliers[{i}]=1", c => c["ssm_multipliers"]![index] = 1.0);
        }
        for (int i = 0; i < 2; i++)
        {
            int index = i;
            yield return ($"mlp_multipliers[{i}]=1", c => c["mlp_multipliers"]![index] = 1.0);
        }
        if (_variant.MambaRmsNorm)
            yield return ($"mamba_norm_before_gate={!_variant.NormBeforeGate}", c => c["mamba_norm_before_gate"] = !_variant.NormBeforeGate);
        if (_variant.TimeStepLimit is not null)
            yield return ("no time_step_limit", c => c.Remove("time_step_limit"));
        double otherTheta = _variant.RopeTheta == 10000 ? 1e6 : 10000;
        yield return ($"rope theta {otherTheta}", c =>
        {
            if (c["rope_parameters"] is JsonObject parameters) parameters["rope_theta"] = otherTheta;
            else c["rope_theta"] = otherTheta;
        });
    }

    [Test]
    public void Reference_EveryMultiplierAndFlag_ChangesTheLogitsVisibly()
    {
        var invisible = new List<string>();
        foreach (var (change, edit) in Edits())
        {
            string edited = _folder + "-edited";
            Directory.CreateDirectory(edited);
            try
            {
                var config = (JsonObject)_config.DeepClone();
                edit(config);
                File.WriteAllText(Path.Combine(edited, Checkpoint.ConfigFileName), config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
                File.Copy(Path.Combine(_folder, Checkpoint.SingleFileName), Path.Combine(edited, Checkpoint.SingleFileName));
                double moved = Compare.MaxAbs(Prefill(edited), _logits);
                TestContext.Out.WriteLine($"{variantName}: {change}: max abs logit change {moved:E2}");
                if (moved < Visible) invisible.Add($"{change} ({moved:E2})");
            }
            finally
            {
                Directory.Delete(edited, recursive: true);
            }
        }
        Assert.That(invisible, Is.Empty, $"changes below {Visible:E0} in the logits");
    }
}
