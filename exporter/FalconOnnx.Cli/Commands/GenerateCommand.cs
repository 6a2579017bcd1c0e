using System.CommandLine;
using System.Globalization;
using FalconOnnx.Runtime;
using FalconOnnx.Runtime.Generation;

namespace FalconOnnx.Cli.Commands;

public static class GenerateCommand
{
    public static Command Create()
    {
        var folder = new Argument<string>("folder") { Description = "An exported folder" };
        var promptIds = new Option<string>("--prompt-ids") { Description = "Prompt as comma-separated token ids, e.g. 5,17,42", Required = true };
        var maxNewTokens = new Option<int>("--max-new-tokens", "-n") { Description = "Tokens to generate at most", DefaultValueFactory = _ => 32 };
        var temperature = new Option<float>("--temperature") { Description = "0 = greedy", DefaultValueFactory = _ => 0f };
        var outputIds = new Option<bool>("--output-ids") { Description = "Print the generated token ids" };
        var threads = new Option<int>("--threads") { Description = "Intra-op threads (0 = one per core)", DefaultValueFactory = _ => 0 };
        var command = new Command("generate", "Generate tokens from an exported folder") { folder, promptIds, maxNewTokens, temperature, outputIds, threads };
        command.SetAction(parse => CommandRunner.Run(parse.InvocationConfiguration.Error, cancellation =>
        {
            var prompt = ParseIds(parse.GetValue(promptIds)!);
            using var model = FalconModel.Load(parse.GetValue(folder)!, new FalconModelOptions { IntraOpThreads = parse.GetValue(threads) });
            int maxNew = parse.GetValue(maxNewTokens);
            using var generator = new Generator(model, new GeneratorOptions { Capacity = Math.Min(model.Dimensions.ContextLength, prompt.Count + Math.Max(1, maxNew)) });
            var output = parse.InvocationConfiguration.Output;
            generator.Append(prompt, cancellation);
            var ids = generator.Generate(new GenerationOptions { MaxNewTokens = maxNew, Temperature = parse.GetValue(temperature) }, cancellation);
            output.WriteLine(string.Join(",", ids));
            return ExitCodes.Success;
        }));
        return command;
    }

    internal static IReadOnlyList<int> ParseIds(string text)
    {
        var ids = new List<int>();
        foreach (string part in text.Split(',', StringSplitOptions.TrimEntries))
        {
            if (!int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out int id))
                throw new FalconModelException($"--prompt-ids: '{part}' is not a token id (expected comma-separated non-negative integers)");
            ids.Add(id);
        }
        return ids;
    }
}
