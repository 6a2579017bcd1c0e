using System.Text.Json.Nodes;
using FalconOnnx.Checkpoints;
using FalconOnnx.Models;
using FalconOnnx.Tests.Support;

namespace FalconOnnx.Tests.Cli;

public sealed class PlanCommandTests
{
    [Test]
    public void Plan_ById_PrintsMemoryPlanFigures()
    {
        var (code, stdout, stderr) = CliRunner.Run("plan", "--model", "tiiuae/Falcon-H1-7B-Instruct", "--context", "32768", "--precision", "int4", "--batch", "2", "--json");
        Assert.That((code, stderr), Is.EqualTo((0, "")));
        var json = JsonNode.Parse(stdout)!;
        var plan = MemoryPlan.Compute(ModelCatalog.Find("tiiuae/Falcon-H1-7B-Instruct").Config, Precision.Int4, 32768, 2);
        Assert.Multiple(() =>
        {
            Assert.That(json["ep"]!.GetValue<string>(), Is.EqualTo("cpu"));
            Assert.That(json["weights_bytes"]!.GetValue<long>(), Is.EqualTo(plan.WeightBytes));
            Assert.That(json["kv_bytes"]!.GetValue<long>(), Is.EqualTo(44L * 2 * 32768 * 2 * 2 * 128 * 4), "float32 KV on the CPU");
            Assert.That(json["state_bytes"]!.GetValue<long>(), Is.EqualTo(plan.StateBytes));
            Assert.That(json["total_bytes"]!.GetValue<long>(), Is.EqualTo(plan.TotalBytes));
            Assert.That(json["folder_bytes"]!.GetValue<long>(), Is.EqualTo(plan.FolderBytes));
        });
    }

    [Test]
    public void Plan_LastPositionLogits_PlansOneRowOfLogitsPerPrefillCall()
    {
        JsonNode Plan(string logits) => JsonNode.Parse(CliRunner.Run("plan", "--model", "tiiuae/Falcon-H1-0.5B-Instruct", "--context", "4096", "--precision", "int4", "--logits", logits, "--json").Stdout)!;
        var all = Plan("all");
        var last = Plan("last");
        var c = ModelCatalog.Find("tiiuae/Falcon-H1-0.5B-Instruct").Config;
        long saved = (MemoryPlan.DefaultPrefillChunk(ExecutionTarget.Cpu) - 1L) * c.VocabSize * sizeof(float);
        Assert.Multiple(() =>
        {
            Assert.That(all["activation_bytes"]!.GetValue<long>() - last["activation_bytes"]!.GetValue<long>(), Is.EqualTo(saved));
            Assert.That(last["weights_bytes"]!.GetValue<long>(), Is.EqualTo(all["weights_bytes"]!.GetValue<long>()));
        });
    }

    [Test]
    public void Plan_CheckpointAndExportedFolder_GiveTheSameFigures()
    {
        string exported = TinyAExports.Get();
        string[] args = ["--context", "100", "--precision", "fp32", "--json"];
        var fromCheckpoint = JsonNode.Parse(CliRunner.Run(["plan", "--model", TestPaths.TinyA, .. args]).Stdout)!;
        var fromExport = JsonNode.Parse(CliRunner.Run(["plan", "--model", exported, .. args]).Stdout)!;
        fromCheckpoint["model"] = "";
        fromExport["model"] = "";
        Assert.That(JsonNode.DeepEquals(fromCheckpoint, fromExport), $"{fromCheckpoint}\n{fromExport}");
        // The planned folder is the exported one to within the graph estimate.
        long folder = new[] { "model.onnx", "model.onnx.data" }.Sum(f => new FileInfo(Path.Combine(exported, f)).Length);
        Assert.That((double)fromExport["folder_bytes"]!.GetValue<long>(), Is.EqualTo(folder).Within(20).Percent);
    }

