using System.Text.Json;
using System.Text.Json.Serialization;
using FalconOnnx.Runtime;
using FalconOnnx.Runtime.Generation;
using FalconOnnx.Runtime.Text;
using Microsoft.Extensions.AI;

namespace FalconOnnx.Samples.OpenAiServer;

/// <summary>
/// The OpenAI chat-completions protocol (non-streaming JSON and server-sent events) on ASP.NET Core minimal APIs,
/// answered by a <see cref="FalconChatClient"/>, so a continued conversation reuses the model state.
/// </summary>
public static class ChatServer
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    /// <summary>Builds the app; <c>--model &lt;folder&gt;</c> (or configuration "Model") names the exported folder.</summary>
    public static WebApplication Create(string[] args)
    {
        var builder = WebApplication.CreateSlimBuilder(args);
        string folder = builder.Configuration["model"] ?? builder.Configuration["Model"]
            ?? throw new FalconModelException("give the exported folder with --model <folder>");
        var model = FalconModel.Load(folder);
        var client = new FalconChatClient(model, new ConversationOptions { Capacity = builder.Configuration.GetValue("capacity", 4096) });
        builder.Services.AddSingleton(model);
        builder.Services.AddSingleton<IChatClient>(client);
        var app = builder.Build();
        string modelId = Path.GetFileName(Path.GetFullPath(folder).TrimEnd(Path.DirectorySeparatorChar));

        app.MapGet("/v1/models", () => Results.Json(new { @object = "list", data = new[] { new { id = modelId, @object = "model", owned_by = "falcon-onnx" } } }, Json));
        app.MapPost("/v1/chat/completions", async (HttpContext http, IChatClient chat, CancellationToken cancellation) =>
        {
            CompletionRequest? request;
            try
            {
                request = await JsonSerializer.DeserializeAsync<CompletionRequest>(http.Request.Body, Json, cancellation);
            }
            catch (JsonException e)
            {
                return Error(400, $"invalid JSON: {e.Message}");
            }
            if (request?.Messages is not { Count: > 0 }) return Error(400, "'messages' must be a non-empty list");
            var messages = request.Messages.Select(m => new Microsoft.Extensions.AI.ChatMessage(new ChatRole(m.Role ?? "user"), m.Content ?? "")).ToList();
            var options = new ChatOptions
            {
                Temperature = request.Temperature,
                TopP = request.TopP,
                MaxOutputTokens = request.MaxCompletionTokens ?? request.MaxTokens,
                Seed = request.Seed,
                StopSequences = request.Stop,
            };
            string id = "chatcmpl-" + Guid.NewGuid().ToString("N");
            long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
            try
            {
                if (request.Stream == true)
                {
                    await StreamAsync(http, chat, messages, options, id, created, modelId, cancellation);
                    return Results.Empty;
                }
                var response = await chat.GetResponseAsync(messages, options, cancellation);
                return Results.Json(new
                {
                    id,
                    @object = "chat.completion",
                    created,
                    model = modelId,
                    choices = new[] { new { index = 0, message = new { role = "assistant", content = response.Text }, finish_reason = Finish(response.FinishReason) } },
                    usage = new { prompt_tokens = response.Usage?.InputTokenCount ?? 0, completion_tokens = response.Usage?.OutputTokenCount ?? 0, total_tokens = response.Usage?.TotalTokenCount ?? 0 },
                }, Json);
            }
            catch (FalconModelException e)
            {
                if (http.Response.HasStarted) throw;
                return Error(400, e.Message);
            }
        });
        return app;
    }

    private static async Task StreamAsync(HttpContext http, IChatClient chat, List<Microsoft.Extensions.AI.ChatMessage> messages, ChatOptions options,
        string id, long created, string modelId, CancellationToken cancellation)
    {
        http.Response.ContentType = "text/event-stream";
        http.Response.Headers.CacheControl = "no-cache";
        bool first = true;
        await foreach (var update in chat.GetStreamingResponseAsync(messages, options, cancellation))
        {
            object delta = first ? new { role = "assistant", content = update.Text } : new { content = update.Text };
            first = false;
            var chunk = new
            {
                id,
                @object = "chat.completion.chunk",
                created,
                model = modelId,
                choices = new[] { new { index = 0, delta, finish_reason = update.FinishReason is null ? null : Finish(update.FinishReason) } },
            };
            await http.Response.WriteAsync("data: " + JsonSerializer.Serialize(chunk, Json) + "\n\n", cancellation);
            await http.Response.Body.FlushAsync(cancellation);
        }
        await http.Response.WriteAsync("data: [DONE]\n\n", cancellation);
    }

    private static string Finish(ChatFinishReason? reason) => reason == ChatFinishReason.Length ? "length" : "stop";

    private static IResult Error(int status, string message) =>
        Results.Json(new { error = new { message, type = "invalid_request_error" } }, Json, statusCode: status);

    private sealed record CompletionRequest(
        string? Model, List<RequestMessage>? Messages, bool? Stream, float? Temperature, float? TopP,
        int? MaxTokens, int? MaxCompletionTokens, long? Seed, [property: JsonConverter(typeof(StopConverter))] List<string>? Stop);

    private sealed record RequestMessage(string? Role, string? Content);

    /// <summary>"stop" may be one string or a list of strings.</summary>
    private sealed class StopConverter : JsonConverter<List<string>>
    {
        public override List<string>? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            reader.TokenType == JsonTokenType.String ? [reader.GetString()!] : JsonSerializer.Deserialize<List<string>>(ref reader, options);

        public override void Write(Utf8JsonWriter writer, List<string> value, JsonSerializerOptions options) => JsonSerializer.Serialize(writer, value, options);
    }
}
