using FalconOnnx.Checkpoints;
using FalconOnnx.Export;
using FalconOnnx.Tests.Support;

namespace FalconOnnx.Tests.Export;

/// <summary>Large tensors stream through the export block by block: the progress moves within a tensor and a cancel stops it there.</summary>
public sealed class StreamingExportTests
{
    private string _input = "";
    private string _output = "";

    [OneTimeSetUp]
    public void CreateLargeVocabulary()
    {
        // tiny-a with a 300k-token vocabulary: embedding and lm_head of 77 MB each in float32, several 32 MB blocks.
        _input = CheckpointEditor.CopyTinyA("streaming");
        const int vocab = 300_000;
        CheckpointEditor.EditConfig(_input, c => c["vocab_size"] = vocab);
        CheckpointEditor.RewriteTensors(_input, tensors => tensors.Select(t => t.Name is FalconH1Tensors.Embedding or FalconH1Tensors.LmHead
            ? new TensorToWrite(t.Name, CheckpointDType.F32, [vocab, 64], (offset, d) => d.Fill((byte)(offset % 5)))
            : t).ToList());
    }

    [OneTimeTearDown]
    public void Remove() => Directory.Delete(_input, recursive: true);

    [SetUp]
    public void NewOutput() => _output = TestPaths.NewTemp("streamed");

    [TearDown]
    public void RemoveOutput()
    {
        if (Directory.Exists(_output)) Directory.Delete(_output, recursive: true);
    }

    [Test]
    public void Export_Progress_MovesWithinLargeTensorsAndReachesTheDataSize()
    {
        var reports = new List<ExportProgress>();
        var result = FalconH1Exporter.Export(_input, _output, new ExportOptions(), reports.Add);
        var weights = reports.Where(r => r.Tensor is not null).ToList();
        Assert.Multiple(() =>
        {
            Assert.That(weights.Select(r => r.BytesDone), Is.Ordered);
            Assert.That(weights[^1].BytesDone, Is.EqualTo(weights[^1].TotalBytes));
            Assert.That(weights[^1].TensorsDone, Is.EqualTo(weights[^1].TensorCount));
            Assert.That(weights.Count(r => r.Tensor == "lm_head.weight"), Is.GreaterThanOrEqualTo(3), "a 77 MB tensor reports each 32 MB block");
            Assert.That(weights[^1].TotalBytes, Is.LessThanOrEqualTo(result.Files.Single(f => f.Name == FalconH1Exporter.DataFileName).Bytes));
        });
    }

    [Test]
    public void Export_CancelledWithinATensor_StopsThereAndLeavesNothing()
    {
        using var cancellation = new CancellationTokenSource();
        string? cancelledIn = null;
        var last = default(ExportProgress);
        Assert.Catch<OperationCanceledException>(() => FalconH1Exporter.Export(_input, _output, new ExportOptions(), p =>
        {
            last = p;
            if (p.Tensor == "model.embed_tokens.weight" && cancelledIn is null)
            {
                cancelledIn = p.Tensor;
                cancellation.Cancel();
            }
        }, cancellation.Token));
        Assert.That(cancelledIn, Is.Not.Null);
        Assert.That(last.Tensor, Is.EqualTo("model.embed_tokens.weight"), "no block of any later tensor was queued");
        string parent = Path.GetDirectoryName(_output)!, name = Path.GetFileName(_output);
        Assert.That(Directory.EnumerateFileSystemEntries(parent).Select(Path.GetFileName).Where(e => e!.Contains(name)), Is.Empty);
    }
}
