using System.Runtime.InteropServices;
using System.Text;

namespace FalconOnnx.Benchmarks.Gguf;

/// <summary>A typed GGUF metadata value: a scalar, a string, or an array of one scalar or string type.</summary>
public sealed record GgufValue(GgufValueType Type, object Value, GgufValueType ElementType = GgufValueType.UInt8)
{
    public static GgufValue UInt32(uint value) => new(GgufValueType.UInt32, value);
    public static GgufValue Int32(int value) => new(GgufValueType.Int32, value);
    public static GgufValue UInt64(ulong value) => new(GgufValueType.UInt64, value);
    public static GgufValue Float32(float value) => new(GgufValueType.Float32, value);
    public static GgufValue Bool(bool value) => new(GgufValueType.Bool, value);
    public static GgufValue String(string value) => new(GgufValueType.String, value);
    public static GgufValue Strings(IReadOnlyList<string> values) => new(GgufValueType.Array, values, GgufValueType.String);
    public static GgufValue Int32s(IReadOnlyList<int> values) => new(GgufValueType.Array, values, GgufValueType.Int32);
}

/// <summary>
/// One float32 tensor to write: its dimensions in ggml order (ne[0] first, the fastest-moving axis, so a
/// PyTorch [out, in] matrix is {in, out}) and a function that produces its elements in storage order, a
/// block at a time, so a tensor is never held whole in memory.
/// </summary>
/// <param name="Fill">Writes elements [first, first + destination.Length) into destination.</param>
public sealed record GgufTensorSource(string Name, long[] Dimensions, Action<long, Span<float>> Fill)
{
    public long ElementCount => Dimensions.Aggregate(1L, (a, b) => a * b);
}

/// <summary>
/// Writes a GGUF version 3 file (ggml's docs/gguf.md): header (magic, version, tensor count, metadata count),
/// metadata key/value pairs, tensor infos (name, dimensions, type, offset relative to the data section), padding
/// to the alignment, then each tensor's data, every tensor starting on an aligned offset. All counts and string
/// lengths are 64-bit, everything little-endian. Tensors are written as F32; llama.cpp's quantizer turns the file
/// into other types.
/// </summary>
public static class GgufWriter
{
    /// <summary>Elements converted per block while streaming a tensor.</summary>
    private const int BlockElements = 1 << 20;

    /// <summary>Writes the file and returns its size in bytes.</summary>
    public static long Write(string path, IReadOnlyList<KeyValuePair<string, GgufValue>> metadata, IReadOnlyList<GgufTensorSource> tensors,
        int alignment = GgufFormat.DefaultAlignment, CancellationToken cancellationToken = default)
    {
        if (alignment <= 0 || (alignment & (alignment - 1)) != 0) throw new ArgumentOutOfRangeException(nameof(alignment), "must be a power of two");
        var keys = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (key, _) in metadata)
            if (!keys.Add(key)) throw new GgufException($"metadata key '{key}' appears twice");
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var tensor in tensors)
            if (!names.Add(tensor.Name)) throw new GgufException($"tensor '{tensor.Name}' appears twice");
        if (alignment != GgufFormat.DefaultAlignment && !keys.Contains(GgufFormat.AlignmentKey))
            throw new GgufException($"an alignment of {alignment} must be declared in '{GgufFormat.AlignmentKey}'");

        string staging = path + ".partial";
        using (var stream = new FileStream(staging, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
        using (var writer = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true))
        {
            writer.Write(GgufFormat.Magic);
            writer.Write(GgufFormat.Version);
            writer.Write((ulong)tensors.Count);
            writer.Write((ulong)metadata.Count);
            foreach (var (key, value) in metadata)
            {
                WriteString(writer, key);
                WriteValue(writer, value);
            }

            long offset = 0;
            foreach (var tensor in tensors)
            {
                WriteString(writer, tensor.Name);
                writer.Write((uint)tensor.Dimensions.Length);
                foreach (long d in tensor.Dimensions) writer.Write((ulong)d);
                writer.Write((uint)GgmlType.F32);
                writer.Write((ulong)offset);
                offset = GgufFormat.Align(offset + tensor.ElementCount * sizeof(float), alignment);
            }
            Pad(writer, alignment);

            var block = new float[BlockElements];
            long dataStart = stream.Position;
            foreach (var tensor in tensors)
            {
                long count = tensor.ElementCount;
                for (long first = 0; first < count; first += BlockElements)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    var span = block.AsSpan(0, (int)Math.Min(BlockElements, count - first));
                    tensor.Fill(first, span);
                    writer.Write(MemoryMarshal.AsBytes(span));
                }
                Pad(writer, alignment, dataStart);
            }
        }
        File.Move(staging, path, overwrite: true);
        return new FileInfo(path).Length;
    }

    private static void Pad(BinaryWriter writer, int alignment, long origin = 0)
    {
        long position = writer.BaseStream.Position - origin;
        long padding = GgufFormat.Align(position, alignment) - position;
        for (long i = 0; i < padding; i++) writer.Write((byte)0);
    }

    private static void WriteString(BinaryWriter writer, string text)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        writer.Write((ulong)bytes.Length);
        writer.Write(bytes);
    }

    private static void WriteValue(BinaryWriter writer, GgufValue value)
    {
        writer.Write((uint)value.Type);
        if (value.Type != GgufValueType.Array)
        {
            WriteScalar(writer, value.Type, value.Value);
            return;
        }
        writer.Write((uint)value.ElementType);
        switch (value.Value)
        {
            case IReadOnlyList<string> strings:
                writer.Write((ulong)strings.Count);
                foreach (string s in strings) WriteString(writer, s);
                break;
            case IReadOnlyList<int> ints:
                writer.Write((ulong)ints.Count);
                foreach (int i in ints) writer.Write(i);
                break;
            default:
                throw new GgufException($"array values of {value.Value.GetType().Name} are not supported");
        }
    }

    private static void WriteScalar(BinaryWriter writer, GgufValueType type, object value)
    {
        switch (type)
        {
            case GgufValueType.UInt32: writer.Write((uint)value); break;
            case GgufValueType.Int32: writer.Write((int)value); break;
            case GgufValueType.UInt64: writer.Write((ulong)value); break;
            case GgufValueType.Float32: writer.Write((float)value); break;
            case GgufValueType.Bool: writer.Write((bool)value ? (byte)1 : (byte)0); break;
            case GgufValueType.String: WriteString(writer, (string)value); break;
            default: throw new GgufException($"scalar values of type {type} are not supported");
        }
    }
}
