using FalconOnnx.Export;
using FalconOnnx.Onnx.Proto;
using FalconOnnx.Tests.Support;

namespace FalconOnnx.Tests.Export;

/// <summary>
/// Which operators rotate queries and keys: GroupQueryAttention rotates them itself from packed q | k | v (no Split,
/// no RotaryEmbedding node) in GroupQueryAttention exports; concat exports keep standard operators. (That both rotate
/// as HF does is what the golden tests check.)
/// </summary>
public sealed class RopeLoweringTests
{
    [Test]
    public void GqaExport_RotatesInsideGroupQueryAttention()
    {
        var model = TinyAExports.Graph(TinyAExports.Get(SsmLowering.Ort, AttentionLowering.Gqa));
        var ops = OperatorCounts(model);
        var attention = model.Graph.Node.Where(n => n.OpType == "GroupQueryAttention").ToList();
        Assert.Multiple(() =>
        {
            Assert.That(attention, Has.Count.EqualTo(Layers));
            Assert.That(attention.Select(n => n.Attribute.Single(a => a.Name == "do_rotary").I), Is.All.EqualTo(1));
            Assert.That(attention.Select(n => n.Input[1] + n.Input[2]), Is.All.Empty, "q | k | v packed: no key or value input");
            Assert.That(attention.Select(n => n.Input[7]).Distinct().Count(), Is.EqualTo(1), "one cos_cache shared by every layer");
            Assert.That(ops.GetValueOrDefault("com.microsoft.RotaryEmbedding"), Is.Zero);
            Assert.That(ops.GetValueOrDefault("Neg"), Is.EqualTo(Layers), "only A = -exp(A_log) per layer, no rotate_half");
        });
    }

    [Test]
    public void ConcatExport_RotatesWithStandardOperators()
    {
        var ops = OperatorCounts(TinyAExports.Graph(TinyAExports.Get(SsmLowering.Onnx, AttentionLowering.Concat)));
        Assert.Multiple(() =>
        {
            Assert.That(ops.Keys.Where(op => op.StartsWith("com.microsoft.", StringComparison.Ordinal)), Is.Empty);
            Assert.That(ops.GetValueOrDefault("Neg"), Is.GreaterThanOrEqualTo(2 * Layers), "rotate_half of q and k");
        });
    }

    private const int Layers = 2;  // tiny-a

    private static Dictionary<string, int> OperatorCounts(ModelProto model)
        => model.Graph.Node
            .GroupBy(n => string.IsNullOrEmpty(n.Domain) ? n.OpType : n.Domain + "." + n.OpType)
            .ToDictionary(group => group.Key, group => group.Count());
}
