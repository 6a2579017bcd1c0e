using System.CommandLine;
using System.Globalization;
using FalconOnnx.Checkpoints;
using FalconOnnx.Models;
using FalconOnnx.Synthesis;
using Spectre.Console;

namespace FalconOnnx.Cli.Commands;

public static class SynthCommand
{
    public static Command Create()
    {
        var preset = new Option<string?>("--preset", "-p") { Description = $"Model shape: {SynthPresets.Names} (the released sizes are short for --like tiiuae/Falcon-H1-<size>-Instruct)" };
        var like = new Option<string?>("--like") { Description = "A released checkpoint whose exact shapes to use, by Hugging Face repo id (models.json), e.g. tiiuae/Falcon-H1-7B-Base" };
        var layers = new Option<int?>("--layers") { Description = "Fewer decoder layers than the model has (every width stays the same)" };
        var seed = new Option<ulong>("--seed", "-s") { Description = "Random seed; the same seed gives the same bytes", Required = true };
        var output = new Option<string>("--output", "-o") { Description = "Folder to create", Required = true };
        var dtype = new Option<string>("--dtype") { Description = "Weight type: bf16 (as released) or fp32", DefaultValueFactory = _ => "bf16" };
        var force = new Option<bool>("--force") { Description = "Replace an existing output folder" };
        var command = new Command("synth", "Write a random Falcon-H1 checkpoint in Hugging Face layout (for tests and benchmarks); over 5 GB it is sharded as Hugging Face shards")
        {
            preset, like, layers, seed, output, dtype, force,
        };
        command.SetAction(parse => CommandRunner.Run(parse.InvocationConfiguration.Error, cancellation =>
        {
            var shape = Shape(parse.GetValue(preset), parse.GetValue(like), parse.GetValue(layers));
            var weightType = ParseDType(parse.GetValue(dtype)!);
            var console = ExportCommand.Console(parse.InvocationConfiguration.Output);
            SynthResult result = null!;
            console.Progress()
                .AutoClear(false)
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new DownloadedColumn(), new RemainingTimeColumn())
                .Start(context =>
                {
                    var weights = context.AddTask("weights", maxValue: 1);
                    result = CheckpointSynthesizer.Synthesize(shape, parse.GetValue(seed), parse.GetValue(output)!, weightType, parse.GetValue(force), p =>
                    {
                        weights.MaxValue = p.TotalBytes;
                        weights.Value = p.BytesDone;
                        weights.Description = $"weights {p.TensorsDone}/{p.TensorCount}";
                    }, cancellation);
                    weights.Value = weights.MaxValue;
                });
            string what = shape.ModelId is null || parse.GetValue(preset) is not null ? $"preset {shape.Name}" : shape.ModelId;
            if (shape.ModelId is { } id && ModelCatalog.Find(id).Config.NumHiddenLayers is var all && all != shape.NumHiddenLayers)
                what += $" ({shape.NumHiddenLayers} of {all} layers)";
            string files = result.Shards > 1 ? $" in {result.Shards} shards" : "";
            // Plain, so it stays one line for scripts and logs whatever the console width.
            parse.InvocationConfiguration.Output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"synthesized {result.Folder}: {what}, {result.Parameters:N0} parameters, {CommandRunner.Size(result.Bytes)}{files} in {result.Elapsed.TotalSeconds:0.0} s"));
            return ExitCodes.Success;
        }));
        return command;
    }

    private static SynthPreset Shape(string? preset, string? like, int? layers)
    {
        if ((preset is null) == (like is null)) throw new FalconOnnxException("synth needs either --preset or --like (one of them)");
        if (like is not null) return SynthPresets.Like(like, layers);
        var shape = SynthPresets.Find(preset!);
        if (layers is null) return shape;
        if (shape.ModelId is { } id) return SynthPresets.Like(id, layers) with { Name = shape.Name };
        if (layers < 1 || layers > shape.NumHiddenLayers)
            throw new FalconOnnxException($"--layers must be between 1 and {shape.NumHiddenLayers} (preset {shape.Name} has {shape.NumHiddenLayers} layers), got {layers}");
        return shape with { NumHiddenLayers = layers.Value };
    }

    private static CheckpointDType ParseDType(string name) => name switch
    {
        "bf16" => CheckpointDType.BF16,
        "fp32" => CheckpointDType.F32,
        _ => throw new FalconOnnxException($"--dtype must be bf16 or fp32, got '{name}'"),
    };
}
