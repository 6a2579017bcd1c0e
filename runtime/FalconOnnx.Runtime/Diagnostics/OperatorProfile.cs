using System.Text.Json;
using System.Text.Json.Serialization;

namespace FalconOnnx.Runtime.Diagnostics;

/// <summary>Time one operator type took over a group of forward calls.</summary>
/// <param name="Operator">ONNX operator type (MatMulNBits, Mamba2Mixer, ...).</param>
/// <param name="Calls">Kernel calls of that type in the group.</param>
/// <param name="Microseconds">Their summed kernel time.</param>
public sealed record OperatorTime(string Operator, long Calls, double Microseconds);

/// <summary>One forward call (ONNX Runtime's model_run) of a trace: when it started, how long it took, its kernels.</summary>
public sealed record ProfiledRun(double StartMicroseconds, double Microseconds, IReadOnlyList<OperatorTime> Operators);

/// <summary>
/// Forward calls of a trace added up: total call time, the part spent inside kernels, and each operator type's part,
/// largest first. Call time minus kernel time is ONNX Runtime's own work between kernels (scheduling, allocation,
/// thread-pool hand-offs).
/// </summary>
public sealed record OperatorProfileSummary(int Runs, double RunMicroseconds, double KernelMicroseconds, IReadOnlyList<OperatorTime> Operators)
{
    public static OperatorProfileSummary Of(IReadOnlyCollection<ProfiledRun> runs)
    {
        var operators = OperatorProfile.ByOperator(runs.SelectMany(r => r.Operators)).OrderByDescending(o => o.Microseconds).ToList();
        return new OperatorProfileSummary(runs.Count, runs.Sum(r => r.Microseconds), operators.Sum(o => o.Microseconds), operators);
    }
}

/// <summary>
/// Reads the trace ONNX Runtime writes with profiling on (<see cref="FalconModelOptions.ProfilePrefix"/>): a JSON
/// array of Chrome trace events where each forward call is a "model_run" event and each kernel call a "Node" event
/// named "..._kernel_time" with its operator type in args.op_name. The file is streamed (a decode of a few hundred
/// tokens of the 0.5B writes ~100 MB of events).
/// </summary>
public static class OperatorProfile
{
    /// <summary>The trace's forward calls in the order they ran, each with its kernel time per operator type.</summary>
    public static IReadOnlyList<ProfiledRun> Read(string tracePath)
    {
        var runs = new List<(double Start, double Duration)>();
        var kernels = new List<(double Start, OperatorTime Time)>();
        using (var stream = File.OpenRead(tracePath))
        {
            try
            {
                foreach (var e in JsonSerializer.DeserializeAsyncEnumerable<TraceEvent>(stream, JsonOptions).ToBlockingEnumerable())
                {
                    if (e is null) continue;
                    if (e.Category == "Session" && e.Name == "model_run") runs.Add((e.Start, e.Duration));
                    else if (e.Category == "Node" && e.Name is { } name && name.EndsWith("_kernel_time", StringComparison.Ordinal))
                        kernels.Add((e.Start, new OperatorTime(e.Args?.OperatorName ?? "?", 1, e.Duration)));
                }
            }
            catch (JsonException x)
            {
                throw new FalconModelException($"{tracePath}: not an ONNX Runtime profile trace: {x.Message}", x);
            }
        }
        runs.Sort((a, b) => a.Start.CompareTo(b.Start));
        kernels.Sort((a, b) => a.Start.CompareTo(b.Start));

        var result = new List<ProfiledRun>(runs.Count);
        int k = 0;
        foreach (var (start, duration) in runs)
        {
            while (k < kernels.Count && kernels[k].Start < start) k++;
            int first = k;
            while (k < kernels.Count && kernels[k].Start <= start + duration) k++;
            result.Add(new ProfiledRun(start, duration, ByOperator(kernels.GetRange(first, k - first).Select(x => x.Time))));
        }
        return result;
    }

    /// <summary>Calls and time added up per operator type.</summary>
    internal static List<OperatorTime> ByOperator(IEnumerable<OperatorTime> times) =>
        times.GroupBy(t => t.Operator).Select(g => new OperatorTime(g.Key, g.Sum(t => t.Calls), g.Sum(t => t.Microseconds))).ToList();

    private static readonly JsonSerializerOptions JsonOptions = new() { NumberHandling = JsonNumberHandling.AllowReadingFromString };

    private sealed record TraceEvent(
        [property: JsonPropertyName("cat")] string? Category,
        [property: JsonPropertyName("name")] string? Name,
        [property: JsonPropertyName("ts")] double Start,
        [property: JsonPropertyName("dur")] double Duration,
        [property: JsonPropertyName("args")] TraceArgs? Args);

    private sealed record TraceArgs([property: JsonPropertyName("op_name")] string? OperatorName);
}
