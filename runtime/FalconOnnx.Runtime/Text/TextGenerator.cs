using System.Runtime.CompilerServices;
using System.Text;
using FalconOnnx.Runtime.Generation;

namespace FalconOnnx.Runtime.Text;

/// <summary>
/// Text in, text out, for one sequence kept between calls: each call appends its prompt's tokens and streams
/// the generated text. Streaming and non-streaming share one path, so they give the same text.
/// </summary>
public sealed class TextGenerator : IDisposable
{
    public TextGenerator(FalconModel model, GeneratorOptions? options = null)
    {
        Tokenizer = model.Tokenizer;
        Generator = new Generator(model, options);
    }

    public FalconTokenizer Tokenizer { get; }

    public Generator Generator { get; }

    /// <summary>Appends <paramref name="prompt"/> to the sequence and streams the continuation.</summary>
    public async IAsyncEnumerable<string> StreamAsync(string prompt, GenerationOptions options, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        options.Validate();
        var ids = Tokenizer.Encode(prompt);
        if (ids.Count == 0 && Generator.Tokens.Count == 0) throw new FalconModelException("the prompt is empty: give some text");
        await foreach (string piece in StreamTokensAsync(ids, options, cancellationToken)) yield return piece;
    }

    /// <summary>Appends tokens and streams the text of the tokens generated after them.</summary>
    public async IAsyncEnumerable<string> StreamTokensAsync(IReadOnlyList<int> prompt, GenerationOptions options, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        if (prompt.Count > Generator.Remaining)
            throw new FalconModelException($"the prompt has {prompt.Count} tokens but only {Generator.Remaining} of the context ({Generator.State.Capacity}) are left");
        if (prompt.Count + options.MaxNewTokens > Generator.Remaining)
            throw new FalconModelException($"prompt ({prompt.Count} tokens) + max new tokens ({options.MaxNewTokens}) exceed the {Generator.Remaining} positions left of the context ({Generator.State.Capacity})");
        // The work is CPU-bound: leave the caller's context first, so a UI or request thread is not held.
        await Task.Yield();
        Generator.Append(prompt, cancellationToken);
        var decoder = Tokenizer.CreateStreamingDecoder();
        var stops = new StopStringFilter(options.StopStrings);
        foreach (int token in Generator.Generate(options, cancellationToken))
        {
            string shown = stops.Push(decoder.Append(token));
            if (shown.Length > 0) yield return shown;
            if (stops.Stopped) yield break;
        }
        string rest = stops.Push(decoder.Finish()) + stops.Flush();
        if (rest.Length > 0) yield return rest;
    }

    public async Task<string> GenerateAsync(string prompt, GenerationOptions options, CancellationToken cancellationToken = default)
    {
        var text = new StringBuilder();
        await foreach (string piece in StreamAsync(prompt, options, cancellationToken)) text.Append(piece);
        return text.ToString();
    }

    public void Dispose() => Generator.Dispose();
}
