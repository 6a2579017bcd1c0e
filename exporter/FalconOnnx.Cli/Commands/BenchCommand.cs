using System.CommandLine;
using System.Diagnostics;
using FalconOnnx.Runtime;
using FalconOnnx.Runtime.Diagnostics;
using FalconOnnx.Runtime.Generation;
using Microsoft.ML.OnnxRuntime;
using Spectre.Console;

namespace FalconOnnx.Cli.Commands;

/// <summary>
/// Speed of an exported folder through the runtime: prefill and decode tokens/s, time to first token, peak
/// memory and managed bytes per token, at a prompt length and context depth; optionally beside a bare loop
/// that calls ONNX Runtime directly on the same model, to measure the runtime's own overhead.
/// </summary>
public static class BenchCommand
{
    public static Command Create()
    {
        var folder = new Argument<string>("folder") { Description = "An exported folder" };
        var promptTokens = new Option<int>("--prompt-tokens") { Description = "Prompt length", DefaultValueFactory = _ => 512 };
        var newTokens = new Option<int>("--new-tokens") { Description = "Tokens to decode", DefaultValueFactory = _ => 128 };
        var depth = new Option<int>("--depth") { Description = "Tokens already in the context before the prompt", DefaultValueFactory = _ => 0 };
        var load = new ModelLoadOptions();
        var runs = new Option<int>("--runs") { Description = "Measured runs (the best is reported) after one warm-up", DefaultValueFactory = _ => 3 };
        var bare = new Option<bool>("--bare") { Description = "Also time a bare ONNX Runtime loop on the same model" };
        var chunk = new Option<int?>("--prefill-chunk") { Description = "Prompt tokens per forward call [default: 128 on the CPU, 512 on CUDA]" };
        var profile = new Option<string?>("--profile") { Description = "After the timed runs, profile one more run with ONNX Runtime's profiler: print each operator type's share of prefill and decode, and keep the trace (Chrome trace JSON) at this path" };
        var command = new Command("bench", "Measure prefill and decode speed of an exported folder") { folder, promptTokens, newTokens, depth, runs, bare, chunk, profile };
        load.AddTo(command);
        command.SetAction(parse => CommandRunner.Run(parse.InvocationConfiguration.Error, cancellation =>
        {
            int prompt = parse.GetValue(promptTokens), decode = parse.GetValue(newTokens), context = parse.GetValue(depth);
            if (prompt < 1 || decode < 1 || context < 0) throw new FalconModelException("--prompt-tokens and --new-tokens must be >= 1, --depth >= 0");
            var console = ExportCommand.Console(parse.InvocationConfiguration.Output);
            string? profilePath = parse.GetValue(profile), profilePrefix = profilePath is null ? null : ProfilePrefix(profilePath);
            var random = new Random(42);
            var options = GenerationOptions.Greedy with { MaxNewTokens = decode, StopTokens = [] };
            int capacity = context + prompt + decode + 1;
            int[] history, promptIds;
            var clock = Stopwatch.StartNew();
            using (var model = load.Load(parse, parse.GetValue(folder)!))
            {
                double loadSeconds = clock.Elapsed.TotalSeconds;
                int vocab = model.Dimensions.VocabSize;
                int[] Tokens(int count) => Enumerable.Range(0, count).Select(_ => random.Next(Math.Min(16, vocab - 1), vocab)).ToArray();
                history = Tokens(context);
                promptIds = Tokens(prompt);

                using var generator = new Generator(model, new GeneratorOptions { Capacity = capacity, PrefillChunk = parse.GetValue(chunk) });
                Measurement? best = null;
                for (int run = 0; run <= parse.GetValue(runs); run++)
                {
                    cancellation.ThrowIfCancellationRequested();
                    var measurement = Measure(generator, history, promptIds, options, cancellation);
                    if (run > 0 && (best is null || measurement.DecodeSeconds < best.DecodeSeconds)) best = measurement;
                }
                var m = best!;
                var table = new Table().AddColumns("measure", "value");
                InspectCommand.AddRow(table, "model", $"{model.Manifest.Dimensions.NumLayers} layers, hidden {model.Dimensions.HiddenSize}, {model.Manifest.Options.Precision}, ssm {model.Manifest.Options.Ssm}, attention {model.Manifest.Graph.Attention}, logits {model.Manifest.Graph.Logits}");
                InspectCommand.AddRow(table, "machine", $"{Environment.ProcessorCount} logical cores, threads {(load.Threads(parse) == 0 ? "auto" : load.Threads(parse).ToString())}");
                InspectCommand.AddRow(table, "load", $"{loadSeconds:0.00} s");
                InspectCommand.AddRow(table, "prefill", $"{prompt} tokens at depth {context}: {prompt / m.PrefillSeconds:0.0} tokens/s");
                InspectCommand.AddRow(table, "prefill chunk", $"{generator.State.MaxChunk} tokens per call");
                InspectCommand.AddRow(table, "time to first token", $"{m.FirstTokenSeconds * 1000:0.0} ms");
                InspectCommand.AddRow(table, "decode", $"{decode} tokens: {decode / m.DecodeSeconds:0.00} tokens/s ({m.DecodeSeconds / decode * 1000:0.00} ms/token)");
                InspectCommand.AddRow(table, "managed bytes per decoded token", $"{m.ManagedBytesPerToken}");
                InspectCommand.AddRow(table, "peak working set", CommandRunner.Size(Process.GetCurrentProcess().PeakWorkingSet64));
                if (parse.GetValue(bare))
                {
                    double bareSeconds = BareLoop.DecodeSeconds(model, history.Concat(promptIds).ToArray(), decode, parse.GetValue(runs), cancellation);
                    double overhead = (m.DecodeSeconds - bareSeconds) / m.DecodeSeconds;
                    InspectCommand.AddRow(table, "bare ONNX Runtime decode", $"{decode / bareSeconds:0.00} tokens/s ({bareSeconds / decode * 1000:0.00} ms/token)");
                    InspectCommand.AddRow(table, "runtime overhead per decode step", $"{overhead * 100:0.0} % ({(m.DecodeSeconds - bareSeconds) / decode * 1e6:0} µs)");
                }
                console.Write(table);
            }
            if (profilePath is not null)
                Profile(console, () => load.Load(parse, parse.GetValue(folder)!, profilePrefix), profilePath, capacity, parse.GetValue(chunk), history, promptIds, options, cancellation);
            return ExitCodes.Success;
        }));
        return command;
    }

