using System.CommandLine;
using System.Text.Json;
using FalconOnnx.Runtime;
using FalconOnnx.Runtime.Evaluation;
using Spectre.Console;

namespace FalconOnnx.Cli.Commands;

/// <summary>
/// Accuracy of an export against a reference export of the same model, by teacher forcing: per-position KL
/// divergence (mean, p99), top-1 agreement and each model's perplexity.
/// </summary>
public static class EvalCommand
{
    public static Command Create()
    {
        var reference = new Option<string>("--reference") { Description = "The reference export (e.g. fp32)", Required = true };
        var candidate = new Option<string>("--candidate") { Description = "The export to evaluate (e.g. int4)", Required = true };
        var tokensFile = new Option<string?>("--tokens-file") { Description = "Text to evaluate on (tokenized with the reference's tokenizer), or token ids separated by commas or whitespace in a .ids file" };
        var length = new Option<int>("--sequence-length") { Description = "Tokens per sequence", DefaultValueFactory = _ => 256 };
        var sequences = new Option<int>("--sequences") { Description = "Sequences (random token ids when there is no text)", DefaultValueFactory = _ => 4 };
        var json = new Option<bool>("--json") { Description = "Print the result as JSON" };
        var load = new ModelLoadOptions();
        var command = new Command("eval", "Compare an export's next-token distributions with a reference export's") { reference, candidate, tokensFile, length, sequences, json };
        load.AddTo(command);
        command.SetAction(parse => CommandRunner.Run(parse.InvocationConfiguration.Error, cancellation =>
        {
            int sequenceLength = parse.GetValue(length), count = parse.GetValue(sequences);
            if (sequenceLength < 2 || count < 1) throw new FalconModelException("--sequence-length must be >= 2 and --sequences >= 1");
            using var referenceModel = load.Load(parse, parse.GetValue(reference)!);
            using var candidateModel = load.Load(parse, parse.GetValue(candidate)!);
            var tokens = Sequences(referenceModel, parse.GetValue(tokensFile), sequenceLength, count);
            var console = ExportCommand.Console(parse.InvocationConfiguration.Output);
            ComparisonResult result = null!;
            if (parse.GetValue(json))
            {
                result = ModelComparison.Compare(referenceModel, candidateModel, tokens, cancellationToken: cancellation);
                parse.InvocationConfiguration.Output.WriteLine(JsonSerializer.Serialize(result, new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower }));
                return ExitCodes.Success;
            }
            console.Progress().AutoClear(true).Start(context =>
            {
                var task = context.AddTask("positions", maxValue: tokens.Sum(t => t.Count));
                result = ModelComparison.Compare(referenceModel, candidateModel, tokens, progress: (done, _) => task.Value = done, cancellationToken: cancellation);
            });
            var table = new Table().AddColumns("measure", "value");
            InspectCommand.AddRow(table, "reference", $"{referenceModel.Folder} ({referenceModel.Manifest.Options.Precision})");
            InspectCommand.AddRow(table, "candidate", $"{candidateModel.Folder} ({candidateModel.Manifest.Options.Precision})");
            InspectCommand.AddRow(table, "positions", $"{result.Positions} ({tokens.Count} sequences)");
            InspectCommand.AddRow(table, "KL divergence, mean", $"{result.MeanKl:E3}");
            InspectCommand.AddRow(table, "KL divergence, p99", $"{result.P99Kl:E3}");
            InspectCommand.AddRow(table, "top-1 agreement", $"{result.Top1Agreement:P2}");
            InspectCommand.AddRow(table, "perplexity, reference", $"{result.ReferencePerplexity:0.000}");
            InspectCommand.AddRow(table, "perplexity, candidate", $"{result.CandidatePerplexity:0.000}");
            console.Write(table);
            return ExitCodes.Success;
        }));
        return command;
    }

    /// <summary>Token sequences from a text or ids file, else seeded random ids (reproducible runs).</summary>
    internal static IReadOnlyList<IReadOnlyList<int>> Sequences(FalconModel model, string? file, int length, int count)
    {
        List<int> all;
        if (file is not null)
        {
            if (!File.Exists(file)) throw new FalconModelException($"{file}: tokens file not found");
            string text = File.ReadAllText(file);
            all = file.EndsWith(".ids", StringComparison.OrdinalIgnoreCase)
                ? text.Split([',', ' ', '\n', '\r', '\t'], StringSplitOptions.RemoveEmptyEntries).Select(t => int.TryParse(t, out int id) ? id : throw new FalconModelException($"{file}: '{t}' is not a token id")).ToList()
                : model.Tokenizer.Encode(text);
            if (all.Count < 2) throw new FalconModelException($"{file}: fewer than 2 tokens");
            return all.Chunk(length).Where(c => c.Length >= 2).Take(count).Select(c => (IReadOnlyList<int>)c).ToList();
        }
        var random = new Random(1234);
        int vocab = model.Dimensions.VocabSize;
        return Enumerable.Range(0, count).Select(_ => (IReadOnlyList<int>)Enumerable.Range(0, length).Select(_ => random.Next(Math.Min(16, vocab - 1), vocab)).ToArray()).ToList();
    }
}
