using System.Runtime.InteropServices;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace FalconOnnx.Synthesis;

/// <summary>
/// A small but real byte-level BPE tokenizer in Hugging Face's layout (the GPT-2 scheme Falcon-H1 uses,
/// falcon-h1.md §4.3), learned from <see cref="SampleText"/>:
/// ids 0‥15 are special tokens (pad, bos and eos at the model's ids, the ChatML markers, reserved fill-ins),
/// then the 256 byte symbols, then one token per learned merge. Any UTF-8 text encodes, since every byte has
/// a symbol, and decodes back unchanged.
/// </summary>
public sealed partial class ByteLevelBpeTokenizer
{
    public const int SpecialTokenCount = 16;
    public const string PadToken = "<|pad|>";
    public const string BeginOfTextToken = "<|begin_of_text|>";
    public const string EndOfTextToken = "<|end_of_text|>";
    public const string ImStartToken = "<|im_start|>";
    public const string ImEndToken = "<|im_end|>";

    /// <summary>The ChatML-like layout of the Falcon-H1 Instruct models (falcon-h1.md §4.3, inferred).</summary>
    public const string ChatTemplate =
        "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endfor %}"
        + "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

    /// <summary>A pair must occur at least this often in the sample to be merged; rarer pairs would only memorise it.</summary>
    private const int MinPairCount = 2;

    private static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private readonly List<string> _tokens;
    private readonly List<(string Left, string Right)> _merges;

    private ByteLevelBpeTokenizer(List<string> tokens, List<(string, string)> merges, int padId, int bosId, int eosId)
    {
        _tokens = tokens;
        _merges = merges;
        PadTokenId = padId;
        BosTokenId = bosId;
        EosTokenId = eosId;
    }

    /// <summary>Every token by id, byte symbols in GPT-2's printable form (a space is 'Ġ').</summary>
    public IReadOnlyList<string> Tokens => _tokens;

    /// <summary>The merges in the order they were learned, which is their priority when encoding.</summary>
    public IReadOnlyList<(string Left, string Right)> Merges => _merges;

    public int PadTokenId { get; }
    public int BosTokenId { get; }
    public int EosTokenId { get; }

    public IEnumerable<string> SpecialTokens => _tokens.Take(SpecialTokenCount);

    /// <summary>
    /// Learns merges from <paramref name="text"/> until the vocabulary holds <paramref name="maxVocabSize"/>
    /// tokens or no pair occurs <see cref="MinPairCount"/> times. The most frequent pair wins; ties go to the
    /// ordinally smallest (left, right), so the result depends on the text alone.
    /// </summary>
    public static ByteLevelBpeTokenizer Train(string text, int maxVocabSize, int padId, int bosId, int eosId)
    {
        var tokens = SpecialLayout(padId, bosId, eosId);
        if (maxVocabSize < tokens.Count + 256)
            throw new ArgumentOutOfRangeException(nameof(maxVocabSize), $"{maxVocabSize} leaves no room for {tokens.Count} special tokens and 256 byte symbols");
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < tokens.Count; i++) ids[tokens[i]] = i;
        foreach (char symbol in ByteSymbols)
        {
            ids[symbol.ToString()] = tokens.Count;
            tokens.Add(symbol.ToString());
        }

