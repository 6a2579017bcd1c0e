namespace FalconOnnx.Tests.Support;

/// <summary>Runs the falcon-onnx command line in-process and captures its exit code and output.</summary>
public static class CliRunner
{
    public static (int ExitCode, string Stdout, string Stderr) Run(params string[] args) => RunWithInput("", args);

    public static (int ExitCode, string Stdout, string Stderr) RunWithInput(string input, params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int exitCode = FalconOnnx.Cli.Program.Run(args, stdout, stderr, new StringReader(input));
        return (exitCode, stdout.ToString(), stderr.ToString());
    }
}
