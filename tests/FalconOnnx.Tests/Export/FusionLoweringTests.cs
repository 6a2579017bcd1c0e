using FalconOnnx.Export;
using FalconOnnx.Tests.Support;

namespace FalconOnnx.Tests.Export;

/// <summary>
/// Fused kernels in the graph: float32 exports for ONNX Runtime fold each residual Add and the RMSNorm after it into
/// one com.microsoft.SkipSimplifiedLayerNormalization (--ssm onnx keeps standard operators), and CPU exports that load
/// FalconOnnx's operator library run SwiGLU's activation as one falcon_onnx.SwiGlu. (That they compute what HF does is
/// what the golden tests check.)
/// </summary>
public sealed class FusionLoweringTests
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
    public void CustomExport_RunsSwiGluAsOneKernel()
    {
        var nodes = TinyAExports.Graph(TinyAExports.Get(SsmLowering.Custom)).Graph.Node;
        Assert.Multiple(() =>
        {
            Assert.That(nodes.Count(n => n.Domain == "falcon_onnx" && n.OpType == "SwiGlu"), Is.EqualTo(Layers));
            Assert.That(nodes.Where(n => n.OpType is "Split" or "Sigmoid"), Is.Empty, "no Split of gate | up, no standard SiLU");
        });
    }

    [Test]
    public void OrtExport_KeepsSwiGluStandard()
    {
        var nodes = TinyAExports.Graph(TinyAExports.Get(SsmLowering.Ort, AttentionLowering.Gqa)).Graph.Node;
        Assert.That(nodes.Where(n => n.OpType == "SwiGlu"), Is.Empty, "no operator library in an ort export");
    }

    [Test]
    public void OnnxExport_KeepsStandardNorms()
    {
        var nodes = TinyAExports.Graph(TinyAExports.Get(SsmLowering.Onnx, AttentionLowering.Concat)).Graph.Node;
        Assert.That(nodes.Where(n => n.OpType == "SkipSimplifiedLayerNormalization"), Is.Empty);
    }
}
