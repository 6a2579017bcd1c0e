using Microsoft.ML.OnnxRuntimeGenAI;

namespace FalconOnnx.Tests.Support;

/// <summary>Greedy generation of an exported folder in onnxruntime-genai's generic decoder.</summary>
public static class GenAiGreedy
{
    /// <summary>The <paramref name="count"/> tokens onnxruntime-genai generates greedily after <paramref name="prompt"/>.</summary>
    public static int[] Generate(string folder, int[] prompt, int count)
    {
        using var model = new Model(folder);
        using var parameters = new GeneratorParams(model);
        parameters.SetSearchOption("max_length", prompt.Length + count);
        parameters.SetSearchOption("do_sample", false);
        using var generator = new Generator(model, parameters);
        generator.AppendTokens(prompt);
        while (!generator.IsDone()) generator.GenerateNextToken();
        return generator.GetSequence(0).ToArray()[prompt.Length..];
    }
}
