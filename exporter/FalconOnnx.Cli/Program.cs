using System.CommandLine;
using FalconOnnx.Cli.Commands;

namespace FalconOnnx.Cli;

public static class Program
{
    public static int Main(string[] args) => Run(args, Console.Out, Console.Error);

    /// <summary>Runs the command line with the given reader and writers (tests call this in-process).</summary>
    public static int Run(string[] args, TextWriter output, TextWriter error, TextReader? input = null)
    {
        var root = new RootCommand("falcon-onnx: export Falcon-H1 checkpoints to ONNX and run them with ONNX Runtime.")
        {
            ExportCommand.Create(),
            InspectCommand.Create(),
            SynthCommand.Create(),
            GenerateCommand.Create(),
            ChatCommand.Create(input ?? Console.In),
            BenchCommand.Create(),
            EvalCommand.Create(),
            PlanCommand.Create(),
        };
        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            foreach (var e in parsed.Errors) error.WriteLine("error: " + string.Join(' ', e.Message.Split((char[])['\n', '\r', '\t'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)));
            return ExitCodes.BadInput;
        }
        return parsed.Invoke(new InvocationConfiguration { Output = output, Error = error });
    }
}

public static class ExitCodes
{
    public const int Success = 0;
    public const int Failure = 1;
    public const int BadInput = 2;
    public const int Cancelled = 130;
}
