using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using FalconOnnx.Export;
using FalconOnnx.Synthesis;
using FalconOnnx.Tests.Support;
using Microsoft.ML.Tokenizers;
using GenAiModel = Microsoft.ML.OnnxRuntimeGenAI.Model;
using GenAiTokenizer = Microsoft.ML.OnnxRuntimeGenAI.Tokenizer;

namespace FalconOnnx.Tests.Synthesis;

public sealed class ByteLevelBpeTokenizerTests
{
    private static string _folder = "";

    [OneTimeSetUp]
    public void SynthesizeOnce()
    {
        _folder = TestPaths.NewTemp("tokenizer");
        CheckpointSynthesizer.Synthesize(SynthPresets.Tiny, 1, _folder);
    }

    [OneTimeTearDown]
    public void Remove() => Directory.Delete(_folder, recursive: true);

    [Test]
    public void Tokenizer_Tiny_FillsTheVocabulary()
    {
        var json = TokenizerJson();
        Assert.That(json["model"]!["vocab"]!.AsObject(), Has.Count.EqualTo(SynthPresets.Tiny.VocabSize));
        Assert.That(json["model"]!["merges"]!.AsArray(), Has.Count.EqualTo(SynthPresets.Tiny.VocabSize - 16 - 256));
    }

    [Test]
    public void Tokenizer_LoadsWithMicrosoftMlTokenizers_AndRoundTripsUnicode()
    {
        var tokenizer = LoadWithMicrosoftMl();
        const string text = "Hello, world! Ünïcödé 🙂";
        var ids = tokenizer.EncodeToIds(text);
        Assert.That(ids, Is.All.InRange(16, SynthPresets.Tiny.VocabSize - 1), "ordinary text uses no special token");
        Assert.That(tokenizer.Decode(ids), Is.EqualTo(text));
        Assert.That(ids, Has.Count.LessThan(System.Text.Encoding.UTF8.GetByteCount(text)), "merges apply");
    }

    [Test]
    public void Tokenizer_SpecialTokens_GetTheirIds()
    {
        var tokenizer = LoadWithMicrosoftMl();
        var ids = tokenizer.EncodeToIds("<|begin_of_text|><|im_start|>user\nHi<|im_end|>\n<|end_of_text|><|pad|>");
        Assert.Multiple(() =>
        {
            Assert.That(ids[0], Is.EqualTo(1));
            Assert.That(ids[1], Is.EqualTo(2), "<|im_start|>");
            Assert.That(ids, Does.Contain(3), "<|im_end|>");
            Assert.That(ids.Skip(ids.Count - 2), Is.EqualTo(new[] { 11, 0 }));
            Assert.That(tokenizer.Decode([4, 12, 15]), Is.EqualTo("<|reserved_4|><|reserved_12|><|reserved_15|>"));
        });
    }

    /// <summary>ONNX Runtime GenAI reads tokenizer.json with its own loader (onnxruntime-extensions).</summary>
    [Test]
    public void Tokenizer_OnnxRuntimeGenAi_AgreesWithMicrosoftMl()
    {
        string exported = TestPaths.NewTemp("tokenizer-genai");
        try
        {
            FalconH1Exporter.Export(_folder, exported, new ExportOptions());
            using var model = new GenAiModel(exported);
            using var genai = new GenAiTokenizer(model);
            var ml = LoadWithMicrosoftMl();
            foreach (string text in new[] { "Hello, world! Ünïcödé 🙂", "<|im_start|>user\nHi<|im_end|>\n", SampleText.English })
            {
                using var sequences = genai.Encode(text);
                Assert.That(sequences[0].ToArray(), Is.EqualTo(ml.EncodeToIds(text).ToArray()), text[..12]);
                // GenAI's decode drops special tokens.
                Assert.That(genai.Decode(sequences[0]), Is.EqualTo(text.Replace(ByteLevelBpeTokenizer.ImStartToken, "").Replace(ByteLevelBpeTokenizer.ImEndToken, "")), text[..12]);
            }
        }
        finally
        {
            Directory.Delete(exported, recursive: true);
        }
    }

    [Test]
    public void Tokenizer_SpecialIds_MatchConfig()
    {
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(_folder, "config.json")))!;
        var tokenizerConfig = JsonNode.Parse(File.ReadAllText(Path.Combine(_folder, "tokenizer_config.json")))!;
        var vocab = TokenizerJson()["model"]!["vocab"]!;
        foreach (string role in new[] { "pad", "bos", "eos" })
        {
            string token = tokenizerConfig[$"{role}_token"]!.GetValue<string>();
            Assert.That(vocab[token]!.GetValue<int>(), Is.EqualTo(config[$"{role}_token_id"]!.GetValue<int>()), role);
        }
        Assert.That(tokenizerConfig["chat_template"]!.GetValue<string>(), Does.StartWith("{% for message in messages %}<|im_start|>"));
        Assert.That(tokenizerConfig["add_bos_token"]!.GetValue<bool>(), Is.False);
    }

    [Test]
    public void Tokenizer_Large_LearnsCommonWordsAsSingleTokens()
    {
        var tokenizer = ByteLevelBpeTokenizer.Train(SampleText.English, 2048, 0, 1, 11);
        Assert.That(tokenizer.Tokens, Has.Count.InRange(1000, 2048), "the sample supports a thousand tokens or more");
        Assert.That(tokenizer.Tokens, Does.Contain("Ġthe").And.Contain("Ġand").And.Contain("Ġmodel"));
    }

    [Test]
    public void Tokenizer_Training_DependsOnTheTextAlone()
    {
        var a = ByteLevelBpeTokenizer.Train(SampleText.English, 600, 0, 1, 11);
        var b = ByteLevelBpeTokenizer.Train(SampleText.English, 600, 0, 1, 11);
        Assert.That(b.Merges, Is.EqualTo(a.Merges));
        Assert.That(b.Tokens, Is.EqualTo(a.Tokens));
    }

    private static JsonNode TokenizerJson() => JsonNode.Parse(File.ReadAllText(Path.Combine(_folder, "tokenizer.json")))!;

    /// <summary>
    /// Builds a Microsoft.ML.Tokenizers BPE tokenizer from tokenizer.json the way a loader reads the file:
    /// vocab and merges from the model, added tokens as specials, GPT-2's split, byte-level symbols.
    /// </summary>
    private static BpeTokenizer LoadWithMicrosoftMl()
    {
        var json = TokenizerJson();
        var model = json["model"]!;
        Assert.That((model["type"]!.GetValue<string>(), model["byte_fallback"]!.GetValue<bool>()), Is.EqualTo(("BPE", false)));
        Assert.That(json["pre_tokenizer"]!["type"]!.GetValue<string>(), Is.EqualTo("ByteLevel"));
        var specials = json["added_tokens"]!.AsArray().ToDictionary(t => t!["content"]!.GetValue<string>(), t => t!["id"]!.GetValue<int>());
        var gpt2 = new Regex(@"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+");
        return BpeTokenizer.Create(new BpeOptions(model["vocab"]!.AsObject().Select(e => KeyValuePair.Create(e.Key, e.Value!.GetValue<int>())))
        {
            Merges = model["merges"]!.AsArray().Select(m => m!.GetValue<string>()).ToList(),
            SpecialTokens = specials,
            PreTokenizer = new RegexPreTokenizer(gpt2, specials),
            ByteLevel = true,
        });
    }
}
