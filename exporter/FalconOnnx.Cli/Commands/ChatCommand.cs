using System.CommandLine;
using FalconOnnx.Runtime;
using FalconOnnx.Runtime.Generation;
using FalconOnnx.Runtime.Text;

namespace FalconOnnx.Cli.Commands;

/// <summary>
/// An interactive chat: reads a message per line, streams the reply. The conversation keeps its model state
/// between turns; /retry regenerates the last reply, /reset starts over, /quit (or end of input) leaves.
/// </summary>
public static class ChatCommand
{
    public static Command Create(TextReader input)
    {
        var folder = new Argument<string>("folder") { Description = "An exported folder (with its tokenizer)" };
        var system = new Option<string?>("--system") { Description = "System prompt" };
        var capacity = new Option<int>("--context") { Description = "Tokens the conversation can hold", DefaultValueFactory = _ => 4096 };
        var load = new ModelLoadOptions();
        var sampling = new SamplingOptions();
        var command = new Command("chat", "Chat with an exported folder, streaming the replies") { folder, system, capacity };
        sampling.AddTo(command);
        load.AddTo(command);
        command.SetAction(parse => CommandRunner.Run(parse.InvocationConfiguration.Error, cancellation =>
        {
            var options = sampling.Read(parse);
            var output = parse.InvocationConfiguration.Output;
            using var model = load.Load(parse, parse.GetValue(folder)!);
            int context = Math.Min(parse.GetValue(capacity), model.Dimensions.ContextLength);
            string? systemPrompt = parse.GetValue(system);
            using var chat = new Conversation(model, new ConversationOptions { Capacity = context, SystemPrompt = systemPrompt });
            output.WriteLine($"chatting with {model.Folder} ({(model.ChatTemplate.IsFallback ? "ChatML layout" : "its chat template")}); /retry, /reset, /quit");
            while (!cancellation.IsCancellationRequested)
            {
                output.Write("> ");
                output.Flush();
                string? line = input.ReadLine();
                if (line is null || line.Trim() == "/quit") break;
                if (line.Trim() == "/reset")
                {
                    chat.Reset(systemPrompt is null ? [] : [new ChatMessage("system", systemPrompt)]);
                    continue;
                }
                if (line.Trim().Length == 0) continue;
                try
                {
                    var reply = line.Trim() == "/retry" ? chat.RegenerateAsync(options, cancellation) : chat.SendAsync(line, options, cancellation);
                    var stream = reply.GetAsyncEnumerator(cancellation);
                    while (stream.MoveNextAsync().AsTask().GetAwaiter().GetResult())
                    {
                        output.Write(stream.Current);
                        output.Flush();
                    }
                    output.WriteLine();
                }
                catch (FalconModelException e)
                {
                    // A refused turn (context full, nothing to retry) leaves the conversation as it was.
                    parse.InvocationConfiguration.Error.WriteLine($"error: {e.Message}");
                }
            }
            return ExitCodes.Success;
        }));
        return command;
    }
}
