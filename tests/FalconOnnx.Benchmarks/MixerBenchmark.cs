using System.Diagnostics;
using FalconOnnx.Graphs.Blocks;
using FalconOnnx.Onnx;
using Microsoft.ML.OnnxRuntime;

namespace FalconOnnx.Benchmarks;

/// <summary>
/// The Mamba-2 mixer core alone, on identical inputs: the <c>ort</c> lowering's chain of ONNX Runtime operators
/// (CausalConvWithState, LinearAttention and the elementwise work around them) against FalconOnnx's fused
/// falcon_onnx.Mamba2Mixer, both built by the exporter's own blocks and timed through ONNX Runtime with the
/// states bound in place. Shape: Falcon-H1-0.5B's mixer (24 heads x 64, d_state 128, 1 group, d_conv 4, no norm).
/// </summary>
public static class MixerBenchmark
{
    private static readonly Mamba2Shape Shape = new(Heads: 24, HeadDim: 64, Groups: 1, StateSize: 128, ConvKernel: 4, ChunkSize: 128,
        RmsNorm: false, NormBeforeGate: false, Eps: 1e-5, TimeStepLimit: (0, double.PositiveInfinity));

    public static int Run(int threads, int prefillTokens, TextWriter output)
    {
        string folder = Path.Combine(Path.GetTempPath(), "falcon-onnx-mixer-" + Environment.ProcessId);
        Directory.CreateDirectory(folder);
        try
        {
            var cores = new IMamba2Core[] { new Mamba2OrtCore(), new Mamba2CustomCore() };
            var timings = new Dictionary<string, (double Prefill, double Decode)>();
            float[]? reference = null;
            double difference = 0;
            foreach (var core in cores)
            {
                string model = Write(folder, core);
                // Error level only: the unused stand-in for in_proj/out_proj (the cores do not read it) is reported otherwise.
                using var options = new SessionOptions { IntraOpNumThreads = threads, GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL, LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR };
                if (core is Mamba2CustomCore) options.RegisterCustomOpLibrary(Mamba2CustomCore.BuiltLibraryPath);
                using var session = new InferenceSession(model, options);
                var (prefill, decode, y) = Time(session, prefillTokens);
                timings[core.Name] = (prefill, decode);
                if (reference is null) reference = y;
                else for (int i = 0; i < y.Length; i++) difference = Math.Max(difference, Math.Abs(y[i] - reference[i]));
            }
            var (ortPrefill, ortDecode) = timings["ort"];
            var (fusedPrefill, fusedDecode) = timings["custom"];
            output.WriteLine($"Falcon-H1-0.5B Mamba-2 mixer core, {threads} threads, {Environment.ProcessorCount} logical cores; states bound in place; best of runs after a warm-up");
            output.WriteLine($"| step | ort lowering (chain) | fused Mamba2Mixer | speed-up |");
            output.WriteLine($"|---|---:|---:|---:|");
            output.WriteLine($"| prefill {prefillTokens} tokens | {ortPrefill * 1e3:0.00} ms | {fusedPrefill * 1e3:0.00} ms | {ortPrefill / fusedPrefill:0.00}x |");
            output.WriteLine($"| decode step | {ortDecode * 1e6:0.0} µs | {fusedDecode * 1e6:0.0} µs | {ortDecode / fusedDecode:0.00}x |");
            output.WriteLine($"max abs difference of the prefill outputs: {difference:E2}");
            return 0;
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static string Write(string folder, IMamba2Core core)
    {
        var s = Shape;
        var g = new GraphBuilder("main");
        g.Import("", 21);
        int width = 2 * s.Inner + 2 * s.GroupedState + s.Heads;
        var projected = g.Input("projected", ElementType.Float, "batch", "tokens", width);
        var attentionMask = g.Input("attention_mask", ElementType.Int64, "batch", "tokens");
        var pastConv = g.Input("past_conv", ElementType.Float, "batch", s.ConvChannels, s.ConvKernel - 1);
        var pastRecurrent = g.Input("past_recurrent", ElementType.Float, "batch", s.Heads, s.StateSize, s.HeadDim);
        var random = new Random(3);
        Value Weight(string name, long[] shape, Func<float> value)
        {
            var data = new float[shape.Aggregate(1L, (a, b) => a * b)];
            for (int i = 0; i < data.Length; i++) data[i] = value();
            return g.Initializer(name, ArrayTensorData.Floats(shape, data));
        }
        float Uniform(float a, float b) => a + (float)random.NextDouble() * (b - a);
        var unused = new DenseLinear(g.Constant(new float[1], [1, 1]));
        var weights = new Mamba2Weights(unused, null,
            Weight("conv.weight", [s.ConvChannels, 1, s.ConvKernel], () => Uniform(-0.5f, 0.5f)),
            Weight("conv.bias", [s.ConvChannels], () => Uniform(-0.1f, 0.1f)),
            Weight("dt_bias", [s.Heads], () => Uniform(-4f, -2f)),
            Weight("A_log", [s.Heads], () => MathF.Log(Uniform(1f, 16f))),
            Weight("D", [s.Heads], () => 1f), null, unused, null);
        var mask = g.Unsqueeze(g.Cast(attentionMask, ElementType.Float), -1);
        var state = new Mamba2State(pastConv, pastRecurrent, "present_conv", "present_recurrent");
        var y = core.Build(g, weights, s, projected, mask, state, out _, out _);
        g.ListOutputFirst(g.Output(y, "y", ElementType.Float));
        foreach (var output in g.Outputs) g.Annotate(output, ElementType.Float, output.Shape ?? []);
        string file = $"mixer-{core.Name}.onnx";
        if (File.Exists(Path.Combine(folder, file))) File.Delete(Path.Combine(folder, file));
        if (File.Exists(Path.Combine(folder, file + ".data"))) File.Delete(Path.Combine(folder, file + ".data"));
        OnnxModelWriter.Write(g, folder, file, file + ".data");
        return Path.Combine(folder, file);
    }

    private static (double Prefill, double Decode, float[] PrefillOutput) Time(InferenceSession session, int tokens)
    {
        var s = Shape;
        int width = 2 * s.Inner + 2 * s.GroupedState + s.Heads;
        var random = new Random(11);
        var projected = new float[tokens * width];
        for (int i = 0; i < projected.Length; i++) projected[i] = (float)(random.NextDouble() * 2 - 1) * 0.5f;
        var conv = new float[s.ConvChannels * (s.ConvKernel - 1)];
        var recurrent = new float[s.Heads * s.StateSize * s.HeadDim];
        var y = new float[tokens * s.Inner];

        double Measure(int t, int repeats)
        {
            using var binding = session.CreateIoBinding();
            using var p = OrtValue.CreateTensorValueFromMemory(projected.AsMemory(0, t * width).ToArray(), [1, t, width]);
            using var m = OrtValue.CreateTensorValueFromMemory(Enumerable.Repeat(1L, t).ToArray(), [1, t]);
            using var c = OrtValue.CreateTensorValueFromMemory(conv, [1, s.ConvChannels, s.ConvKernel - 1]);
            using var r = OrtValue.CreateTensorValueFromMemory(recurrent, [1, s.Heads, s.StateSize, s.HeadDim]);
            using var output = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, y.AsMemory(0, t * s.Inner), [1, t, s.Inner]);
            binding.BindInput("projected", p);
            binding.BindInput("attention_mask", m);
            binding.BindInput("past_conv", c);
            binding.BindInput("past_recurrent", r);
            binding.BindOutput("y", output);
            binding.BindOutput("present_conv", c);
            binding.BindOutput("present_recurrent", r);
            using var runOptions = new RunOptions();
            double best = double.MaxValue;
            for (int run = 0; run <= repeats; run++)
            {
                Array.Clear(conv);
                Array.Clear(recurrent);
                var clock = Stopwatch.StartNew();
                session.RunWithBinding(runOptions, binding);
                if (run > 0) best = Math.Min(best, clock.Elapsed.TotalSeconds);
            }
            return best;
        }

        double prefill = Measure(tokens, 5);
        var prefillOutput = y.AsSpan(0, tokens * s.Inner).ToArray();
        double decode = Measure(1, 300);
        return (prefill, decode, prefillOutput);
    }
}
