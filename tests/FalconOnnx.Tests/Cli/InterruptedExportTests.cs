using System.Diagnostics;
using System.Text.Json.Nodes;
using FalconOnnx.Checkpoints;
using FalconOnnx.Tests.Support;

namespace FalconOnnx.Tests.Cli;

/// <summary>
/// An export stopped part-way (SIGTERM, as Ctrl-C, or SIGKILL) never leaves a half-written folder under the
/// target name; a staging folder abandoned by a killed process is removed by the next export.
/// </summary>
[NonParallelizable]
public sealed class InterruptedExportTests
{
    private string _input = "";
    private string _output = "";

    [OneTimeSetUp]
    public void CreateLargeCheckpoint()
    {
        // tiny-a with a 400k-token vocabulary: ~200 MB of weights, so the export is still writing when stopped.
        _input = CheckpointEditor.CopyTinyA("large-vocab");
        const int vocab = 400_000;
        CheckpointEditor.EditConfig(_input, c => c["vocab_size"] = vocab);
        CheckpointEditor.RewriteTensors(_input, tensors => tensors.Select(t => t.Name is FalconH1Tensors.Embedding or FalconH1Tensors.LmHead
            ? new TensorToWrite(t.Name, CheckpointDType.F32, [vocab, 64], (offset, d) => d.Fill((byte)(offset % 7)))
            : t).ToList());
    }

    [OneTimeTearDown]
    public void Remove() => Directory.Delete(_input, recursive: true);

    [SetUp]
    public void NewOutput() => _output = TestPaths.NewTemp("interrupted");

    [TearDown]
    public void RemoveOutput()
    {
        if (Directory.Exists(_output)) Directory.Delete(_output, recursive: true);
    }

    private string Parent => Path.GetDirectoryName(_output)!;

    private string[] Staging() => Directory.GetDirectories(Parent, "." + Path.GetFileName(_output) + ".*");

    private Process StartExportAndWaitForStaging()
    {
        string cli = typeof(FalconOnnx.Cli.Program).Assembly.Location;
        var process = Process.Start(new ProcessStartInfo("dotnet", [cli, "export", "--input", _input, "--output", _output])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        })!;
        var clock = Stopwatch.StartNew();
        while (Staging().Length == 0 && !process.HasExited && clock.Elapsed < TimeSpan.FromSeconds(60)) Thread.Sleep(5);
        return process;
    }

    [Test]
    public void Sigterm_RemovesTheStagingFolderAndWritesNothing()
    {
        using var process = StartExportAndWaitForStaging();
        Assume.That(process.HasExited, Is.False, "the export finished before it could be stopped");
        Process.Start("kill", ["-TERM", process.Id.ToString()])!.WaitForExit();
        Assert.That(process.WaitForExit(60_000), Is.True);
        Assert.Multiple(() =>
        {
            Assert.That(process.ExitCode, Is.EqualTo(130), process.StandardError.ReadToEnd());
            Assert.That(Directory.Exists(_output), Is.False);
            Assert.That(Staging(), Is.Empty);
        });
    }

    [Test]
    public void Sigkill_LeavesNoOutputFolder_AndTheNextExportCleansUp()
    {
        using (var process = StartExportAndWaitForStaging())
        {
            Assume.That(process.HasExited, Is.False, "the export finished before it could be killed");
            process.Kill();
            process.WaitForExit();
        }
        Assert.That(Directory.Exists(_output), Is.False, "a killed export must not leave the target folder");
        Assert.That(Staging(), Has.Length.EqualTo(1), "the killed process's staging folder is left behind");

        var (exitCode, _, stderr) = CliRunner.Run("export", "--input", _input, "--output", _output);
        Assert.Multiple(() =>
        {
            Assert.That(exitCode, Is.EqualTo(0), stderr);
            Assert.That(Staging(), Is.Empty, "the next export removes the abandoned staging folder");
            Assert.That(JsonNode.Parse(File.ReadAllText(Path.Combine(_output, "falcon_onnx.json")))!["abi_version"]!.GetValue<int>(), Is.EqualTo(1));
        });
    }
}
