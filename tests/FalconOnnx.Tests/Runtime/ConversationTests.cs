using System.Text;
using FalconOnnx.Runtime;
using FalconOnnx.Runtime.Generation;
using FalconOnnx.Runtime.Text;
using FalconOnnx.Tests.Support;
using Microsoft.Extensions.AI;
using AIChatMessage = Microsoft.Extensions.AI.ChatMessage;

namespace FalconOnnx.Tests.Runtime;

public sealed class ConversationTests
{
    private static FalconModel Load() => FalconModel.Load(TinyAExports.TinyWithTokenizer(), new FalconModelOptions { IntraOpThreads = 1 });

    private static readonly GenerationOptions Greedy = GenerationOptions.Greedy with { MaxNewTokens = 12 };

    private static async Task<string> Collect(IAsyncEnumerable<string> pieces)
    {
        var text = new StringBuilder();
        await foreach (string piece in pieces) text.Append(piece);
        return text.ToString();
    }

    [Test]
    public void ChatTemplate_OfTheFolder_RendersChatMl()
    {
        using var model = Load();
        Assert.That(model.ChatTemplate.IsFallback, Is.False, "the synthesized folder ships a chat template");
        string text = model.ChatTemplate.Render([new("system", "Be brief."), new("user", "Hi")], addGenerationPrompt: true);
        Assert.That(text, Is.EqualTo("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"));
    }

    [Test]
    public async Task SecondTurn_PrefillsOnlyTheNewMessage_AndEqualsAFreshRunOverTheSameTokens()
    {
        using var model = Load();
        using var kept = new Conversation(model, new ConversationOptions { Capacity = 512, SystemPrompt = "Be brief." });
        await Collect(kept.SendAsync("Tell me about falcons.", Greedy));
        int afterTurn1 = kept.Generator.Tokens.Count;
        string reply2 = await Collect(kept.SendAsync("And their speed?", Greedy));
        Assert.That(kept.LastTurnReusedState, Is.True, "turn 2 continues the kept state");
        Assert.That(kept.LastPromptTokens, Is.LessThan(afterTurn1), "only the new message was prefilled");

        // A fresh generator over the same tokens (everything before reply 2) gives the same reply tokens.
        var tokens = kept.Generator.Tokens.ToArray();
        var prompt2 = tokens[..(afterTurn1 + kept.LastPromptTokens)];
        using var fresh = new Generator(model, new GeneratorOptions { Capacity = 512 });
        fresh.Append(prompt2);
        var freshReply = fresh.Generate(Greedy with { StopTokens = [11, model.Tokenizer.SpecialTokens["<|im_end|>"]] }).ToArray();
        Assert.That(freshReply, Is.EqualTo(tokens[prompt2.Length..(prompt2.Length + kept.LastReplyTokens)]));
        Assert.That(model.Tokenizer.Decode(freshReply), Is.EqualTo(reply2));
    }

    [Test]
    public async Task Regenerate_RestoresTheStateBeforeTheReply_AndTheSameSeedGivesTheSameReply()
    {
        using var model = Load();
        using var chat = new Conversation(model, new ConversationOptions { Capacity = 512 });
        var sampled = new GenerationOptions { MaxNewTokens = 16, Temperature = 1.0f, Seed = 5 };
        string first = await Collect(chat.SendAsync("Write a word.", sampled));
        var afterFirst = chat.Generator.Tokens.ToArray();
        string again = await Collect(chat.RegenerateAsync(sampled));
        Assert.Multiple(() =>
        {
            Assert.That(again, Is.EqualTo(first));
            Assert.That(chat.Generator.Tokens, Is.EqualTo(afterFirst));
            Assert.That(chat.Messages, Has.Count.EqualTo(2));
        });
        string other = await Collect(chat.RegenerateAsync(sampled with { Seed = 6 }));
        Assert.That(chat.Messages[^1].Content, Is.EqualTo(other));
    }

    [Test]
    public async Task ChatClient_ReusesTheStateForAContinuedConversation_AndStartsOverOtherwise()
    {
        using var model = Load();
        using var client = new FalconChatClient(model, new ConversationOptions { Capacity = 512 }, Greedy);
        List<AIChatMessage> messages = [new(ChatRole.System, "Be brief."), new(ChatRole.User, "Hello")];
        var first = await client.GetResponseAsync(messages);
        messages.Add(first.Messages[0]);
        messages.Add(new AIChatMessage(ChatRole.User, "More?"));
        var streamed = new StringBuilder();
        ChatFinishReason? finish = null;
        await foreach (var update in client.GetStreamingResponseAsync(messages))
        {
            streamed.Append(update.Text);
            finish ??= update.FinishReason;
        }
        Assert.Multiple(() =>
        {
            Assert.That(client.Conversation.LastTurnReusedState, Is.True);
            Assert.That(finish, Is.Not.Null);
            Assert.That(first.Usage?.OutputTokenCount, Is.GreaterThan(0));
        });

        // A different history: the client starts over, and gives what a fresh client gives.
        List<AIChatMessage> other = [new(ChatRole.User, "Another topic")];
        var reply = await client.GetResponseAsync(other);
        Assert.That(client.Conversation.LastTurnReusedState, Is.False);
        using var freshClient = new FalconChatClient(model, new ConversationOptions { Capacity = 512 }, Greedy);
        Assert.That((await freshClient.GetResponseAsync(other)).Text, Is.EqualTo(reply.Text));
    }
}
