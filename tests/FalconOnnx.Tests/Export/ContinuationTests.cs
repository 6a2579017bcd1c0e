using FalconOnnx.Export;
using FalconOnnx.Tests.Support;

namespace FalconOnnx.Tests.Export;

/// <summary>
/// The ABI continues exactly from any past: chunked prefill, multi-token continuation and one-token decode all
/// give the logits of one long prefill (HF itself cannot continue with more than one token).
/// </summary>
public sealed class ContinuationTests
{
    /// <summary>The three exports: ort lowering with GroupQueryAttention (the default), ort with concat attention, onnx.</summary>
    public enum Variant { OrtGqa, OrtConcat, Onnx, CustomGqa }

    private static readonly Dictionary<Variant, string> Folders = [];

    private static ExportOptions Options(Variant variant) => variant switch
    {
        Variant.OrtGqa => new ExportOptions { Ssm = SsmLowering.Ort, Attention = AttentionLowering.Gqa },
        Variant.OrtConcat => new ExportOptions { Ssm = SsmLowering.Ort, Attention = AttentionLowering.Concat },
        Variant.CustomGqa => new ExportOptions { Ssm = SsmLowering.Custom },
        _ => new ExportOptions { Ssm = SsmLowering.Onnx },
    };

    [OneTimeSetUp]
    public void ExportAll()
    {
        foreach (var variant in Enum.GetValues<Variant>())
        {
            string folder = TestPaths.NewTemp("tiny-a-" + variant);
            FalconH1Exporter.Export(TestPaths.TinyA, folder, Options(variant));
            Folders[variant] = folder;
        }
    }

    [OneTimeTearDown]
    public void Remove()
    {
        foreach (var folder in Folders.Values) Directory.Delete(folder, recursive: true);
        Folders.Clear();
    }

    private const int MaxLength = 64;

    private static long[] Prompt => Npy.Load<long>(TestPaths.Expected("prefill_input_ids")).Data;

    private static float[] InChunks(OnnxStepper model, long[] ids, int chunk)
    {
        var state = model.NewState(1);
        var logits = new List<float>();
        for (int start = 0; start < ids.Length; start += chunk)
            logits.AddRange(model.RunSequence(state, ids.AsSpan(start, Math.Min(chunk, ids.Length - start))));
        return logits.ToArray();
    }

    [Test]
    public void ChunkedPrompt_EqualsOnePrefill([Values] Variant ssm, [Values(1, 5, 16, 37)] int chunk)
    {
        using var model = new OnnxStepper(Folders[ssm]);
        var whole = model.RunSequence(model.NewState(1), Prompt);
        var chunked = InChunks(model, Prompt, chunk);
        double difference = Compare.MaxAbs(chunked, whole);
        TestContext.Out.WriteLine($"{ssm}, chunks of {chunk}: max abs difference {difference:E2}");
        Assert.That(difference, Is.LessThanOrEqualTo(1e-4));
    }

    [Test]
    public void LoweringsAgree([Values(Variant.Onnx, Variant.CustomGqa)] Variant other, [Values(1, 5, 16, 37)] int chunk)
    {
        using var ort = new OnnxStepper(Folders[Variant.OrtGqa]);
        using var onnx = new OnnxStepper(Folders[other]);
        var ortState = ort.NewState(1);
        var onnxState = onnx.NewState(1);
        double logits = 0, states = 0;
        for (int start = 0; start < Prompt.Length; start += chunk)
        {
            var ids = Prompt.AsSpan(start, Math.Min(chunk, Prompt.Length - start));
            logits = Math.Max(logits, Compare.MaxAbs(ort.RunSequence(ortState, ids), onnx.RunSequence(onnxState, ids)));
            for (int layer = 0; layer < ort.Dims.NumLayers; layer++)
            {
                states = Math.Max(states, Compare.MaxAbs(ortState.Recurrent[layer], onnxState.Recurrent[layer]));
                states = Math.Max(states, Compare.MaxAbs(ortState.Conv[layer], onnxState.Conv[layer]));
                states = Math.Max(states, Compare.MaxAbs(ortState.Keys[layer], onnxState.Keys[layer]));
            }
        }
        TestContext.Out.WriteLine($"chunks of {chunk}: logits {logits:E2}, states {states:E2}");
        Assert.Multiple(() =>
        {
            Assert.That(logits, Is.LessThanOrEqualTo(1e-5));
            Assert.That(states, Is.LessThanOrEqualTo(1e-5));
        });
    }

