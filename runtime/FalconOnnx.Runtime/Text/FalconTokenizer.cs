using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace FalconOnnx.Runtime.Text;

/// <summary>
/// A Hugging Face byte-level BPE tokenizer (tokenizer.json) on Microsoft.ML.Tokenizers. That library encodes
/// but does not read tokenizer.json, so this class reads the vocabulary, merges, added tokens and the
/// pre-tokenizer regex from the file. Decoding maps each token back to its bytes (the byte-level alphabet),
/// which is also what lets <see cref="StreamingDecoder"/> hold back half a UTF-8 character.
/// </summary>
public sealed class FalconTokenizer
{
    /// <summary>GPT-2's pre-tokenizer regex, used by ByteLevel(use_regex = true).</summary>
    private const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    private readonly BpeTokenizer _bpe;
    private readonly byte[][] _tokenBytes;
    private readonly bool[] _special;
    private readonly Regex? _specialSplit;

    private FalconTokenizer(BpeTokenizer bpe, byte[][] tokenBytes, bool[] special, Dictionary<string, int> specialTokens)
    {
        _bpe = bpe;
        _tokenBytes = tokenBytes;
        _special = special;
        SpecialTokens = specialTokens;
        if (specialTokens.Count > 0)
            _specialSplit = new Regex("(" + string.Join("|", specialTokens.Keys.OrderByDescending(k => k.Length).Select(Regex.Escape)) + ")", RegexOptions.Compiled);
    }

    public IReadOnlyDictionary<string, int> SpecialTokens { get; }

    /// <summary>One more than the largest token id.</summary>
    public int VocabularySize => _tokenBytes.Length;

