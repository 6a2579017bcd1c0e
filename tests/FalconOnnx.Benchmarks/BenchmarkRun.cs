using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using FalconOnnx.Benchmarks.Gguf;
using FalconOnnx.Benchmarks.Ours;
using FalconOnnx.Benchmarks.Peer;
using FalconOnnx.Benchmarks.Race;
using FalconOnnx.Benchmarks.Report;
using FalconOnnx.Checkpoints;
using FalconOnnx.Export;
using FalconOnnx.Models;
using FalconOnnx.Synthesis;
using LLama;
using LLama.Native;

namespace FalconOnnx.Benchmarks;

/// <summary>
/// The whole race, in order: a synthetic checkpoint of the size's real shape, our exports and the F32 GGUF from the
/// same safetensors, llama.cpp's quantizations of it, a logit check that both sides compute the same model, the
/// memory bandwidth, then prefill and decode timings for each precision pair and depth, both sides loaded together
/// and timed run by run in turn (<see cref="RaceProtocol"/>).
/// </summary>
public sealed class BenchmarkRun(BenchmarkOptions options, TextWriter log)
{
    /// <summary>Tokens of the agreement prompt and greedy tokens compared after it.</summary>
    private const int AgreementPromptTokens = 32, AgreementGreedyTokens = 16;

    /// <summary>Plain English, so the prompt is made of the synthetic tokenizer's ordinary merged tokens.</summary>
    private const string AgreementText =
        "Falcons are birds of prey that hunt from the sky. A peregrine falcon can dive faster than any other animal, " +
        "and people have trained falcons to hunt with them for thousands of years across many countries.";

    private readonly List<string> _notes = [];

