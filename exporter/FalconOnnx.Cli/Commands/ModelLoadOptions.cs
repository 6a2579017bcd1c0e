using System.CommandLine;
using FalconOnnx.Runtime;

namespace FalconOnnx.Cli.Commands;

/// <summary>The options that say how a model is loaded, shared by generate, chat and bench.</summary>
internal sealed class ModelLoadOptions
{
    private readonly Option<string> _ep = new("--ep") { Description = "Execution provider: cpu, or cuda (needs the GPU build: dotnet build -p:UseGpu=true)", DefaultValueFactory = _ => "cpu" };
    private readonly Option<int> _device = new("--device") { Description = "CUDA device id", DefaultValueFactory = _ => 0 };
    private readonly Option<int> _threads = new("--threads") { Description = "Intra-op threads (0 = one per core)", DefaultValueFactory = _ => 0 };
    private readonly Option<string[]> _sessionConfig = new("--session-config") { Description = "ONNX Runtime session config entry key=value (repeatable), e.g. session.disable_prepacking=1" };

    public ModelLoadOptions() => _ep.AcceptOnlyFromAmong("cpu", "cuda");

    public void AddTo(Command command)
    {
        foreach (var option in new Option[] { _ep, _device, _threads, _sessionConfig }) command.Options.Add(option);
    }

    public int Threads(ParseResult parse) => parse.GetValue(_threads);

    public FalconModel Load(ParseResult parse, string folder, string? profilePrefix = null) => FalconModel.Load(folder, new FalconModelOptions
    {
        ProfilePrefix = profilePrefix,
        ExecutionProvider = parse.GetValue(_ep) == "cuda" ? ExecutionProvider.Cuda : ExecutionProvider.Cpu,
        DeviceId = parse.GetValue(_device),
        IntraOpThreads = parse.GetValue(_threads),
        SessionConfig = (parse.GetValue(_sessionConfig) ?? []).Select(Entry).ToDictionary(e => e.Key, e => e.Value),
    });

    private static KeyValuePair<string, string> Entry(string text)
    {
        int equals = text.IndexOf('=');
        if (equals <= 0) throw new FalconModelException($"--session-config: '{text}' is not key=value");
        return new(text[..equals], text[(equals + 1)..]);
    }
}
