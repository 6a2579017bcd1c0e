using System.Runtime.InteropServices;

namespace FalconOnnx.Onnx;

/// <summary>Where a tensor's bytes go: a region of the external-data file, or an array in memory.</summary>
public interface ITensorSink
{
    /// <summary>Writes <paramref name="bytes"/> at <paramref name="offset"/> bytes from the tensor's start.</summary>
    void Write(long offset, ReadOnlySpan<byte> bytes);

    /// <summary>
    /// Writes <paramref name="bytes"/> as rows of <paramref name="rowBytes"/> each, row i at <paramref name="offset"/>
    /// + i · <paramref name="stride"/> (a block of columns of a transposed matrix).
    /// </summary>
    void WriteRows(long offset, ReadOnlySpan<byte> bytes, int rowBytes, long stride)
    {
        for (int i = 0; (long)i * rowBytes < bytes.Length; i++) Write(offset + i * stride, bytes.Slice(i * rowBytes, rowBytes));
    }
}

public sealed class ArrayTensorSink(byte[] destination) : ITensorSink
{
    public void Write(long offset, ReadOnlySpan<byte> bytes) => bytes.CopyTo(destination.AsSpan(checked((int)offset)));
}

/// <summary>
/// The contents of an initializer, produced only when the model is written. Weights therefore travel from
/// the checkpoint's memory map to the external-data file one tensor at a time and the exporter never holds
/// the model in memory.
/// </summary>
public abstract class TensorData
{
    protected TensorData(ElementType type, long[] shape)
    {
        Type = type;
        Shape = shape;
        long count = 1;
        foreach (long d in shape) count *= d;
        ElementCount = count;
    }

    public ElementType Type { get; }

    public long[] Shape { get; }

    public long ElementCount { get; }

    public long ByteLength => ElementCount * Type.Size();

    /// <summary>Writes exactly <see cref="ByteLength"/> bytes, in any order of offsets.</summary>
    public abstract void WriteTo(ITensorSink sink);

    public byte[] ToArray()
    {
        var bytes = new byte[ByteLength];
        WriteTo(new ArrayTensorSink(bytes));
        return bytes;
    }
}

/// <summary>A small tensor held in memory: constants of the graph (shapes, axes, scalars, tables).</summary>
public sealed class ArrayTensorData : TensorData
{
    private readonly byte[] _bytes;

    private ArrayTensorData(ElementType type, long[] shape, byte[] bytes) : base(type, shape) => _bytes = bytes;

    public static ArrayTensorData Create<T>(ElementType type, long[] shape, ReadOnlySpan<T> values) where T : unmanaged
        => new(type, shape, MemoryMarshal.AsBytes(values).ToArray());

    public static ArrayTensorData Floats(long[] shape, ReadOnlySpan<float> values) => Create(ElementType.Float, shape, values);

    public static ArrayTensorData Int64s(long[] shape, ReadOnlySpan<long> values) => Create(ElementType.Int64, shape, values);

    public ReadOnlySpan<byte> Bytes => _bytes;

    public override void WriteTo(ITensorSink sink) => sink.Write(0, _bytes);
}
