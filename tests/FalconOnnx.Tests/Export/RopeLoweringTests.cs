using FalconOnnx.Export;
using FalconOnnx.Onnx.Proto;
using FalconOnnx.Tests.Support;

namespace FalconOnnx.Tests.Export;

/// <summary>
/// Which operators rotate queries and keys: GroupQueryAttention exports use com.microsoft.RotaryEmbedding, one node
/// per tensor; concat exports keep standard operators. (That both rotate as HF does is what the golden tests check.)
/// </summary>
public sealed class RopeLoweringTests
{
    [Test]
    public void GqaExport_RotatesWithOneRotaryEmbeddingPerTensor()
    {
        var ops = OperatorCounts(TinyAExports.Get(SsmLowering.Ort, AttentionLowering.Gqa));
        Assert.Multiple(() =>
        {
            Assert.That(ops.GetValueOrDefault("com.microsoft.RotaryEmbedding"), Is.EqualTo(2 * Layers), "q and k of every layer");
            Assert.That(ops.GetValueOrDefault("Neg"), Is.EqualTo(Layers), "only A = -exp(A_log) per layer, no rotate_half");
        });
    }

    [Test]
    public void ConcatExport_RotatesWithStandardOperators()
    {
        var ops = OperatorCounts(TinyAExports.Get(SsmLowering.Onnx, AttentionLowering.Concat));
        Assert.Multiple(() =>
        {
            Assert.That(ops.Keys.Where(op => op.StartsWith("com.microsoft.", StringComparison.Ordinal)), Is.Empty);
            Assert.That(ops.GetValueOrDefault("Neg"), Is.GreaterThanOrEqualTo(2 * Layers), "rotate_half of q and k");
        });
    }

    private const int Layers = 2;  // tiny-a

    private static Dictionary<string, int> OperatorCounts(string folder)
    {
        ModelProto model;
        using (var stream = File.OpenRead(Path.Combine(folder, "model.onnx"))) model = ModelProto.Parser.ParseFrom(stream);
        return model.Graph.Node
            .GroupBy(n => string.IsNullOrEmpty(n.Domain) ? n.OpType : n.Domain + "." + n.OpType)
            .ToDictionary(group => group.Key, group => group.Count());
    }
}
