using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace FalconOnnx.Checkpoints;

/// <summary>Element-type conversions on spans, vectorised; the hot path of every export.</summary>
public static class FloatConversion
{
    public static void ToSingle(CheckpointDType dtype, ReadOnlySpan<byte> source, Span<float> destination)
    {
        switch (dtype)
        {
            case CheckpointDType.F32:
                MemoryMarshal.Cast<byte, float>(source).CopyTo(destination);
                break;
            case CheckpointDType.F16:
                TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<byte, Half>(source), destination);
                break;
            case CheckpointDType.BF16:
                BFloat16ToSingle(MemoryMarshal.Cast<byte, ushort>(source), destination);
                break;
        }
    }

    /// <summary>bfloat16 is the upper half of a float32, so widening is a 16-bit shift.</summary>
    public static void BFloat16ToSingle(ReadOnlySpan<ushort> source, Span<float> destination)
    {
        var output = MemoryMarshal.Cast<float, uint>(destination[..source.Length]);
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            for (; i + Vector256<ushort>.Count <= source.Length; i += Vector256<ushort>.Count)
            {
                var (lower, upper) = Vector256.Widen(Vector256.Create(source.Slice(i, Vector256<ushort>.Count)));
                (lower << 16).CopyTo(output[i..]);
                (upper << 16).CopyTo(output[(i + Vector256<uint>.Count)..]);
            }
        }
        for (; i < source.Length; i++) output[i] = (uint)source[i] << 16;
    }

    /// <summary>Round-to-nearest-even float32 to bfloat16, NaN kept a (quiet) NaN.</summary>
    public static void SingleToBFloat16(ReadOnlySpan<float> source, Span<ushort> destination)
    {
        var bits = MemoryMarshal.Cast<float, uint>(source);
        for (int i = 0; i < bits.Length; i++)
        {
            uint b = bits[i];
            destination[i] = (b & 0x7fffffff) > 0x7f800000 ? (ushort)((b >> 16) | 0x40) : (ushort)((b + 0x7fff + ((b >> 16) & 1)) >> 16);
        }
    }
}
