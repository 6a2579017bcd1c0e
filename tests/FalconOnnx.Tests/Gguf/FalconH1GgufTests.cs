using System.Text;
using FalconOnnx.Benchmarks.Gguf;
using FalconOnnx.Checkpoints;
using FalconOnnx.Synthesis;
using FalconOnnx.Tests.Support;

namespace FalconOnnx.Tests.Gguf;

/// <summary>The benchmark suite's GGUF writer, read back by its own reader and checked byte by byte where it matters.</summary>
public sealed class FalconH1GgufTests
{
    private string _checkpoint = "";
    private string _gguf = "";
    private GgufReader _reader = null!;

    [OneTimeSetUp]
    public void WriteTinyPreset()
    {
        _checkpoint = TestPaths.NewTemp("gguf-tiny-hf");
        CheckpointSynthesizer.Synthesize(SynthPresets.Tiny, 3, _checkpoint);
        _gguf = Path.Combine(TestPaths.NewTemp("gguf-tiny"), "tiny-f32.gguf");
        Directory.CreateDirectory(Path.GetDirectoryName(_gguf)!);
        FalconH1Gguf.Write(_checkpoint, _gguf);
        _reader = GgufReader.Open(_gguf);
    }

    [OneTimeTearDown]
    public void Remove()
    {
        Directory.Delete(_checkpoint, recursive: true);
        Directory.Delete(Path.GetDirectoryName(_gguf)!, recursive: true);
    }

    [Test]
    public void Header_IsGgufVersion3WithCountsOfTheFile()
    {
        using var stream = File.OpenRead(_gguf);
        using var raw = new BinaryReader(stream);
        Assert.Multiple(() =>
        {
            Assert.That(Encoding.ASCII.GetString(raw.ReadBytes(4)), Is.EqualTo("GGUF"));
            Assert.That(raw.ReadUInt32(), Is.EqualTo(3u));
            Assert.That(raw.ReadUInt64(), Is.EqualTo((ulong)_reader.Tensors.Count));
            Assert.That(raw.ReadUInt64(), Is.EqualTo((ulong)_reader.Metadata.Count));
        });
    }

    [Test]
    public void Layout_DataSectionAndEveryTensorAreAlignedTo32AndFillTheFile()
    {
        var last = _reader.Tensors.MaxBy(t => t.Offset)!;
        Assert.Multiple(() =>
        {
            Assert.That(_reader.Alignment, Is.EqualTo(32));
            Assert.That(_reader.Metadata.ContainsKey(GgufFormat.AlignmentKey), Is.False, "the default alignment is not declared");
            Assert.That(_reader.DataOffset % 32, Is.Zero);
            Assert.That(_reader.Tensors.Select(t => t.Offset % 32), Is.All.Zero);
            Assert.That(_reader.Tensors.Select(t => t.Type), Is.All.EqualTo(GgmlType.F32));
            Assert.That(_reader.FileLength, Is.EqualTo(_reader.DataOffset + GgufFormat.Align(last.Offset + last.ByteSize, 32)));
        });
    }

