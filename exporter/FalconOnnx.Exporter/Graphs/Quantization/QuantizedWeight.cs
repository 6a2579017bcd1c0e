using System.Buffers;
using System.Runtime.InteropServices;
using FalconOnnx.Onnx;

namespace FalconOnnx.Graphs.Quantization;

/// <summary>
/// A weight matrix quantized block-wise (see <see cref="BlockQuantizer"/>) from checkpoint rows, as the three
/// initializers of MatMulNBits or GatherBlockQuantized: packed values, scales and (asymmetric) zero points.
/// The packed values are written first: the rows stream through in blocks, are quantized in parallel, and the
/// small scales and zero points are kept for the two initializers that follow.
/// </summary>
public sealed class QuantizedWeight
{
    private const long BlockBytes = 32L << 20;
    private readonly RowSource[] _sources;
    private float[]? _scales;
    private byte[]? _zeroPoints;

    /// <param name="forGather">GatherBlockQuantized shapes ([rows, bytes], [rows, blocks]) instead of MatMulNBits'.</param>
    public QuantizedWeight(RowSource[] sources, BlockQuantizer quantizer, bool forGather = false)
    {
        _sources = sources;
        Quantizer = quantizer;
        Rows = (int)sources.Sum(s => s.Rows);
        Columns = (int)sources[0].Columns;
        if (Columns % quantizer.BlockSize != 0)
            throw new FalconOnnxException($"block size {quantizer.BlockSize} does not divide the width {Columns} of '{sources[0].Tensor.Name}'");
        int blocks = quantizer.BlocksPerRow(Columns), packed = quantizer.PackedBytesPerRow(Columns), zeros = quantizer.ZeroPointBytesPerRow(Columns);
        Packed = new PackedData(this, forGather ? [Rows, packed] : [Rows, blocks, quantizer.BlockSize * quantizer.Bits / 8]);
        Scales = new ScaleData(this, forGather ? [Rows, blocks] : [(long)Rows * blocks]);
        ZeroPoints = quantizer.Symmetric ? null : new ZeroPointData(this, forGather ? [Rows, zeros] : [(long)Rows * zeros]);
    }

    public BlockQuantizer Quantizer { get; }

    /// <summary>N, the output features (HF rows).</summary>
    public int Rows { get; }

    /// <summary>K, the input features.</summary>
    public int Columns { get; }

    public TensorData Packed { get; }

    public TensorData Scales { get; }

    public TensorData? ZeroPoints { get; }

    private void WritePacked(ITensorSink sink)
    {
        var q = Quantizer;
        int blocks = q.BlocksPerRow(Columns), packedRow = q.PackedBytesPerRow(Columns), zeroRow = q.ZeroPointBytesPerRow(Columns);
        _scales = new float[(long)Rows * blocks];
        _zeroPoints = q.Symmetric ? null : new byte[(long)Rows * zeroRow];
        int blockRows = (int)Math.Clamp(BlockBytes / ((long)Columns * sizeof(float)), 1, Rows);
        float[] values = ArrayPool<float>.Shared.Rent(blockRows * Columns);
        byte[] packed = ArrayPool<byte>.Shared.Rent(blockRows * packedRow);
        try
        {
            long row = 0;
            foreach (var source in _sources)
            {
                for (long first = 0; first < source.Rows; first += blockRows)
                {
                    int rows = (int)Math.Min(blockRows, source.Rows - first);
                    source.Tensor.ReadFloats(first * Columns, values.AsSpan(0, rows * Columns));
                    long outputRow = row + first;
                    Parallel.For(0, rows, r =>
                    {
                        var span = values.AsSpan(r * Columns, Columns);
                        if (source.RowScale is { } scale)
                        {
                            double s = scale((int)(first + r));
                            if (s != 1.0) for (int i = 0; i < span.Length; i++) span[i] = (float)(span[i] * s);
                        }
                        q.QuantizeRow(span, packed.AsSpan(r * packedRow, packedRow), _scales.AsSpan((int)((outputRow + r) * blocks), blocks),
                            _zeroPoints is null ? [] : _zeroPoints.AsSpan((int)((outputRow + r) * zeroRow), zeroRow));
                    });
                    sink.Write(outputRow * packedRow, packed.AsSpan(0, rows * packedRow));
                }
                row += source.Rows;
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(values);
            ArrayPool<byte>.Shared.Return(packed);
        }
    }

    private sealed class PackedData(QuantizedWeight owner, long[] shape) : TensorData(ElementType.UInt8, shape)
    {
        public override void WriteTo(ITensorSink sink) => owner.WritePacked(sink);
    }

    private sealed class ScaleData(QuantizedWeight owner, long[] shape) : TensorData(ElementType.Float, shape)
    {
        public override void WriteTo(ITensorSink sink)
        {
            var scales = owner._scales ?? throw new InvalidOperationException("the packed values of a quantized weight are written before its scales");
            sink.Write(0, MemoryMarshal.AsBytes(scales.AsSpan()));
            owner._scales = owner.ZeroPoints is null ? null : scales;
        }
    }

    private sealed class ZeroPointData(QuantizedWeight owner, long[] shape) : TensorData(ElementType.UInt8, shape)
    {
        public override void WriteTo(ITensorSink sink)
        {
            sink.Write(0, owner._zeroPoints ?? throw new InvalidOperationException("the packed values of a quantized weight are written before its zero points"));
            owner._zeroPoints = null;
            owner._scales = null;
        }
    }
}
