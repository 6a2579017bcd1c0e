using System.ClientModel;
using System.Net;
using System.Net.Sockets;
using System.Text;
using FalconOnnx.Samples.OpenAiServer;
using FalconOnnx.Tests.Support;
using OpenAI;
using OpenAI.Chat;

namespace FalconOnnx.Tests.Runtime;

/// <summary>The OpenAI-compatible sample server answers the official OpenAI .NET client on 127.0.0.1.</summary>
public sealed class OpenAiServerTests
{
    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    [Test]
    public async Task OpenAiClient_GetsCompletions_StreamingAndNot()
    {
        int port = FreePort();
        await using var app = ChatServer.Create(["--model", TinyAExports.TinyWithTokenizer(), "--urls", $"http://127.0.0.1:{port}", "--capacity", "512"]);
        await app.StartAsync();
        var client = new ChatClient("tiny", new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri($"http://127.0.0.1:{port}/v1") });
        var options = new ChatCompletionOptions { Temperature = 0f, MaxOutputTokenCount = 12 };
        List<OpenAI.Chat.ChatMessage> messages = [new SystemChatMessage("Be brief."), new UserChatMessage("Hello, falcon")];

        ChatCompletion completion = await client.CompleteChatAsync(messages, options);
        var streamed = new StringBuilder();
        ChatFinishReason? finish = null;
        await foreach (var update in client.CompleteChatStreamingAsync(messages, options))
        {
            foreach (var part in update.ContentUpdate) streamed.Append(part.Text);
            finish ??= update.FinishReason;
        }
        Assert.Multiple(() =>
        {
            Assert.That(completion.Content[0].Text, Is.Not.Empty);
            Assert.That(streamed.ToString(), Is.EqualTo(completion.Content[0].Text), "streaming and non-streaming give the same greedy text");
            Assert.That(finish, Is.Not.Null);
            Assert.That(completion.Usage.OutputTokenCount, Is.GreaterThan(0));
        });
        await app.StopAsync();
    }
}
