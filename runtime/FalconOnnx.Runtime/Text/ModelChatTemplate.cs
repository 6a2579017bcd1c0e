using System.Text.Json;
using FalconOnnx.Runtime.Text.Jinja;

namespace FalconOnnx.Runtime.Text;

/// <summary>
/// The chat template of an exported folder: <c>chat_template.jinja</c>, else <c>chat_template</c> in
/// tokenizer_config.json (a string, or a list of named templates where "default" is taken), rendered by the
/// Jinja interpreter in <see cref="Jinja"/>. A folder without one gets the ChatML layout Falcon-H1 Instruct uses.
/// </summary>
public sealed class ModelChatTemplate
{
    /// <summary>ChatML, the layout of Falcon-H1 Instruct, for folders that carry no template.</summary>
    public const string ChatMl =
        "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

    private readonly ChatTemplate _template;
    private readonly Dictionary<string, object?> _variables;

    private ModelChatTemplate(ChatTemplate template, string source, bool isFallback, Dictionary<string, object?> variables)
    {
        _template = template;
        Source = source;
        IsFallback = isFallback;
        _variables = variables;
    }

    public string Source { get; }

    /// <summary>True when the folder had no template and ChatML is used.</summary>
    public bool IsFallback { get; }

    public static ModelChatTemplate Load(string folder)
    {
        string? source = null;
        var variables = new Dictionary<string, object?>();
        string jinja = Path.Combine(folder, "chat_template.jinja");
        string config = Path.Combine(folder, "tokenizer_config.json");
        if (File.Exists(config))
        {
            try
            {
                using var document = JsonDocument.Parse(File.ReadAllBytes(config));
                var root = document.RootElement;
                foreach (string name in new[] { "bos_token", "eos_token", "pad_token", "unk_token" })
                    if (root.TryGetProperty(name, out var token))
                        variables[name] = token.ValueKind == JsonValueKind.String ? token.GetString() : token.TryGetProperty("content", out var content) ? content.GetString() : null;
                if (root.TryGetProperty("chat_template", out var template))
                    source = template.ValueKind == JsonValueKind.String ? template.GetString()
                        : template.ValueKind == JsonValueKind.Array ? template.EnumerateArray().Where(t => t.GetProperty("name").GetString() == "default").Select(t => t.GetProperty("template").GetString()).FirstOrDefault()
                        : null;
            }
            catch (JsonException e)
            {
                throw new FalconModelException($"{config}: not valid JSON ({e.Message.Split('\n')[0]})", e);
            }
        }
        if (File.Exists(jinja)) source = File.ReadAllText(jinja);
        bool fallback = source is null;
        source ??= ChatMl;
        return new ModelChatTemplate(ChatTemplate.Parse(source), source, fallback, variables);
    }

    public string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt) => _template.Render(messages, addGenerationPrompt, _variables);
}
