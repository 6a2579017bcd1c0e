namespace FalconOnnx.Synthesis;

/// <summary>
/// A SplitMix64 stream of random numbers, keyed by (seed, tensor, block) so that every block of a synthetic
/// checkpoint can be drawn on its own thread and the bytes do not depend on how many threads there are.
/// Uniform and normal draws use only IEEE-exact float operations (+, −, ×, ÷, √) and <see cref="Ln"/> below,
/// never the platform's libm or vectorised approximations, so a seed gives the same bytes on every machine.
/// </summary>
internal struct RandomStream
{
    private const ulong Golden = 0x9E3779B97F4A7C15;
    private const float TwoToMinus23 = 1f / (1 << 23);
    private const float TwoToMinus24 = 1f / (1 << 24);

    private ulong _state;

    private RandomStream(ulong state) => _state = state;

    public static RandomStream For(ulong seed, int tensor, long block) =>
        new(Mix(Mix(Mix(seed) + (ulong)tensor) + (ulong)block));

    public ulong NextUInt64() => Mix(_state += Golden);

    /// <summary>Two independent uniforms in [0, 1) with 24 random bits each (all a float holds).</summary>
    public (float, float) NextUniformPair()
    {
        ulong bits = NextUInt64();
        return ((bits >> 40) * TwoToMinus24, (uint)(bits >> 8 & 0xFFFFFF) * TwoToMinus24);
    }

    /// <summary>Fills <paramref name="values"/> with uniforms in [low, high).</summary>
    public void FillUniform(Span<float> values, float low, float high)
    {
        float width = high - low;
        int i = 0;
        for (; i + 1 < values.Length; i += 2)
        {
            var (a, b) = NextUniformPair();
            values[i] = low + width * a;
            values[i + 1] = low + width * b;
        }
        if (i < values.Length) values[i] = low + width * NextUniformPair().Item1;
    }

    /// <summary>
    /// Fills <paramref name="values"/> with normals N(mean, std²) by Marsaglia's polar method: a point uniform in
    /// the unit disc gives two independent normals with one logarithm and one square root, and no trigonometry.
    /// </summary>
    public void FillNormal(Span<float> values, float mean, float std)
    {
        int i = 0;
        while (i < values.Length)
        {
            ulong bits = NextUInt64();
            float u = (bits >> 40) * TwoToMinus23 - 1f;
            float v = (uint)(bits >> 8 & 0xFFFFFF) * TwoToMinus23 - 1f;
            float s = u * u + v * v;
            if (s >= 1f || s == 0f) continue;
            float scale = std * MathF.Sqrt(-2f * Ln(s) / s);
            values[i++] = mean + u * scale;
            if (i < values.Length) values[i++] = mean + v * scale;
        }
    }

    /// <summary>
    /// Natural logarithm of a positive normal float to about 1e-7 relative: x = m·2^e with m in [√½, √2), then
    /// ln m = 2·atanh(t), t = (m − 1)/(m + 1), |t| &lt; 0.172, from its odd series to t⁹ (next term &lt; 3e-9).
    /// </summary>
    public static float Ln(float x)
    {
        const float Ln2 = 0.6931471805599453f;
        int bits = BitConverter.SingleToInt32Bits(x);
        int exponent = (bits >> 23) - 127;
        float m = BitConverter.Int32BitsToSingle((bits & 0x007FFFFF) | 0x3F800000);
        if (m > 1.4142135f)
        {
            m *= 0.5f;
            exponent++;
        }
        float t = (m - 1f) / (m + 1f);
        float t2 = t * t;
        float series = 1f + t2 * (1f / 3 + t2 * (1f / 5 + t2 * (1f / 7 + t2 * (1f / 9))));
        return exponent * Ln2 + 2f * t * series;
    }

    /// <summary>The SplitMix64 finaliser: a bijection on 64 bits with full avalanche.</summary>
    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
        return z ^ (z >> 31);
    }
}
