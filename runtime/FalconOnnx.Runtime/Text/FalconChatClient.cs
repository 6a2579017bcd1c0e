using System.Runtime.CompilerServices;
using FalconOnnx.Runtime.Generation;
using Microsoft.Extensions.AI;
using AIChatMessage = Microsoft.Extensions.AI.ChatMessage;
using TemplateMessage = FalconOnnx.Runtime.Text.ChatMessage;

namespace FalconOnnx.Runtime.Text;

/// <summary>
/// Microsoft.Extensions.AI's <see cref="IChatClient"/> over one <see cref="Conversation"/>. A call whose messages
/// continue the previous call's conversation (the same messages, then the reply it gave, then a new user message)
/// reuses the model state and prefills only the new message; any other call starts the conversation over.
/// Calls are served one at a time.
/// </summary>
public sealed class FalconChatClient : IChatClient
{
    private readonly FalconModel _model;
    private readonly Conversation _conversation;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly GenerationOptions _defaults;
    private readonly ChatClientMetadata _metadata;

    public FalconChatClient(FalconModel model, ConversationOptions? conversation = null, GenerationOptions? defaults = null)
    {
        _model = model;
        // The caller sends its own system message with every call.
        _conversation = new Conversation(model, (conversation ?? new ConversationOptions()) with { SystemPrompt = null });
        _defaults = defaults ?? new GenerationOptions();
        _metadata = new ChatClientMetadata("falcon-onnx", null, Path.GetFileName(Path.GetFullPath(model.Folder).TrimEnd(Path.DirectorySeparatorChar)));
    }

    /// <summary>The conversation behind the client (its state and counters).</summary>
    public Conversation Conversation => _conversation;

    public async Task<ChatResponse> GetResponseAsync(IEnumerable<AIChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var text = new System.Text.StringBuilder();
        ChatFinishReason? finish = null;
        UsageDetails? usage = null;
        await foreach (var update in GetStreamingResponseAsync(messages, options, cancellationToken))
        {
            text.Append(update.Text);
            finish ??= update.FinishReason;
            foreach (var content in update.Contents) if (content is UsageContent u) usage = u.Details;
        }
        return new ChatResponse(new AIChatMessage(ChatRole.Assistant, text.ToString()))
        {
            FinishReason = finish,
            Usage = usage,
            ModelId = _metadata.DefaultModelId,
        };
    }

    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<AIChatMessage> messages, ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var incoming = messages.Select(m => new TemplateMessage(m.Role.Value, m.Text)).ToList();
        if (incoming.Count == 0 || incoming[^1].Role != "user")
            throw new FalconModelException("the last message must come from the user");
        var generation = Generation(options);
        await _gate.WaitAsync(cancellationToken);
        try
        {
            var history = incoming[..^1];
            if (!history.SequenceEqual(_conversation.Messages)) _conversation.Reset(history);
            string id = Guid.NewGuid().ToString("N");
            await foreach (string piece in _conversation.SendAsync(incoming[^1].Content ?? "", generation, cancellationToken))
                yield return new ChatResponseUpdate(ChatRole.Assistant, piece) { ResponseId = id, ModelId = _metadata.DefaultModelId };
            yield return new ChatResponseUpdate
            {
                Role = ChatRole.Assistant,
                ResponseId = id,
                ModelId = _metadata.DefaultModelId,
                FinishReason = _conversation.LastReplyEnd == ReplyEnd.Length ? ChatFinishReason.Length : ChatFinishReason.Stop,
                Contents = [new UsageContent(new UsageDetails
                {
                    InputTokenCount = _conversation.LastPromptTokens,
                    OutputTokenCount = _conversation.LastReplyTokens,
                    TotalTokenCount = _conversation.LastPromptTokens + _conversation.LastReplyTokens,
                })],
            };
        }
        finally
        {
            _gate.Release();
        }
    }

    private GenerationOptions Generation(ChatOptions? options)
    {
        if (options is null) return _defaults;
        var generation = _defaults with
        {
            Temperature = options.Temperature ?? _defaults.Temperature,
            TopP = options.TopP ?? _defaults.TopP,
            TopK = options.TopK ?? _defaults.TopK,
            MaxNewTokens = options.MaxOutputTokens ?? _defaults.MaxNewTokens,
            Seed = options.Seed is { } seed ? unchecked((int)seed) : _defaults.Seed,
            StopStrings = options.StopSequences is { Count: > 0 } stops ? [.. stops] : _defaults.StopStrings,
        };
        generation.Validate();
        return generation;
    }

    public object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceKey is not null ? null
        : serviceType == typeof(ChatClientMetadata) ? _metadata
        : serviceType.IsInstanceOfType(this) ? this
        : serviceType == typeof(FalconModel) ? _model
        : null;

    public void Dispose()
    {
        _conversation.Dispose();
        _gate.Dispose();
    }
}
