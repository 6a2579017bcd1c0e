using System.CommandLine;
using FalconOnnx.Benchmarks;
using FalconOnnx.Benchmarks.Report;
using FalconOnnx.Export;
using LLama.Native;

var size = new Option<string>("--size") { Description = "Synthesis preset whose real shape is raced (0.5b, 1.5b-deep, ...)", DefaultValueFactory = _ => "0.5b" };
var threads = new Option<int>("--threads") { Description = "Threads for both sides and for the bandwidth measurement", DefaultValueFactory = _ => 2 };
var precisions = new Option<string>("--precisions") { Description = "Comma-separated: fp32 (vs F32), int8 (vs Q8_0), int4 (vs Q4_0)", DefaultValueFactory = _ => "fp32,int8,int4" };
var depths = new Option<string>("--depths") { Description = "Comma-separated context depths before the prompt", DefaultValueFactory = _ => "0,4096" };
var output = new Option<string>("--out") { Description = "Folder for results.md and results.png", DefaultValueFactory = _ => "bench-results" };
var work = new Option<string?>("--work") { Description = "Folder for the checkpoint, exports and GGUF files, reused between runs (default <out>/models)" };
var runs = new Option<int>("--runs") { Description = "Measured runs after a warm-up; the best is reported", DefaultValueFactory = _ => 2 };
var promptTokens = new Option<int>("--prompt-tokens") { Description = "Prompt length", DefaultValueFactory = _ => 512 };
var decodeSteps = new Option<int>("--decode-tokens") { Description = "Greedy decode steps", DefaultValueFactory = _ => 128 };
var peerKv = new Option<string>("--peer-kv") { Description = "llama.cpp's KV cache type: f32 (like ours) or f16 (llama.cpp's default)", DefaultValueFactory = _ => "f32" };
var peerFlash = new Option<string>("--peer-flash-attention") { Description = "llama.cpp's flash attention in the race: auto (its default), on or off", DefaultValueFactory = _ => "auto" };
var ssm = new Option<string>("--ssm") { Description = "Our Mamba-2 lowering: custom (FalconOnnx's fused operator), ort (ONNX Runtime's contrib operators, the exporter's portable default) or onnx (standard operators)", DefaultValueFactory = _ => "custom" };
var logits = new Option<string>("--logits") { Description = "Our exports' logits: last (the last position, as llama.cpp computes them for a prompt) or all (every position, the exporter's default)", DefaultValueFactory = _ => "last" };
logits.AcceptOnlyFromAmong("last", "all");
var int4MatMul = new Option<string>("--int4-matmul") { Description = "Our int4 weights through: custom (falcon_onnx.MatMulInt4) or ort (com.microsoft.MatMulNBits, the exporter's default)", DefaultValueFactory = _ => "custom" };
int4MatMul.AcceptOnlyFromAmong("custom", "ort");
var int8MatMul = new Option<string>("--int8-matmul") { Description = "Our int8 weights (int8 exports, and int4 exports' int8 lm_head) through: custom (falcon_onnx.MatMulInt8) or ort (com.microsoft.MatMulNBits, the exporter's default)", DefaultValueFactory = _ => "custom" };
int8MatMul.AcceptOnlyFromAmong("custom", "ort");
var int8Vocabulary = new Option<string>("--int8-vocabulary") { Description = "Our int8 exports' embedding and lm_head: int8 (the exporter's default, like Q8_0) or fp16 (float16, int8's configuration that keeps fp32's top-1 token)", DefaultValueFactory = _ => "int8" };
int8Vocabulary.AcceptOnlyFromAmong("int8", "fp16");
var fresh = new Option<bool>("--fresh") { Description = "Rebuild the checkpoint, exports and GGUF files" };

