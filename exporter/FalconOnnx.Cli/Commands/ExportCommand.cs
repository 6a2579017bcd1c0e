using System.CommandLine;
using FalconOnnx.Export;
using Spectre.Console;
using FalconOnnx.Models;

namespace FalconOnnx.Cli.Commands;

public static class ExportCommand
{
    public static Command Create()
    {
        var input = new Option<string>("--input", "-i") { Description = "Hugging Face checkpoint folder (config.json + safetensors)", Required = true };
        var output = new Option<string>("--output", "-o") { Description = "Folder to create", Required = true };
        var ssm = new Option<string>("--ssm") { Description = "Mamba-2 lowering: ort (ONNX Runtime contrib ops), onnx (standard operators only) or custom (FalconOnnx's fused operator)", DefaultValueFactory = _ => "ort" };
        ssm.AcceptOnlyFromAmong("ort", "onnx", "custom");
        var attention = new Option<string?>("--attention") { Description = "Attention: gqa (GroupQueryAttention, one shared KV buffer; default with --ssm ort) or concat (standard operators; default with --ssm onnx)" };
        attention.AcceptOnlyFromAmong("gqa", "concat");
        var precision = new Option<string>("--precision") { Description = "fp32, int8 or int4 (CPU); fp16 or bf16 (CUDA)", DefaultValueFactory = _ => "fp32" };
        var ep = new Option<string>("--ep") { Description = "Target execution provider: cpu or cuda", DefaultValueFactory = _ => "cpu" };
        ep.AcceptOnlyFromAmong("cpu", "cuda");
        var blockSize = new Option<int>("--block-size") { Description = "Quantization block size: 16, 32, 64 or 128", DefaultValueFactory = _ => 32 };
        var zeroPoints = new Option<bool>("--zero-points") { Description = "Asymmetric quantization (a zero point per block) instead of symmetric" };
        var accuracy = new Option<int>("--accuracy-level") { Description = "MatMulNBits accuracy_level (4: int8 activations on the CPU, fastest; 1: fp32, which with 8-bit weights takes ONNX Runtime's slow dequantize-every-call path on the CPU)", DefaultValueFactory = _ => 4 };
        var tensorPrecision = new Option<string[]>("--tensor-precision") { Description = "Override per weight, pattern=precision (int8, int4, fp16 or fp32), e.g. '*.mamba.in_proj.weight=int8', or 'lm_head.weight=fp16' (float16 with float32 activations, CPU, through the folder's operator library) (repeatable)" };
        var int4MatMul = new Option<string>("--int4-matmul") { Description = "int4 weights through: ort (com.microsoft.MatMulNBits, runs anywhere ONNX Runtime does) or custom (FalconOnnx's falcon_onnx.MatMulInt4, CPU only, faster; needs --block-size 32 and the folder's operator library)", DefaultValueFactory = _ => "ort" };
        int4MatMul.AcceptOnlyFromAmong("ort", "custom");
        var int8MatMul = new Option<string>("--int8-matmul") { Description = "int8 weights (also the int8 lm_head and narrow projections of an int4 export) through: ort (com.microsoft.MatMulNBits) or custom (FalconOnnx's falcon_onnx.MatMulInt8, CPU only, faster; needs --block-size 32 and the folder's operator library)", DefaultValueFactory = _ => "ort" };
        int8MatMul.AcceptOnlyFromAmong("ort", "custom");
        var logits = new Option<string>("--logits") { Description = "Logits output: all (every new position; eval needs them) or last (the last position only: faster prefill and less memory; generation in our runtime and onnxruntime-genai needs no more)", DefaultValueFactory = _ => "all" };
        logits.AcceptOnlyFromAmong("all", "last");
        var force = new Option<bool>("--force") { Description = "Replace an existing output folder" };
        var modelId = new Option<string?>("--model-id") { Description = "The released checkpoint the input is (Hugging Face repo id, see models.json); its config is checked against it. Default: config.json's _name_or_path" };
        var command = new Command("export", "Export a Falcon-H1 checkpoint to an ONNX folder") { input, output, ssm, attention, precision, ep, blockSize, zeroPoints, accuracy, int4MatMul, int8MatMul, tensorPrecision, logits, force, modelId };
        command.SetAction(parse => CommandRunner.Run(parse.InvocationConfiguration.Error, cancellation =>
        {
            var options = new ExportOptions
            {
                Ssm = ExportOptions.ParseSsm(parse.GetValue(ssm)!),
                Attention = parse.GetValue(attention) is { } a ? ExportOptions.ParseAttention(a) : null,
                Force = parse.GetValue(force),
                Precision = Precisions.Parse(parse.GetValue(precision)!),
                Target = parse.GetValue(ep) == "cuda" ? ExecutionTarget.Cuda : ExecutionTarget.Cpu,
                Quantization = new QuantizationSettings(parse.GetValue(blockSize), !parse.GetValue(zeroPoints), parse.GetValue(accuracy),
                    CustomInt4: parse.GetValue(int4MatMul) == "custom",
                    CustomInt8: parse.GetValue(int8MatMul) == "custom"),
                TensorPrecisions = parse.GetValue(tensorPrecision) ?? [],
                LastPositionLogits = parse.GetValue(logits) == "last",
                ModelId = parse.GetValue(modelId),
            };
            // Before the progress display starts, so the lines stay whole on a terminal.
            foreach (string warning in FalconH1Exporter.CheckConfig(parse.GetValue(input)!, options))
                parse.InvocationConfiguration.Error.WriteLine($"warning: {warning}");
            var console = Console(parse.InvocationConfiguration.Output);
            ExportResult result = null!;
            console.Progress()
                .AutoClear(false)
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new DownloadedColumn(), new TransferSpeedColumn(), new RemainingTimeColumn())
                .Start(context =>
                {
                    var weights = context.AddTask("weights", maxValue: 1);
                    result = FalconH1Exporter.Export(parse.GetValue(input)!, parse.GetValue(output)!, options, p =>
                    {
                        if (p.TotalBytes > 0) weights.MaxValue = p.TotalBytes;
                        weights.Value = p.BytesDone;
                        weights.Description = $"tensors {p.TensorsDone}/{p.TensorCount}";
                    }, cancellation);
                    weights.Value = weights.MaxValue;
                });
            var table = new Table().AddColumns("file", "size");
            foreach (var (name, bytes) in result.Files) InspectCommand.AddRow(table, name, CommandRunner.Size(bytes));
            console.Write(table);
            console.MarkupLineInterpolated($"exported [bold]{result.Folder}[/]: {result.Files.Count} files, {CommandRunner.Size(result.TotalBytes)} in {result.Elapsed.TotalSeconds:0.0} s");
            return ExitCodes.Success;
        }));
        return command;
    }

    internal static IAnsiConsole Console(TextWriter output) => AnsiConsole.Create(new AnsiConsoleSettings
    {
        Out = new AnsiConsoleOutput(output),
        Interactive = output == System.Console.Out ? InteractionSupport.Detect : InteractionSupport.No,
    });
}
