using System.Text.Json.Nodes;
using FalconOnnx.Runtime;
using FalconOnnx.Runtime.Generation;
using FalconOnnx.Runtime.Text;
using FalconOnnx.Tests.Support;

namespace FalconOnnx.Tests.Runtime;

/// <summary>Refused input: a clear exception naming the value, and the model still usable afterwards.</summary>
public sealed class RuntimeBadInputTests
{
    private static FalconModel Load() => FalconModel.Load(TinyAExports.TinyWithTokenizer(), new FalconModelOptions { IntraOpThreads = 1 });

    private static void StillWorks(FalconModel model)
    {
        using var generator = new Generator(model, new GeneratorOptions { Capacity = 32 });
        generator.Append([20, 21, 22]);
        Assert.That(generator.Generate(GenerationOptions.Greedy with { MaxNewTokens = 4, StopTokens = [] }).Count(), Is.EqualTo(4));
    }

    [Test]
    public void FolderThatIsNotAnExport_IsRejected()
    {
        var error = Assert.Throws<FalconModelException>(() => FalconModel.Load(TestPaths.TinyA));
        Assert.That(error!.Message, Does.Contain(TestPaths.TinyA).And.Contain("falcon_onnx.json").And.Contain("not a FalconOnnx export"));
    }

    [Test]
    public void ManifestWithAnotherAbiVersion_IsRejected()
    {
        string copy = TestPaths.NewTemp("abi");
        Directory.CreateDirectory(copy);
        try
        {
            foreach (string file in Directory.GetFiles(TinyAExports.TinyWithTokenizer())) File.Copy(file, Path.Combine(copy, Path.GetFileName(file)));
            string manifest = Path.Combine(copy, "falcon_onnx.json");
            var json = JsonNode.Parse(File.ReadAllText(manifest))!;
            json["abi_version"] = 7;
            File.WriteAllText(manifest, json.ToJsonString());
            var error = Assert.Throws<FalconModelException>(() => FalconModel.Load(copy));
            Assert.That(error!.Message, Does.Contain("abi_version 7").And.Contain("version 1"));
        }
        finally
        {
            Directory.Delete(copy, recursive: true);
        }
    }

    [Test]
    public async Task PromptLongerThanTheContext_IsRejected()
    {
        using var model = Load();
        using var generator = new TextGenerator(model, new GeneratorOptions { Capacity = 16 });
        var error = await Assert.ThrowsAsync<FalconModelException>(async () => await generator.GenerateAsync(string.Concat(Enumerable.Repeat("falcon ", 40)), GenerationOptions.Greedy with { MaxNewTokens = 1 }));
        Assert.That(error!.Message, Does.Contain("prompt has").And.Contain("16"));
        StillWorks(model);
        Assert.That(generator.Generator.Tokens, Is.Empty, "nothing was appended");
    }

    [Test]
    public void MaxTokensBeyondTheContext_IsRejected()
    {
        using var model = Load();
        using var generator = new Generator(model, new GeneratorOptions { Capacity = 16 });
        generator.Append([20, 21, 22]);
        var error = Assert.Throws<FalconModelException>(() => generator.Generate(GenerationOptions.Greedy with { MaxNewTokens = 100 }));
        Assert.That(error!.Message, Does.Contain("max new tokens (100)").And.Contain("13"));
        Assert.That(generator.Generate(GenerationOptions.Greedy with { MaxNewTokens = 5, StopTokens = [] }).Count(), Is.EqualTo(5), "the generator is still usable");
    }

    [Test]
    public async Task EmptyPrompt_IsRejected()
    {
        using var model = Load();
        using var generator = new TextGenerator(model, new GeneratorOptions { Capacity = 16 });
        var error = await Assert.ThrowsAsync<FalconModelException>(async () => await generator.GenerateAsync("", GenerationOptions.Greedy));
        Assert.That(error!.Message, Does.Contain("empty"));
        using var ids = new Generator(model, new GeneratorOptions { Capacity = 16 });
        Assert.That(Assert.Throws<FalconModelException>(() => ids.Generate(GenerationOptions.Greedy))!.Message, Does.Contain("empty"));
        StillWorks(model);
    }

    [TestCase(-0.5f, 1f, "temperature", "-0.5")]
    [TestCase(1f, 0f, "top-p", "0")]
    [TestCase(1f, 1.5f, "top-p", "1.5")]
    public void InvalidSamplingValues_AreRejected(float temperature, float topP, string field, string value)
    {
        using var model = Load();
        using var generator = new Generator(model, new GeneratorOptions { Capacity = 16 });
        generator.Append([20, 21]);
        var error = Assert.Throws<FalconModelException>(() => generator.Generate(new GenerationOptions { Temperature = temperature, TopP = topP }));
        Assert.That(error!.Message, Does.Contain(field).And.Contain(value));
        StillWorks(model);
    }

    [Test]
    public void MissingTokenizer_IsRejectedForText_AndTokenIdsStillWork()
    {
        using var model = FalconModel.Load(TinyAExports.Get(), new FalconModelOptions { IntraOpThreads = 1 });
        Assert.That(model.HasTokenizer, Is.False);
        var error = Assert.Throws<FalconModelException>(() => new TextGenerator(model));
        Assert.That(error!.Message, Does.Contain("tokenizer.json").And.Contain("--prompt-ids"));
        StillWorks(model);
    }

    [Test]
    public void CudaWithoutTheGpuBuild_SaysWhatIsMissingAndHowToFallBack()
    {
        // The test build uses the CPU package: its native library has no CUDA provider.
        var error = Assert.Throws<FalconModelException>(() => FalconModel.Load(TinyAExports.Get(), new FalconModelOptions { ExecutionProvider = ExecutionProvider.Cuda }));
        Assert.That(error!.Message, Does.Contain("CUDA 13").And.Contain("cuDNN 9").And.Contain("UseGpu=true").And.Contain("--ep cpu"));
    }

    [Test]
    public void TokenIdOutsideTheVocabulary_IsRejected()
    {
        using var model = Load();
        using var generator = new Generator(model, new GeneratorOptions { Capacity = 16 });
        var error = Assert.Throws<FalconModelException>(() => generator.Append([3, 99999]));
        Assert.That(error!.Message, Does.Contain("99999").And.Contain("vocabulary"));
        StillWorks(model);
    }

    [Test]
    public void CliGenerate_WithBadValues_ExitsWith2AndOneLine()
    {
        var (exitCode, _, stderr) = CliRunner.Run("generate", TinyAExports.TinyWithTokenizer(), "--prompt", "hi", "--temperature", "-1");
        Assert.Multiple(() =>
        {
            Assert.That(exitCode, Is.EqualTo(2));
            Assert.That(stderr.Trim(), Does.Contain("temperature").And.Contain("-1"));
            Assert.That(stderr.Trim().Split('\n'), Has.Length.EqualTo(1));
        });
    }
}