var root = new RootCommand("Races FalconOnnx.Runtime against llama.cpp (LLamaSharp) on the same synthetic Falcon-H1 weights: prefill and decode speed, logit agreement, share of the memory-bandwidth ceiling.")
{
    size, threads, precisions, depths, output, work, runs, promptTokens, decodeSteps, peerKv, peerFlash, ssm, logits, int4MatMul, int8MatMul, int8Vocabulary, fresh,
};
root.SetAction(parse => Guarded(() =>
{
    string outputFolder = Path.GetFullPath(parse.GetValue(output)!);
    var options = new BenchmarkOptions
    {
        Size = parse.GetValue(size)!,
        Threads = Positive(parse.GetValue(threads), "--threads"),
        Precisions = parse.GetValue(precisions)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(PrecisionPairs.Find).ToList(),
        Depths = parse.GetValue(depths)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(int.Parse).ToList(),
        OutputFolder = outputFolder,
        WorkFolder = Path.GetFullPath(parse.GetValue(work) ?? Path.Combine(outputFolder, "models")),
        Runs = Positive(parse.GetValue(runs), "--runs"),
        PromptTokens = Positive(parse.GetValue(promptTokens), "--prompt-tokens"),
        DecodeSteps = Positive(parse.GetValue(decodeSteps), "--decode-tokens"),
        PeerKeyValueType = parse.GetValue(peerKv) switch
        {
            "f32" => GGMLType.GGML_TYPE_F32,
            "f16" => GGMLType.GGML_TYPE_F16,
            var other => throw new ArgumentException($"--peer-kv: '{other}' is neither f32 nor f16"),
        },
        PeerFlashAttention = parse.GetValue(peerFlash) switch
        {
            "auto" => null,
            "on" => true,
            "off" => false,
            var other => throw new ArgumentException($"--peer-flash-attention: '{other}' is not auto, on or off"),
        },
        OursSsm = ExportOptions.ParseSsm(parse.GetValue(ssm)!),
        OursLastPositionLogits = parse.GetValue(logits) == "last",
        OursCustomInt4 = parse.GetValue(int4MatMul) == "custom",
        OursCustomInt8 = parse.GetValue(int8MatMul) == "custom",
        OursInt8HalfVocabulary = parse.GetValue(int8Vocabulary) == "fp16",
        Fresh = parse.GetValue(fresh),
    };
    if (options.Depths.Count == 0 || options.Depths.Any(d => d < 0)) throw new ArgumentException("--depths: give one or more depths >= 0");
    using var cancellation = new CancellationTokenSource();
    Console.CancelKeyPress += (_, e) => { e.Cancel = true; cancellation.Cancel(); };
    var results = new BenchmarkRun(options, Console.Out).Run(cancellation.Token);
    string markdown = ResultsTable.Markdown(results);
    File.WriteAllText(Path.Combine(outputFolder, "results.md"), markdown);
    ResultsChart.SavePng(results, Path.Combine(outputFolder, "results.png"));
    Console.WriteLine();
    Console.WriteLine(markdown);
    Console.WriteLine($"written: {Path.Combine(outputFolder, "results.md")}, {Path.Combine(outputFolder, "results.png")}");
    return 0;
}));
var mixerThreads = new Option<int>("--threads") { Description = "Intra-op threads", DefaultValueFactory = _ => 2 };
var mixerTokens = new Option<int>("--tokens") { Description = "Prefill length", DefaultValueFactory = _ => 2048 };
var mixer = new Command("mixer", "The Mamba-2 mixer core alone: the ort lowering's operator chain against the fused Mamba2Mixer, on identical inputs") { mixerThreads, mixerTokens };
mixer.SetAction(parse => Guarded(() => MixerBenchmark.Run(Positive(parse.GetValue(mixerThreads), "--threads"), Positive(parse.GetValue(mixerTokens), "--tokens"), Console.Out)));
root.Subcommands.Add(mixer);
return root.Parse(args).Invoke();

// Bad options and a work folder that cannot hold the race: one line and exit code 2, not a stack trace.
static int Guarded(Func<int> run)
{
    try
    {
        return run();
    }
    catch (Exception e) when (e is ArgumentException or FalconOnnx.FalconOnnxException or FormatException)
    {
        Console.Error.WriteLine($"error: {e.Message}");
        return 2;
    }
}

static int Positive(int value, string option) => value > 0 ? value : throw new ArgumentException($"{option} must be positive, got {value}");
