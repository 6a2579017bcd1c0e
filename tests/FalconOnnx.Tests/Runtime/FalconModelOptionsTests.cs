using System.IO.MemoryMappedFiles;
using FalconOnnx.Export;
using FalconOnnx.Runtime;
using FalconOnnx.Runtime.Generation;
using FalconOnnx.Runtime.Inference;
using FalconOnnx.Tests.Support;

namespace FalconOnnx.Tests.Runtime;

/// <summary>The memory defaults of a loaded model: no ONNX Runtime memory patterns, prefill chunks by execution provider, mapped weight pages released.</summary>
public sealed class FalconModelOptionsTests
{
    [Test]
    public void SessionOptions_MemoryPatternOffByDefault_OnWhenAsked()
    {
        using var defaults = FalconModel.CreateSessionOptions(new FalconModelOptions { IntraOpThreads = 3 });
        using var patterns = FalconModel.CreateSessionOptions(new FalconModelOptions { MemoryPattern = true });
        Assert.Multiple(() =>
        {
            Assert.That(defaults.EnableMemoryPattern, Is.False);
            Assert.That(defaults.IntraOpNumThreads, Is.EqualTo(3));
            Assert.That(patterns.EnableMemoryPattern, Is.True);
        });
    }

    [Test]
    public void MemoryPattern_On_GivesTheGoldenTokens()
    {
        using var model = FalconModel.Load(TinyAExports.Get(SsmLowering.Ort), new FalconModelOptions { IntraOpThreads = 1, MemoryPattern = true });
        using var generator = new Generator(model, new GeneratorOptions { Capacity = 64, PrefillChunk = 4 });
        var golden = TinyAExports.GoldenNewIds;
        for (int run = 0; run < 2; run++)   // the second run of the same shapes takes the planned block
        {
            generator.Reset();
            generator.Append(TinyAExports.PromptIds);
            Assert.That(generator.Generate(GenerationOptions.Greedy with { MaxNewTokens = golden.Length }).ToArray(), Is.EqualTo(golden), $"run {run}");
        }
    }

    [Test]
    public void PrefillChunk_Defaults128OnTheCpu_512OnCuda_CappedByCapacity()
    {
        using var model = FalconModel.Load(TinyAExports.Get(SsmLowering.Ort), new FalconModelOptions { IntraOpThreads = 1 });
        using var state = model.CreateState(1, 1024);
        using var small = new Generator(model, new GeneratorOptions { Capacity = 64 });
        using var asked = new Generator(model, new GeneratorOptions { Capacity = 1024, PrefillChunk = 300 });
        Assert.Multiple(() =>
        {
            Assert.That(FalconModel.DefaultPrefillChunk(ExecutionProvider.Cpu), Is.EqualTo(128));
            Assert.That(FalconModel.DefaultPrefillChunk(ExecutionProvider.Cuda), Is.EqualTo(512));
            Assert.That(state.MaxChunk, Is.EqualTo(128));
            Assert.That(small.State.MaxChunk, Is.EqualTo(64));
            Assert.That(asked.State.MaxChunk, Is.EqualTo(300));
        });
    }

    [Test]
    public void MappedWeightPages_AreReleasedAfterLoad_UnlessAskedToKeepThem([Values] bool release)
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("reads /proc/self/smaps");
        string folder = TinyAExports.Get(SsmLowering.Ort);
        string data = Path.Combine(folder, "model.onnx.data");
        // The tiny export's tensors are too small for ONNX Runtime to map; a mapping of our own stands in for its.
        long bytes = new FileInfo(data).Length;
        using var file = MemoryMappedFile.CreateFromFile(data, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        using var view = file.CreateViewAccessor(0, bytes, MemoryMappedFileAccess.Read);
        for (long i = 0; i < bytes; i += 4096) view.ReadByte(i);
        Assert.That(MappedFilePages.Resident(data), Is.GreaterThan(0));

        using var model = FalconModel.Load(folder, new FalconModelOptions { IntraOpThreads = 1, ReleaseMappedWeightPages = release });
        Assert.That(MappedFilePages.Resident(data), release ? Is.Zero : Is.GreaterThan(0));
        using var generator = new Generator(model, new GeneratorOptions { Capacity = 64 });
        generator.Append(TinyAExports.PromptIds);
        Assert.That(generator.Generate(GenerationOptions.Greedy with { MaxNewTokens = TinyAExports.GoldenNewIds.Length }).ToArray(), Is.EqualTo(TinyAExports.GoldenNewIds));
    }
}