        var words = Words(text, ids);
        var merges = new List<(string, string)>();
        var pairCounts = new Dictionary<(int Left, int Right), int>();
        while (tokens.Count < maxVocabSize)
        {
            pairCounts.Clear();
            foreach (var (symbols, count) in words)
                for (int i = 0; i + 1 < symbols.Count; i++)
                    CollectionsMarshal.GetValueRefOrAddDefault(pairCounts, (symbols[i], symbols[i + 1]), out _) += count;

            var best = (Left: -1, Right: -1);
            int bestCount = 0;
            foreach (var (pair, count) in pairCounts)
                if (count > bestCount || (count == bestCount && ComparePairs(tokens, pair, best) < 0))
                    (best, bestCount) = (pair, count);
            if (bestCount < MinPairCount) break;

            string merged = tokens[best.Left] + tokens[best.Right];
            if (!ids.TryGetValue(merged, out int mergedId))
            {
                mergedId = tokens.Count;
                ids[merged] = mergedId;
                tokens.Add(merged);
            }
            merges.Add((tokens[best.Left], tokens[best.Right]));
            foreach (var (symbols, _) in words) Merge(symbols, best.Left, best.Right, mergedId);
        }
        return new ByteLevelBpeTokenizer(tokens, merges, padId, bosId, eosId);
    }

    /// <summary>Writes tokenizer.json, tokenizer_config.json and special_tokens_map.json into <paramref name="folder"/>.</summary>
    public void WriteFiles(string folder, int modelMaxLength)
    {
        Write(Path.Combine(folder, "tokenizer.json"), TokenizerJson());
        Write(Path.Combine(folder, "tokenizer_config.json"), TokenizerConfigJson(modelMaxLength));
        Write(Path.Combine(folder, "special_tokens_map.json"), SpecialTokensMapJson());
    }

    private static void Write(string path, JsonObject json) => File.WriteAllText(path, json.ToJsonString(JsonOptions) + "\n");

    /// <summary>The fast-tokenizer file: added special tokens, ByteLevel pre-tokenizer and decoder, the BPE model.</summary>
    public JsonObject TokenizerJson()
    {
        var added = new JsonArray();
        for (int id = 0; id < SpecialTokenCount; id++)
            added.Add(new JsonObject
            {
                ["id"] = id,
                ["content"] = _tokens[id],
                ["single_word"] = false,
                ["lstrip"] = false,
                ["rstrip"] = false,
                ["normalized"] = false,
                ["special"] = true,
            });
        var vocab = new JsonObject();
        for (int id = 0; id < _tokens.Count; id++) vocab[_tokens[id]] = id;
        // The classic "left right" string form: byte symbols never contain a space, and every loader reads it.
        var merges = new JsonArray(_merges.Select(m => (JsonNode)$"{m.Left} {m.Right}").ToArray());
        return new JsonObject
        {
            ["version"] = "1.0",
            ["truncation"] = null,
            ["padding"] = null,
            ["added_tokens"] = added,
            ["normalizer"] = null,
            ["pre_tokenizer"] = ByteLevel(addPrefixSpace: false, trimOffsets: true),
            ["post_processor"] = ByteLevel(addPrefixSpace: true, trimOffsets: false),
            ["decoder"] = ByteLevel(addPrefixSpace: true, trimOffsets: true),
            ["model"] = new JsonObject
            {
                ["type"] = "BPE",
                ["dropout"] = null,
                ["unk_token"] = null,
                ["continuing_subword_prefix"] = null,
                ["end_of_word_suffix"] = null,
                ["fuse_unk"] = false,
                ["byte_fallback"] = false,
                ["vocab"] = vocab,
                ["merges"] = merges,
            },
        };
    }

    /// <summary>GPT-2's ByteLevel component; add_prefix_space only matters for the pre-tokenizer.</summary>
    private static JsonObject ByteLevel(bool addPrefixSpace, bool trimOffsets) => new()
    {
        ["type"] = "ByteLevel",
        ["add_prefix_space"] = addPrefixSpace,
        ["trim_offsets"] = trimOffsets,
        ["use_regex"] = true,
    };

    public JsonObject TokenizerConfigJson(int modelMaxLength)
    {
        var decoder = new JsonObject();
        for (int id = 0; id < SpecialTokenCount; id++)
            decoder[id.ToString()] = new JsonObject
            {
                ["content"] = _tokens[id],
                ["lstrip"] = false,
                ["normalized"] = false,
                ["rstrip"] = false,
                ["single_word"] = false,
                ["special"] = true,
            };
        return new JsonObject
        {
            ["add_bos_token"] = false,
            ["add_eos_token"] = false,
            ["added_tokens_decoder"] = decoder,
            ["bos_token"] = _tokens[BosTokenId],
            ["chat_template"] = ChatTemplate,
            ["clean_up_tokenization_spaces"] = false,
            ["eos_token"] = _tokens[EosTokenId],
            ["model_max_length"] = modelMaxLength,
            ["pad_token"] = _tokens[PadTokenId],
            ["tokenizer_class"] = "PreTrainedTokenizerFast",
        };
    }

    public JsonObject SpecialTokensMapJson() => new()
    {
        ["additional_special_tokens"] = new JsonArray(ImStartToken, ImEndToken),
        ["bos_token"] = _tokens[BosTokenId],
        ["eos_token"] = _tokens[EosTokenId],
        ["pad_token"] = _tokens[PadTokenId],
    };

    /// <summary>
    /// GPT-2's <c>bytes_to_unicode</c>: printable Latin-1 bytes stand for themselves, the other 68 bytes (controls,
    /// space, a few others) take the code points from U+0100 up, in byte order. Indexed by byte.
    /// </summary>
    public static IReadOnlyList<char> ByteSymbols { get; } = CreateByteSymbols();

    private static char[] CreateByteSymbols()
    {
        var symbols = new char[256];
        int next = 256;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            symbols[b] = (char)(printable ? b : next++);
        }
        return symbols;
    }

    /// <summary>Pad, bos and eos at the model's ids, then the ChatML markers, then reserved tokens named by their id.</summary>
    private static List<string> SpecialLayout(int padId, int bosId, int eosId)
    {
        var layout = new string?[SpecialTokenCount];
        foreach (var (id, token) in new[] { (padId, PadToken), (bosId, BeginOfTextToken), (eosId, EndOfTextToken) })
        {
            if (id is < 0 or >= SpecialTokenCount || layout[id] is not null)
                throw new ArgumentException($"special token ids pad {padId}, bos {bosId}, eos {eosId} must be distinct and below {SpecialTokenCount}");
            layout[id] = token;
        }
        int free = 0;
        foreach (string token in new[] { ImStartToken, ImEndToken })
        {
            while (layout[free] is not null) free++;
            layout[free] = token;
        }
        return layout.Select((token, id) => token ?? $"<|reserved_{id}|>").ToList();
    }

    /// <summary>The sample's pre-tokenized words as byte-symbol id sequences, each with its count.</summary>
    private static List<(List<int> Symbols, int Count)> Words(string text, Dictionary<string, int> ids)
    {
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (Match match in Gpt2PreTokenizer().Matches(text))
            CollectionsMarshal.GetValueRefOrAddDefault(counts, match.Value, out _)++;
        int firstByteId = SpecialTokenCount;
        return counts.OrderBy(c => c.Key, StringComparer.Ordinal)
            .Select(c => (Encoding.UTF8.GetBytes(c.Key).Select(b => firstByteId + b).ToList(), c.Value))
            .ToList();
    }

    /// <summary>Replaces every non-overlapping (left, right), scanning left to right, by <paramref name="merged"/>.</summary>
    private static void Merge(List<int> symbols, int left, int right, int merged)
    {
        int write = 0;
        for (int read = 0; read < symbols.Count; read++)
        {
            if (read + 1 < symbols.Count && symbols[read] == left && symbols[read + 1] == right)
            {
                symbols[write++] = merged;
                read++;
            }
            else
            {
                symbols[write++] = symbols[read];
            }
        }
        symbols.RemoveRange(write, symbols.Count - write);
    }

    private static int ComparePairs(List<string> tokens, (int Left, int Right) a, (int Left, int Right) b)
    {
        if (b.Left < 0) return -1;
        int left = string.CompareOrdinal(tokens[a.Left], tokens[b.Left]);
        return left != 0 ? left : string.CompareOrdinal(tokens[a.Right], tokens[b.Right]);
    }

    /// <summary>GPT-2's split, which Hugging Face's ByteLevel pre-tokenizer applies when use_regex is true.</summary>
    [GeneratedRegex(@"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+")]
    public static partial Regex Gpt2PreTokenizer();
}
