using System.Text.Json;
using System.Text.Json.Nodes;
using FalconOnnx.Checkpoints;
using FalconOnnx.Synthesis;

namespace FalconOnnx.Benchmarks.Gguf;

/// <summary>llama.cpp's token types (llama_token_type / gguf-py TokenType).</summary>
public enum GgufTokenType
{
    Normal = 1,
    Control = 3,
    UserDefined = 4,
    Unused = 5,
}

/// <summary>
/// The <c>tokenizer.ggml.*</c> keys of a Falcon-H1 GGUF, as llama.cpp's converter writes them for a byte-level
/// BPE tokenizer (<c>_set_vocab_gpt2</c>): model "gpt2", pre-tokenizer "falcon-h1", one token per embedding row
/// (rows no token names become "[PAD{id}]", unused), token types, merges "left right", special ids. A checkpoint
/// without tokenizer.json gets the 256 byte symbols of byte-level BPE and no merges, enough for llama.cpp to load
/// it and run token ids.
/// </summary>
public sealed class GgufVocabulary
{
    private GgufVocabulary(string[] tokens, int[] types, string[] merges, FalconH1Config config, bool? addBos)
    {
        Tokens = tokens;
        Types = types;
        Merges = merges;
        Config = config;
        AddBos = addBos;
    }

    public IReadOnlyList<string> Tokens { get; }
    public IReadOnlyList<int> Types { get; }
    public IReadOnlyList<string> Merges { get; }
    private FalconH1Config Config { get; }
    private bool? AddBos { get; }

    public static GgufVocabulary Read(string folder, FalconH1Config config)
    {
        var tokens = new string?[config.VocabSize];
        var types = new int[config.VocabSize];
        string[] merges = [];
        bool? addBos = null;
        string tokenizerPath = Path.Combine(folder, "tokenizer.json");
        if (File.Exists(tokenizerPath))
        {
            var json = JsonNode.Parse(File.ReadAllText(tokenizerPath)) as JsonObject
                ?? throw new GgufException($"{tokenizerPath}: not a JSON object");
            var model = json["model"] as JsonObject ?? throw new GgufException($"{tokenizerPath}: no 'model' object");
            if (model["type"]?.ToString() != "BPE") throw new GgufException($"{tokenizerPath}: model type '{model["type"]}' is not BPE");
            foreach (var (token, id) in model["vocab"] as JsonObject ?? throw new GgufException($"{tokenizerPath}: no 'model.vocab'"))
                Place(tokens, types, id!.GetValue<int>(), token, GgufTokenType.Normal, tokenizerPath);
            if (json["added_tokens"] is JsonArray added)
                foreach (var entry in added.OfType<JsonObject>())
                {
                    bool special = entry["special"]?.GetValue<bool>() ?? false;
                    Place(tokens, types, entry["id"]!.GetValue<int>(), entry["content"]!.GetValue<string>(),
                        special ? GgufTokenType.Control : GgufTokenType.UserDefined, tokenizerPath);
                }
            merges = (model["merges"] as JsonArray ?? []).Select(m => m switch
            {
                JsonArray pair when pair.Count == 2 => $"{pair[0]} {pair[1]}",
                JsonValue text when text.GetValueKind() == JsonValueKind.String => text.GetValue<string>(),
                _ => throw new GgufException($"{tokenizerPath}: merge {m?.ToJsonString()} is neither \"left right\" nor [left, right]"),
            }).ToArray();
            string configPath = Path.Combine(folder, "tokenizer_config.json");
            if (File.Exists(configPath) && JsonNode.Parse(File.ReadAllText(configPath))?["add_bos_token"] is JsonValue add
                && add.GetValueKind() is JsonValueKind.True or JsonValueKind.False)
                addBos = add.GetValue<bool>();
        }
        else
        {
            for (int b = 0; b < Math.Min(256, config.VocabSize); b++)
                Place(tokens, types, b, ByteLevelBpeTokenizer.ByteSymbols[b].ToString(), GgufTokenType.Normal, folder);
        }
        for (int id = 0; id < tokens.Length; id++)
            if (tokens[id] is null)
            {
                tokens[id] = $"[PAD{id}]";
                types[id] = (int)GgufTokenType.Unused;
            }
        return new GgufVocabulary(tokens!, types, merges, config, addBos);
    }

    private static void Place(string?[] tokens, int[] types, int id, string token, GgufTokenType type, string source)
    {
        if ((uint)id >= (uint)tokens.Length)
            throw new GgufException($"{source}: token '{token}' has id {id}, outside the {tokens.Length} embedding rows");
        tokens[id] = token;
        types[id] = (int)type;
    }

    public IEnumerable<KeyValuePair<string, GgufValue>> Metadata()
    {
        yield return new("tokenizer.ggml.model", GgufValue.String("gpt2"));
        // llama.cpp recognises Falcon-H1's tokenizers by hash and names their pre-tokenizer "falcon-h1" (Llama-3's
        // regex); a synthetic tokenizer has no known hash, so the name is set directly.
        yield return new("tokenizer.ggml.pre", GgufValue.String(FalconH1Gguf.Architecture));
        yield return new("tokenizer.ggml.tokens", GgufValue.Strings(Tokens));
        yield return new("tokenizer.ggml.token_type", GgufValue.Int32s(Types));
        yield return new("tokenizer.ggml.merges", GgufValue.Strings(Merges));
        yield return new("tokenizer.ggml.bos_token_id", GgufValue.UInt32((uint)Config.BosTokenId));
        yield return new("tokenizer.ggml.eos_token_id", GgufValue.UInt32((uint)Config.EosTokenIds[0]));
        yield return new("tokenizer.ggml.padding_token_id", GgufValue.UInt32((uint)Config.PadTokenId));
        if (AddBos is { } add) yield return new("tokenizer.ggml.add_bos_token", GgufValue.Bool(add));
    }
}
