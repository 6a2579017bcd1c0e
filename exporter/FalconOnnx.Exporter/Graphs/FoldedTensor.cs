using System.Buffers;
using System.Runtime.InteropServices;
using FalconOnnx.Checkpoints;
using FalconOnnx.Onnx;

namespace FalconOnnx.Graphs;

/// <summary>
/// Rows taken from one checkpoint tensor, each multiplied by a scale. A Linear layer's HF weight is
/// [out, in], so a row is one output feature: scaling row r by s is exactly scaling output r by s.
/// </summary>
public sealed record RowSource(TensorEntry Tensor, Func<int, double>? RowScale = null)
{
    public long Rows => Tensor.Shape[0];

    public long Columns => Tensor.ElementCount / Math.Max(1, Tensor.Shape[0]);
}

/// <summary>
/// A weight built from checkpoint rows: the sources stacked along rows (fused projections such as q|k|v), each
/// row scaled (μP folds) in float32, then stored as float32, float16 or bfloat16, either as is ([rows, cols],
/// embeddings and vectors) or transposed ([cols, rows], the [in, out] layout of ONNX MatMul). Streams in blocks
/// of rows, so even an embedding table larger than memory passes through a bounded buffer.
/// </summary>
public sealed class FoldedTensor : TensorData
{
    private const long BlockBytes = 32L << 20;
    private readonly RowSource[] _sources;
    private readonly bool _transpose;
    private readonly long _rows;
    private readonly long _columns;

    public FoldedTensor(RowSource[] sources, bool transpose, long[]? shape = null, ElementType type = ElementType.Float)
        : base(type, shape ?? Shape2D(sources, transpose))
    {
        if (type is not (ElementType.Float or ElementType.Float16 or ElementType.BFloat16))
            throw new ArgumentOutOfRangeException(nameof(type), type, "weights are float32, float16 or bfloat16");
        _sources = sources;
        _transpose = transpose;
        _columns = sources[0].Columns;
        if (sources.Any(s => s.Columns != _columns)) throw new ArgumentException("stacked sources must have the same number of columns");
        _rows = sources.Sum(s => s.Rows);
    }

    private static long[] Shape2D(RowSource[] sources, bool transpose)
    {
        long rows = sources.Sum(s => s.Rows), columns = sources[0].Columns;
        return transpose ? [columns, rows] : sources[0].Tensor.Shape.Length == 1 && sources.Length == 1 ? [rows] : [rows, columns];
    }

    public override void WriteTo(ITensorSink sink)
    {
        int blockRows = (int)Math.Clamp(BlockBytes / (_columns * sizeof(float)), 1, int.MaxValue / Math.Max(1, _columns));
        float[] block = ArrayPool<float>.Shared.Rent((int)(blockRows * _columns));
        float[] transposed = _transpose ? ArrayPool<float>.Shared.Rent((int)(blockRows * _columns)) : [];
        try
        {
            long outputRow = 0;
            foreach (var source in _sources)
            {
                for (long first = 0; first < source.Rows; first += blockRows)
                {
                    int rows = (int)Math.Min(blockRows, source.Rows - first);
                    var span = block.AsSpan(0, (int)(rows * _columns));
                    source.Tensor.ReadFloats(first * _columns, span);
                    if (source.RowScale is { } scale)
                        for (int r = 0; r < rows; r++)
                            ScaleRow(span.Slice((int)(r * _columns), (int)_columns), scale((int)(first + r)));
                    if (_transpose) WriteTransposed(sink, span, rows, outputRow + first, transposed);
                    else Emit(sink, (outputRow + first) * _columns, span);
                }
                outputRow += source.Rows;
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(block);
            if (_transpose) ArrayPool<float>.Shared.Return(transposed);
        }
    }

    private static void ScaleRow(Span<float> row, double scale)
    {
        if (scale == 1.0) return;
        // The product is formed in double and rounded once, like folding in higher precision.
        for (int i = 0; i < row.Length; i++) row[i] = (float)(row[i] * scale);
    }

    /// <summary>Rows [firstRow, firstRow + rows) of the [rows, cols] matrix become a column block of [cols, rows].</summary>
    private void WriteTransposed(ITensorSink sink, ReadOnlySpan<float> block, int rows, long firstRow, float[] scratch)
    {
        var output = scratch.AsSpan(0, (int)(rows * _columns));
        const int tile = 32;
        for (int r0 = 0; r0 < rows; r0 += tile)
            for (int c0 = 0; c0 < _columns; c0 += tile)
                for (int r = r0; r < Math.Min(r0 + tile, rows); r++)
                    for (long c = c0; c < Math.Min(c0 + tile, _columns); c++)
                        output[(int)(c * rows + r)] = block[(int)(r * _columns + c)];
        int size = Type.Size();
        WithBytes(output, bytes => sink.WriteRows(firstRow * size, bytes, rows * size, _rows * size));
    }

    /// <summary>Writes float values at an element offset, converted to the tensor's element type.</summary>
    private void Emit(ITensorSink sink, long element, ReadOnlySpan<float> values)
    {
        long offset = element * Type.Size();
        WithBytes(values, bytes => sink.Write(offset, bytes));
    }

    /// <summary>Hands the values, converted to the tensor's element type, to <paramref name="use"/> as bytes.</summary>
    private void WithBytes(ReadOnlySpan<float> values, ReadOnlySpanAction use)
    {
        if (Type == ElementType.Float)
        {
            use(MemoryMarshal.AsBytes(values));
            return;
        }
        ushort[] converted = ArrayPool<ushort>.Shared.Rent(values.Length);
        try
        {
            var output = converted.AsSpan(0, values.Length);
            if (Type == ElementType.Float16) System.Numerics.Tensors.TensorPrimitives.ConvertToHalf(values, MemoryMarshal.Cast<ushort, Half>(output));
            else FloatConversion.SingleToBFloat16(values, output);
            use(MemoryMarshal.AsBytes(output));
        }
        finally
        {
            ArrayPool<ushort>.Shared.Return(converted);
        }
    }

    private delegate void ReadOnlySpanAction(ReadOnlySpan<byte> bytes);
}

