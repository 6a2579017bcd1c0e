using System.CommandLine;
using System.Globalization;
using FalconOnnx.Runtime;
using FalconOnnx.Runtime.Generation;
using FalconOnnx.Runtime.Text;

namespace FalconOnnx.Cli.Commands;

public static class GenerateCommand
{
    public static Command Create()
    {
        var folder = new Argument<string>("folder") { Description = "An exported folder" };
        var prompt = new Option<string?>("--prompt", "-p") { Description = "Prompt text (needs the folder's tokenizer.json)" };
        var promptIds = new Option<string?>("--prompt-ids") { Description = "Prompt as comma-separated token ids, e.g. 5,17,42 (no tokenizer needed)" };
        var outputIds = new Option<bool>("--output-ids") { Description = "Print the generated token ids instead of text" };
        var sampling = new SamplingOptions();
        var load = new ModelLoadOptions();
        var command = new Command("generate", "Generate a continuation of a prompt from an exported folder") { folder, prompt, promptIds, outputIds };
        sampling.AddTo(command);
        load.AddTo(command);
        command.SetAction(parse => CommandRunner.Run(parse.InvocationConfiguration.Error, cancellation =>
        {
            string? text = parse.GetValue(prompt), idText = parse.GetValue(promptIds);
            if (text is null == idText is null) throw new FalconModelException("give exactly one of --prompt (text) and --prompt-ids (token ids)");
            var options = sampling.Read(parse);
            using var model = load.Load(parse, parse.GetValue(folder)!);
            IReadOnlyList<int> promptTokens = idText is not null ? ParseIds(idText) : model.Tokenizer.Encode(text!);
            if (promptTokens.Count == 0) throw new FalconModelException("the prompt is empty: give some text or token ids");
            var output = parse.InvocationConfiguration.Output;
            var sizes = new GeneratorOptions { Capacity = Math.Min(model.Dimensions.ContextLength, promptTokens.Count + options.MaxNewTokens + 1) };
            if (parse.GetValue(outputIds) || !model.HasTokenizer)
            {
                using var ids = new Generator(model, sizes);
                ids.Append(promptTokens, cancellation);
                output.WriteLine(string.Join(",", ids.Generate(options, cancellation)));
                return ExitCodes.Success;
            }
            using var generator = new TextGenerator(model, sizes);
            var stream = generator.StreamTokensAsync(promptTokens, options, cancellation).GetAsyncEnumerator(cancellation);
            while (stream.MoveNextAsync().AsTask().GetAwaiter().GetResult())
            {
                output.Write(stream.Current);
                output.Flush();
            }
            output.WriteLine();
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

/// <summary>The sampling and stopping options shared by generate and chat.</summary>
internal sealed class SamplingOptions
{
    private readonly Option<int> _maxNewTokens = new("--max-new-tokens", "-n") { Description = "Tokens to generate at most", DefaultValueFactory = _ => 128 };
    private readonly Option<float> _temperature = new("--temperature") { Description = "0 = greedy", DefaultValueFactory = _ => 0.7f };
    private readonly Option<int> _topK = new("--top-k") { Description = "Keep the k most likely tokens (0 = all)", DefaultValueFactory = _ => 0 };
    private readonly Option<float> _topP = new("--top-p") { Description = "Nucleus sampling threshold in (0, 1]", DefaultValueFactory = _ => 1f };
    private readonly Option<float> _minP = new("--min-p") { Description = "Drop tokens below min-p x the top probability", DefaultValueFactory = _ => 0f };
    private readonly Option<float> _repetitionPenalty = new("--repetition-penalty") { Description = "1 = none", DefaultValueFactory = _ => 1f };
    private readonly Option<int?> _seed = new("--seed") { Description = "Seed for reproducible sampling" };
    private readonly Option<string[]> _stop = new("--stop") { Description = "Stop string (repeatable)", AllowMultipleArgumentsPerToken = false };

    public void AddTo(Command command)
    {
        foreach (var option in new Option[] { _maxNewTokens, _temperature, _topK, _topP, _minP, _repetitionPenalty, _seed, _stop }) command.Options.Add(option);
    }

    public GenerationOptions Read(ParseResult parse)
    {
        var options = new GenerationOptions
        {
            MaxNewTokens = parse.GetValue(_maxNewTokens),
            Temperature = parse.GetValue(_temperature),
            TopK = parse.GetValue(_topK),
            TopP = parse.GetValue(_topP),
            MinP = parse.GetValue(_minP),
            RepetitionPenalty = parse.GetValue(_repetitionPenalty),
            Seed = parse.GetValue(_seed),
            StopStrings = parse.GetValue(_stop) ?? [],
        };
        options.Validate();
        return options;
    }
}
