using System.Globalization;
using System.IO.MemoryMappedFiles;
using System.Text.Json;

namespace FalconOnnx.Checkpoints;

/// <summary>Element types a checkpoint may store.</summary>
public enum CheckpointDType
{
    F32,
    F16,
    BF16,
}

/// <summary>One tensor of a safetensors file: where its bytes are and what they hold.</summary>
public sealed class TensorEntry
{
    internal TensorEntry(SafetensorsFile file, string name, CheckpointDType dtype, long[] shape, long dataOffset, long byteLength)
    {
        File = file;
        Name = name;
        DType = dtype;
        Shape = shape;
        DataOffset = dataOffset;
        ByteLength = byteLength;
    }

    public SafetensorsFile File { get; }
    public string Name { get; }
    public CheckpointDType DType { get; }
    public long[] Shape { get; }
    /// <summary>Offset from the start of the data section.</summary>
    public long DataOffset { get; }
    public long ByteLength { get; }
    public long ElementCount => ByteLength / SafetensorsFile.ElementSize(DType);

    public string ShapeText => "[" + string.Join(", ", Shape) + "]";

    /// <summary>
    /// Converts <paramref name="destination"/>.Length elements starting at element <paramref name="firstElement"/>
    /// to float32, straight from the memory map.
    /// </summary>
    public void ReadFloats(long firstElement, Span<float> destination)
    {
        int size = SafetensorsFile.ElementSize(DType);
        if (firstElement < 0 || firstElement + destination.Length > ElementCount)
            throw new ArgumentOutOfRangeException(nameof(firstElement), $"elements [{firstElement}, {firstElement + destination.Length}) outside tensor '{Name}' of {ElementCount}");
        if (destination.IsEmpty) return;
        using var range = File.Map(DataOffset + firstElement * size, destination.Length * size);
        FloatConversion.ToSingle(DType, range.Bytes, destination);
    }
}

/// <summary>A mapped range of a file, unmapped on dispose (so the pages read leave the process's resident set).</summary>
public readonly unsafe ref struct MappedRange
{
    private readonly MemoryMappedViewAccessor _view;

    internal MappedRange(MemoryMappedFile map, long offset, int length)
    {
        _view = map.CreateViewAccessor(offset, length, MemoryMappedFileAccess.Read);
        byte* pointer = null;
        _view.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
        Bytes = new ReadOnlySpan<byte>(pointer + _view.PointerOffset, length);
    }

    public ReadOnlySpan<byte> Bytes { get; }

    public void Dispose()
    {
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
    }
}

/// <summary>
/// A memory-mapped safetensors file (8-byte little-endian header length, JSON header, data section). Every
/// size and offset is checked before a byte is trusted, like the reference implementation: header within
/// the cap and the file, known dtypes, shape × dtype = byte length, offsets inside the data section,
/// tensors neither overlapping nor leaving gaps. Tensor data is mapped one block at a time and unmapped after
/// use, so reading a checkpoint far larger than memory keeps a small resident set.
/// </summary>
public sealed unsafe class SafetensorsFile : IDisposable
{
    /// <summary>The reference implementation's cap on the JSON header.</summary>
    public const long MaxHeaderLength = 100_000_000;

    private readonly MemoryMappedFile? _map;
    private readonly long _dataStart;
    private readonly Dictionary<string, TensorEntry> _tensors = new(StringComparer.Ordinal);

    private SafetensorsFile(string path)
    {
        Path = path;
        var info = new FileInfo(path);
        if (!info.Exists) throw new FalconOnnxException($"{path}: file not found");
        long length = info.Length;
        if (length < 8) throw new FalconOnnxException($"{path}: truncated: {length} bytes, shorter than the 8-byte header length");

        _map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        try
        {
            FileLength = length;
            ulong headerLength;
            using (var prefix = new MappedRange(_map, 0, 8)) headerLength = BitConverter.ToUInt64(prefix.Bytes);
            if (headerLength > MaxHeaderLength)
                throw new FalconOnnxException($"{path}: header length {headerLength} exceeds the {MaxHeaderLength}-byte limit");
            if ((long)headerLength > length - 8)
                throw new FalconOnnxException($"{path}: header length {headerLength} runs beyond the end of the file ({length} bytes)");
            _dataStart = 8 + (long)headerLength;
            if (headerLength == 0) throw new FalconOnnxException($"{path}: header length is 0; a safetensors header is a JSON object");
            using var header = new MappedRange(_map, 8, (int)headerLength);
            ParseHeader(header.Bytes, length - _dataStart);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public string Path { get; }

    public long FileLength { get; }

    public IReadOnlyDictionary<string, TensorEntry> Tensors => _tensors;

    public static SafetensorsFile Open(string path) => new(path);

    public static int ElementSize(CheckpointDType dtype) => dtype == CheckpointDType.F32 ? 4 : 2;

    /// <summary>Maps bytes of the data section; at most 2 GB at a time, so callers walk large tensors in blocks.</summary>
    public MappedRange Map(long dataOffset, int length) => new(_map!, _dataStart + dataOffset, length);

    private void ParseHeader(ReadOnlySpan<byte> header, long dataLength)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(header.ToArray());
        }
        catch (JsonException e)
        {
            throw new FalconOnnxException($"{Path}: header is not valid JSON ({e.Message.Split('\n')[0]})");
        }
        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
                throw new FalconOnnxException($"{Path}: header must be a JSON object");
            foreach (var property in document.RootElement.EnumerateObject())
            {
                if (property.Name == "__metadata__") continue;
                var entry = ParseEntry(property.Name, property.Value, dataLength);
                if (!_tensors.TryAdd(entry.Name, entry))
                    throw new FalconOnnxException($"{Path}: tensor '{entry.Name}' appears twice in the header");
            }
        }