    [Test]
    public void Plan_TensorPrecision_PlansTheOverriddenWeights_AsTheExportWritesThem()
    {
        // The fp16 vocabulary of an int8 export, and an override that matches the export's fused q|k|v name only.
        string[] overrides = ["--tensor-precision", "lm_head.weight=fp16", "--tensor-precision", "model.embed_tokens.weight=fp16",
            "--tensor-precision", "*.self_attn.qkv_proj.weight=int4"];
        JsonNode Plan(params string[] extra) => JsonNode.Parse(CliRunner.Run(["plan", "--model", TestPaths.TinyA, "--context", "64", "--precision", "int8", "--json", .. extra]).Stdout)!;
        var plain = Plan();
        var planned = Plan(overrides);
        var c = FalconH1Config.Load(Path.Combine(TestPaths.TinyA, "config.json"));
        long qkvRows = (long)c.NumHiddenLayers * (c.QueryDim + 2L * c.KeyValueDim);
        long expected = plain["weights_bytes"]!.GetValue<long>()
            + 2 * (Precisions.MatrixBytes(Precision.Fp16, c.VocabSize, c.HiddenSize) - Precisions.MatrixBytes(Precision.Int8, c.VocabSize, c.HiddenSize))
            + qkvRows * (Precisions.MatrixBytes(Precision.Int4, 1, c.HiddenSize) - Precisions.MatrixBytes(Precision.Int8, 1, c.HiddenSize));
        string folder = TestPaths.NewTemp("plan-overrides");
        try
        {
            var (code, _, stderr) = CliRunner.Run(["export", "-i", TestPaths.TinyA, "-o", folder, "--precision", "int8", .. overrides]);
            Assert.That((code, stderr), Is.EqualTo((0, "")));
            long written = new[] { "model.onnx", "model.onnx.data" }.Sum(f => new FileInfo(Path.Combine(folder, f)).Length);
            Assert.Multiple(() =>
            {
                Assert.That(planned["weights_bytes"]!.GetValue<long>(), Is.EqualTo(expected));
                Assert.That(planned["tensor_precisions"]!.AsArray().Select(n => n!.GetValue<string>()), Is.EqualTo(overrides.Where((_, i) => i % 2 == 1)));
                // The planned folder is the exported one to within the graph estimate.
                Assert.That((double)planned["folder_bytes"]!.GetValue<long>(), Is.EqualTo(written).Within(20).Percent);
            });
        }
        finally
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
    }

    [TestCase("--ram", "16GiB", "cpu", "fits in 16.00 GiB of RAM: ")]
    [TestCase("--ram", "4GB", "cpu", "does not fit in 3.73 GiB of RAM: needs ")]
    [TestCase("--vram", "24GiB", "cuda", "fits in 24.00 GiB of GPU memory: ")]
    public void Plan_Budget_SaysWhetherItFits(string option, string size, string ep, string verdict)
    {
        var (code, stdout, stderr) = CliRunner.Run("plan", "-m", "tiiuae/Falcon-H1-3B-Base", "-c", "4096", "-p", "int8", "--ep", ep, option, size);
        Assert.That((code, stderr), Is.EqualTo((0, "")));
        Assert.That(stdout, Does.StartWith("tiiuae/Falcon-H1-3B-Base: 3,149,392,384 parameters, 32 layers; int8 on " + ep + ", batch 1, context 4,096"));
        Assert.That(stdout.TrimEnd().Split('\n')[^1], Does.StartWith(verdict));
    }

    [TestCase("--precision", "int3", "error: --precision: unknown precision 'int3' (expected fp32, fp16, bf16, int8, int4)")]
    [TestCase("--ram", "16", "error: --ram: '16' is not a size such as 16GiB or 24GB")]
    [TestCase("--model", "tiiuae/Falcon-H1-13B", "error: --model: 'tiiuae/Falcon-H1-13B' is neither a folder nor a model id of models.json (tiiuae/Falcon-H1-0.5B-Base, ")]
    [TestCase("--context", "0", "error: --context must be a positive number of tokens, got 0")]
    public void Plan_BadInput_ExitsWith2(string option, string value, string message)
    {
        var args = new Dictionary<string, string> { ["--model"] = "tiiuae/Falcon-H1-0.5B-Base", ["--context"] = "4096", ["--precision"] = "int4" };
        args[option] = value;
        var (code, _, stderr) = CliRunner.Run(["plan", .. args.SelectMany(a => new[] { a.Key, a.Value })]);
        Assert.That(code, Is.EqualTo(2));
        Assert.That(stderr, Does.StartWith(message));
        Assert.That(stderr.TrimEnd().Split('\n'), Has.Length.EqualTo(1));
    }

    [Test]
    public void Plan_ContextPastTheModel_Warns()
    {
        var (code, _, stderr) = CliRunner.Run("plan", "-m", "tiiuae/Falcon-H1-0.5B-Instruct", "-c", "32768", "-p", "fp16");
        Assert.That(code, Is.EqualTo(0));
        Assert.That(stderr, Is.EqualTo("warning: --context 32768 is past the model's max_position_embeddings (16384)" + Environment.NewLine));
    }
}
