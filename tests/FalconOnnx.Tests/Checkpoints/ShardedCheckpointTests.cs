using FalconOnnx.Checkpoints;
using FalconOnnx.Export;
using FalconOnnx.Tests.Support;

namespace FalconOnnx.Tests.Checkpoints;

public sealed class ShardedCheckpointTests
{
    [Test]
    public void ShardedCheckpoint_ExportsTheSameModelAsTheSingleFile()
    {
        string input = CheckpointEditor.CopyTinyA("sharded");
        string output = TestPaths.NewTemp("sharded-onnx");
        try
        {
            CheckpointEditor.Shard(input);
            using (var checkpoint = Checkpoint.Open(input))
                Assert.That(checkpoint.Files, Has.Count.EqualTo(2));
            FalconH1Exporter.Export(input, output, new ExportOptions());
            var ids = Npy.Load<long>(TestPaths.Expected("prefill_input_ids"));
            var expected = Npy.Load<float>(TestPaths.Expected("prefill_logits"));
            using var model = new OnnxStepper(output);
            Assert.That(Compare.MaxAbs(model.RunSequence(model.NewState(1), ids.Data), expected.Data), Is.LessThanOrEqualTo(1e-4));
            Assert.That(model.Manifest.Source.Files.Select(f => f.Name), Is.EqualTo(new[] { "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors" }));
        }
        finally
        {
            Directory.Delete(input, recursive: true);
            if (Directory.Exists(output)) Directory.Delete(output, recursive: true);
        }
    }

    [Test]
    public void TensorInAShardButNotInTheIndex_IsRejected()
    {
        string input = CheckpointEditor.CopyTinyA("sharded-extra");
        try
        {
            CheckpointEditor.Shard(input);
            string index = Path.Combine(input, Checkpoint.IndexFileName);
            var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(index))!;
            json["weight_map"]!.AsObject().Remove("model.final_layernorm.weight");
            File.WriteAllText(index, json.ToJsonString());
            var error = Assert.Throws<FalconOnnxException>(() => Checkpoint.Open(input).Dispose());
            Assert.That(error!.Message, Does.Contain("'model.final_layernorm.weight'").And.Contain("not listed"));
        }
        finally
        {
            Directory.Delete(input, recursive: true);
        }
    }
}
