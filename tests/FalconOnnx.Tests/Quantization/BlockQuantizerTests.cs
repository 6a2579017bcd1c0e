using FalconOnnx.Graphs.Quantization;

namespace FalconOnnx.Tests.Quantization;

public sealed class BlockQuantizerTests
{
    private static float[] Row(int length, int seed, float scale)
    {
        var random = new Random(seed);
        // Mostly small values with a few outliers, like trained weights.
        return Enumerable.Range(0, length).Select(i => (float)((random.NextDouble() * 2 - 1) * scale * (i % 37 == 0 ? 6 : 1))).ToArray();
    }

    [Test]
    public void RoundTrip_StaysWithinTheFormatsErrorBound(
        [Values(4, 8)] int bits, [Values(16, 32, 64, 128)] int blockSize, [Values] bool symmetric)
    {
        var q = new BlockQuantizer(bits, blockSize, symmetric);
        const int columns = 512;
        for (int seed = 0; seed < 8; seed++)
        {
            var row = Row(columns, seed, 0.02f * (seed + 1));
            var packed = new byte[q.PackedBytesPerRow(columns)];
            var scales = new float[q.BlocksPerRow(columns)];
            var zeros = new byte[q.ZeroPointBytesPerRow(columns)];
            q.QuantizeRow(row, packed, scales, zeros);
            var back = new float[columns];
            q.DequantizeRow(packed, scales, zeros, back);
            for (int b = 0; b < columns / blockSize; b++)
            {
                var block = row.AsSpan(b * blockSize, blockSize);
                float bound = q.MaxError(block) * 1.0001f + 1e-9f;
                for (int i = 0; i < blockSize; i++)
                    Assert.That(MathF.Abs(back[b * blockSize + i] - block[i]), Is.LessThanOrEqualTo(bound), $"seed {seed}, block {b}, value {i}");
            }
        }
    }

    [Test]
    public void SymmetricInt4_PacksLowNibbleFirst_WithZeroPoint8_AsMatMulNBitsReads()
    {
        var q = new BlockQuantizer(4, 16, Symmetric: true);
        // -8 * s is the most negative code: the extreme (-1.6) is exact with s = 0.2.
        float[] row = [-1.6f, 0f, 0.2f, 0.4f, 1.4f, -0.2f, 0f, 0f, 0f, 0f, 0f, 0f, 0f, 0f, 0f, 0.6f];
        var packed = new byte[8];
        var scales = new float[1];
        q.QuantizeRow(row, packed, scales, []);
        Assert.Multiple(() =>
        {
            Assert.That(scales[0], Is.EqualTo(0.2f).Within(1e-6f));
            Assert.That(packed[0], Is.EqualTo(0x00 | 8 << 4), "codes 0 (-1.6) and 8 (0): low nibble first");
            Assert.That(packed[1], Is.EqualTo(9 | 10 << 4), "0.2 -> 9, 0.4 -> 10");
            Assert.That(packed[2], Is.EqualTo(15 | 7 << 4), "1.4 -> 15, -0.2 -> 7");
            Assert.That(packed[7], Is.EqualTo(8 | 11 << 4), "0 -> 8, 0.6 -> 11");
        });
    }

    [Test]
    public void ZeroBlock_DecodesToZeros([Values(4, 8)] int bits, [Values] bool symmetric)
    {
        var q = new BlockQuantizer(bits, 32, symmetric);
        var packed = new byte[q.PackedBytesPerRow(32)];
        var scales = new float[1];
        var zeros = new byte[1];
        q.QuantizeRow(new float[32], packed, scales, zeros);
        var back = Enumerable.Repeat(1f, 32).ToArray();
        q.DequantizeRow(packed, scales, zeros, back);
        Assert.That(back, Is.All.EqualTo(0f));
    }
}
