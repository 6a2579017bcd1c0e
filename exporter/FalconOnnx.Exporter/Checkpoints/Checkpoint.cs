using System.Text.Json;

namespace FalconOnnx.Checkpoints;

/// <summary>
/// A Hugging Face Falcon-H1 checkpoint folder: <c>config.json</c> plus <c>model.safetensors</c> or shards named
/// by <c>model.safetensors.index.json</c>, all memory-mapped. Opening checks that the folder holds exactly the
/// tensors the config calls for (<see cref="FalconH1Tensors"/>), with the right shapes, and nothing else.
/// </summary>
public sealed class Checkpoint : IDisposable
{
    public const string ConfigFileName = "config.json";
    public const string SingleFileName = "model.safetensors";
    public const string IndexFileName = "model.safetensors.index.json";

    private readonly List<SafetensorsFile> _files = [];
    private readonly Dictionary<string, TensorEntry> _tensors = new(StringComparer.Ordinal);

    private Checkpoint(string directory, FalconH1Config config)
    {
        Directory = directory;
        Config = config;
    }

    public string Directory { get; }

    public FalconH1Config Config { get; }

    /// <summary>The safetensors files, shards in file-name order.</summary>
    public IReadOnlyList<SafetensorsFile> Files => _files;

    public IReadOnlyDictionary<string, TensorEntry> Tensors => _tensors;

    public TensorEntry this[string name] => _tensors[name];

    public TensorEntry? Optional(string name) => _tensors.GetValueOrDefault(name);

    public static Checkpoint Open(string directory)
    {
        if (!System.IO.Directory.Exists(directory)) throw new FalconOnnxException($"{directory}: checkpoint folder not found");
        var config = FalconH1Config.Load(Path.Combine(directory, ConfigFileName));
        var checkpoint = new Checkpoint(directory, config);
        try
        {
            checkpoint.OpenWeights();
            checkpoint.CheckTensors();
            return checkpoint;
        }
        catch
        {
            checkpoint.Dispose();
            throw;
        }
    }

    private void OpenWeights()
    {
        string indexPath = Path.Combine(Directory, IndexFileName);
        if (File.Exists(indexPath))
        {
            OpenShards(indexPath);
            return;
        }
        string single = Path.Combine(Directory, SingleFileName);
        if (!File.Exists(single))
            throw new FalconOnnxException($"{Directory}: no {SingleFileName} and no {IndexFileName}");
        var file = SafetensorsFile.Open(single);
        _files.Add(file);
        foreach (var (name, entry) in file.Tensors) _tensors[name] = entry;
    }

    private void OpenShards(string indexPath)
    {
        Dictionary<string, string> weightMap;
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllBytes(indexPath));
            if (!document.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
                throw new FalconOnnxException($"{indexPath}: missing object 'weight_map'");
            weightMap = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var property in map.EnumerateObject())
            {
                if (property.Value.ValueKind != JsonValueKind.String)
                    throw new FalconOnnxException($"{indexPath}: weight_map entry '{property.Name}' must name a file, got {property.Value.GetRawText()}");
                weightMap[property.Name] = property.Value.GetString()!;
            }
        }
        catch (JsonException e)
        {
            throw new FalconOnnxException($"{indexPath}: not valid JSON ({e.Message.Split('\n')[0]})");
        }

        foreach (string shard in weightMap.Values.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal))
        {
            if (shard.Length == 0 || shard != Path.GetFileName(shard) || shard is "." or "..")
                throw new FalconOnnxException($"{indexPath}: shard name '{shard}' must be a plain file name inside the folder");
            string shardPath = Path.Combine(Directory, shard);
            if (!File.Exists(shardPath))
                throw new FalconOnnxException($"{indexPath}: shard '{shard}' named by the index is missing");
            _files.Add(SafetensorsFile.Open(shardPath));
        }

        var byShard = _files.ToDictionary(f => Path.GetFileName(f.Path), StringComparer.Ordinal);
        foreach (var (name, shard) in weightMap)
        {
            if (!byShard[shard].Tensors.TryGetValue(name, out var entry))
                throw new FalconOnnxException($"{byShard[shard].Path}: tensor '{name}' is named by {IndexFileName} but not stored in this shard");
            _tensors[name] = entry;
        }
        foreach (var file in _files)
            foreach (string name in file.Tensors.Keys)
                if (!weightMap.TryGetValue(name, out string? shard) || shard != Path.GetFileName(file.Path))
                    throw new FalconOnnxException($"{file.Path}: tensor '{name}' is not listed for this shard in {IndexFileName}");
    }

    private void CheckTensors()
    {
        var expected = FalconH1Tensors.Expected(Config);
        foreach (var (name, shape) in expected)
        {
            if (!_tensors.TryGetValue(name, out var entry))
                throw new FalconOnnxException($"{Directory}: tensor '{name}' {Text(shape)} is missing from the checkpoint");
            if (!entry.Shape.SequenceEqual(shape))
                throw new FalconOnnxException($"{entry.File.Path}: tensor '{name}' has shape {entry.ShapeText}, config.json implies {Text(shape)}");
        }
        foreach (var (name, entry) in _tensors)
            if (!expected.ContainsKey(name))
                throw new FalconOnnxException($"{entry.File.Path}: unexpected tensor '{name}' {entry.ShapeText}" + Why(name));
    }

    private string Why(string name) => name == FalconH1Tensors.LmHead && Config.TieWordEmbeddings
        ? " (tie_word_embeddings is true, so the output layer reuses model.embed_tokens.weight)"
        : " (not part of a Falcon-H1 checkpoint with this config.json)";

    private static string Text(long[] shape) => "[" + string.Join(", ", shape) + "]";

    public void Dispose()
    {
        foreach (var file in _files) file.Dispose();
        _files.Clear();
    }
}