    private static string ProfilePrefix(string profilePath)
    {
        string directory = Path.GetDirectoryName(Path.GetFullPath(profilePath))!;
        if (!Directory.Exists(directory)) throw new FalconModelException($"--profile {profilePath}: folder {directory} does not exist");
        return Path.Combine(directory, $".{Path.GetFileName(profilePath)}.{Environment.ProcessId}");
    }

    /// <summary>
    /// One run of the measured work with ONNX Runtime's profiler on, in a session of its own so that the profiler's
    /// cost stays out of the timed runs; prints where the prefill and decode calls spent their time, by operator type.
    /// </summary>
    private static void Profile(IAnsiConsole console, Func<FalconModel> load, string profilePath, int capacity, int? chunk,
        int[] history, int[] prompt, GenerationOptions options, CancellationToken cancellation)
    {
        string trace;
        Measurement pass;
        using (var model = load())
        using (var generator = new Generator(model, new GeneratorOptions { Capacity = capacity, PrefillChunk = chunk }))
        {
            // The first pass warms the session up (arena growth, first-call kernel setup); the second is the one read.
            Measure(generator, history, prompt, options, cancellation);
            pass = Measure(generator, history, prompt, options, cancellation);
            trace = model.EndProfiling();
        }
        File.Move(trace, profilePath, overwrite: true);
        var runs = OperatorProfile.Read(profilePath);
        if (runs.Count < pass.EndCall) throw new FalconModelException($"{profilePath}: the trace holds {runs.Count} forward calls, {pass.EndCall} were made");
        var prefill = OperatorProfileSummary.Of(runs.Take((int)pass.DecodeCall).Skip((int)pass.PromptCall).ToList());
        var decode = OperatorProfileSummary.Of(runs.Take((int)pass.EndCall).Skip((int)pass.DecodeCall).ToList());
        console.Write(ProfileTable($"prefill of {prompt.Length} tokens in {prefill.Runs} calls, time per token", prefill, prompt.Length));
        console.Write(ProfileTable($"decode, {decode.Runs} steps, time per step", decode, decode.Runs));
        console.WriteLine("Shares are of the summed kernel time; the profiler itself lengthens each forward call by a few µs per kernel.");
        console.WriteLine($"trace: {profilePath}");
    }

