using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace FalconOnnx.Benchmarks.Race;

/// <summary>
/// The machine's read bandwidth as a decode step sees it: <c>threads</c> threads each sum a contiguous slice of
/// one large float array (far larger than any cache), best of several passes. Each thread keeps eight independent
/// vector accumulators, so the adds never wait on each other and the loop is bound by memory, not by add latency;
/// this is what a memory-bound matrix-vector product can at most stream.
/// </summary>
public static class MemoryBandwidth
{
    public static double MeasureGigabytesPerSecond(int threads, long bytes = 1L << 30, int passes = 5)
    {
        var data = GC.AllocateUninitializedArray<float>(checked((int)(bytes / sizeof(float))));
        // Touch every page first, so the passes time reads and not page faults.
        data.AsSpan().Fill(1f);
        int slice = (data.Length + threads - 1) / threads;
        double best = double.MaxValue;
        // Kept so the sums are observable results, not work a compiler could drop.
        var sums = new float[threads];
        for (int pass = 0; pass < passes; pass++)
        {
            using var start = new Barrier(threads + 1);
            var workers = Enumerable.Range(0, threads).Select(t => new Thread(() =>
            {
                int first = t * slice, count = Math.Min(slice, data.Length - first);
                start.SignalAndWait();
                sums[t] = Sum(data.AsSpan(first, count));
            })).ToList();
            workers.ForEach(w => w.Start());
            start.SignalAndWait();
            var clock = Stopwatch.StartNew();
            workers.ForEach(w => w.Join());
            best = Math.Min(best, clock.Elapsed.TotalSeconds);
        }
        return bytes / best / 1e9;
    }

    private static float Sum(ReadOnlySpan<float> values)
    {
        var vectors = MemoryMarshal.Cast<float, Vector256<float>>(values);
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
        int i = 0;
        for (; i + 8 <= vectors.Length; i += 8)
        {
            a0 += vectors[i];
            a1 += vectors[i + 1];
            a2 += vectors[i + 2];
            a3 += vectors[i + 3];
            a4 += vectors[i + 4];
            a5 += vectors[i + 5];
            a6 += vectors[i + 6];
            a7 += vectors[i + 7];
        }
        for (; i < vectors.Length; i++) a0 += vectors[i];
        float sum = Vector256.Sum(((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)));
        for (int k = vectors.Length * Vector256<float>.Count; k < values.Length; k++) sum += values[k];
        return sum;
    }
}
