using FalconOnnx.Synthesis;

namespace FalconOnnx.Tests.Synthesis;

public sealed class RandomStreamTests
{
    [Test]
    public void Ln_MatchesMathLogToFloatPrecision()
    {
        double worst = 0;
        for (float x = 1e-14f; x < 1e4f; x *= 1.0001f)
        {
            double expected = Math.Log(x);
            worst = Math.Max(worst, Math.Abs(RandomStream.Ln(x) - expected) / Math.Max(1, Math.Abs(expected)));
        }
        Assert.That(worst, Is.LessThan(2e-7));
    }

    [Test]
    public void Normals_HaveUnitMomentsAndGaussianTails()
    {
        var random = RandomStream.For(seed: 42, tensor: 0, block: 0);
        var values = new float[1 << 20];
        random.FillNormal(values, 0, 1);
        double mean = values.Average(v => (double)v);
        double variance = values.Average(v => (v - mean) * (v - mean));
        double kurtosis = values.Average(v => Math.Pow(v - mean, 4)) / (variance * variance);
        double beyondTwo = values.Count(v => Math.Abs(v) > 2) / (double)values.Length;
        Assert.Multiple(() =>
        {
            Assert.That(mean, Is.EqualTo(0).Within(0.005));
            Assert.That(variance, Is.EqualTo(1).Within(0.005));
            Assert.That(kurtosis, Is.EqualTo(3).Within(0.03));
            Assert.That(beyondTwo, Is.EqualTo(0.0455).Within(0.001), "P(|z| > 2)");
        });
    }

    [Test]
    public void Streams_OfOtherBlocksDiffer()
    {
        var a = RandomStream.For(1, 0, 0);
        var b = RandomStream.For(1, 0, 1);
        var c = RandomStream.For(1, 1, 0);
        ulong first = a.NextUInt64();
        Assert.That(new[] { b.NextUInt64(), c.NextUInt64() }, Has.None.EqualTo(first));
    }
}