    private static Table ProfileTable(string title, OperatorProfileSummary summary, int per)
    {
        var table = new Table { Title = new TableTitle(title) }.AddColumns("operator", "calls per forward call", "µs", "share");
        int runs = Math.Max(1, summary.Runs);
        per = Math.Max(1, per);
        double kernels = Math.Max(summary.KernelMicroseconds, 1e-9);
        void Row(string name, double? calls, double microseconds, bool share = true) =>
            table.AddRow(Markup.Escape(name), calls is { } c ? $"{c / runs:0.##}" : "", $"{microseconds / per:0.0}", share ? $"{100 * microseconds / kernels:0.0} %" : "");
        const int shown = 12;
        foreach (var op in summary.Operators.Take(shown)) Row(op.Operator, op.Calls, op.Microseconds);
        var rest = summary.Operators.Skip(shown).ToList();
        if (rest.Count > 0) Row($"{rest.Count} other operator types", rest.Sum(o => o.Calls), rest.Sum(o => o.Microseconds));
        Row("all kernels", summary.Operators.Sum(o => o.Calls), summary.KernelMicroseconds);
        Row("forward call (profiled)", null, summary.RunMicroseconds, share: false);
        return table;
    }

    /// <param name="PromptCall">The state's forward-call count when the prompt started (calls before it fed the history);
    /// <paramref name="DecodeCall"/> when decoding started, <paramref name="EndCall"/> when it ended.</param>
    private sealed record Measurement(double PrefillSeconds, double FirstTokenSeconds, double DecodeSeconds, long ManagedBytesPerToken,
        long PromptCall, long DecodeCall, long EndCall);

    private static Measurement Measure(Generator generator, int[] history, int[] prompt, GenerationOptions options, CancellationToken cancellation)
    {
        generator.Reset();
        if (history.Length > 0) generator.Append(history, cancellation);
        long promptCall = generator.State.Calls;
        var clock = Stopwatch.StartNew();
        generator.Append(prompt, cancellation);
        double prefill = clock.Elapsed.TotalSeconds;
        long decodeCall = generator.State.Calls;
        using var tokens = generator.Generate(options, cancellation).GetEnumerator();
        tokens.MoveNext();
        double first = clock.Elapsed.TotalSeconds;
        long bytes = GC.GetAllocatedBytesForCurrentThread();
        var decodeClock = Stopwatch.StartNew();
        int count = 1;
        while (tokens.MoveNext()) count++;
        double decode = decodeClock.Elapsed.TotalSeconds;
        long perToken = (GC.GetAllocatedBytesForCurrentThread() - bytes) / Math.Max(1, count - 1);
        // The first token came with the prefill; scale the steps timed to the requested count.
        return new Measurement(prefill, first, decode * options.MaxNewTokens / Math.Max(1, count - 1), perToken, promptCall, decodeCall, generator.State.Calls);
    }