    public RaceResults Run(CancellationToken cancellationToken)
    {
        string loadBefore = LoadAverage();
        var preset = SynthPresets.Find(options.Size);
        CheckFreeSpace(preset);
        Directory.CreateDirectory(options.WorkFolder);
        Directory.CreateDirectory(options.OutputFolder);
        string checkpoint = Step($"checkpoint {preset.Name} (seed {options.Seed})", Path.Combine(options.WorkFolder, $"{preset.Name}-hf"),
            path => CheckpointSynthesizer.Synthesize(preset, options.Seed, path, force: true, cancellationToken: cancellationToken));
        var config = FalconH1Config.Load(Path.Combine(checkpoint, Checkpoint.ConfigFileName));
        string f32Gguf = Step("F32 GGUF", Path.Combine(options.WorkFolder, PrecisionPairs.All[0].PeerFileName(preset.Name)),
            path => FalconH1Gguf.Write(checkpoint, path, cancellationToken));

        int vocabulary = config.VocabSize;
        var history = RaceProtocol.Tokens(options.Depths.Max(), vocabulary, seed: 1);
        var prompt = RaceProtocol.Tokens(options.PromptTokens, vocabulary, seed: 2);

        var reference = OurReference(checkpoint, cancellationToken);
        var agreements = new List<LogitAgreement>();
        var rows = new List<RaceRow>();
        var peerFiles = new List<string>();

        // A shared machine gives less than its peak at times: the bandwidth is read before the race and before and
        // after each measurement (the last of which is the reading after the race). The best reading is the ceiling of
        // every row (the strict figure); each row also gets the better of the two readings beside its own measurement
        // (what the machine gave at that time).
        var bandwidthReadings = new List<double> { Bandwidth("before the race") };

        foreach (var pair in options.Precisions)
        {
            string? oursFolder = pair.HasOurs ? Export(checkpoint, pair, cancellationToken) : null;
            if (oursFolder is null) log.WriteLine($"ours at {pair.OursLabel}: {pair.OursUnavailableReason}");
            string gguf = pair.PeerFileType is { } fileType
                ? Step($"{pair.PeerLabel} GGUF", Path.Combine(options.WorkFolder, pair.PeerFileName(preset.Name)), path => Quantize(f32Gguf, path, fileType))
                : f32Gguf;
            var reader = GgufReader.Open(gguf);
            peerFiles.Add($"{Path.GetFileName(gguf)}: {new FileInfo(gguf).Length / 1048576.0:F1} MiB, {TypeSummary(reader)}");
            if (pair.PeerFileType is null)
            {
                // The converter check: llama.cpp with everything in float32, flash attention off.
                using var exact = new LlamaCppRaceEngine(gguf, options.Threads, AgreementPromptTokens + AgreementGreedyTokens + 1, GGMLType.GGML_TYPE_F32, flashAttention: false);
                agreements.Add(Agree(exact, reference, $"fp32 (ours) vs {pair.PeerLabel} (llama.cpp, KV F32, flash attention off)"));
            }

            using var ours = oursFolder is null ? null : new OnnxRaceEngine(oursFolder, options.Threads, options.Capacity);
            using var peer = new LlamaCppRaceEngine(gguf, options.Threads, options.Capacity, options.PeerKeyValueType, options.PeerFlashAttention);
            if (ours is not null) log.WriteLine($"ours: {ours.Description}");
            log.WriteLine($"llama.cpp: {peer.Description}");
            // Each quantized side against the same fp32 reference: what the quantization costs on either side.
            if (ours is not null && pair.PeerFileType is not null) agreements.Add(Agree(ours, reference, $"fp32 (ours) vs {pair.OursLabel} (ours as raced)"));
            agreements.Add(Agree(peer, reference, $"fp32 (ours) vs {pair.PeerLabel} (llama.cpp as raced)"));
            long? oursWeights = oursFolder is null ? null : BytesPerToken.OnnxWeightBytes(oursFolder);
            long peerWeights = BytesPerToken.GgufWeightBytes(reader);
            int peerKeyValueBytes = options.PeerKeyValueType == GGMLType.GGML_TYPE_F32 ? sizeof(float) : 2;
            foreach (int depth in options.Depths)
            {
                double readingBefore = Bandwidth($"before {pair.OursLabel} at depth {depth}");
                bandwidthReadings.Add(readingBefore);
                log.Write($"  {pair.OursLabel}/{pair.PeerLabel} depth {depth}: ");
                IRaceEngine[] engines = ours is null ? [peer] : [ours, peer];
                var speeds = RaceProtocol.MeasureSideBySide(engines, history[..depth], prompt, options.DecodeSteps, options.Runs, cancellationToken);
                var peerSpeed = speeds[^1];
                SideResult? oursResult = ours is null ? null : new SideResult(speeds[0], Bytes(config, oursWeights!.Value, depth, sizeof(float)));
                if (oursResult is not null)
                    log.Write($"ours prefill {speeds[0].PrefillTokensPerSecond:F1} tok/s, decode {speeds[0].DecodeTokensPerSecond:F2} tok/s; ");
                log.WriteLine($"llama.cpp prefill {peerSpeed.PrefillTokensPerSecond:F1} tok/s, decode {peerSpeed.DecodeTokensPerSecond:F2} tok/s");
                double readingAfter = Bandwidth($"after {pair.OursLabel} at depth {depth}");
                bandwidthReadings.Add(readingAfter);
                rows.Add(new RaceRow(pair, depth, oursResult, new SideResult(peerSpeed, Bytes(config, peerWeights, depth, peerKeyValueBytes)),
                    BandwidthBeside: Math.Max(readingBefore, readingAfter)));
            }
        }

        double bandwidth = bandwidthReadings.Max();
        foreach (string warning in LlamaCppLibrary.Warnings) _notes.Add($"llama.cpp said: {warning}");
        var machine = new MachineDescription(
            Cpu: CpuModel(), LogicalCores: Environment.ProcessorCount, Threads: options.Threads, BandwidthGigabytesPerSecond: bandwidth,
            BandwidthMeasurements: $"{string.Join(", ", bandwidthReadings.Select(r => r.ToString("F2", CultureInfo.InvariantCulture)))} GB/s (before the race, " +
                "then before and after each measurement)",
            LoadBefore: loadBefore, LoadAfter: LoadAverage(),
            Runtime: $"{RuntimeInformation.FrameworkDescription} on {RuntimeInformation.OSDescription}",
            OnnxRuntime: typeof(Microsoft.ML.OnnxRuntime.InferenceSession).Assembly.GetName().Version?.ToString() ?? "?",
            LlamaCppBuild: $"LLamaSharp {LlamaCppLibrary.LLamaSharpVersion} with LLamaSharp.Backend.Cpu, native library {string.Join("; ", LlamaCppLibrary.LoadedLibraries)}",
            LlamaCppSystemInfo: LlamaCppLibrary.SystemInfo,
            OursSettings: $"exports with --ssm {ExportOptions.Name(options.OursSsm)}{(options.OursSsm == SsmLowering.Custom ? " (FalconOnnx's fused Mamba2Mixer operator)" : "")} --logits {(options.OursLastPositionLogits ? "last" : "all")}" +
                (options.OursCustomInt4 ? ", int4 with --int4-matmul custom (falcon_onnx.MatMulInt4)" : "") +
                (options.OursCustomInt8 ? ", int8 weights with --int8-matmul custom (falcon_onnx.MatMulInt8)" : "") +
                (options.OursInt8HalfVocabulary ? ", int8 with lm_head and embedding in fp16 (falcon_onnx.MatMulFp16, Gather + Cast)" : "") +
                $", prompt chunks of {RaceProtocol.PrefillChunk} tokens",
            PeerSettings: $"KV cache {options.PeerKeyValueType.ToString().Replace("GGML_TYPE_", "")}, flash attention {LlamaCppRaceEngine.FlashAttentionName(options.PeerFlashAttention)}, n_batch = n_ubatch = {RaceProtocol.PrefillChunk}");
        return new RaceResults(preset.Name, options.PromptTokens, options.DecodeSteps, options.Runs, machine, rows, agreements, peerFiles, _notes);
    }

    private double Bandwidth(string when)
    {
        log.WriteLine($"measuring memory bandwidth with {options.Threads} threads {when} ...");
        double gigabytesPerSecond = MemoryBandwidth.MeasureGigabytesPerSecond(options.Threads);
        log.WriteLine($"  {gigabytesPerSecond:F2} GB/s");
        return gigabytesPerSecond;
    }

    /// <summary>Our fp32 logits and greedy tokens on the agreement prompt: the reference every llama.cpp file is checked against.</summary>
    private (int[] Prompt, float[] Logits, int[] Greedy) OurReference(string checkpoint, CancellationToken cancellationToken)
    {
        var fp32 = PrecisionPairs.Find("fp32");
        string folder = Export(checkpoint, fp32, cancellationToken);
        using var engine = new OnnxRaceEngine(folder, options.Threads, AgreementPromptTokens + AgreementGreedyTokens + 1);
        var prompt = engine.Model.Tokenizer.Encode(AgreementText).Take(AgreementPromptTokens).ToArray();
        engine.Reset();
        engine.Prefill(prompt);
        var logits = engine.NextTokenLogits();
        return (prompt, logits, engine.DecodeGreedy(AgreementGreedyTokens - 1));
    }

    private LogitAgreement Agree(IRaceEngine engine, (int[] Prompt, float[] Logits, int[] Greedy) reference, string pair)
    {
        engine.Reset();
        engine.Prefill(reference.Prompt);
        var logits = engine.NextTokenLogits();
        var greedy = engine.DecodeGreedy(AgreementGreedyTokens - 1);
        double difference = 0;
        for (int i = 0; i < logits.Length; i++) difference = Math.Max(difference, Math.Abs(logits[i] - reference.Logits[i]));
        int equal = greedy.Zip(reference.Greedy).TakeWhile(p => p.First == p.Second).Count();
        var agreement = new LogitAgreement(pair, reference.Prompt.Length, difference, reference.Logits.Max() - reference.Logits.Min(), greedy.Length, equal);
        log.WriteLine($"  logits {pair}: max abs difference {difference:E2} over a range of {agreement.LogitRange:F2}; greedy tokens equal {equal} of {greedy.Length}");
        return agreement;
    }

    /// <summary>Bytes one decode step reads, at the mean context length of the decode.</summary>
    private BytesPerToken Bytes(FalconH1Config config, long weights, int depth, int keyValueElementBytes) => new(
        weights,
        BytesPerToken.KeyValueBytes(config, depth + options.PromptTokens + options.DecodeSteps / 2, keyValueElementBytes),
        BytesPerToken.RecurrentStateBytes(config));

    private string Export(string checkpoint, PrecisionPair pair, CancellationToken cancellationToken) =>
        Step($"our {pair.OursLabel} export ({OursExportName(pair)})", OursFolder(pair),
            path => FalconH1Exporter.Export(checkpoint, path, OursExportOptions(pair), cancellationToken: cancellationToken));

    private string OursFolder(PrecisionPair pair) =>
        Path.Combine(options.WorkFolder, $"{options.Size}-onnx-{pair.OursLabel}-{OursExportName(pair).Replace(", ", "-").Replace(' ', '-')}");

    /// <summary>
    /// Stops before anything is written when the work folder's disk cannot hold the files the race still has to make:
    /// a full disk otherwise surfaces half way through, as llama.cpp's "could not quantize".
    /// </summary>
    private void CheckFreeSpace(SynthPreset preset)
    {
        var config = CheckpointSynthesizer.Config(preset);
        long parameters = CheckpointSynthesizer.ParameterCount(config);
        bool Missing(string path) => options.Fresh || !(File.Exists(path) || Directory.Exists(path));
        // Bytes per parameter of each file: the bf16 checkpoint, the F32 GGUF, and per precision pair our folder
        // (plan's estimate) and llama.cpp's quantized file (Q8_0 8.5 bits, Q4_0 4.5, with some margin).
        double needed = 0;
        if (Missing(Path.Combine(options.WorkFolder, $"{preset.Name}-hf"))) needed += 2.0 * parameters;
        if (Missing(Path.Combine(options.WorkFolder, PrecisionPairs.All[0].PeerFileName(preset.Name)))) needed += 4.0 * parameters;
        foreach (var pair in options.Precisions)
        {
            if (pair.OursExport is { } export && Missing(OursFolder(pair)))
                needed += MemoryPlan.Compute(config, export.Precision, 1, tensorPrecisions: OursExportOptions(pair).TensorPrecisions).FolderBytes;
            if (pair.PeerFileType is not null && Missing(Path.Combine(options.WorkFolder, pair.PeerFileName(preset.Name))))
                needed += (pair.PeerFileType == LLamaFtype.MOSTLY_Q8_0 ? 1.1 : 0.6) * parameters;
        }
        string existing = Path.GetFullPath(options.WorkFolder);
        while (!Directory.Exists(existing)) existing = Path.GetDirectoryName(existing)!;
        long free = new DriveInfo(existing).AvailableFreeSpace;
        if (needed > free)
            throw new ArgumentException($"--work: {options.WorkFolder} has {free / 1e9:F1} GB free; this race still has to write about {needed / 1e9:F1} GB of models (free space, or reuse a work folder that has them)");
    }

    private ExportOptions OursExportOptions(PrecisionPair pair)
    {
        var export = pair.OursExport!;
        bool customInt4 = options.OursCustomInt4 && export.Precision == FalconOnnx.Models.Precision.Int4;
        bool customInt8 = options.OursCustomInt8 && export.Precision is FalconOnnx.Models.Precision.Int8 or FalconOnnx.Models.Precision.Int4;
        bool halfVocabulary = options.OursInt8HalfVocabulary && export.Precision == FalconOnnx.Models.Precision.Int8;
        return export with
        {
            Force = true,
            Ssm = options.OursSsm,
            LastPositionLogits = options.OursLastPositionLogits,
            Quantization = export.Quantization with { CustomInt4 = customInt4, CustomInt8 = customInt8 },
            TensorPrecisions = halfVocabulary ? [.. export.TensorPrecisions, .. HalfVocabulary] : export.TensorPrecisions,
        };
    }

    private static readonly string[] HalfVocabulary = ["lm_head.weight=fp16", "model.embed_tokens.weight=fp16"];

    private string OursExportName(PrecisionPair pair)
    {
        var export = OursExportOptions(pair);
        return $"ssm {ExportOptions.Name(options.OursSsm)}, logits {(options.OursLastPositionLogits ? "last" : "all")}" +
            (export.Quantization.CustomInt4 ? ", int4-matmul custom" : "") +
            (export.Quantization.CustomInt8 ? ", int8-matmul custom" : "") +
            (export.TensorPrecisions.Contains(HalfVocabulary[0]) ? ", fp16 vocabulary" : "");
    }

    private void Quantize(string source, string destination, LLamaFtype fileType)
    {
        LlamaCppLibrary.EnsureLoaded();
        if (!LLamaQuantizer.Quantize(source, destination, fileType, options.Threads, allowRequantize: false, quantizeOutputTensor: true))
            throw new InvalidOperationException($"llama.cpp could not quantize {source} to {fileType}");
    }

    /// <summary>Makes <paramref name="path"/> unless the work folder already has it (and --fresh was not given).</summary>
    private string Step(string what, string path, Action<string> make)
    {
        if (!options.Fresh && (File.Exists(path) || Directory.Exists(path)))
        {
            log.WriteLine($"{what}: reusing {path}");
            return path;
        }
        if (File.Exists(path)) File.Delete(path);
        log.WriteLine($"{what}: writing {path} ...");
        var clock = Stopwatch.StartNew();
        make(path);
        log.WriteLine($"  done in {clock.Elapsed.TotalSeconds:F1} s");
        return path;
    }

    private static string TypeSummary(GgufReader reader) => string.Join(", ", reader.Tensors.GroupBy(t => t.Type).OrderByDescending(g => g.Sum(t => t.ByteSize))
        .Select(g => $"{g.Key} ×{g.Count()} ({g.Sum(t => t.ByteSize) / 1048576.0:F1} MiB{(g.Count() <= 2 ? ": " + string.Join(", ", g.Select(t => t.Name)) : "")})"));

    private static string CpuModel()
    {
        const string path = "/proc/cpuinfo";
        if (!File.Exists(path)) return RuntimeInformation.ProcessArchitecture.ToString();
        string? line = File.ReadLines(path).FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal));
        return line?.Split(':', 2)[1].Trim() ?? RuntimeInformation.ProcessArchitecture.ToString();
    }

    private static string LoadAverage()
    {
        const string path = "/proc/loadavg";
        return File.Exists(path) ? string.Join(" ", File.ReadAllText(path).Split(' ').Take(3)) : "unknown";
    }
}
