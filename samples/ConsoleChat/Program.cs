using FalconOnnx.Runtime;
using FalconOnnx.Runtime.Generation;
using FalconOnnx.Runtime.Text;

// A console chat over an exported folder, the smallest complete use of the runtime:
//   dotnet run --project samples/ConsoleChat -- <exported folder>
// The conversation keeps its model state between turns; /retry regenerates the last reply, /reset starts over.
if (args.Length != 1)
{
    Console.Error.WriteLine("usage: ConsoleChat <exported folder>");
    return 2;
}
using var model = FalconModel.Load(args[0]);
using var chat = new Conversation(model, new ConversationOptions { Capacity = 4096, SystemPrompt = "You are a helpful assistant." });
var options = new GenerationOptions { MaxNewTokens = 256, Temperature = 0.7f, TopP = 0.9f };
using var cancellation = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) => { e.Cancel = true; cancellation.Cancel(); };
Console.WriteLine("Type a message; /retry, /reset, /quit.");
while (!cancellation.IsCancellationRequested)
{
    Console.Write("> ");
    string? line = Console.ReadLine();
    if (line is null or "/quit") break;
    if (line == "/reset")
    {
        chat.Reset([new ChatMessage("system", "You are a helpful assistant.")]);
        continue;
    }
    var reply = line == "/retry" ? chat.RegenerateAsync(options, cancellation.Token) : chat.SendAsync(line, options, cancellation.Token);
    await foreach (string piece in reply) Console.Write(piece);
    Console.WriteLine();
}
return 0;
