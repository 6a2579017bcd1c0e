using System.Text;
using FalconOnnx.Runtime;
using FalconOnnx.Runtime.Generation;
using FalconOnnx.Runtime.Text;
using FalconOnnx.Tests.Support;

namespace FalconOnnx.Tests.Runtime;

public sealed class TextGenerationTests
{
    private static FalconModel Load() => FalconModel.Load(TinyAExports.TinyWithTokenizer(), new FalconModelOptions { IntraOpThreads = 1 });

    [Test]
    public void Tokenizer_RoundTripsTextAndRecognisesSpecialTokens()
    {
        using var model = Load();
        var tokenizer = model.Tokenizer;
        const string text = "Hello, world! Ünïcödé 🙂 and the falcon.";
        var ids = tokenizer.Encode(text);
        Assert.Multiple(() =>
        {
            Assert.That(tokenizer.Decode(ids), Is.EqualTo(text));
            Assert.That(tokenizer.Encode("<|im_start|>user")[0], Is.EqualTo(tokenizer.SpecialTokens["<|im_start|>"]));
            Assert.That(tokenizer.Decode([tokenizer.SpecialTokens["<|im_end|>"]]), Is.Empty, "special tokens are skipped by default");
            Assert.That(tokenizer.Decode([tokenizer.SpecialTokens["<|im_end|>"]], skipSpecialTokens: false), Is.EqualTo("<|im_end|>"));
        });
    }

    [Test]
    public void StreamingDecoder_NeverEmitsHalfACharacter()
    {
        using var model = Load();
        var tokenizer = model.Tokenizer;
        const string text = "Ünïcödé 🙂🦅 日本語 done";
        var ids = tokenizer.Encode(text);
        var decoder = tokenizer.CreateStreamingDecoder();
        var pieces = ids.Select(decoder.Append).ToList();
        pieces.Add(decoder.Finish());
        Assert.Multiple(() =>
        {
            Assert.That(string.Concat(pieces), Is.EqualTo(text));
            Assert.That(pieces.Any(p => p.Contains('\uFFFD')), Is.False, "no replacement character in any piece");
            Assert.That(pieces.Count(p => p.Length == 0), Is.GreaterThan(0), "multi-byte characters split across tokens are held back");
        });
    }

    [Test]
    public async Task StreamingAndNonStreaming_GiveTheSameText_AndTheSameSeedTheSameText()
    {
        using var model = Load();
        var options = new GenerationOptions { MaxNewTokens = 40, Temperature = 0.9f, TopP = 0.95f, Seed = 11, StopTokens = [] };
        async Task<string> Streamed()
        {
            using var generator = new TextGenerator(model, new GeneratorOptions { Capacity = 128 });
            var text = new StringBuilder();
            await foreach (string piece in generator.StreamAsync("The falcon", options)) text.Append(piece);
            return text.ToString();
        }
        async Task<string> Whole()
        {
            using var generator = new TextGenerator(model, new GeneratorOptions { Capacity = 128 });
            return await generator.GenerateAsync("The falcon", options);
        }
        string streamed = await Streamed();
        Assert.Multiple(async () =>
        {
            Assert.That(streamed, Is.Not.Empty);
            Assert.That(await Whole(), Is.EqualTo(streamed));
            Assert.That(await Streamed(), Is.EqualTo(streamed), "same seed, same text");
        });
    }

    [Test]
    public async Task StopString_CutsTheTextBeforeIt()
    {
        using var model = Load();
        using var generator = new TextGenerator(model, new GeneratorOptions { Capacity = 128 });
        var greedy = GenerationOptions.Greedy with { MaxNewTokens = 40, StopTokens = [] };
        string full = await generator.GenerateAsync("The falcon", greedy);
        Assume.That(full.Length, Is.GreaterThan(6));
        string stop = full.Substring(full.Length / 2, 3);
        int cut = full.IndexOf(stop, StringComparison.Ordinal);
        generator.Generator.Reset();
        string stopped = await generator.GenerateAsync("The falcon", greedy with { StopStrings = [stop] });
        Assert.That(stopped, Is.EqualTo(full[..cut]));
    }

    [Test]
    public void StopStringFilter_HoldsBackPossibleStarts()
    {
        var filter = new StopStringFilter(["</end>"]);
        Assert.Multiple(() =>
        {
            Assert.That(filter.Push("abc</"), Is.EqualTo("abc"));
            Assert.That(filter.Push("en"), Is.Empty);
            Assert.That(filter.Push("x more"), Is.EqualTo("</enx more"));
            Assert.That(filter.Push(" and </end> after"), Is.EqualTo(" and "));
            Assert.That(filter.Stopped, Is.True);
            Assert.That(filter.Flush(), Is.Empty);
        });
    }
}
