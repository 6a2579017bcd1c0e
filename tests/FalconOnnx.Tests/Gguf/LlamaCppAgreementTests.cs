using FalconOnnx.Benchmarks.Gguf;
using FalconOnnx.Benchmarks.Peer;
using FalconOnnx.Tests.Support;
using LLama.Native;

namespace FalconOnnx.Tests.Gguf;

/// <summary>
/// llama.cpp (LLamaSharp 0.30.0's build) running our GGUF against the independent double-precision reference, which
/// itself matches Hugging Face's golden logits (ReferenceGoldenTests). tiny-a and the variants declare the gated
/// norm as norm-then-gate, which llama.cpp cannot compute (it always gates first, as every released checkpoint
/// does), so each copy here is switched to gate-then-norm and the reference follows the switch. Every μP fold,
/// the grouped norm, GQA, head_dim ≠ hidden/heads and tied embeddings are covered. llama.cpp runs with a float32 KV
/// cache and flash attention off: its CPU flash attention rounds through float16 (about 1e-3 in these logits).
/// </summary>
[TestFixture("tiny-a")]
[TestFixture("gate-first-norm-2-groups-gqa-4-to-1")]
[TestFixture("no-mamba-norm-head-dim-12")]
[TestFixture("tied-embeddings")]
[TestFixture("bf16-weights")]
[TestFixture("conv-kernel-3-group-per-head")]
public sealed class LlamaCppAgreementTests(string checkpoint)
{
    /// <summary>The bar of our own export against Hugging Face; float32 llama.cpp against the double reference lands near 5e-6.</summary>
    private const double Tolerance = 1e-4;

    private string _folder = "";
    private LlamaCppRaceEngine _engine = null!;
    private ReferenceFalconH1 _reference = null!;
    private long[] _ids = [];

    [OneTimeSetUp]
    public void WriteGgufAndLoad()
    {
        _folder = checkpoint == "tiny-a" ? CheckpointEditor.CopyTinyA("llama-agree") : TestPaths.NewTemp("llama-agree");
        if (checkpoint != "tiny-a") VariantCheckpoints.Write(VariantCheckpoints.Named(checkpoint), _folder);
        CheckpointEditor.EditConfig(_folder, c => c["mamba_norm_before_gate"] = false);
        string gguf = Path.Combine(_folder, "model-f32.gguf");
        FalconH1Gguf.Write(_folder, gguf);
        _reference = ReferenceFalconH1.Load(_folder);
        _ids = Npy.Load<long>(TestPaths.Expected("prefill_input_ids")).Data.Select(id => id % _reference.Config.VocabSize).ToArray();
        _engine = new LlamaCppRaceEngine(gguf, threads: 2, capacity: _ids.Length + 1, GGMLType.GGML_TYPE_F32, flashAttention: false);
    }

    [OneTimeTearDown]
    public void Remove()
    {
        _engine.Dispose();
        Directory.Delete(_folder, recursive: true);
    }

    [Test]
    public void Prefill_LastTokenLogitsMatchReference()
    {
        var expected = _reference.ForwardSequence(_reference.NewState(1), _ids);
        int vocab = _reference.Config.VocabSize;
        _engine.Reset();
        _engine.Prefill(_ids.Select(id => (int)id).ToArray());
        double difference = Compare.MaxAbs(_engine.NextTokenLogits(), expected.AsSpan(expected.Length - vocab));
        TestContext.Out.WriteLine($"{checkpoint}: llama.cpp prefill vs reference, max abs difference {difference:E2}");
        Assert.That(difference, Is.LessThanOrEqualTo(Tolerance));
    }

    [Test]
    public void TokenByToken_EveryPositionMatchesReference()
    {
        var expected = _reference.ForwardSequence(_reference.NewState(1), _ids);
        int vocab = _reference.Config.VocabSize;
        _engine.Reset();
        double worst = 0;
        for (int t = 0; t < _ids.Length; t++)
        {
            _engine.Prefill([(int)_ids[t]]);
            worst = Math.Max(worst, Compare.MaxAbs(_engine.NextTokenLogits(), expected.AsSpan(t * vocab, vocab)));
        }
        TestContext.Out.WriteLine($"{checkpoint}: llama.cpp one token at a time vs reference, max abs difference {worst:E2}");
        Assert.That(worst, Is.LessThanOrEqualTo(Tolerance));
    }
}
