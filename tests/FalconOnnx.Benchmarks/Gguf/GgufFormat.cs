namespace FalconOnnx.Benchmarks.Gguf;

/// <summary>Types of a GGUF metadata value (ggml's gguf.md, <c>gguf_type</c>).</summary>
public enum GgufValueType : uint
{
    UInt8 = 0,
    Int8 = 1,
    UInt16 = 2,
    Int16 = 3,
    UInt32 = 4,
    Int32 = 5,
    Float32 = 6,
    Bool = 7,
    String = 8,
    Array = 9,
    UInt64 = 10,
    Int64 = 11,
    Float64 = 12,
}

/// <summary>The ggml tensor types a Falcon-H1 GGUF of this suite can hold (ggml.h, <c>ggml_type</c>).</summary>
public enum GgmlType : uint
{
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q8_1 = 9,
    Q2_K = 10,
    Q3_K = 11,
    Q4_K = 12,
    Q5_K = 13,
    Q6_K = 14,
    Q8_K = 15,
    BF16 = 30,
}

/// <summary>File-level constants and the storage size of each tensor type.</summary>
public static class GgufFormat
{
    /// <summary>"GGUF" read as a little-endian uint32.</summary>
    public const uint Magic = 0x46554747;

    public const uint Version = 3;

    /// <summary>Alignment of the data section and of every tensor in it when general.alignment is absent.</summary>
    public const int DefaultAlignment = 32;

    public const string AlignmentKey = "general.alignment";

    /// <summary>
    /// Elements per block and bytes per block of <paramref name="type"/>: a row of n elements takes
    /// n / elements × bytes bytes (ggml's type traits: blocks of 32 for the legacy quantizations, 256 for the k-quants).
    /// </summary>
    public static (int Elements, int Bytes) Block(GgmlType type) => type switch
    {
        GgmlType.F32 => (1, 4),
        GgmlType.F16 or GgmlType.BF16 => (1, 2),
        GgmlType.Q4_0 => (32, 18),
        GgmlType.Q4_1 => (32, 20),
        GgmlType.Q5_0 => (32, 22),
        GgmlType.Q5_1 => (32, 24),
        GgmlType.Q8_0 => (32, 34),
        GgmlType.Q8_1 => (32, 36),
        GgmlType.Q2_K => (256, 84),
        GgmlType.Q3_K => (256, 110),
        GgmlType.Q4_K => (256, 144),
        GgmlType.Q5_K => (256, 176),
        GgmlType.Q6_K => (256, 210),
        GgmlType.Q8_K => (256, 292),
        _ => throw new GgufException($"ggml type {(uint)type} is not one this suite knows the size of"),
    };

    /// <summary>Bytes of a tensor of <paramref name="type"/> with dimensions <paramref name="dimensions"/> (ne order).</summary>
    public static long ByteSize(GgmlType type, IReadOnlyList<long> dimensions)
    {
        var (elements, bytes) = Block(type);
        if (dimensions.Count == 0) return bytes;
        if (dimensions[0] % elements != 0)
            throw new GgufException($"a row of {dimensions[0]} elements is not a whole number of {type} blocks of {elements}");
        long size = dimensions[0] / elements * bytes;
        for (int i = 1; i < dimensions.Count; i++) size *= dimensions[i];
        return size;
    }

    public static long Align(long offset, int alignment) => (offset + alignment - 1) / alignment * alignment;
}

/// <summary>A GGUF file that breaks the format, or a model this suite cannot write as GGUF.</summary>
public sealed class GgufException(string message) : Exception(message);
