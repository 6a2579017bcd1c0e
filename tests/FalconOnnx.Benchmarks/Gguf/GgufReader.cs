using System.Runtime.InteropServices;
using System.Text;

namespace FalconOnnx.Benchmarks.Gguf;

/// <summary>One tensor info of a GGUF file.</summary>
/// <param name="Offset">Offset of the data from the start of the data section.</param>
public sealed record GgufTensorInfo(string Name, long[] Dimensions, GgmlType Type, long Offset, long ByteSize)
{
    public long ElementCount => Dimensions.Aggregate(1L, (a, b) => a * b);
}

/// <summary>
/// Reads the header, metadata and tensor infos of a GGUF version 3 file and checks every count, size and offset
/// against the file before it trusts them: tensors aligned, inside the data section, not overlapping. Metadata
/// values come back as uint, int, ulong, long, float, double, bool, string (and the 8/16-bit types widened to
/// int), arrays as object[].
/// </summary>
public sealed class GgufReader
{
    /// <summary>Caps that keep a corrupt count from allocating the machine away.</summary>
    private const ulong MaxCount = 1 << 24, MaxStringBytes = 1 << 26;

    private GgufReader(string path) => Path = path;

    public string Path { get; }
    public uint Version { get; private set; }
    public int Alignment { get; private set; } = GgufFormat.DefaultAlignment;
    /// <summary>Absolute file offset of the data section.</summary>
    public long DataOffset { get; private set; }
    public long FileLength { get; private set; }
    public IReadOnlyDictionary<string, object> Metadata => _metadata;
    public IReadOnlyList<GgufTensorInfo> Tensors => _tensors;

    private readonly Dictionary<string, object> _metadata = new(StringComparer.Ordinal);
    private readonly List<GgufTensorInfo> _tensors = [];

    public GgufTensorInfo Tensor(string name) =>
        _tensors.FirstOrDefault(t => t.Name == name) ?? throw new GgufException($"{Path}: no tensor '{name}'");

    public T Get<T>(string key) => _metadata.TryGetValue(key, out var value)
        ? value is T typed ? typed : throw new GgufException($"{Path}: metadata '{key}' is {value.GetType().Name}, not {typeof(T).Name}")
        : throw new GgufException($"{Path}: metadata key '{key}' is missing");

    public static GgufReader Open(string path)
    {
        var reader = new GgufReader(path);
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        using var binary = new BinaryReader(stream, Encoding.UTF8);
        reader.FileLength = stream.Length;
        try
        {
            reader.Parse(binary);
        }
        catch (EndOfStreamException)
        {
            throw new GgufException($"{path}: truncated inside the header ({stream.Length} bytes)");
        }
        return reader;
    }

    /// <summary>The elements of an F32 tensor.</summary>
    public float[] ReadFloats(GgufTensorInfo tensor)
    {
        if (tensor.Type != GgmlType.F32) throw new GgufException($"{Path}: tensor '{tensor.Name}' is {tensor.Type}, not F32");
        var values = new float[checked((int)tensor.ElementCount)];
        using var stream = new FileStream(Path, FileMode.Open, FileAccess.Read, FileShare.Read);
        stream.Position = DataOffset + tensor.Offset;
        stream.ReadExactly(MemoryMarshal.AsBytes(values.AsSpan()));
        return values;
    }