    [Test]
    public void Metadata_CarriesLlamaCppFalconH1Keys()
    {
        var c = SynthPresets.Tiny;
        string a = FalconH1Gguf.Architecture;
        Assert.Multiple(() =>
        {
            Assert.That(_reader.Get<string>("general.architecture"), Is.EqualTo("falcon-h1"));
            Assert.That(_reader.Get<uint>($"{a}.block_count"), Is.EqualTo((uint)c.NumHiddenLayers));
            Assert.That(_reader.Get<uint>($"{a}.embedding_length"), Is.EqualTo((uint)c.HiddenSize));
            Assert.That(_reader.Get<uint>($"{a}.feed_forward_length"), Is.EqualTo((uint)c.IntermediateSize));
            Assert.That(_reader.Get<uint>($"{a}.attention.head_count"), Is.EqualTo((uint)c.NumAttentionHeads));
            Assert.That(_reader.Get<uint>($"{a}.attention.head_count_kv"), Is.EqualTo((uint)c.NumKeyValueHeads));
            Assert.That(_reader.Get<uint>($"{a}.attention.key_length"), Is.EqualTo((uint)c.HeadDim));
            Assert.That(_reader.Get<uint>($"{a}.attention.value_length"), Is.EqualTo((uint)c.HeadDim));
            Assert.That(_reader.Get<float>($"{a}.attention.layer_norm_rms_epsilon"), Is.EqualTo((float)c.RmsNormEps));
            Assert.That(_reader.Get<float>($"{a}.rope.freq_base"), Is.EqualTo((float)c.RopeTheta));
            Assert.That(_reader.Get<uint>($"{a}.ssm.conv_kernel"), Is.EqualTo((uint)c.MambaDConv));
            Assert.That(_reader.Get<uint>($"{a}.ssm.inner_size"), Is.EqualTo((uint)c.MambaDSsm));
            Assert.That(_reader.Get<uint>($"{a}.ssm.state_size"), Is.EqualTo((uint)c.MambaDState));
            Assert.That(_reader.Get<uint>($"{a}.ssm.time_step_rank"), Is.EqualTo((uint)c.MambaNHeads), "llama.cpp carries the Mamba head count here");
            Assert.That(_reader.Get<uint>($"{a}.ssm.group_count"), Is.EqualTo((uint)c.MambaNGroups));
            Assert.That(_reader.Get<string>("tokenizer.ggml.model"), Is.EqualTo("gpt2"));
            Assert.That(_reader.Get<string>("tokenizer.ggml.pre"), Is.EqualTo("falcon-h1"));
            Assert.That(_reader.Get<object[]>("tokenizer.ggml.tokens"), Has.Length.EqualTo(c.VocabSize));
            Assert.That(_reader.Get<object[]>("tokenizer.ggml.token_type"), Has.Length.EqualTo(c.VocabSize));
            Assert.That(_reader.Get<object[]>("tokenizer.ggml.merges"), Is.Not.Empty);
            Assert.That(_reader.Get<uint>("tokenizer.ggml.bos_token_id"), Is.EqualTo((uint)c.BosTokenId));
            Assert.That(_reader.Get<uint>("tokenizer.ggml.eos_token_id"), Is.EqualTo((uint)c.EosTokenId));
            Assert.That(_reader.Get<uint>("tokenizer.ggml.padding_token_id"), Is.EqualTo((uint)c.PadTokenId));
        });
    }

    [Test]
    public void Tensors_HaveLlamaCppNamesAndGgmlDimensionOrder()
    {
        var c = CheckpointSynthesizer.Config(SynthPresets.Tiny);
        long h = c.HiddenSize;
        long[] Dims(string name) => _reader.Tensor(name).Dimensions;
        Assert.Multiple(() =>
        {
            Assert.That(_reader.Tensors, Has.Count.EqualTo(3 + 17 * c.NumHiddenLayers), "token_embd, output_norm, output and 17 per layer");
            Assert.That(Dims("token_embd.weight"), Is.EqualTo(new[] { h, c.VocabSize }));
            Assert.That(Dims("output.weight"), Is.EqualTo(new[] { h, c.VocabSize }));
            Assert.That(Dims("blk.1.attn_q.weight"), Is.EqualTo(new[] { h, c.QueryDim }));
            Assert.That(Dims("blk.1.attn_output.weight"), Is.EqualTo(new[] { c.QueryDim, h }));
            Assert.That(Dims("blk.1.ssm_in.weight"), Is.EqualTo(new[] { h, c.InProjDim }));
            Assert.That(Dims("blk.1.ssm_conv1d.weight"), Is.EqualTo(new long[] { c.MambaDConv, c.ConvDim }));
            Assert.That(Dims("blk.1.ssm_a"), Is.EqualTo(new long[] { 1, c.MambaNHeads }));
            Assert.That(Dims("blk.1.ssm_d"), Is.EqualTo(new long[] { 1, c.MambaNHeads }));
            Assert.That(Dims("blk.1.ssm_norm.weight"), Is.EqualTo(new long[] { c.MambaDSsm / c.MambaNGroups, c.MambaNGroups }));
            Assert.That(Dims("blk.1.ssm_out.weight"), Is.EqualTo(new[] { c.MambaDSsm, h }));
            Assert.That(Dims("blk.1.ffn_norm"), Is.EqualTo(new[] { h }), "llama.cpp names the pre-FFN norm without .weight");
            Assert.That(Dims("blk.1.ffn_down.weight"), Is.EqualTo(new[] { c.IntermediateSize, h }));
        });
    }

