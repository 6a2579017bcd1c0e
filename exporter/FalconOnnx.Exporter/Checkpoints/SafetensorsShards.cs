using System.Text.Json;
using System.Text.Json.Nodes;

namespace FalconOnnx.Checkpoints;

/// <summary>
/// Hugging Face's sharded layout: tensors split in order into files of at most <see cref="DefaultMaxShardBytes"/>
/// (transformers' default <c>max_shard_size="5GB"</c>, decimal), named <c>model-0000k-of-0000n.safetensors</c>,
/// with <c>model.safetensors.index.json</c> mapping every tensor to its file. One shard is written as a plain
/// model.safetensors, as transformers does.
/// </summary>
public static class SafetensorsShards
{
    public const long DefaultMaxShardBytes = 5_000_000_000;

    public static string ShardName(int index, int count) => $"model-{index:D5}-of-{count:D5}.safetensors";

    /// <summary>
    /// huggingface_hub's split: in order, a tensor that would take the current shard past the limit starts a new
    /// one; a tensor larger than the limit on its own gets a shard of its own (placed before the shard being filled).
    /// </summary>
    public static List<List<TensorToWrite>> Split(IReadOnlyList<TensorToWrite> tensors, long maxShardBytes)
    {
        var shards = new List<List<TensorToWrite>>();
        var current = new List<TensorToWrite>();
        long size = 0;
        foreach (var tensor in tensors)
        {
            long bytes = tensor.ByteLength;
            if (bytes > maxShardBytes)
            {
                shards.Add([tensor]);
                continue;
            }
            if (size + bytes > maxShardBytes && current.Count > 0)
            {
                shards.Add(current);
                current = [];
                size = 0;
            }
            current.Add(tensor);
            size += bytes;
        }
        if (current.Count > 0) shards.Add(current);
        return shards;
    }

    /// <summary>Writes model.safetensors.index.json: metadata.total_size (tensor bytes) and the sorted weight_map.</summary>
    public static void WriteIndex(string folder, IReadOnlyList<List<TensorToWrite>> shards)
    {
        var map = new SortedDictionary<string, string>(StringComparer.Ordinal);
        for (int i = 0; i < shards.Count; i++)
            foreach (var tensor in shards[i]) map[tensor.Name] = ShardName(i + 1, shards.Count);
        var index = new JsonObject
        {
            ["metadata"] = new JsonObject { ["total_size"] = shards.Sum(s => s.Sum(t => t.ByteLength)) },
            ["weight_map"] = new JsonObject(map.Select(p => KeyValuePair.Create(p.Key, (JsonNode?)p.Value))),
        };
        File.WriteAllText(Path.Combine(folder, Checkpoint.IndexFileName), index.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }
}