    /// <summary>
    /// The least a program can do per decode step with ONNX Runtime's C# API: the same in-place bindings as the
    /// runtime, a fixed [1, n] mask view per step, greedy argmax, no sampling, tokenizer or bookkeeping.
    /// </summary>
    private static class BareLoop
    {
        public static double DecodeSeconds(FalconModel model, int[] prompt, int steps, int runs, CancellationToken cancellation)
        {
            var d = model.Dimensions;
            using var options = new SessionOptions { IntraOpNumThreads = model.Options.IntraOpThreads, GraphOptimizationLevel = model.Options.GraphOptimization };
            if (model.Manifest.CustomOpsLibrary is { } library) options.RegisterCustomOpLibrary(Path.GetFullPath(Path.Combine(model.Folder, library)));
            using var session = new InferenceSession(Path.Combine(model.Folder, model.Manifest.Graph.File), options);
            if (!model.Manifest.Graph.PastPresentShareBuffer) throw new FalconModelException("--bare needs an export with a shared KV buffer (attention gqa)");
            int capacity = prompt.Length + steps + 1;
            var keys = Enumerable.Range(0, d.NumLayers).Select(_ => new float[d.NumKeyValueHeads * capacity * d.HeadDim]).ToArray();
            var values = Enumerable.Range(0, d.NumLayers).Select(_ => new float[d.NumKeyValueHeads * capacity * d.HeadDim]).ToArray();
            var conv = Enumerable.Range(0, d.NumLayers).Select(_ => new float[d.ConvDim * (d.ConvKernel - 1)]).ToArray();
            var recurrent = Enumerable.Range(0, d.NumLayers).Select(_ => new float[d.MambaHeads * d.MambaStateSize * d.MambaHeadDim]).ToArray();
            var mask = Enumerable.Repeat(1L, capacity).ToArray();
            var maskViews = Enumerable.Range(0, capacity + 1).Select(n => n == 0 ? null : OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, mask.AsMemory(0, n), [1, n])).ToArray();
            var ids = new long[1];
            var positions = new long[1];
            var logits = new float[d.VocabSize];
            using var binding = session.CreateIoBinding();
            var owned = new List<OrtValue>();
            OrtValue Own(OrtValue v) { owned.Add(v); return v; }
            for (int i = 0; i < d.NumLayers; i++)
            {
                var k = Own(OrtValue.CreateTensorValueFromMemory(keys[i], [1, d.NumKeyValueHeads, capacity, d.HeadDim]));
                var v = Own(OrtValue.CreateTensorValueFromMemory(values[i], [1, d.NumKeyValueHeads, capacity, d.HeadDim]));
                var c = Own(OrtValue.CreateTensorValueFromMemory(conv[i], [1, d.ConvDim, d.ConvKernel - 1]));
                var r = Own(OrtValue.CreateTensorValueFromMemory(recurrent[i], [1, d.MambaHeads, d.MambaStateSize, d.MambaHeadDim]));
                binding.BindInput($"past_key_values.{i}.key", k); binding.BindOutput($"present.{i}.key", k);
                binding.BindInput($"past_key_values.{i}.value", v); binding.BindOutput($"present.{i}.value", v);
                binding.BindInput($"past_key_values.{i}.conv_state", c); binding.BindOutput($"present.{i}.conv_state", c);
                binding.BindInput($"past_key_values.{i}.recurrent_state", r); binding.BindOutput($"present.{i}.recurrent_state", r);
            }
            using var runOptions = new RunOptions();
            double best = double.MaxValue;
            for (int run = 0; run <= runs; run++)
            {
                foreach (var buffer in conv.Concat(recurrent)) Array.Clear(buffer);
                var promptIds = prompt.Select(t => (long)t).ToArray();
                var promptPositions = Enumerable.Range(0, prompt.Length).Select(p => (long)p).ToArray();
                // The rows of logits the export returns for a prompt (every position, or the last one); the last is read.
                int logitRows = model.HasEveryPositionLogits ? prompt.Length : 1;
                var promptLogits = new float[logitRows * d.VocabSize];
                using (var idsValue = OrtValue.CreateTensorValueFromMemory(promptIds, [1, prompt.Length]))
                using (var positionsValue = OrtValue.CreateTensorValueFromMemory(promptPositions, [1, prompt.Length]))
                using (var logitsValue = OrtValue.CreateTensorValueFromMemory(promptLogits, [1, logitRows, d.VocabSize]))
                {
                    binding.BindInput("input_ids", idsValue);
                    binding.BindInput("position_ids", positionsValue);
                    binding.BindInput("attention_mask", maskViews[prompt.Length]!);
                    binding.BindOutput("logits", logitsValue);
                    session.RunWithBinding(runOptions, binding);
                }
                using var stepIds = OrtValue.CreateTensorValueFromMemory(ids, [1, 1]);
                using var stepPositions = OrtValue.CreateTensorValueFromMemory(positions, [1, 1]);
                using var stepLogits = OrtValue.CreateTensorValueFromMemory(logits, [1, 1, d.VocabSize]);
                binding.BindInput("input_ids", stepIds);
                binding.BindInput("position_ids", stepPositions);
                binding.BindOutput("logits", stepLogits);
                ids[0] = Sampling.ArgMax(promptLogits.AsSpan(promptLogits.Length - d.VocabSize));
                var clock = Stopwatch.StartNew();
                for (int step = 0; step < steps; step++)
                {
                    cancellation.ThrowIfCancellationRequested();
                    positions[0] = prompt.Length + step;
                    binding.BindInput("attention_mask", maskViews[prompt.Length + step + 1]!);
                    session.RunWithBinding(runOptions, binding);
                    ids[0] = Sampling.ArgMax(logits);
                }
                if (run > 0) best = Math.Min(best, clock.Elapsed.TotalSeconds);
            }
            foreach (var v in owned.Concat(maskViews.OfType<OrtValue>())) v.Dispose();
            return best;
        }
    }
}
