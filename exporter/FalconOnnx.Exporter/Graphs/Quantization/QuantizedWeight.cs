using System.Buffers;
using System.Runtime.InteropServices;
using FalconOnnx.Onnx;

namespace FalconOnnx.Graphs.Quantization;

/// <summary>How a quantized weight's initializers are laid out, for the operator that reads them.</summary>
public enum QuantizedLayout
{
    /// <summary>com.microsoft.MatMulNBits: packed [rows, blocks, bytes per block], scales [rows · blocks].</summary>
    MatMulNBits,
    /// <summary>com.microsoft.GatherBlockQuantized: packed [rows, bytes], scales [rows, blocks].</summary>
    Gather,
    /// <summary>
    /// falcon_onnx.MatMulInt4 and MatMulInt8 (custom-ops/include/falcon_onnx/matmul_rows16.h), symmetric blocks of 32:
    /// rows taken 16 at a time (the last group padded with zero codes and scales); per group and block 64 · bits bytes
    /// in runs of 64, each holding 4 bytes for each of the 16 rows: int4, four runs, run j holding columns 8j..8j+3
    /// of the block in the low nibbles and 8j+4..8j+7 in the high ones; int8, eight runs, run q holding columns
    /// 4q..4q+3. Scales [groups, blocks, 16].
    /// </summary>
    Rows16,
}

/// <summary>
/// A weight matrix quantized block-wise (see <see cref="BlockQuantizer"/>) from checkpoint rows, as the
/// initializers of MatMulNBits, GatherBlockQuantized or MatMulInt4/MatMulInt8 (<see cref="QuantizedLayout"/>): packed values,
/// scales and (asymmetric) zero points. The packed values are written first: the rows stream through in blocks,
/// are quantized in parallel, and the small scales and zero points are kept for the initializers that follow.
/// </summary>
public sealed class QuantizedWeight
{
    private const int GroupRows = 16;
    private const long BlockBytes = 32L << 20;
    private readonly RowSource[] _sources;
    private float[]? _scales;
    private byte[]? _zeroPoints;

    public QuantizedWeight(RowSource[] sources, BlockQuantizer quantizer, QuantizedLayout layout = QuantizedLayout.MatMulNBits)
    {
        _sources = sources;
        Quantizer = quantizer;
        Layout = layout;
        Rows = (int)sources.Sum(s => s.Rows);
        Columns = (int)sources[0].Columns;
        if (Columns % quantizer.BlockSize != 0)
            throw new FalconOnnxException($"block size {quantizer.BlockSize} does not divide the width {Columns} of '{sources[0].Tensor.Name}'");
        if (layout == QuantizedLayout.Rows16 && (quantizer.BlockSize != 32 || !quantizer.Symmetric))
            throw new ArgumentException("the Rows16 layout holds symmetric blocks of 32", nameof(layout));
        int blocks = quantizer.BlocksPerRow(Columns), packed = quantizer.PackedBytesPerRow(Columns), zeros = quantizer.ZeroPointBytesPerRow(Columns);
        long groups = (Rows + GroupRows - 1) / GroupRows;
        Packed = new PackedData(this, layout switch
        {
            QuantizedLayout.Gather => [Rows, packed],
            QuantizedLayout.Rows16 => [groups, blocks, GroupRows * quantizer.BlockSize * quantizer.Bits / 8],
            _ => [Rows, blocks, quantizer.BlockSize * quantizer.Bits / 8],
        });
        Scales = new ScaleData(this, layout switch
        {
            QuantizedLayout.Gather => [Rows, blocks],
            QuantizedLayout.Rows16 => [groups, blocks, GroupRows],
            _ => [(long)Rows * blocks],
        });
        ZeroPoints = quantizer.Symmetric ? null : new ZeroPointData(this, layout == QuantizedLayout.Gather ? [Rows, zeros] : [(long)Rows * zeros]);
    }

    public QuantizedLayout Layout { get; }

    public BlockQuantizer Quantizer { get; }

    /// <summary>N, the output features (HF rows).</summary>
    public int Rows { get; }

    /// <summary>K, the input features.</summary>
    public int Columns { get; }

    public TensorData Packed { get; }

    public TensorData Scales { get; }

    public TensorData? ZeroPoints { get; }

