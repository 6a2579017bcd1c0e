namespace FalconOnnx.Runtime.Text;

/// <summary>
/// One turn of a conversation, as a chat template sees it: <c>{"role": ..., "content": ...}</c>, plus
/// <c>name</c>, <c>tool_calls</c> and <c>tool_call_id</c> when they are set.
/// </summary>
/// <param name="Role">"system", "user", "assistant" or "tool", as the model's template expects.</param>
/// <param name="Content">The text; null for an assistant turn that only calls tools.</param>
public sealed record ChatMessage(string Role, string? Content)
{
    public string? Name { get; init; }

    /// <summary>The tools an assistant turn calls.</summary>
    public IReadOnlyList<ChatToolCall>? ToolCalls { get; init; }

    /// <summary>For a "tool" turn, the id of the call it answers.</summary>
    public string? ToolCallId { get; init; }
}
