using FalconOnnx.Benchmarks.Gguf;
using FalconOnnx.Checkpoints;
using FalconOnnx.Onnx.Proto;

namespace FalconOnnx.Benchmarks.Race;

/// <summary>
/// What one decode step has to read from memory at least, the numerator of the bandwidth ceiling: every weight
/// except the embedding table (a decode step gathers one row of it), the attention keys and values at the
/// context length, and the Mamba-2 conv and SSM states. Writes, activations and the one embedding row are
/// left out, so the ceiling is an upper bound on speed.
/// </summary>
public sealed record BytesPerToken(long Weights, long KeyValues, long RecurrentStates)
{
    public long Total => Weights + KeyValues + RecurrentStates;

    /// <summary>Key and value bytes over all layers at <paramref name="contextLength"/> tokens.</summary>
    public static long KeyValueBytes(FalconH1Config c, long contextLength, int bytesPerElement) =>
        2L * c.NumHiddenLayers * c.NumKeyValueHeads * c.HeadDim * contextLength * bytesPerElement;

    /// <summary>Conv window (d_conv − 1 columns) and SSM state of every layer, float32 on both sides.</summary>
    public static long RecurrentStateBytes(FalconH1Config c) =>
        (long)c.NumHiddenLayers * ((long)c.ConvDim * (c.MambaDConv - 1) + (long)c.MambaNHeads * c.MambaDHead * c.MambaDState) * sizeof(float);

    /// <summary>
    /// Weight bytes of an exported folder: every initializer's stored bytes (external data length, or inline raw
    /// data) except tables only read through Gather, from the graph file alone (the weights file is not read).
    /// </summary>
    public static long OnnxWeightBytes(string exportFolder, string graphFile = "model.onnx")
    {
        ModelProto model;
        using (var stream = File.OpenRead(Path.Combine(exportFolder, graphFile)))
            model = ModelProto.Parser.ParseFrom(stream);
        var gathered = model.Graph.Node.Where(n => n.OpType == "Gather" && n.Input.Count > 0).Select(n => n.Input[0]).ToHashSet(StringComparer.Ordinal);
        long bytes = 0;
        foreach (var tensor in model.Graph.Initializer)
        {
            if (gathered.Contains(tensor.Name)) continue;
            var length = tensor.ExternalData.FirstOrDefault(e => e.Key == "length");
            bytes += length is not null ? long.Parse(length.Value) : tensor.RawData.Length;
        }
        return bytes;
    }

    /// <summary>Tensor bytes of a GGUF file except token_embd (llama.cpp gathers its rows).</summary>
    public static long GgufWeightBytes(GgufReader gguf) => gguf.Tensors.Where(t => t.Name != "token_embd.weight").Sum(t => t.ByteSize);
}
