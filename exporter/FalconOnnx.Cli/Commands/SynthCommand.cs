using System.CommandLine;
using System.Globalization;
using FalconOnnx.Checkpoints;
using FalconOnnx.Synthesis;
using Spectre.Console;

namespace FalconOnnx.Cli.Commands;

public static class SynthCommand
{
    public static Command Create()
    {
        var preset = new Option<string>("--preset", "-p") { Description = $"Model shape: {SynthPresets.Names}", Required = true };
        var seed = new Option<ulong>("--seed", "-s") { Description = "Random seed; the same seed gives the same bytes", Required = true };
        var output = new Option<string>("--output", "-o") { Description = "Folder to create", Required = true };
        var dtype = new Option<string>("--dtype") { Description = "Weight type: bf16 (as released) or fp32", DefaultValueFactory = _ => "bf16" };
        var force = new Option<bool>("--force") { Description = "Replace an existing output folder" };
        var command = new Command("synth", "Write a random Falcon-H1 checkpoint in Hugging Face layout (for tests and benchmarks)")
        {
            preset, seed, output, dtype, force,
        };
        command.SetAction(parse => CommandRunner.Run(parse.InvocationConfiguration.Error, cancellation =>
        {
            var shape = SynthPresets.Find(parse.GetValue(preset)!);
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
            // Plain, so it stays one line for scripts and logs whatever the console width.
            parse.InvocationConfiguration.Output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"synthesized {result.Folder}: preset {shape.Name}, {result.Parameters:N0} parameters, {CommandRunner.Size(result.Bytes)} in {result.Elapsed.TotalSeconds:0.0} s"));
            return ExitCodes.Success;
        }));
        return command;
    }

    private static CheckpointDType ParseDType(string name) => name switch
    {
        "bf16" => CheckpointDType.BF16,
        "fp32" => CheckpointDType.F32,
        _ => throw new FalconOnnxException($"--dtype must be bf16 or fp32, got '{name}'"),
    };
}
