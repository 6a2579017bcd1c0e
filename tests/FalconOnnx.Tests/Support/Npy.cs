using System.Runtime.InteropServices;
using System.Text;
using System.Text.RegularExpressions;

namespace FalconOnnx.Tests.Support;

/// <summary>A .npy array (C order, little endian): its shape and values.</summary>
public sealed partial class Npy<T> where T : unmanaged
{
    public required long[] Shape { get; init; }
    public required T[] Data { get; init; }

    public long Count(int fromAxis) => Shape.Skip(fromAxis).Aggregate(1L, (a, b) => a * b);

    public ReadOnlySpan<T> Row(params int[] index)
    {
        long offset = 0;
        for (int i = 0; i < index.Length; i++) offset += index[i] * Count(i + 1);
        return Data.AsSpan((int)offset, (int)Count(index.Length));
    }
}

public static partial class Npy
{
    public static Npy<T> Load<T>(string path) where T : unmanaged
    {
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length < 10 || bytes[0] != 0x93 || Encoding.ASCII.GetString(bytes, 1, 5) != "NUMPY") throw new InvalidDataException($"{path}: not a .npy file");
        int major = bytes[6];
        int headerLength = major == 1 ? BitConverter.ToUInt16(bytes, 8) : BitConverter.ToInt32(bytes, 8);
        int start = major == 1 ? 10 : 12;
        string header = Encoding.ASCII.GetString(bytes, start, headerLength);
        string descr = DescrPattern().Match(header).Groups[1].Value;
        string expected = typeof(T) == typeof(float) ? "<f4" : typeof(T) == typeof(long) ? "<i8" : typeof(T) == typeof(int) ? "<i4" : "?";
        if (descr != expected) throw new InvalidDataException($"{path}: dtype {descr}, expected {expected}");
        if (header.Contains("'fortran_order': True")) throw new InvalidDataException($"{path}: Fortran order");
        var shape = ShapePattern().Match(header).Groups[1].Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(long.Parse).ToArray();
        var data = MemoryMarshal.Cast<byte, T>(bytes.AsSpan(start + headerLength)).ToArray();
        return new Npy<T> { Shape = shape, Data = data };
    }

    [GeneratedRegex(@"'descr':\s*'([^']+)'")]
    private static partial Regex DescrPattern();

    [GeneratedRegex(@"'shape':\s*\(([^)]*)\)")]
    private static partial Regex ShapePattern();
}