    [Test]
    public void StatesBoundInPlace_EqualSeparateBuffers([Values] Variant ssm)
    {
        using var separate = new OnnxStepper(Folders[ssm], inPlaceStates: false);
        using var inPlace = new OnnxStepper(Folders[ssm], inPlaceStates: true, maxLength: MaxLength);
        var a = separate.NewState(1);
        var b = inPlace.NewState(1);
        double worst = 0;
        // A multi-token prefill, a multi-token continuation, then single-token steps: every code path.
        foreach (var ids in new[] { Prompt[..20], Prompt[20..29], Prompt[29..30], Prompt[30..31], Prompt[31..] })
            worst = Math.Max(worst, Compare.MaxAbs(separate.RunSequence(a, ids), inPlace.RunSequence(b, ids)));
        for (int layer = 0; layer < separate.Dims.NumLayers; layer++)
        {
            worst = Math.Max(worst, Compare.MaxAbs(a.Recurrent[layer], b.Recurrent[layer]));
            worst = Math.Max(worst, Compare.MaxAbs(a.Conv[layer], b.Conv[layer]));
        }
        for (int layer = 0; layer < separate.Dims.NumLayers && inPlace.Manifest.Graph.PastPresentShareBuffer; layer++)
        {
            // The shared buffer holds the same keys in its first positions.
            int hd = separate.Dims.HeadDim, kvHeads = separate.Dims.NumKeyValueHeads;
            for (int h = 0; h < kvHeads; h++)
                worst = Math.Max(worst, Compare.MaxAbs(a.Keys[layer].AsSpan(h * a.PastLength * hd, a.PastLength * hd), b.Keys[layer].AsSpan(h * MaxLength * hd, a.PastLength * hd)));
        }
        Assert.That(worst, Is.EqualTo(0), "in-place state updates must give bit-identical results");
    }

    [Test]
    public void PaddedRowContinuation_MatchesRowAlone([Values(Variant.OrtConcat, Variant.Onnx)] Variant ssm)
    {
        // Row 1 is left-padded by 6 and its first chunk holds only pads: pads must leave the states untouched.
        // (GroupQueryAttention cannot continue a batch of several rows with more than one token.)
        using var model = new OnnxStepper(Folders[ssm]);
        var prompt = Prompt;
        int padding = 6, length = 20;
        var batchIds = new long[2 * length];
        var mask = new long[2 * length];
        var positions = new long[2 * length];
        for (int t = 0; t < length; t++)
        {
            batchIds[t] = prompt[t];
            mask[t] = 1;
            positions[t] = t;
            bool pad = t < padding;
            batchIds[length + t] = pad ? 0 : prompt[t - padding];
            mask[length + t] = pad ? 0 : 1;
            positions[length + t] = pad ? 1 : t - padding;
        }
        var state = model.NewState(2);
        var chunks = new List<float[]>();
        foreach (var (start, end) in new[] { (0, 4), (4, 13), (13, 20) })
        {
            long[] Columns(long[] source, int from, int to) => [.. source[from..to], .. source[(length + from)..(length + to)]];
            var chunkMask = new long[2 * end];
            Array.Copy(mask, 0, chunkMask, 0, end);
            Array.Copy(mask, length, chunkMask, end, end);
            chunks.Add(model.Run(state, Columns(batchIds, start, end), chunkMask, Columns(positions, start, end)));
        }
        var alone = model.RunSequence(model.NewState(1), prompt.AsSpan(0, length - padding));
        int vocab = model.Dims.VocabSize;
        double worst = 0;
        int chunkStart = 0;
        foreach (var chunk in chunks)
        {
            int tokens = chunk.Length / (2 * vocab);
            for (int t = 0; t < tokens; t++)
            {
                int absolute = chunkStart + t;
                Assert.That(chunk.AsSpan((tokens + t) * vocab, vocab).ToArray().All(float.IsFinite), Is.True, $"row 1 position {absolute} is not finite");
                if (absolute < padding) continue;
                worst = Math.Max(worst, Compare.MaxAbs(chunk.AsSpan((tokens + t) * vocab, vocab), alone.AsSpan((absolute - padding) * vocab, vocab)));
            }
            chunkStart += tokens;
        }
        Assert.That(worst, Is.LessThanOrEqualTo(1e-4));
    }
}
