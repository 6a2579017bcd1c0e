using FalconOnnx.Export;
using FalconOnnx.Tests.Support;
using Microsoft.ML.OnnxRuntimeGenAI;

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

            using var model = new Model(folder);
            using var parameters = new GeneratorParams(model);
            parameters.SetSearchOption("max_length", prompt.Length + expected.Length);
            parameters.SetSearchOption("do_sample", false);
            using var generator = new Generator(model, parameters);
            generator.AppendTokens(prompt);
            while (!generator.IsDone()) generator.GenerateNextToken();
            var sequence = generator.GetSequence(0).ToArray();

            Assert.That(sequence[prompt.Length..], Is.EqualTo(expected));
        }
        finally
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
    }
}