    [Test]
    public void Values_AreTheCheckpointsWithLlamaCppsFolds()
    {
        using var checkpoint = Checkpoint.Open(_checkpoint);
        var c = checkpoint.Config;
        float[] Source(string name) { var e = checkpoint[name]; var v = new float[e.ElementCount]; e.ReadFloats(0, v); return v; }
        float[] Written(string name) => _reader.ReadFloats(_reader.Tensor(name));
        var inProj = Source(FalconH1Tensors.Layer(0, "mamba.in_proj.weight"));
        var inProjWritten = Written("blk.0.ssm_in.weight");
        int dtRow = c.InProjDim - 1, zRow = 0;
        Assert.Multiple(() =>
        {
            Assert.That(Written("token_embd.weight"), Is.EqualTo(Source(FalconH1Tensors.Embedding).Select(x => x * (float)c.EmbeddingMultiplier)).Within(1e-6));
            Assert.That(Written("output.weight"), Is.EqualTo(Source(FalconH1Tensors.LmHead).Select(x => x * (float)c.LmHeadMultiplier)).Within(1e-6));
            Assert.That(Written("blk.0.attn_k.weight"), Is.EqualTo(Source(FalconH1Tensors.Layer(0, "self_attn.k_proj.weight"))
                .Select(x => x * (float)c.KeyMultiplier * (float)c.AttentionInMultiplier)).Within(1e-6));
            Assert.That(Written("blk.0.ssm_a"), Is.EqualTo(Source(FalconH1Tensors.Layer(0, "mamba.A_log")).Select(x => -MathF.Exp(x))).Within(1e-6));
            Assert.That(Written("blk.0.ssm_conv1d.weight"), Is.EqualTo(Source(FalconH1Tensors.Layer(0, "mamba.conv1d.weight"))));
            Assert.That(inProjWritten[(zRow * c.HiddenSize)..((zRow + 1) * c.HiddenSize)],
                Is.EqualTo(inProj[(zRow * c.HiddenSize)..((zRow + 1) * c.HiddenSize)].Select(x => x * (float)c.SsmInMultiplier * (float)c.SsmMultipliers[0])).Within(1e-6));
            Assert.That(inProjWritten[(dtRow * c.HiddenSize)..],
                Is.EqualTo(inProj[(dtRow * c.HiddenSize)..].Select(x => x * (float)c.SsmInMultiplier * (float)c.SsmMultipliers[4])).Within(1e-6));
            Assert.That(Written("blk.0.ffn_down.weight"), Is.EqualTo(Source(FalconH1Tensors.Layer(0, "feed_forward.down_proj.weight"))
                .Select(x => x * (float)c.MlpMultipliers[1])).Within(1e-6));
        });
    }

    [TestCase("tiny-a", "mamba_norm_before_gate")]
    [TestCase("all-biases-no-conv-bias", "attention_bias")]
    [TestCase("dt-limit-rope-theta-1e11", "time_step_limit")]
    public void Writer_RefusesWhatLlamaCppWouldComputeDifferently(string checkpoint, string field)
    {
        string folder = checkpoint == "tiny-a" ? CheckpointEditor.CopyTinyA("gguf-refuse") : TestPaths.NewTemp("gguf-refuse");
        if (checkpoint != "tiny-a")
        {
            VariantCheckpoints.Write(VariantCheckpoints.Named(checkpoint), folder);
            // Only the field under test may stand in the way.
            CheckpointEditor.EditConfig(folder, c => c["mamba_norm_before_gate"] = false);
        }
        try
        {
            string output = Path.Combine(folder, "out.gguf");
            var error = Assert.Throws<GgufException>(() => FalconH1Gguf.Write(folder, output));
            Assert.That(error!.Message, Does.Contain($"'{field}'"));
            Assert.That(File.Exists(output), Is.False);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
