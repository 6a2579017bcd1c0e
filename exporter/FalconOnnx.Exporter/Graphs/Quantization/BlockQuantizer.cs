namespace FalconOnnx.Graphs.Quantization;

/// <summary>
/// Block-wise weight quantization in the layout of ONNX Runtime's MatMulNBits and GatherBlockQuantized: each row
/// of an [out, in] matrix is cut into blocks of <c>blockSize</c> values along <c>in</c>; a block has one scale
/// (and, asymmetric, one zero point); value q of a block decodes to (q − zero) · scale. 4-bit values are packed
/// two per byte, low nibble first. Symmetric blocks use the fixed zero point 2^(bits−1) (8 for 4-bit, 128 for
/// 8-bit), ONNX Runtime's default. The scale starts from llama.cpp's Q4_0/Q8_0 choice (the value of largest
/// magnitude maps to the most negative code) and is then shrunk where that lowers the block's squared error:
/// clipping the one extreme value slightly buys a finer step for all the others.
/// </summary>
public readonly record struct BlockQuantizer(int Bits, int BlockSize, bool Symmetric)
{
    public int Levels => 1 << Bits;

    public int DefaultZeroPoint => 1 << (Bits - 1);

    public int BlocksPerRow(int columns) => (columns + BlockSize - 1) / BlockSize;

    /// <summary>Bytes of one row's packed values (blocks padded to full blocks).</summary>
    public int PackedBytesPerRow(int columns) => BlocksPerRow(columns) * BlockSize * Bits / 8;

    /// <summary>Bytes of one row's packed zero points.</summary>
    public int ZeroPointBytesPerRow(int columns) => (BlocksPerRow(columns) * Bits + 7) / 8;

    /// <summary>Quantizes one row; <paramref name="zeroPoints"/> is written only when asymmetric.</summary>
    public void QuantizeRow(ReadOnlySpan<float> row, Span<byte> packed, Span<float> scales, Span<byte> zeroPoints)
    {
        int blocks = BlocksPerRow(row.Length);
        packed[..PackedBytesPerRow(row.Length)].Clear();
        if (!Symmetric) zeroPoints[..ZeroPointBytesPerRow(row.Length)].Clear();
        Span<byte> codes = stackalloc byte[BlockSize];
        for (int b = 0; b < blocks; b++)
        {
            var block = row.Slice(b * BlockSize, Math.Min(BlockSize, row.Length - b * BlockSize));
            codes.Clear();
            var (scale, zero) = Symmetric ? QuantizeSymmetric(block, codes) : QuantizeAsymmetric(block, codes);
            scales[b] = scale;
            if (Bits == 8)
            {
                codes.CopyTo(packed.Slice(b * BlockSize, BlockSize));
                if (!Symmetric) zeroPoints[b] = (byte)zero;
            }
            else
            {
                var bytes = packed.Slice(b * BlockSize / 2, BlockSize / 2);
                for (int i = 0; i < BlockSize; i += 2) bytes[i / 2] = (byte)(codes[i] | codes[i + 1] << 4);
                if (!Symmetric) zeroPoints[b / 2] |= (byte)(b % 2 == 0 ? zero : zero << 4);
            }
        }
    }

    /// <summary>Shrink factors tried for a block's scale; 1 is the plain absmax scale.</summary>
    private static readonly float[] ScaleShrinks = [1.0f, 0.98f, 0.96f, 0.94f, 0.92f, 0.90f, 0.88f, 0.86f, 0.84f, 0.82f, 0.80f, 0.78f, 0.76f];

    private (float Scale, int Zero) QuantizeSymmetric(ReadOnlySpan<float> block, Span<byte> codes)
    {
        float extreme = 0;
        foreach (float v in block) if (MathF.Abs(v) > MathF.Abs(extreme)) extreme = v;
        int zero = DefaultZeroPoint;
        float best = extreme / -zero, bestError = float.MaxValue;
        if (extreme != 0)
        {
            foreach (float shrink in ScaleShrinks)
            {
                float scale = extreme * shrink / -zero, inverse = 1 / scale, error = 0;
                foreach (float v in block)
                {
                    float decoded = (Math.Clamp((int)MathF.Round(v * inverse) + zero, 0, Levels - 1) - zero) * scale;
                    error += (v - decoded) * (v - decoded);
                }
                if (error < bestError)
                {
                    bestError = error;
                    best = scale;
                }
            }
        }
        float bestInverse = best == 0 ? 0 : 1 / best;
        // Padding past the row's end (a partial last block) keeps code = zero, which decodes to 0.
        for (int i = 0; i < codes.Length; i++) codes[i] = (byte)zero;
        for (int i = 0; i < block.Length; i++) codes[i] = (byte)Math.Clamp((int)MathF.Round(block[i] * bestInverse) + zero, 0, Levels - 1);
        return (best, zero);
    }

    private (float Scale, int Zero) QuantizeAsymmetric(ReadOnlySpan<float> block, Span<byte> codes)
    {
        float min = 0, max = 0;
        foreach (float v in block)
        {
            min = MathF.Min(min, v);
            max = MathF.Max(max, v);
        }
        float scale = (max - min) / (Levels - 1);
        int zero = scale == 0 ? DefaultZeroPoint : Math.Clamp((int)MathF.Round(-min / scale), 0, Levels - 1);
        float inverse = scale == 0 ? 0 : 1 / scale;
        for (int i = 0; i < codes.Length; i++) codes[i] = (byte)zero;
        for (int i = 0; i < block.Length; i++) codes[i] = (byte)Math.Clamp((int)MathF.Round(block[i] * inverse) + zero, 0, Levels - 1);
        return (scale, zero);
    }

    /// <summary>The inverse: decodes one row (for tests and accuracy checks).</summary>
    public void DequantizeRow(ReadOnlySpan<byte> packed, ReadOnlySpan<float> scales, ReadOnlySpan<byte> zeroPoints, Span<float> row)
    {
        for (int i = 0; i < row.Length; i++)
        {
            int b = i / BlockSize;
            int code = Bits == 8 ? packed[i] : i % 2 == 0 ? packed[i / 2] & 0xF : packed[i / 2] >> 4;
            int zero = Symmetric ? DefaultZeroPoint : Bits == 8 ? zeroPoints[b] : b % 2 == 0 ? zeroPoints[b / 2] & 0xF : zeroPoints[b / 2] >> 4;
            row[i] = (code - zero) * scales[b];
        }
    }

    /// <summary>
    /// The largest error a value can have after a round trip. Symmetric: the step is at most absmax / 2^(bits−1);
    /// a value within the codes' range is off by half a step, one clipped by the shrunk scale or on the side with
    /// one code fewer by at most (1 − smallest shrink) · absmax + a step. Asymmetric: half a step of (max − min).
    /// </summary>
    public float MaxError(ReadOnlySpan<float> block)
    {
        float min = 0, max = 0, absmax = 0;
        foreach (float v in block)
        {
            min = MathF.Min(min, v);
            max = MathF.Max(max, v);
            absmax = MathF.Max(absmax, MathF.Abs(v));
        }
        return Symmetric ? (1 - ScaleShrinks[^1]) * absmax + absmax / DefaultZeroPoint : (max - min) / (Levels - 1) / 2;
    }
}
