using FalconOnnx.Checkpoints;
using FalconOnnx.Export;
using FalconOnnx.Models;
using FalconOnnx.Tests.Support;

namespace FalconOnnx.Tests.Cli;

/// <summary>A checkpoint of a known released model is checked against models.json: a warning line per difference, the export goes on.</summary>
public sealed class ExportModelCheckTests
{
    private string _output = "";

    [SetUp]
    public void NewOutput() => _output = TestPaths.NewTemp("checked");

    [TearDown]
    public void Remove()
    {
        if (Directory.Exists(_output)) Directory.Delete(_output, recursive: true);
    }

    [Test]
    public void Export_WithModelId_WarnsOnEveryDifferenceAndExports()
    {
        var (code, _, stderr) = CliRunner.Run("export", "--input", TestPaths.TinyA, "--output", _output, "--model-id", "tiiuae/Falcon-H1-0.5B-Instruct");
        var config = FalconH1Config.Load(Path.Combine(TestPaths.TinyA, Checkpoint.ConfigFileName));
        var expected = ModelCatalog.Differences(config, ModelCatalog.Find("tiiuae/Falcon-H1-0.5B-Instruct"));
        Assert.That(code, Is.EqualTo(0), stderr);
        Assert.That(expected, Has.Count.GreaterThan(10), "tiny-a is far from 0.5B");
        Assert.That(stderr.Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries), Is.EqualTo(expected.Select(d => "warning: " + d)));
        Assert.That(stderr, Does.Contain("warning: config.json field 'hidden_size' is 64; models.json has 1024 for tiiuae/Falcon-H1-0.5B-Instruct" + Environment.NewLine));
        Assert.That(File.Exists(Path.Combine(_output, FalconH1Exporter.ModelFileName)));
    }

    [Test]
    public void Export_NameOrPathOfAKnownModel_IsCheckedWithoutModelId()
    {
        string input = CheckpointEditor.CopyTinyA("named");
        try
        {
            CheckpointEditor.EditConfig(input, c => c["_name_or_path"] = "tiiuae/Falcon-H1-34B-Base");
            var warnings = new List<string>();
            FalconH1Exporter.Export(input, _output, new ExportOptions(), warning: warnings.Add);
            Assert.That(warnings, Does.Contain("config.json field 'mamba_n_groups' is 1; models.json has 2 for tiiuae/Falcon-H1-34B-Base"));
        }
        finally
        {
            Directory.Delete(input, recursive: true);
        }
    }

    [Test]
    public void Export_UnknownModel_IsNotChecked()
    {
        var (code, _, stderr) = CliRunner.Run("export", "--input", TestPaths.TinyA, "--output", _output);
        Assert.That((code, stderr), Is.EqualTo((0, "")));
    }

    [Test]
    public void Export_UnknownModelId_ExitsWith2()
    {
        var (code, _, stderr) = CliRunner.Run("export", "--input", TestPaths.TinyA, "--output", _output, "--model-id", "tiiuae/Falcon-H1-13B");
        Assert.That(code, Is.EqualTo(2));
        Assert.That(stderr, Does.StartWith("error: unknown model id 'tiiuae/Falcon-H1-13B'; models.json knows tiiuae/Falcon-H1-0.5B-Base, "));
        Assert.That(stderr.TrimEnd().Split('\n'), Has.Length.EqualTo(1));
        Assert.That(Directory.Exists(_output), Is.False);
    }
}
