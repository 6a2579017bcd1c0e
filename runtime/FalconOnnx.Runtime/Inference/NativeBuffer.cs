using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace FalconOnnx.Runtime.Inference;

/// <summary>
/// Zeroed, 64-byte aligned native memory that ONNX Runtime reads and writes in place through tensor views:
/// no managed array to pin, no copy, nothing for the GC to scan.
/// </summary>
internal sealed unsafe class NativeBuffer<T> : IDisposable where T : unmanaged
{
    private void* _pointer;

    public NativeBuffer(long count)
    {
        Count = count;
        nuint bytes = (nuint)(Math.Max(1, count) * sizeof(T));
        _pointer = NativeMemory.AlignedAlloc(bytes, 64);
        NativeMemory.Clear(_pointer, bytes);
    }

    public long Count { get; }

    public long Bytes => Count * sizeof(T);

    public Span<T> Span => new(_pointer, checked((int)Count));

    public Span<T> Slice(long start, int length) => new((T*)_pointer + start, length);

    public IntPtr Pointer => (IntPtr)_pointer;

    /// <summary>A tensor over the first elements of the buffer, in the given shape.</summary>
    public OrtValue View(params long[] shape)
    {
        long count = 1;
        foreach (long d in shape) count *= d;
        if (count > Count) throw new ArgumentOutOfRangeException(nameof(shape), $"view of {count} elements over a buffer of {Count}");
        return OrtValue.CreateTensorValueWithData(OrtMemoryInfo.DefaultInstance, ElementType, shape, Pointer, count * sizeof(T));
    }

    public void Clear() => NativeMemory.Clear(_pointer, (nuint)Bytes);

    private static TensorElementType ElementType =>
        typeof(T) == typeof(float) ? TensorElementType.Float :
        typeof(T) == typeof(long) ? TensorElementType.Int64 :
        typeof(T) == typeof(int) ? TensorElementType.Int32 :
        throw new NotSupportedException(typeof(T).Name);

    public void Dispose()
    {
        if (_pointer != null)
        {
            NativeMemory.AlignedFree(_pointer);
            _pointer = null;
        }
    }
}
