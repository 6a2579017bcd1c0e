using System.Text.Json.Nodes;
using FalconOnnx.Tests.Support;

namespace FalconOnnx.Tests.Cli;

/// <summary>
/// Every refused input gives one line naming the file, field or tensor and the bad value, exit code 2, and no
/// output folder (nor a staging folder) left behind.
/// </summary>
public sealed class ExportBadInputTests
{
    private string _input = "";
    private string _output = "";

    [SetUp]
    public void Copy()
    {
        _input = CheckpointEditor.CopyTinyA("input");
        _output = TestPaths.NewTemp("output");
    }

    [TearDown]
    public void Remove()
    {
        foreach (string path in new[] { _input, _output })
            if (Directory.Exists(path)) Directory.Delete(path, recursive: true);
    }

    private string Model => Path.Combine(_input, "model.safetensors");

    private void ExpectRefusal(params string[] fragments)
    {
        var (exitCode, stdout, stderr) = CliRunner.Run("export", "--input", _input, "--output", _output);
        string message = stderr.Trim();
        Assert.Multiple(() =>
        {
            Assert.That(exitCode, Is.EqualTo(2), $"stdout: {stdout}\nstderr: {stderr}");
            Assert.That(message.Split('\n'), Has.Length.EqualTo(1), "the error is one line");
            foreach (string fragment in fragments) Assert.That(message, Does.Contain(fragment));
            Assert.That(Directory.Exists(_output), Is.False, "no output folder");
            Assert.That(Directory.EnumerateDirectories(Path.GetDirectoryName(_output)!, "." + Path.GetFileName(_output) + "*"), Is.Empty, "no staging folder");
        });
    }

    [Test]
    public void MissingConfig_IsRejected()
    {
        File.Delete(Path.Combine(_input, "config.json"));
        ExpectRefusal("config.json", "not found");
    }

    [Test]
    public void MissingField_IsRejected()
    {
        CheckpointEditor.EditConfig(_input, c => c.Remove("model_type"));
        ExpectRefusal("config.json", "'model_type'", "missing");
    }

    [Test]
    public void InconsistentFields_AreRejected()
    {
        CheckpointEditor.EditConfig(_input, c => c["mamba_d_head"] = 12);
        ExpectRefusal("config.json", "'mamba_d_ssm'", "128", "mamba_n_heads (8) x mamba_d_head (12) = 96");
    }

    [Test]
    public void WrongFieldType_IsRejected()
    {
        CheckpointEditor.EditConfig(_input, c => c["hidden_size"] = "sixty-four");
        ExpectRefusal("config.json", "'hidden_size'", "\"sixty-four\"");
    }

    [Test]
    public void KeyValueHeadsNotDividingHeads_AreRejected()
    {
        CheckpointEditor.EditConfig(_input, c => c["num_key_value_heads"] = 3);
        ExpectRefusal("'num_attention_heads'", "(4)", "num_key_value_heads (3)");
    }

    [Test]
    public void UnknownModelType_IsRejected()
    {
        CheckpointEditor.EditConfig(_input, c => c["model_type"] = "llama");
        ExpectRefusal("config.json", "'model_type'", "\"llama\"");
    }

    [Test]
    public void TruncatedSafetensors_IsRejected()
    {
        var bytes = File.ReadAllBytes(Model);
        File.WriteAllBytes(Model, bytes[..(bytes.Length / 2)]);
        ExpectRefusal("model.safetensors", "data section");
    }

    [Test]
    public void FileShorterThanHeaderLength_IsRejected()
    {
        File.WriteAllBytes(Model, [1, 2, 3]);
        ExpectRefusal("model.safetensors", "truncated", "3 bytes");
    }

    [Test]
    public void HeaderLengthBeyondFile_IsRejected()
    {
        var bytes = File.ReadAllBytes(Model);
        BitConverter.GetBytes((ulong)bytes.Length + 100).CopyTo(bytes, 0);
        File.WriteAllBytes(Model, bytes);
        ExpectRefusal("model.safetensors", $"header length {bytes.Length + 100}", "beyond the end of the file");
    }

