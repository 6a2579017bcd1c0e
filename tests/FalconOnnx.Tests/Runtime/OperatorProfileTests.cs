using FalconOnnx.Export;
using FalconOnnx.Runtime;
using FalconOnnx.Runtime.Diagnostics;
using FalconOnnx.Runtime.Generation;
using FalconOnnx.Tests.Support;

namespace FalconOnnx.Tests.Runtime;

/// <summary>ONNX Runtime's profiler through FalconModelOptions.ProfilePrefix, its trace read back per forward call, and bench --profile.</summary>
public sealed class OperatorProfileTests
{
    private readonly TempFolders _temp = new();

    [TearDown]
    public void RemoveTemporaries() => _temp.RemoveAll();

    private string NewFolder(string name) => Directory.CreateDirectory(_temp.New(name)).FullName;

    [Test]
    public void Trace_HasEveryForwardCall_WithItsKernelsByOperatorType()
    {
        string folder = NewFolder("trace");
        string trace;
        long prefillCalls, calls;
        using (var model = FalconModel.Load(TinyAExports.Get(SsmLowering.Custom), new FalconModelOptions { IntraOpThreads = 1, ProfilePrefix = Path.Combine(folder, "trace") }))
        using (var generator = new Generator(model, new GeneratorOptions { Capacity = 64, PrefillChunk = 4 }))
        {
            generator.Append(TinyAExports.PromptIds);
            prefillCalls = generator.State.Calls;
            var ids = generator.Generate(GenerationOptions.Greedy with { MaxNewTokens = 5 }).ToArray();
            Assert.That(ids, Is.EqualTo(TinyAExports.GoldenNewIds.Take(5)), "profiling changes nothing computed");
            calls = generator.State.Calls;
            trace = model.EndProfiling();
        }
        var runs = OperatorProfile.Read(trace);
        var decode = OperatorProfileSummary.Of(runs.Skip((int)prefillCalls).ToList());
        var prefill = OperatorProfileSummary.Of(runs.Take((int)prefillCalls).ToList());
        int layers = ModelManifest.Load(TinyAExports.Get(SsmLowering.Custom)).Dimensions.NumLayers;
        Assert.Multiple(() =>
        {
            Assert.That(Path.GetDirectoryName(trace), Is.EqualTo(folder), trace);
            Assert.That(prefillCalls, Is.EqualTo((TinyAExports.PromptIds.Length + 3) / 4), "a call per chunk of 4 prompt tokens");
            Assert.That(runs, Has.Count.EqualTo(calls), "a model_run event per forward call");
            Assert.That(decode.Runs, Is.EqualTo(4), "the first new token comes from the prefill's logits");
            foreach (var summary in new[] { prefill, decode })
            {
                Assert.That(summary.Operators.Single(o => o.Operator == "Mamba2Mixer").Calls, Is.EqualTo(layers * summary.Runs), "one fused mixer per layer and call");
                Assert.That(summary.KernelMicroseconds, Is.GreaterThan(0).And.LessThanOrEqualTo(summary.RunMicroseconds), "kernels run inside their calls");
                Assert.That(summary.Operators.Select(o => o.Microseconds), Is.Ordered.Descending);
            }
        });
    }

    [Test]
    public void EndProfiling_WithoutProfilePrefix_SaysHowToTurnItOn()
    {
        using var model = FalconModel.Load(TinyAExports.Get(), new FalconModelOptions { IntraOpThreads = 1 });
        Assert.That(() => model.EndProfiling(), Throws.InvalidOperationException.With.Message.Contains("ProfilePrefix"));
    }

    [Test]
    public void Read_NotATrace_NamesTheFile()
    {
        string path = Path.Combine(NewFolder("broken"), "broken.json");
        File.WriteAllText(path, "[{\"cat\": \"Node\", ");
        Assert.That(() => OperatorProfile.Read(path), Throws.TypeOf<FalconModelException>().With.Message.StartsWith(path));
    }

    [Test]
    public void BenchProfile_PrintsOperatorShares_AndKeepsTheTrace()
    {
        string folder = NewFolder("bench");
        string trace = Path.Combine(folder, "bench.json");
        var (exit, stdout, stderr) = CliRunner.Run("bench", TinyAExports.Get(), "--prompt-tokens", "8", "--new-tokens", "4", "--runs", "1", "--threads", "1", "--profile", trace);
        Assert.Multiple(() =>
        {
            Assert.That(exit, Is.EqualTo(0), stderr);
            Assert.That(stdout, Does.Contain("decode, 3 steps, time per step").And.Contain("MatMul").And.Contain("all kernels"));
            Assert.That(File.Exists(trace), Is.True);
            Assert.That(Directory.GetFiles(folder), Has.Length.EqualTo(1), "no profiler file left beside the trace");
        });
    }

    [Test]
    public void BenchProfile_IntoAMissingFolder_FailsBeforeMeasuring()
    {
        var (exit, _, stderr) = CliRunner.Run("bench", TinyAExports.Get(), "--prompt-tokens", "8", "--new-tokens", "4", "--profile", "/nonexistent-folder/trace.json");
        Assert.Multiple(() =>
        {
            Assert.That(exit, Is.Not.EqualTo(0));
            Assert.That(stderr, Does.Contain("/nonexistent-folder"));
        });
    }
}
