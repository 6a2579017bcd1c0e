using System.Text.Json.Nodes;
using FalconOnnx.Checkpoints;
using FalconOnnx.Export;
using FalconOnnx.Synthesis;
using FalconOnnx.Tests.Support;

namespace FalconOnnx.Tests.Synthesis;

/// <summary>Checkpoints past the shard limit are written as Hugging Face shards, and read back as one checkpoint.</summary>
public sealed class ShardedSynthesisTests
{
    private readonly TempFolders _temp = new();

    [TearDown]
    public void Remove() => _temp.RemoveAll();

    private string Temp(string name) => _temp.New(name);

    private static TensorToWrite Tensor(string name, long bytes) => new(name, CheckpointDType.BF16, [bytes / 2], (_, _) => { });

    [Test]
    public void Split_FollowsHuggingFace_NewShardBeforeTheLimitAndOversizeTensorsAlone()
    {
        var tensors = new[] { Tensor("a", 40), Tensor("b", 40), Tensor("c", 30), Tensor("d", 200), Tensor("e", 20), Tensor("f", 100) };
        var shards = SafetensorsShards.Split(tensors, maxShardBytes: 100);
        // a+b = 80 and c would make 110: c starts a new shard; d (over the limit) gets its own, placed before the shard
        // being filled; c+e = 50 and f would make 150; f (exactly the limit) fills one.
        Assert.That(shards.Select(s => string.Concat(s.Select(t => t.Name))), Is.EqualTo(new[] { "ab", "d", "ce", "f" }));
        Assert.That(SafetensorsShards.ShardName(2, 13), Is.EqualTo("model-00002-of-00013.safetensors"));
    }

    [Test]
    public void Synth_PastTheShardLimit_WritesShardsAndAnIndex_ThatExportLikeOneFile()
    {
        // The tiny preset is about 300 kB in bf16; 100 kB shards give several files, tensors never split.
        string single = Temp("single"), sharded = Temp("sharded");
        CheckpointSynthesizer.Synthesize(SynthPresets.Tiny, 4, single);
        var result = CheckpointSynthesizer.Synthesize(SynthPresets.Tiny, 4, sharded, CheckpointDType.BF16, false, null, -1, CancellationToken.None, maxShardBytes: 100_000);

        string[] shardFiles = Directory.GetFiles(sharded, "model-*.safetensors").Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray()!;
        Assert.That(result.Shards, Is.GreaterThan(2).And.EqualTo(shardFiles.Length));
        Assert.That(shardFiles, Is.EqualTo(Enumerable.Range(1, shardFiles.Length).Select(i => SafetensorsShards.ShardName(i, shardFiles.Length))));
        Assert.That(File.Exists(Path.Combine(sharded, Checkpoint.SingleFileName)), Is.False);
        foreach (string file in shardFiles) Assert.That(new FileInfo(Path.Combine(sharded, file)).Length, Is.LessThan(100_000 + 4096), file);

        var index = JsonNode.Parse(File.ReadAllText(Path.Combine(sharded, Checkpoint.IndexFileName)))!;
        using (var a = Checkpoint.Open(single))
        using (var b = Checkpoint.Open(sharded))
        {
            Assert.That(b.Files, Has.Count.EqualTo(shardFiles.Length));
            Assert.That(index["metadata"]!["total_size"]!.GetValue<long>(), Is.EqualTo(a.Tensors.Values.Sum(t => t.ByteLength)));
            Assert.That(index["weight_map"]!.AsObject().Select(p => p.Key), Is.Ordered.Using((IComparer<string>)StringComparer.Ordinal));
            foreach (var (name, tensor) in a.Tensors)
                Assert.That(Floats(b[name]), Is.EqualTo(Floats(tensor)), name);
        }

        string exportedSingle = Temp("single-onnx"), exportedSharded = Temp("sharded-onnx");
        FalconH1Exporter.Export(single, exportedSingle, new ExportOptions());
        FalconH1Exporter.Export(sharded, exportedSharded, new ExportOptions());
        Assert.That(File.ReadAllBytes(Path.Combine(exportedSharded, FalconH1Exporter.DataFileName)),
            Is.EqualTo(File.ReadAllBytes(Path.Combine(exportedSingle, FalconH1Exporter.DataFileName))));
        using var model = new OnnxStepper(exportedSharded);
        Assert.That(model.Manifest.Source.Files.Select(f => f.Name), Is.EqualTo(shardFiles));
        Assert.That(model.RunSequence(model.NewState(1), [1, 40, 300, 17]), Is.All.Matches<float>(float.IsFinite));
    }

    private static float[] Floats(TensorEntry tensor)
    {
        var values = new float[tensor.ElementCount];
        tensor.ReadFloats(0, values);
        return values;
    }
}