        long cursor = 0;
        TensorEntry? previous = null;
        foreach (var entry in _tensors.Values.OrderBy(e => e.DataOffset).ThenBy(e => e.ByteLength))
        {
            if (entry.DataOffset < cursor)
                throw new FalconOnnxException($"{Path}: tensor '{entry.Name}' (bytes {entry.DataOffset}..{entry.DataOffset + entry.ByteLength}) overlaps tensor '{previous!.Name}' (bytes {previous.DataOffset}..{cursor})");
            if (entry.DataOffset > cursor)
                throw new FalconOnnxException($"{Path}: tensor '{entry.Name}' starts at byte {entry.DataOffset} of the data section, leaving a gap after byte {cursor}");
            cursor = entry.DataOffset + entry.ByteLength;
            previous = entry;
        }
        if (cursor != dataLength)
            throw new FalconOnnxException($"{Path}: the data section is {dataLength} bytes but its tensors cover {cursor}");
    }

    private TensorEntry ParseEntry(string name, JsonElement value, long dataLength)
    {
        string where = $"{Path}: tensor '{name}'";
        if (value.ValueKind != JsonValueKind.Object) throw new FalconOnnxException($"{where}: header entry must be an object");
        if (!value.TryGetProperty("dtype", out var dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
            throw new FalconOnnxException($"{where}: missing 'dtype'");
        string dtypeText = dtypeElement.GetString()!;
        CheckpointDType dtype = dtypeText switch
        {
            "F32" => CheckpointDType.F32,
            "F16" => CheckpointDType.F16,
            "BF16" => CheckpointDType.BF16,
            _ => throw new FalconOnnxException($"{where}: dtype '{dtypeText}' is not supported (F32, F16 or BF16)"),
        };
        if (!value.TryGetProperty("shape", out var shapeElement) || shapeElement.ValueKind != JsonValueKind.Array)
            throw new FalconOnnxException($"{where}: missing 'shape'");
        var shape = new long[shapeElement.GetArrayLength()];
        int i = 0;
        long count = 1;
        foreach (var d in shapeElement.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out long size) || size < 0)
                throw new FalconOnnxException($"{where}: shape entry {d.GetRawText()} is not a non-negative integer");
            shape[i++] = size;
            count = size == 0 ? 0 : count > long.MaxValue / size ? throw new FalconOnnxException($"{where}: shape [{string.Join(", ", shapeElement.EnumerateArray())}] is too large") : count * size;
        }
        if (!value.TryGetProperty("data_offsets", out var offsets) || offsets.ValueKind != JsonValueKind.Array || offsets.GetArrayLength() != 2)
            throw new FalconOnnxException($"{where}: 'data_offsets' must be [begin, end]");
        if (!offsets[0].TryGetInt64(out long begin) || !offsets[1].TryGetInt64(out long end) || begin < 0 || end < begin)
            throw new FalconOnnxException($"{where}: data_offsets {offsets.GetRawText()} are not a valid [begin, end] range");
        if (end > dataLength)
            throw new FalconOnnxException($"{where}: data_offsets {offsets.GetRawText()} end beyond the data section ({dataLength} bytes)");
        long expected = count * ElementSize(dtype);
        if (end - begin != expected)
            throw new FalconOnnxException(string.Create(CultureInfo.InvariantCulture,
                $"{where}: data_offsets {offsets.GetRawText()} hold {end - begin} bytes but shape [{string.Join(", ", shape)}] x {dtypeText} needs {expected}"));
        return new TensorEntry(this, name, dtype, shape, begin, end - begin);
    }

    public void Dispose() => _map?.Dispose();
}
