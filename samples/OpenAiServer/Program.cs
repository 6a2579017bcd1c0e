namespace FalconOnnx.Samples.OpenAiServer;

/// <summary>
/// An OpenAI-compatible /v1/chat/completions server over an exported folder:
///   dotnet run --project samples/OpenAiServer -- --model &lt;exported folder&gt; --urls http://127.0.0.1:8080
/// then point any OpenAI client at http://127.0.0.1:8080/v1.
/// </summary>
public static class Program
{
    public static async Task Main(string[] args) => await ChatServer.Create(args).RunAsync();
}