    public static FalconTokenizer Load(string path)
    {
        if (!File.Exists(path)) throw new FalconModelException($"{path}: tokenizer file not found");
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllBytes(path));
            return Create(document.RootElement, path);
        }
        catch (JsonException e)
        {
            throw new FalconModelException($"{path}: not valid JSON ({e.Message.Split('\n')[0]})", e);
        }
    }

    private static FalconTokenizer Create(JsonElement root, string path)
    {
        if (!root.TryGetProperty("model", out var model) || model.GetProperty("type").GetString() != "BPE")
            throw new FalconModelException($"{path}: 'model.type' must be \"BPE\" (byte-level BPE tokenizers are supported)");
        var vocabulary = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var entry in model.GetProperty("vocab").EnumerateObject()) vocabulary[entry.Name] = entry.Value.GetInt32();
        var merges = new List<string>();
        if (model.TryGetProperty("merges", out var mergeList))
            foreach (var merge in mergeList.EnumerateArray())
                merges.Add(merge.ValueKind == JsonValueKind.Array ? merge[0].GetString() + " " + merge[1].GetString() : merge.GetString()!);

        var special = new Dictionary<string, int>(StringComparer.Ordinal);
        var added = new Dictionary<int, string>();
        if (root.TryGetProperty("added_tokens", out var addedTokens))
            foreach (var token in addedTokens.EnumerateArray())
            {
                string content = token.GetProperty("content").GetString()!;
                int id = token.GetProperty("id").GetInt32();
                added[id] = content;
                if (token.TryGetProperty("special", out var isSpecial) && isSpecial.GetBoolean()) special[content] = id;
            }

        var regex = new Regex(PreTokenizerPattern(root, path), RegexOptions.Compiled);
        var bpe = BpeTokenizer.Create(new BpeOptions(vocabulary.Where(v => !added.ContainsKey(v.Value)))
        {
            Merges = merges,
            ByteLevel = true,
            SpecialTokens = special,
            PreTokenizer = new RegexPreTokenizer(regex, special),
        });

        int size = Math.Max(vocabulary.Count == 0 ? 0 : vocabulary.Values.Max() + 1, added.Count == 0 ? 0 : added.Keys.Max() + 1);
        var bytes = new byte[size][];
        var isSpecialToken = new bool[size];
        var alphabet = ByteLevelAlphabet.Decoding;
        foreach (var (token, id) in vocabulary) bytes[id] = ByteLevelAlphabet.ToBytes(token, alphabet);
        foreach (var (id, content) in added)
        {
            bytes[id] = Encoding.UTF8.GetBytes(content);
            isSpecialToken[id] = special.ContainsKey(content);
        }
        for (int i = 0; i < size; i++) bytes[i] ??= [];
        return new FalconTokenizer(bpe, bytes, isSpecialToken, special);
    }

    /// <summary>The regex of a Split pre-tokenizer if there is one, else GPT-2's (ByteLevel with use_regex).</summary>
    private static string PreTokenizerPattern(JsonElement root, string path)
    {
        if (!root.TryGetProperty("pre_tokenizer", out var pre) || pre.ValueKind != JsonValueKind.Object) return Gpt2Pattern;
        IEnumerable<JsonElement> steps = pre.GetProperty("type").GetString() == "Sequence" ? pre.GetProperty("pretokenizers").EnumerateArray() : [pre];
        foreach (var step in steps)
        {
            string type = step.GetProperty("type").GetString()!;
            if (type == "Split" && step.TryGetProperty("pattern", out var pattern) && pattern.TryGetProperty("Regex", out var split))
                return split.GetString()!;
            if (type is not ("ByteLevel" or "Split" or "Digits"))
                throw new FalconModelException($"{path}: pre-tokenizer '{type}' is not supported (byte-level BPE expected)");
        }
        return Gpt2Pattern;
    }

    /// <summary>Token ids of <paramref name="text"/>; special tokens written in the text are recognised.</summary>
    public List<int> Encode(string text)
    {
        var ids = new List<int>();
        if (_specialSplit is null)
        {
            ids.AddRange(_bpe.EncodeToIds(text));
            return ids;
        }
        int start = 0;
        foreach (Match match in _specialSplit.Matches(text))
        {
            if (match.Index > start) ids.AddRange(_bpe.EncodeToIds(text.AsSpan(start, match.Index - start)));
            ids.Add(SpecialTokens[match.Value]);
            start = match.Index + match.Length;
        }
        if (start < text.Length) ids.AddRange(_bpe.EncodeToIds(text.AsSpan(start)));
        return ids;
    }

    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = true)
    {
        var bytes = new List<byte>();
        foreach (int id in ids) bytes.AddRange(TokenBytes(id, skipSpecialTokens));
        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    /// <summary>The UTF-8 bytes a token stands for (empty for special tokens when skipped, and for unknown ids).</summary>
    public ReadOnlySpan<byte> TokenBytes(int id, bool skipSpecialTokens = true)
        => (uint)id >= (uint)_tokenBytes.Length || skipSpecialTokens && _special[id] ? [] : _tokenBytes[id];

    public bool IsSpecial(int id) => (uint)id < (uint)_special.Length && _special[id];

    public StreamingDecoder CreateStreamingDecoder(bool skipSpecialTokens = true) => new(this, skipSpecialTokens);
}

/// <summary>GPT-2's reversible map between bytes and printable characters used in byte-level vocabularies.</summary>
internal static class ByteLevelAlphabet
{
    public static readonly Dictionary<char, byte> Decoding = Build();

    private static Dictionary<char, byte> Build()
    {
        var map = new Dictionary<char, byte>();
        int next = 0;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            map[printable ? (char)b : (char)(256 + next++)] = (byte)b;
        }
        return map;
    }

    public static byte[] ToBytes(string token, Dictionary<char, byte> decoding)
    {
        var bytes = new byte[token.Length];
        for (int i = 0; i < token.Length; i++)
        {
            // A character outside the alphabet means the entry is not byte-level: keep its UTF-8 form.
            if (!decoding.TryGetValue(token[i], out bytes[i])) return Encoding.UTF8.GetBytes(token);
        }
        return bytes;
    }
}
