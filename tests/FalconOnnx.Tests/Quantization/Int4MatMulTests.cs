using FalconOnnx.Export;
using FalconOnnx.Graphs.Quantization;
using FalconOnnx.Models;
using FalconOnnx.Runtime;
using FalconOnnx.Runtime.Evaluation;
using FalconOnnx.Runtime.Generation;
using FalconOnnx.Synthesis;
using FalconOnnx.Tests.Support;

namespace FalconOnnx.Tests.Quantization;

/// <summary>
/// int4 weights through falcon_onnx.MatMulInt4 (export --int4-matmul custom): the interleaved layout holds the
/// quantizer's codes, an export gives what the MatMulNBits export of the same checkpoint gives, in our runtime and
/// in onnxruntime-genai, and the option refuses what the operator cannot run.
/// </summary>
public sealed class Int4MatMulTests
{
    [Test]
    public void Rows16_HoldsEveryRowsCodes_InTheDocumentedPlaces_AndPadsWithZeroCodes()
    {
        // 3 rows (a group padded to 16) of 2 blocks, codes (row * 7 + column) mod 16 packed as MatMulNBits packs them.
        const int rows = 3, blocks = 2, columns = blocks * 32, packedRow = columns / 2;
        int Code(int row, int column) => (row * 7 + column) % 16;
        var rowMajor = new byte[rows * packedRow];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < columns; c += 2)
                rowMajor[r * packedRow + c / 2] = (byte)(Code(r, c) | Code(r, c + 1) << 4);
        var group = new byte[16 * packedRow];
        QuantizedWeight.Interleave(rowMajor, rows, blocks, group);
        for (int r = 0; r < 16; r++)
            for (int c = 0; c < columns; c++)
            {
                // matmul_int4.h: block b, run j = (c mod 32) / 8, low nibble for the first 4 columns of the run.
                int b = c / 32, j = c % 32 / 8, i = c % 8;
                byte value = group[(b * 4 + j) * 64 + r * 4 + i % 4];
                int code = i < 4 ? value & 0xF : value >> 4;
                Assert.That(code, Is.EqualTo(r < rows ? Code(r, c) : 8), $"row {r}, column {c}");
            }
    }

    private string _checkpoint = "", _fp32 = "", _ort = "", _custom = "";

    [OneTimeSetUp]
    public void ExportTheSameCheckpointBothWays()
    {
        // The real Falcon-H1-0.5B widths (in_proj has 3352 rows: not a multiple of 16, so its last group is padded).
        _checkpoint = TestPaths.NewTemp("int4-matmul-hf");
        CheckpointSynthesizer.Synthesize(SynthPresets.Like("tiiuae/Falcon-H1-0.5B-Instruct", layers: 2), 11, _checkpoint);
        _fp32 = TestPaths.NewTemp("int4-matmul-fp32");
        FalconH1Exporter.Export(_checkpoint, _fp32, new ExportOptions());
        _ort = TestPaths.NewTemp("int4-matmul-ort");
        FalconH1Exporter.Export(_checkpoint, _ort, new ExportOptions { Precision = Precision.Int4 });
        _custom = TestPaths.NewTemp("int4-matmul-custom");
        FalconH1Exporter.Export(_checkpoint, _custom, new ExportOptions { Precision = Precision.Int4, Quantization = new QuantizationSettings(CustomInt4: true) });
    }

    [OneTimeTearDown]
    public void Remove()
    {
        foreach (string folder in new[] { _checkpoint, _fp32, _ort, _custom })
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
    }

    private static IReadOnlyList<IReadOnlyList<int>> Sequences(int vocab)
    {
        var random = new Random(99);
        return Enumerable.Range(0, 2).Select(_ => (IReadOnlyList<int>)Enumerable.Range(0, 256).Select(_ => random.Next(16, vocab)).ToArray()).ToList();
    }

    [Test]
    public void Export_GivesWhatMatMulNBitsGives_AndStaysWithinTheInt4Bounds()
    {
        using var fp32 = FalconModel.Load(_fp32, new FalconModelOptions { IntraOpThreads = 2 });
        using var ort = FalconModel.Load(_ort, new FalconModelOptions { IntraOpThreads = 2 });
        using var custom = FalconModel.Load(_custom, new FalconModelOptions { IntraOpThreads = 2 });
        var sequences = Sequences(fp32.Dimensions.VocabSize);
        var between = ModelComparison.Compare(ort, custom, sequences);
        var againstFp32 = ModelComparison.Compare(fp32, custom, sequences);
        TestContext.Out.WriteLine($"MatMulInt4 vs MatMulNBits: mean KL {between.MeanKl:E2}, top-1 {between.Top1Agreement:P2}; vs fp32: mean KL {againstFp32.MeanKl:E2}, top-1 {againstFp32.Top1Agreement:P2}");
        Assert.Multiple(() =>
        {
            Assert.That(custom.Manifest.CustomOpsLibrary, Is.Not.Null);
            Assert.That(File.Exists(Path.Combine(_custom, custom.Manifest.CustomOpsLibrary!)), Is.True, "the folder carries the operator library");
            Assert.That(custom.Manifest.Options.Quantization!.Method, Does.Contain("MatMulInt4"));
            // Same codes and scales; only the rounding of the int8 activations and the order of the sums differ.
            Assert.That(between.MeanKl, Is.LessThanOrEqualTo(1e-4));
            Assert.That(between.Top1Agreement, Is.GreaterThanOrEqualTo(0.97));
            Assert.That(againstFp32.MeanKl, Is.LessThanOrEqualTo(2e-2), "the project's int4 accuracy target");
            Assert.That(againstFp32.Top1Agreement, Is.GreaterThanOrEqualTo(0.95), "the project's int4 accuracy target");
        });
    }

    [Test]
    public void Export_GeneratesTheSameTokens_InTheRuntimeAndInGenAi()
    {
        var prompt = Enumerable.Range(0, 12).Select(i => 100 + 37 * i).ToArray();
        int[] runtimeTokens;
        using (var model = FalconModel.Load(_custom, new FalconModelOptions { IntraOpThreads = 2 }))
        using (var generator = new Generator(model, new GeneratorOptions { Capacity = 64, PrefillChunk = 5 }))
        {
            generator.Append(prompt);
            runtimeTokens = generator.Generate(GenerationOptions.Greedy with { MaxNewTokens = 12, StopTokens = [] }).ToArray();
        }
        Assert.That(GenAiGreedy.Generate(_custom, prompt, runtimeTokens.Length), Is.EqualTo(runtimeTokens));
    }

    [TestCase("--block-size", "64", "--block-size 64")]
    [TestCase("--zero-points", null, "--zero-points")]
    [TestCase("--ep", "cuda", "CPU kernel only")]
    public void CustomInt4_RefusesWhatTheOperatorCannotRun(string option, string? value, string message)
    {
        string output = TestPaths.NewTemp("bad-int4-matmul");
        string[] args = ["export", "-i", _checkpoint, "-o", output, "--precision", "int4", "--int4-matmul", "custom", option, .. value is null ? Array.Empty<string>() : [value]];
        var (exit, _, stderr) = CliRunner.Run(args);
        Assert.Multiple(() =>
        {
            Assert.That(exit, Is.Not.EqualTo(0));
            // The checkpoint has 2 of the model's 36 layers, so the config check warns first; the error is one line.
            Assert.That(stderr.Split('\n').Where(line => line.StartsWith("error:")).ToArray(), Has.Length.EqualTo(1), stderr);
            Assert.That(stderr, Does.Contain(message));
            Assert.That(Directory.Exists(output), Is.False, "nothing written");
        });
    }

    [Test]
    public void CustomInt4_WithoutInt4Weights_SaysSo()
    {
        string output = TestPaths.NewTemp("int8-int4-matmul");
        var (exit, _, stderr) = CliRunner.Run("export", "-i", TestPaths.TinyA, "-o", output, "--precision", "int8", "--int4-matmul", "custom");
        Assert.Multiple(() =>
        {
            Assert.That(exit, Is.Not.EqualTo(0));
            Assert.That(stderr, Does.Contain("int4 weights"));
            Assert.That(Directory.Exists(output), Is.False);
        });
    }
}