    [Test]
    public void HeaderLengthBeyondCap_IsRejected()
    {
        var bytes = File.ReadAllBytes(Model);
        BitConverter.GetBytes(200_000_000UL).CopyTo(bytes, 0);
        File.WriteAllBytes(Model, bytes);
        ExpectRefusal("model.safetensors", "header length 200000000", "limit");
    }

    [Test]
    public void OffsetsOutsideData_AreRejected()
    {
        CheckpointEditor.EditHeader(Model, h =>
        {
            var entry = h["lm_head.weight"]!.AsObject();
            long begin = entry["data_offsets"]![0]!.GetValue<long>();
            entry["data_offsets"] = new JsonArray(begin + 1_000_000, begin + 1_000_000 + 256 * 64 * 4);
        });
        ExpectRefusal("model.safetensors", "'lm_head.weight'", "beyond the data section");
    }

    [Test]
    public void OverlappingTensors_AreRejected()
    {
        CheckpointEditor.EditHeader(Model, h =>
        {
            var entry = h["model.final_layernorm.weight"]!.AsObject();
            entry["data_offsets"] = new JsonArray(4, 4 + 64 * 4);
        });
        ExpectRefusal("model.safetensors", "'model.final_layernorm.weight'", "overlaps");
    }

    [Test]
    public void ByteLengthDisagreeingWithShape_IsRejected()
    {
        CheckpointEditor.EditHeader(Model, h => h["model.final_layernorm.weight"]!["shape"] = new JsonArray(65));
        ExpectRefusal("model.safetensors", "'model.final_layernorm.weight'", "[65]", "needs 260");
    }

    [Test]
    public void MissingTensor_IsRejected()
    {
        CheckpointEditor.RewriteTensors(_input, tensors => tensors.Where(t => t.Name != "model.layers.1.mamba.D").ToList());
        ExpectRefusal("'model.layers.1.mamba.D'", "[8]", "missing");
    }

    [Test]
    public void UnexpectedTensor_IsRejected()
    {
        CheckpointEditor.RewriteTensors(_input, tensors =>
            [.. tensors, new("model.layers.0.mamba.extra.weight", FalconOnnx.Checkpoints.CheckpointDType.F32, [4], (_, d) => d.Clear())]);
        ExpectRefusal("model.safetensors", "unexpected tensor 'model.layers.0.mamba.extra.weight'", "[4]");
    }

    [Test]
    public void LmHeadWithTiedEmbeddings_IsRejected()
    {
        CheckpointEditor.EditConfig(_input, c => c["tie_word_embeddings"] = true);
        ExpectRefusal("unexpected tensor 'lm_head.weight'", "tie_word_embeddings");
    }

    [Test]
    public void ShardNamedByIndexButAbsent_IsRejected()
    {
        CheckpointEditor.Shard(_input);
        File.Delete(Path.Combine(_input, "model-00002-of-00002.safetensors"));
        ExpectRefusal("model.safetensors.index.json", "'model-00002-of-00002.safetensors'", "missing");
    }

    [Test]
    public void ExistingOutputWithoutForce_IsRejectedAndKept()
    {
        Directory.CreateDirectory(_output);
        File.WriteAllText(Path.Combine(_output, "keep.txt"), "mine");
        var (exitCode, _, stderr) = CliRunner.Run("export", "--input", _input, "--output", _output);
        Assert.Multiple(() =>
        {
            Assert.That(exitCode, Is.EqualTo(2));
            Assert.That(stderr.Trim(), Does.Contain(_output).And.Contain("already exists").And.Contain("--force"));
            Assert.That(File.ReadAllText(Path.Combine(_output, "keep.txt")), Is.EqualTo("mine"), "the existing folder is untouched");
        });
    }

    [Test]
    public void ExistingOutputWithForce_IsReplaced()
    {
        Directory.CreateDirectory(_output);
        File.WriteAllText(Path.Combine(_output, "old.txt"), "old");
        var (exitCode, stdout, stderr) = CliRunner.Run("export", "--input", _input, "--output", _output, "--force");
        Assert.Multiple(() =>
        {
            Assert.That(exitCode, Is.EqualTo(0), stderr);
            Assert.That(File.Exists(Path.Combine(_output, "old.txt")), Is.False);
            Assert.That(File.Exists(Path.Combine(_output, "model.onnx")), Is.True);
            Assert.That(stdout, Does.Contain("exported"));
        });
    }
}