    /// <summary>
    /// Rows are read from the sources in chunks (across source boundaries), quantized in parallel into MatMulNBits'
    /// packing and written; for Rows16 the chunks are whole 16-row groups, each interleaved before it is written, and
    /// the scales are kept row-major and reordered when written.
    /// </summary>
    private void WritePacked(ITensorSink sink)
    {
        var q = Quantizer;
        bool rows16 = Layout == QuantizedLayout.Rows16;
        int blocks = q.BlocksPerRow(Columns), packedRow = q.PackedBytesPerRow(Columns), zeroRow = q.ZeroPointBytesPerRow(Columns);
        int groups = (Rows + GroupRows - 1) / GroupRows;
        _scales = new float[(long)(rows16 ? groups * GroupRows : Rows) * blocks];
        _zeroPoints = q.Symmetric ? null : new byte[(long)Rows * zeroRow];
        int chunkRows = (int)Math.Clamp(BlockBytes / ((long)Columns * sizeof(float)), 1, Rows);
        if (rows16) chunkRows = Math.Max(GroupRows, chunkRows / GroupRows * GroupRows);
        float[] values = ArrayPool<float>.Shared.Rent(chunkRows * Columns);
        byte[] packed = ArrayPool<byte>.Shared.Rent(chunkRows * packedRow);
        byte[]? interleaved = rows16 ? ArrayPool<byte>.Shared.Rent(chunkRows * packedRow) : null;
        var factors = new double[chunkRows];
        try
        {
            int sourceIndex = 0;
            long sourceRow = 0;
            for (int firstRow = 0; firstRow < Rows; firstRow += chunkRows)
            {
                int rows = Math.Min(chunkRows, Rows - firstRow);
                for (int r = 0; r < rows;)
                {
                    while (sourceRow == _sources[sourceIndex].Rows) { sourceIndex++; sourceRow = 0; }
                    var source = _sources[sourceIndex];
                    int take = (int)Math.Min(rows - r, source.Rows - sourceRow);
                    source.Tensor.ReadFloats(sourceRow * Columns, values.AsSpan(r * Columns, take * Columns));
                    for (int i = 0; i < take; i++) factors[r + i] = source.RowScale is { } scale ? scale((int)(sourceRow + i)) : 1.0;
                    r += take;
                    sourceRow += take;
                }
                Parallel.For(0, rows, r =>
                {
                    var span = values.AsSpan(r * Columns, Columns);
                    double factor = factors[r];
                    if (factor != 1.0) for (int i = 0; i < span.Length; i++) span[i] = (float)(span[i] * factor);
                    long row = firstRow + r;
                    q.QuantizeRow(span, packed.AsSpan(r * packedRow, packedRow), _scales.AsSpan((int)(row * blocks), blocks),
                        _zeroPoints is null ? [] : _zeroPoints.AsSpan((int)(row * zeroRow), zeroRow));
                });
                if (interleaved is null)
                {
                    sink.Write((long)firstRow * packedRow, packed.AsSpan(0, rows * packedRow));
                    continue;
                }
                // The last group's padding rows are never quantized: Interleave gives them the zero code and their
                // scales stay 0.
                int chunkGroups = (rows + GroupRows - 1) / GroupRows;
                Parallel.For(0, chunkGroups, group => Interleave(
                    packed.AsSpan(group * GroupRows * packedRow, Math.Min(GroupRows, rows - group * GroupRows) * packedRow),
                    Math.Min(GroupRows, rows - group * GroupRows), blocks, q.Bits, interleaved.AsSpan(group * GroupRows * packedRow, GroupRows * packedRow)));
                sink.Write((long)firstRow * packedRow, interleaved.AsSpan(0, chunkGroups * GroupRows * packedRow));
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(values);
            ArrayPool<byte>.Shared.Return(packed);
            if (interleaved is not null) ArrayPool<byte>.Shared.Return(interleaved);
        }
    }

    /// <summary>
    /// One group of up to 16 rows from MatMulNBits' packing (int4: element 2i in the low nibble of byte i; int8: one
    /// byte each, code + 128) into Rows16's (see <see cref="QuantizedLayout.Rows16"/>); missing rows get the zero code.
    /// </summary>
    internal static void Interleave(ReadOnlySpan<byte> rowMajor, int rows, int blocks, int bits, Span<byte> group)
    {
        int packedRow = blocks * 32 * bits / 8;
        if (bits == 8)
        {
            for (int b = 0; b < blocks; b++)
                for (int q = 0; q < 8; q++)
                    for (int r = 0; r < GroupRows; r++)
                        for (int i = 0; i < 4; i++)
                            group[(b * 8 + q) * 64 + r * 4 + i] = r < rows ? rowMajor[r * packedRow + b * 32 + 4 * q + i] : (byte)128;
            return;
        }
        for (int b = 0; b < blocks; b++)
            for (int j = 0; j < 4; j++)
                for (int r = 0; r < GroupRows; r++)
                    for (int i = 0; i < 4; i++)
                    {
                        int column = b * 32 + 8 * j + i;
                        int low = Int4Code(rowMajor, packedRow, rows, r, column), high = Int4Code(rowMajor, packedRow, rows, r, column + 4);
                        group[(b * 4 + j) * 64 + r * 4 + i] = (byte)(low | high << 4);
                    }
    }

    private static int Int4Code(ReadOnlySpan<byte> rowMajor, int packedRow, int rows, int row, int column) =>
        row >= rows ? 8 : (rowMajor[row * packedRow + column / 2] >> (column % 2 * 4)) & 0xF;


    private sealed class PackedData(QuantizedWeight owner, long[] shape) : TensorData(ElementType.UInt8, shape)
    {
        public override void WriteTo(ITensorSink sink) => owner.WritePacked(sink);
    }

    private sealed class ScaleData(QuantizedWeight owner, long[] shape) : TensorData(ElementType.Float, shape)
    {
        public override void WriteTo(ITensorSink sink)
        {
            var scales = owner._scales ?? throw new InvalidOperationException("the packed values of a quantized weight are written before its scales");
            if (owner.Layout == QuantizedLayout.Rows16) scales = Rows16Scales(scales, owner.Quantizer.BlocksPerRow(owner.Columns));
            sink.Write(0, MemoryMarshal.AsBytes(scales.AsSpan()));
            owner._scales = owner.ZeroPoints is null ? null : scales;
        }
    }

    /// <summary>Row-major scales [groups · 16, blocks] as [groups, blocks, 16].</summary>
    private static float[] Rows16Scales(float[] rowMajor, int blocks)
    {
        var result = new float[rowMajor.Length];
        int groups = rowMajor.Length / blocks / GroupRows;
        for (int g = 0; g < groups; g++)
            for (int b = 0; b < blocks; b++)
                for (int r = 0; r < GroupRows; r++)
                    result[((long)g * blocks + b) * GroupRows + r] = rowMajor[((long)g * GroupRows + r) * blocks + b];
        return result;
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
