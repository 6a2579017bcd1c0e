namespace FalconOnnx.Runtime.Text;

/// <summary>
/// A tool call made by an assistant turn. Templates see it as
/// <c>{"id": ..., "type": "function", "function": {"name": ..., "arguments": {...}}}</c>; the arguments are a mapping,
/// as Hugging Face expects, and may hold strings, numbers, booleans, lists, dictionaries or JSON elements.
/// </summary>
public sealed record ChatToolCall(string Name, IReadOnlyDictionary<string, object?> Arguments)
{
    public string? Id { get; init; }
}
