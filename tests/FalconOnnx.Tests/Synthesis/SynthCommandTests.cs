using FalconOnnx.Checkpoints;
using FalconOnnx.Cli;
using FalconOnnx.Tests.Support;

namespace FalconOnnx.Tests.Synthesis;

public sealed class SynthCommandTests
{
    private string _folder = "";

    [SetUp]
    public void NewFolder() => _folder = TestPaths.NewTemp("cli");

    [TearDown]
    public void Remove()
    {
        if (Directory.Exists(_folder)) Directory.Delete(_folder, recursive: true);
    }

    private static (int Code, string Output, string Error) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = Program.Run(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    [Test]
    public void Cli_Synth_Tiny_WritesACheckpointAndOneSummaryLine()
    {
        var (code, output, error) = Run("synth", "--preset", "tiny", "--seed", "1", "--output", _folder);
        Assert.That((code, error), Is.EqualTo((ExitCodes.Success, "")));
        Assert.That(output, Does.Contain($"synthesized {_folder}: preset tiny, "));
        using var checkpoint = Checkpoint.Open(_folder);
        Assert.That(checkpoint.Tensors.Values.Select(t => t.DType), Is.All.EqualTo(CheckpointDType.BF16));
    }

    [Test]
    public void Cli_Synth_UnknownPreset_ExitsWith2ListingThePresets()
    {
        var (code, _, error) = Run("synth", "--preset", "huge", "--seed", "1", "--output", _folder);
        Assert.That(code, Is.EqualTo(ExitCodes.BadInput));
        Assert.That(error, Is.EqualTo("error: unknown preset 'huge'; the presets are tiny, 0.5b, 1.5b, 1.5b-deep, 3b, 7b, 34b" + Environment.NewLine));
        Assert.That(Directory.Exists(_folder), Is.False);
    }

    [Test]
    public void Cli_Synth_Like_WritesTheReleasedShapesWithFewerLayers()
    {
        // 0.5B at full width with one of its 36 layers: about 160 MB of bf16.
        var (code, output, error) = Run("synth", "--like", "tiiuae/Falcon-H1-0.5B-Base", "--layers", "1", "--seed", "1", "--output", _folder);
        Assert.That((code, error), Is.EqualTo((ExitCodes.Success, "")));
        Assert.That(output, Does.Contain($"synthesized {_folder}: tiiuae/Falcon-H1-0.5B-Base (1 of 36 layers), "));
        using var checkpoint = Checkpoint.Open(_folder);
        var entry = FalconOnnx.Models.ModelCatalog.Find("tiiuae/Falcon-H1-0.5B-Base");
        Assert.That(FalconOnnx.Models.ModelCatalog.Differences(checkpoint.Config, entry),
            Is.EqualTo(new[] { "config.json field 'num_hidden_layers' is 1; models.json has 36 for tiiuae/Falcon-H1-0.5B-Base" }));
        Assert.That(checkpoint.Tensors[FalconH1Tensors.Embedding].Shape, Is.EqualTo(new long[] { 32784, 1024 }));
    }

    [TestCase("--like", "tiiuae/Falcon-H1-13B", "error: unknown model id 'tiiuae/Falcon-H1-13B'; models.json knows tiiuae/Falcon-H1-0.5B-Base, ")]
    [TestCase("--preset", "tiny", "error: synth needs either --preset or --like (one of them)")]
    [TestCase("--layers", "3", "error: synth needs either --preset or --like (one of them)")]
    public void Cli_Synth_BadShape_ExitsWith2(string option, string value, string message)
    {
        string[] args = option == "--preset" ? ["synth", "--preset", value, "--like", "tiiuae/Falcon-H1-7B-Base"] : ["synth", option, value];
        var (code, _, error) = Run([.. args, "--seed", "1", "--output", _folder]);
        Assert.That(code, Is.EqualTo(ExitCodes.BadInput));
        Assert.That(error, Does.StartWith(message).And.EndWith(Environment.NewLine));
        Assert.That(error.TrimEnd().Split('\n'), Has.Length.EqualTo(1));
        Assert.That(Directory.Exists(_folder), Is.False);
    }

    [Test]
    public void Cli_Synth_UnknownDType_ExitsWith2()
    {
        var (code, _, error) = Run("synth", "--preset", "tiny", "--seed", "1", "--output", _folder, "--dtype", "fp8");
        Assert.That(code, Is.EqualTo(ExitCodes.BadInput));
        Assert.That(error, Is.EqualTo("error: --dtype must be bf16 or fp32, got 'fp8'" + Environment.NewLine));
    }

    [Test]
    public void Cli_Synth_ExistingOutputWithoutForce_ExitsWith2NamingTheFolder()
    {
        Directory.CreateDirectory(_folder);
        File.WriteAllText(Path.Combine(_folder, "keep.txt"), "mine");
        var (code, _, error) = Run("synth", "--preset", "tiny", "--seed", "1", "--output", _folder);
        Assert.That(code, Is.EqualTo(ExitCodes.BadInput));
        Assert.That(error, Is.EqualTo($"error: {_folder}: output folder already exists (pass --force to replace it)" + Environment.NewLine));
        Assert.That(File.ReadAllText(Path.Combine(_folder, "keep.txt")), Is.EqualTo("mine"));

        Assert.That(Run("synth", "--preset", "tiny", "--seed", "1", "--output", _folder, "--force").Code, Is.EqualTo(ExitCodes.Success));
        Assert.That(File.Exists(Path.Combine(_folder, "keep.txt")), Is.False);
    }
}
