using System.Runtime.CompilerServices;
using System.Text;
using FalconOnnx.Runtime.Generation;

namespace FalconOnnx.Runtime.Text;

public sealed record ConversationOptions
{
    /// <summary>Tokens the conversation can hold; null takes min(context length, 4096).</summary>
    public int? Capacity { get; init; }

    /// <summary>Prompt tokens per forward call; null takes <see cref="FalconModel.DefaultPrefillChunk"/>.</summary>
    public int? PrefillChunk { get; init; }

    /// <summary>A system message placed first, or null.</summary>
    public string? SystemPrompt { get; init; }
}

/// <summary>
/// A chat whose model state is kept between turns: a new user message only prefills the text the chat template
/// adds after what the model has already seen (its reply included), so the history is never re-run. The stop
/// token that ends a reply is not fed: the template's own end-of-turn text follows the reply instead, exactly
/// as in a fresh run over the rendered conversation. The
/// state before each reply is kept, so <see cref="RegenerateAsync"/> retries a reply without the history either.
/// If the template renders the history differently than it was fed (e.g. it rewrites earlier replies), the
/// conversation is re-run from the start, which is slower but exact.
/// </summary>
public sealed class Conversation : IDisposable
{
    private readonly FalconModel _model;
    private readonly TextGenerator _text;
    private readonly ModelChatTemplate _template;
    private readonly List<ChatMessage> _messages = [];
    // The rendered text the model state covers: the template's prompt plus the raw reply and its end token.
    private string _covered = "";
    private ConversationSnapshot? _beforeReply;

    public Conversation(FalconModel model, ConversationOptions? options = null)
    {
        options ??= new ConversationOptions();
        _model = model;
        _text = new TextGenerator(model, new GeneratorOptions { Capacity = options.Capacity, PrefillChunk = options.PrefillChunk });
        _template = model.ChatTemplate;
        if (options.SystemPrompt is { } system) _messages.Add(new ChatMessage("system", system));
    }

    public IReadOnlyList<ChatMessage> Messages => _messages;

    public Generator Generator => _text.Generator;

    /// <summary>True when the last turn reused the kept state (false when it had to re-run the conversation).</summary>
    public bool LastTurnReusedState { get; private set; }

    /// <summary>Prompt tokens the last turn fed (only the new ones when the state was reused).</summary>
    public int LastPromptTokens { get; private set; }

    /// <summary>Tokens of the last reply, the stop token not counted.</summary>
    public int LastReplyTokens { get; private set; }

    /// <summary>Why the last reply ended.</summary>
    public ReplyEnd LastReplyEnd { get; private set; }

    /// <summary>Stop tokens of a chat: the model's eos ids and, when the tokenizer has it, &lt;|im_end|&gt;.</summary>
    private IReadOnlyList<int> ChatStopTokens
    {
        get
        {
            var stops = new List<int>(_model.Manifest.Tokens.EosTokenIds);
            if (_text.Tokenizer.SpecialTokens.TryGetValue("<|im_end|>", out int end) && !stops.Contains(end)) stops.Add(end);
            return stops;
        }
    }

    /// <summary>Adds a user message and streams the assistant's reply, which is then added to the messages.</summary>
    public IAsyncEnumerable<string> SendAsync(string userMessage, GenerationOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(userMessage);
        options.Validate();
        return ReplyAsync([.. _messages, new ChatMessage("user", userMessage)], options, cancellationToken);
    }

    /// <summary>Replaces the last reply: the state before it is restored and a new reply generated.</summary>
    public IAsyncEnumerable<string> RegenerateAsync(GenerationOptions options, CancellationToken cancellationToken = default)
    {
        options.Validate();
        if (_beforeReply is null || _messages.Count == 0 || _messages[^1].Role != "assistant")
            throw new FalconModelException("there is no reply to regenerate");
        Restore(_beforeReply);
        return GenerateReplyAsync(options, cancellationToken);
    }

    /// <summary>Starts over with the given messages (the next turn renders and runs them all).</summary>
    public void Reset(IEnumerable<ChatMessage>? history = null)
    {
        _messages.Clear();
        if (history is not null) _messages.AddRange(history);
        _text.Generator.Reset();
        _covered = "";
        _beforeReply = null;
    }

    private async IAsyncEnumerable<string> ReplyAsync(List<ChatMessage> messages, GenerationOptions options, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        string prompt = _template.Render(messages, addGenerationPrompt: true);
        LastTurnReusedState = _covered.Length > 0 && prompt.StartsWith(_covered, StringComparison.Ordinal);
        string delta = LastTurnReusedState ? prompt[_covered.Length..] : prompt;
        if (!LastTurnReusedState) _text.Generator.Reset();
        var ids = _text.Tokenizer.Encode(delta);
        if (ids.Count > _text.Generator.Remaining)
            throw new FalconModelException($"the conversation needs {ids.Count} more tokens but only {_text.Generator.Remaining} of the context ({_text.Generator.State.Capacity}) are left; start a new conversation or raise its capacity");
        _text.Generator.Append(ids, cancellationToken);
        LastPromptTokens = ids.Count;
        _messages.Clear();
        _messages.AddRange(messages);
        _covered = prompt;
        _beforeReply = Snapshot();
        await foreach (string piece in GenerateReplyAsync(options, cancellationToken)) yield return piece;
    }

    private async IAsyncEnumerable<string> GenerateReplyAsync(GenerationOptions options, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var reply = new StringBuilder();
        var raw = new StringBuilder();
        var chat = options with { StopTokens = options.StopTokens ?? ChatStopTokens };
        var tokenizer = _text.Tokenizer;
        int before = _text.Generator.Tokens.Count;
        LastReplyEnd = ReplyEnd.Cancelled;
        bool completed = false;
        try
        {
            await foreach (string piece in _text.StreamTokensAsync([], chat, cancellationToken))
            {
                reply.Append(piece);
                yield return piece;
            }
            completed = true;
        }
        finally
        {
            var generated = _text.Generator.Tokens.Skip(before).ToList();
            bool stopToken = generated.Count > 0 && chat.StopTokens!.Contains(generated[^1]);
            if (stopToken)
            {
                _text.Generator.DiscardPendingStopToken(chat.StopTokens!);
                generated.RemoveAt(generated.Count - 1);
            }
            LastReplyTokens = generated.Count;
            if (completed) LastReplyEnd = stopToken || LastReplyTokens < options.MaxNewTokens ? ReplyEnd.Stop : ReplyEnd.Length;
            // What the model has seen of its reply, special tokens included.
            raw.Append(tokenizer.Decode(generated, skipSpecialTokens: false));
            _covered += raw.ToString();
            _messages.Add(new ChatMessage("assistant", reply.ToString()));
        }
    }

    public ConversationSnapshot Snapshot() => new(_text.Generator.Snapshot(), [.. _messages], _covered);

    public void Restore(ConversationSnapshot snapshot)
    {
        _text.Generator.Restore(snapshot.Generator);
        _messages.Clear();
        _messages.AddRange(snapshot.Messages);
        _covered = snapshot.Covered;
    }

    public void Dispose() => _text.Dispose();
}

public enum ReplyEnd
{
    /// <summary>A stop token or stop string ended it.</summary>
    Stop,
    /// <summary>It reached the maximum number of new tokens.</summary>
    Length,
    /// <summary>It was cancelled.</summary>
    Cancelled,
}

/// <summary>A conversation at one moment: model state, messages, and the text the state covers.</summary>
public sealed record ConversationSnapshot(GeneratorSnapshot Generator, ChatMessage[] Messages, string Covered);
