using System.Text;
using System.Text.Json;

namespace FalconOnnx.Checkpoints;

/// <summary>A tensor to write: its name, dtype and shape, and a callback that fills its bytes in blocks.</summary>
/// <param name="Fill">Called with (first byte offset within the tensor, destination span) until the tensor is written.</param>
public sealed record TensorToWrite(string Name, CheckpointDType DType, long[] Shape, Action<long, Span<byte>> Fill)
{
    public long ByteLength => Shape.Aggregate(1L, (a, b) => a * b) * SafetensorsFile.ElementSize(DType);
}

/// <summary>
/// Writes safetensors files: the header first (all offsets are known from the shapes), then each tensor's
/// bytes in blocks, so a checkpoint larger than memory can be written. Tensors are stored contiguously in
/// the given order and the header is padded with spaces to an 8-byte boundary, as the reference does.
/// </summary>
public static class SafetensorsWriter
{
    private const int BlockBytes = 16 << 20;

    public static void Write(string path, IReadOnlyList<TensorToWrite> tensors, IReadOnlyDictionary<string, string>? metadata = null,
        Action<TensorToWrite>? written = null, CancellationToken cancellationToken = default)
    {
        var header = new Dictionary<string, object>(StringComparer.Ordinal);
        if (metadata is not null) header["__metadata__"] = metadata;
        long offset = 0;
        foreach (var tensor in tensors)
        {
            header[tensor.Name] = new Dictionary<string, object>
            {
                ["dtype"] = tensor.DType.ToString(),
                ["shape"] = tensor.Shape,
                ["data_offsets"] = new[] { offset, offset + tensor.ByteLength },
            };
            offset += tensor.ByteLength;
        }
        var json = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(header));
        int padded = (json.Length + 7) / 8 * 8;

        using var stream = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20);
        stream.SetLength(8 + padded + offset);
        Span<byte> length = stackalloc byte[8];
        BitConverter.TryWriteBytes(length, (ulong)padded);
        stream.Write(length);
        stream.Write(json);
        for (int i = json.Length; i < padded; i++) stream.WriteByte((byte)' ');
        var block = new byte[BlockBytes];
        foreach (var tensor in tensors)
        {
            for (long start = 0; start < tensor.ByteLength; start += BlockBytes)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var span = block.AsSpan(0, (int)Math.Min(BlockBytes, tensor.ByteLength - start));
                tensor.Fill(start, span);
                stream.Write(span);
            }
            written?.Invoke(tensor);
        }
        stream.Flush(flushToDisk: true);
    }
}
