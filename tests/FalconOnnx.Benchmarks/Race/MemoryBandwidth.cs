using System.Diagnostics;
using System.Numerics.Tensors;

namespace FalconOnnx.Benchmarks.Race;

/// <summary>
/// The machine's read bandwidth as a decode step sees it: <c>threads</c> threads each sum a contiguous slice of
/// one large float array (far larger than any cache), best of several passes. This is what a memory-bound
/// matrix-vector product can at most stream.
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
                sums[t] = TensorPrimitives.Sum<float>(data.AsSpan(first, count));
            })).ToList();
            workers.ForEach(w => w.Start());
            start.SignalAndWait();
            var clock = Stopwatch.StartNew();
            workers.ForEach(w => w.Join());
            best = Math.Min(best, clock.Elapsed.TotalSeconds);
        }
        return bytes / best / 1e9;
    }
}
