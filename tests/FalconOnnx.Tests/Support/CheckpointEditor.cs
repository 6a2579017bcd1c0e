using System.Text;
using System.Text.Json.Nodes;
using FalconOnnx.Checkpoints;

namespace FalconOnnx.Tests.Support;

/// <summary>Copies of tiny-a with one thing changed, for the bad-input tests.</summary>
public static class CheckpointEditor
{
    public static string CopyTinyA(string name)
    {
        string folder = TestPaths.NewTemp(name);
        Directory.CreateDirectory(folder);
        foreach (string file in new[] { "config.json", "model.safetensors" })
            File.Copy(Path.Combine(TestPaths.TinyA, file), Path.Combine(folder, file));
        return folder;
    }

    public static void EditConfig(string folder, Action<JsonObject> edit)
    {
        string path = Path.Combine(folder, "config.json");
        var json = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        edit(json);
        File.WriteAllText(path, json.ToJsonString());
    }

    /// <summary>Rewrites the JSON header of a safetensors file and keeps its data section byte for byte.</summary>
    public static void EditHeader(string path, Action<JsonObject> edit)
    {
        var bytes = File.ReadAllBytes(path);
        long headerLength = BitConverter.ToInt64(bytes, 0);
        var header = JsonNode.Parse(Encoding.UTF8.GetString(bytes, 8, (int)headerLength))!.AsObject();
        edit(header);
        var json = Encoding.UTF8.GetBytes(header.ToJsonString());
        using var stream = File.Create(path);
        stream.Write(BitConverter.GetBytes((ulong)json.Length));
        stream.Write(json);
        stream.Write(bytes.AsSpan(8 + (int)headerLength));
    }

    /// <summary>Rewrites model.safetensors with the tensors a function picks (F32), e.g. one removed or added.</summary>
    public static void RewriteTensors(string folder, Func<List<TensorToWrite>, List<TensorToWrite>> change)
    {
        string path = Path.Combine(folder, "model.safetensors");
        var tensors = new List<TensorToWrite>();
        using (var file = SafetensorsFile.Open(path))
        {
            foreach (var entry in file.Tensors.Values.OrderBy(e => e.DataOffset))
            {
                var values = new float[entry.ElementCount];
                entry.ReadFloats(0, values);
                var bytes = System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()).ToArray();
                tensors.Add(new TensorToWrite(entry.Name, CheckpointDType.F32, entry.Shape, (offset, destination) => bytes.AsSpan((int)offset, destination.Length).CopyTo(destination)));
            }
        }
        tensors = change(tensors);
        File.Delete(path);
        SafetensorsWriter.Write(path, tensors);
    }

    /// <summary>Splits model.safetensors into two shards and writes model.safetensors.index.json.</summary>
    public static void Shard(string folder)
    {
        string single = Path.Combine(folder, "model.safetensors");
        var tensors = new List<(TensorToWrite Tensor, int Shard)>();
        using (var file = SafetensorsFile.Open(single))
        {
            int i = 0;
            foreach (var entry in file.Tensors.Values.OrderBy(e => e.DataOffset))
            {
                var values = new float[entry.ElementCount];
                entry.ReadFloats(0, values);
                var bytes = System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()).ToArray();
                tensors.Add((new TensorToWrite(entry.Name, CheckpointDType.F32, entry.Shape, (offset, destination) => bytes.AsSpan((int)offset, destination.Length).CopyTo(destination)), i++ * 2 / file.Tensors.Count));
            }
        }
        File.Delete(single);
        var map = new JsonObject();
        for (int shard = 0; shard < 2; shard++)
        {
            string name = $"model-{shard + 1:00000}-of-00002.safetensors";
            var part = tensors.Where(t => t.Shard == shard).Select(t => t.Tensor).ToList();
            SafetensorsWriter.Write(Path.Combine(folder, name), part);
            foreach (var t in part) map[t.Name] = name;
        }
        File.WriteAllText(Path.Combine(folder, "model.safetensors.index.json"), new JsonObject { ["metadata"] = new JsonObject(), ["weight_map"] = map }.ToJsonString());
    }
}