    private void Parse(BinaryReader r)
    {
        uint magic = r.ReadUInt32();
        if (magic != GgufFormat.Magic) throw new GgufException($"{Path}: not a GGUF file (magic 0x{magic:x8})");
        Version = r.ReadUInt32();
        if (Version != GgufFormat.Version) throw new GgufException($"{Path}: GGUF version {Version}; this reader knows version {GgufFormat.Version}");
        ulong tensorCount = Count(r.ReadUInt64(), "tensor count");
        ulong metadataCount = Count(r.ReadUInt64(), "metadata count");

        for (ulong i = 0; i < metadataCount; i++)
        {
            string key = ReadString(r);
            var type = (GgufValueType)r.ReadUInt32();
            if (!_metadata.TryAdd(key, ReadValue(r, type, depth: 0)))
                throw new GgufException($"{Path}: metadata key '{key}' appears twice");
        }
        if (_metadata.TryGetValue(GgufFormat.AlignmentKey, out var alignment))
        {
            if (alignment is not uint a || a == 0 || (a & (a - 1)) != 0)
                throw new GgufException($"{Path}: {GgufFormat.AlignmentKey} must be a power-of-two uint32, got {alignment}");
            Alignment = (int)a;
        }

        for (ulong i = 0; i < tensorCount; i++)
        {
            string name = ReadString(r);
            uint dimensionCount = r.ReadUInt32();
            if (dimensionCount is 0 or > 4) throw new GgufException($"{Path}: tensor '{name}' has {dimensionCount} dimensions (1 to 4)");
            var dimensions = new long[dimensionCount];
            for (int d = 0; d < dimensionCount; d++)
            {
                ulong size = r.ReadUInt64();
                if (size == 0 || size > long.MaxValue / 16) throw new GgufException($"{Path}: tensor '{name}' has dimension {size}");
                dimensions[d] = (long)size;
            }
            var type = (GgmlType)r.ReadUInt32();
            ulong offset = r.ReadUInt64();
            if (offset % (ulong)Alignment != 0)
                throw new GgufException($"{Path}: tensor '{name}' starts at offset {offset}, not a multiple of the alignment {Alignment}");
            if (_tensors.Any(t => t.Name == name)) throw new GgufException($"{Path}: tensor '{name}' appears twice");
            _tensors.Add(new GgufTensorInfo(name, dimensions, type, (long)offset, GgufFormat.ByteSize(type, dimensions)));
        }

        DataOffset = GgufFormat.Align(r.BaseStream.Position, Alignment);
        long dataLength = FileLength - DataOffset;
        GgufTensorInfo? previous = null;
        foreach (var tensor in _tensors.OrderBy(t => t.Offset))
        {
            if (previous is not null && tensor.Offset < previous.Offset + previous.ByteSize)
                throw new GgufException($"{Path}: tensor '{tensor.Name}' overlaps tensor '{previous.Name}'");
            if (tensor.Offset + tensor.ByteSize > dataLength)
                throw new GgufException($"{Path}: tensor '{tensor.Name}' ends at data byte {tensor.Offset + tensor.ByteSize}, beyond the {dataLength}-byte data section");
            previous = tensor;
        }
    }

    private ulong Count(ulong value, string what) =>
        value <= MaxCount ? value : throw new GgufException($"{Path}: {what} {value} is beyond any real model");

    private string ReadString(BinaryReader r)
    {
        ulong length = r.ReadUInt64();
        if (length > MaxStringBytes || (long)length > r.BaseStream.Length - r.BaseStream.Position)
            throw new GgufException($"{Path}: a string of {length} bytes runs beyond the file");
        return Encoding.UTF8.GetString(r.ReadBytes((int)length));
    }

    private object ReadValue(BinaryReader r, GgufValueType type, int depth) => type switch
    {
        GgufValueType.UInt8 => (int)r.ReadByte(),
        GgufValueType.Int8 => (int)r.ReadSByte(),
        GgufValueType.UInt16 => (int)r.ReadUInt16(),
        GgufValueType.Int16 => (int)r.ReadInt16(),
        GgufValueType.UInt32 => r.ReadUInt32(),
        GgufValueType.Int32 => r.ReadInt32(),
        GgufValueType.Float32 => r.ReadSingle(),
        GgufValueType.Bool => r.ReadByte() switch
        {
            0 => false,
            1 => true,
            var b => throw new GgufException($"{Path}: a bool holds {b}; only 0 and 1 are valid"),
        },
        GgufValueType.String => ReadString(r),
        GgufValueType.UInt64 => r.ReadUInt64(),
        GgufValueType.Int64 => r.ReadInt64(),
        GgufValueType.Float64 => r.ReadDouble(),
        GgufValueType.Array => depth < 4 ? ReadArray(r, depth) : throw new GgufException($"{Path}: arrays nested more than 4 deep"),
        _ => throw new GgufException($"{Path}: unknown metadata value type {(uint)type}"),
    };

    private object[] ReadArray(BinaryReader r, int depth)
    {
        var elementType = (GgufValueType)r.ReadUInt32();
        ulong count = Count(r.ReadUInt64(), "array length");
        var values = new object[count];
        for (ulong i = 0; i < count; i++) values[i] = ReadValue(r, elementType, depth + 1);
        return values;
    }
}
