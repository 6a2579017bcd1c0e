using FalconOnnx.Export;
using FalconOnnx.Tests.Support;

namespace FalconOnnx.Tests.Export;

/// <summary>An exported folder runs unchanged in onnxruntime-genai's generic decoder (Microsoft.ML.OnnxRuntimeGenAI 0.18), with logits for every position or the last one.</summary>
public sealed class GenAiTests
{
    [Test]
    public void TinyAExport_GeneratesTheGoldenGreedyTokensInGenAi([Values] SsmLowering ssm, [Values] bool lastPositionLogits)
    {
        string folder = TestPaths.NewTemp("genai");
        try
        {
            FalconH1Exporter.Export(TestPaths.TinyA, folder, new ExportOptions { Ssm = ssm, LastPositionLogits = lastPositionLogits });
            var prompt = Npy.Load<long>(TestPaths.Expected("gen_prompt_ids")).Data.Select(id => (int)id).ToArray();
            var expected = Npy.Load<long>(TestPaths.Expected("gen_new_token_ids")).Data.Select(id => (int)id).ToArray();

            Assert.That(GenAiGreedy.Generate(folder, prompt, expected.Length), Is.EqualTo(expected));
        }
        finally
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
    }
}
