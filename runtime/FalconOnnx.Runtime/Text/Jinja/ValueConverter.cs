using System.Collections;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace FalconOnnx.Runtime.Text.Jinja;

/// <summary>Turns the .NET values a caller passes (messages, tools, extra variables) into template values.</summary>
internal static class ValueConverter
{
    public static object? FromClr(object? value, string path) => value switch
    {
        null => null,
        string or bool or long or double => value,
        int or short or sbyte or byte or ushort or uint => Convert.ToInt64(value),
        ulong u => u <= long.MaxValue ? (long)u : (object)(double)u,
        float f => (double)f,
        decimal m => (double)m,
        char c => c.ToString(),
        ChatMessage message => FromMessage(message, path),
        ChatToolCall call => FromToolCall(call, path),
        JsonElement element => FromJson(element),
        JsonNode node => FromJson(JsonSerializer.SerializeToElement(node)),
        IDictionary dictionary => FromDictionary(dictionary, path),
        IEnumerable<KeyValuePair<string, object?>> pairs => FromPairs(pairs, path),
        IEnumerable sequence => sequence.Cast<object?>().Select((item, i) => FromClr(item, $"{path}[{i}]")).ToList(),
        _ => throw new FalconModelException($"Chat template variable '{path}' has a value of type {value.GetType().Name}, which templates cannot use"),
    };

    /// <summary>The dict Hugging Face templates expect of a message; optional fields are present only when set.</summary>
    private static DictValue FromMessage(ChatMessage message, string path)
    {
        var dict = new DictValue { ["role"] = message.Role, ["content"] = message.Content };
        if (message.Name is not null) dict["name"] = message.Name;
        if (message.ToolCalls is not null)
            dict["tool_calls"] = message.ToolCalls.Select((call, i) => FromToolCall(call, $"{path}.tool_calls[{i}]")).Cast<object?>().ToList();
        if (message.ToolCallId is not null) dict["tool_call_id"] = message.ToolCallId;
        return dict;
    }

    /// <summary>The OpenAI-style shape templates read: {id?, type: "function", function: {name, arguments}}.</summary>
    private static DictValue FromToolCall(ChatToolCall call, string path)
    {
        var dict = new DictValue();
        if (call.Id is not null) dict["id"] = call.Id;
        dict["type"] = "function";
        dict["function"] = new DictValue
        {
            ["name"] = call.Name,
            ["arguments"] = FromClr(call.Arguments, path + ".arguments"),
        };
        return dict;
    }

    private static DictValue FromDictionary(IDictionary dictionary, string path)
    {
        var dict = new DictValue();
        foreach (DictionaryEntry entry in dictionary)
            dict.Put(FromClr(entry.Key, path), FromClr(entry.Value, $"{path}.{entry.Key}"));
        return dict;
    }

    private static DictValue FromPairs(IEnumerable<KeyValuePair<string, object?>> pairs, string path)
    {
        var dict = new DictValue();
        foreach (var (key, value) in pairs) dict[key] = FromClr(value, $"{path}.{key}");
        return dict;
    }

    private static object? FromJson(JsonElement element) => element.ValueKind switch
    {
        JsonValueKind.Object => ObjectFromJson(element),
        JsonValueKind.Array => element.EnumerateArray().Select(FromJson).ToList(),
        JsonValueKind.String => element.GetString(),
        JsonValueKind.Number => element.TryGetInt64(out long l) ? l : (object)element.GetDouble(),
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => null,
    };

    private static DictValue ObjectFromJson(JsonElement element)
    {
        var dict = new DictValue();
        foreach (JsonProperty property in element.EnumerateObject()) dict[property.Name] = FromJson(property.Value);
        return dict;
    }
}
