namespace FalconOnnx.Runtime.Text.Jinja;

/// <summary>
/// A Hugging Face chat template (the Jinja2 <c>chat_template</c> of tokenizer_config.json or chat_template.jinja),
/// parsed once and rendered per conversation the way transformers' apply_chat_template does: trim_blocks and
/// lstrip_blocks on, autoescape off, loop controls on, and raise_exception / strftime_now available. A parsed template
/// is immutable, so one instance may render on several threads at once.
/// </summary>
public sealed class ChatTemplate
{
    /// <summary>Names the caller's <c>extra</c> variables may not replace.</summary>
    private static readonly string[] ReservedNames = ["messages", "add_generation_prompt"];

    private readonly IReadOnlyList<Statement> _body;

    private ChatTemplate(IReadOnlyList<Statement> body) => _body = body;

    /// <summary>The clock <c>strftime_now</c> reads; tests replace it.</summary>
    internal TimeProvider Clock { get; init; } = TimeProvider.System;

    /// <exception cref="FalconModelException">The template does not parse; the one-line message names the line, column and problem.</exception>
    public static ChatTemplate Parse(string source)
    {
        ArgumentNullException.ThrowIfNull(source);
        return new ChatTemplate(TemplateParser.Parse(source));
    }

    internal ChatTemplate WithClock(TimeProvider clock) => new(_body) { Clock = clock };

    /// <summary>Renders the prompt for <paramref name="messages"/>.</summary>
    /// <param name="addGenerationPrompt">Whether to end with the opening of an assistant turn (<c>add_generation_prompt</c>).</param>
    /// <param name="extra">
    /// Further template variables, such as bos_token, eos_token or tools (a list of JSON schemas). Values may be
    /// strings, numbers, booleans, null, lists, dictionaries, or System.Text.Json elements and nodes. Without an
    /// entry, tools and documents are none, as transformers passes them.
    /// </param>
    /// <exception cref="FalconModelException">The template raised an error, or cannot be rendered with these values.</exception>
    public string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt, IReadOnlyDictionary<string, object?>? extra = null)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var globals = new Scope(parent: null);
        foreach (var (name, function) in Globals.Create(Clock)) globals.Set(name, function);

        var context = new Scope(globals);
        context.Set("tools", null);
        context.Set("documents", null);
        foreach (var (name, value) in extra ?? new Dictionary<string, object?>())
        {
            if (ReservedNames.Contains(name))
                throw new FalconModelException($"Chat template variable '{name}' cannot be given as an extra variable");
            context.Set(name, ValueConverter.FromClr(value, name));
        }
        context.Set("messages", messages.Select((message, i) => ValueConverter.FromClr(message, $"messages[{i}]")).ToList());
        context.Set("add_generation_prompt", addGenerationPrompt);

        try
        {
            return new Renderer().RenderTemplate(_body, new Scope(context));
        }
        catch (TemplateRuntimeException e)
        {
            string where = e.Position is { } position ? $" at {position}" : "";
            throw new FalconModelException($"Chat template error{where}: {e.Message}");
        }
    }
}
