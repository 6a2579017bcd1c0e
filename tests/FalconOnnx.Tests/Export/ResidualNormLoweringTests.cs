using FalconOnnx.Export;
using FalconOnnx.Tests.Support;

namespace FalconOnnx.Tests.Export;

/// <summary>
/// Where the residual Adds go: float32 exports for ONNX Runtime fold each Add and the RMSNorm after it into one
/// com.microsoft.SkipSimplifiedLayerNormalization; --ssm onnx keeps standard operators. (That both add and normalize
/// as HF does is what the golden tests check.)
/// </summary>
public sealed class ResidualNormLoweringTests
{
    private const int Layers = 2;  // tiny-a

    [Test]
    public void OrtExport_AddsTheResidualInsideTheNorms()
    {
        var nodes = TinyAExports.Graph(TinyAExports.Get(SsmLowering.Ort, AttentionLowering.Gqa)).Graph.Node;
        var fused = nodes.Where(n => n.OpType == "SkipSimplifiedLayerNormalization").ToList();
        Assert.Multiple(() =>
        {
            // Every norm but the first layer's input norm and the final norm follows a residual Add.
            Assert.That(fused, Has.Count.EqualTo(2 * Layers - 1));
            Assert.That(fused.Select(n => n.Output.Count), Is.All.EqualTo(4));
            Assert.That(fused.Select(n => n.Output[1] + n.Output[2]), Is.All.Empty, "mean and inv_std_var left out");
            Assert.That(fused.Select(n => n.Output[3]), Is.All.Not.Empty, "the sum carries the residual stream on");
        });
    }

    [Test]
    public void OnnxExport_KeepsStandardNorms()
    {
        var nodes = TinyAExports.Graph(TinyAExports.Get(SsmLowering.Onnx, AttentionLowering.Concat)).Graph.Node;
        Assert.That(nodes.Where(n => n.OpType == "SkipSimplifiedLayerNormalization"), Is.Empty);
    }
}
