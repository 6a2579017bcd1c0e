using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using FalconOnnx.Models;
using Spectre.Console;

namespace FalconOnnx.Cli.Commands;

public static class PlanCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model", "-m") { Description = "A released model by Hugging Face repo id (models.json), a checkpoint folder or an exported folder", Required = true };
        var context = new Option<int>("--context", "-c") { Description = "Tokens of context per sequence (the KV cache is allocated for all of them)", Required = true };
        var precision = new Option<string>("--precision", "-p") { Description = $"Weight precision: {Precisions.Names}", Required = true };
        var batch = new Option<int>("--batch", "-b") { Description = "Sequences run together", DefaultValueFactory = _ => 1 };
        var ep = new Option<string?>("--ep") { Description = "cpu or cuda; default cuda for fp16 and bf16, cpu otherwise" };
        var ram = new Option<string?>("--ram") { Description = "RAM budget to check a CPU run against, e.g. 16GiB or 32GB" };
        var vram = new Option<string?>("--vram") { Description = "GPU memory budget to check a CUDA run against, e.g. 24GiB" };
        var logits = new Option<string>("--logits") { Description = "The export's logits: all (every position) or last (export --logits last: one row per prefill call)", DefaultValueFactory = _ => "all" };
        logits.AcceptOnlyFromAmong("all", "last");
        var tensorPrecision = new Option<string[]>("--tensor-precision") { Description = "The export's per-weight overrides, pattern=precision, as export takes them (repeatable)" };
        var json = new Option<bool>("--json") { Description = "Print the figures as JSON (bytes)" };
        var command = new Command("plan", "Memory a model needs at a context length and precision: weights, KV cache, SSM and conv states, activations, and the exported folder's size")
        {
            model, context, precision, batch, ep, logits, tensorPrecision, ram, vram, json,
        };
        command.SetAction(parse => CommandRunner.Run(parse.InvocationConfiguration.Error, _ =>
        {
            var (label, config) = ModelCatalog.ResolveConfig(parse.GetValue(model)!);
            var p = Precisions.Parse(parse.GetValue(precision)!);
            var target = parse.GetValue(ep) is { } e ? Precisions.ParseTarget(e) : (ExecutionTarget?)null;
            long? ramBudget = parse.GetValue(ram) is { } r ? ParseSize("--ram", r) : null;
            long? vramBudget = parse.GetValue(vram) is { } v ? ParseSize("--vram", v) : null;
            string[] overrides = parse.GetValue(tensorPrecision) ?? [];
            var plan = MemoryPlan.Compute(config, p, parse.GetValue(context), parse.GetValue(batch), target, lastPositionLogits: parse.GetValue(logits) == "last",
                tensorPrecisions: overrides);
            var output = parse.InvocationConfiguration.Output;
            var error = parse.InvocationConfiguration.Error;
            if (plan.Context > config.MaxPositionEmbeddings)
                error.WriteLine($"warning: --context {plan.Context} is past the model's max_position_embeddings ({config.MaxPositionEmbeddings})");

            // On the CPU everything lives in RAM; under CUDA weights, caches and activations live in GPU memory.
            var (budget, where) = plan.Target == ExecutionTarget.Cpu ? (ramBudget, "RAM") : (vramBudget, "GPU memory");
            if (plan.Target == ExecutionTarget.Cpu && vramBudget is not null) error.WriteLine("warning: --vram does not apply to a CPU run");
            if (plan.Target == ExecutionTarget.Cuda && ramBudget is not null) error.WriteLine("warning: --ram does not apply to a CUDA run (host memory is not planned)");

            if (parse.GetValue(json))
            {
                var figures = new JsonObject
                {
                    ["model"] = label,
                    ["precision"] = Precisions.Name(p),
                    ["tensor_precisions"] = new JsonArray([.. overrides.Select(o => (JsonNode?)o)]),
                    ["ep"] = Precisions.Name(plan.Target),
                    ["context"] = plan.Context,
                    ["batch"] = plan.Batch,
                    ["parameters"] = plan.Parameters,
                    ["weights_bytes"] = plan.WeightBytes,
                    ["kv_bytes"] = plan.KvBytes,
                    ["state_bytes"] = plan.StateBytes,
                    ["activation_bytes"] = plan.ActivationBytes,
                    ["rotary_table_bytes"] = plan.RotaryTableBytes,
                    ["total_bytes"] = plan.TotalBytes,
                    ["folder_bytes"] = plan.FolderBytes,
                    ["budget_bytes"] = budget,
                    ["fits"] = budget is null ? null : plan.TotalBytes <= budget,
                };
                output.WriteLine(figures.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
                return ExitCodes.Success;
            }

            var c = config;
            string kv = Precisions.KvDtype(p, plan.Target);
            var table = new Table().AddColumns("part", "size", "how");
            InspectCommand.AddRow(table, "weights", CommandRunner.Size(plan.WeightBytes), WeightsHow(p) + (overrides.Length > 0 ? "; overrides: " + string.Join(", ", overrides) : ""));
            InspectCommand.AddRow(table, "rotary tables", CommandRunner.Size(plan.RotaryTableBytes), Invariant($"{kv}: cos and sin of {c.MaxPositionEmbeddings:N0} positions x {c.HeadDim / 2}, made at load (GroupQueryAttention)"));
            InspectCommand.AddRow(table, "KV cache", CommandRunner.Size(plan.KvBytes), Invariant($"{kv}: {c.NumHiddenLayers} layers x {plan.Batch} x {plan.Context:N0} tokens x 2 x {c.NumKeyValueHeads} heads x {c.HeadDim}"));
            InspectCommand.AddRow(table, "states", CommandRunner.Size(plan.StateBytes), Invariant($"float32: {c.NumHiddenLayers} layers x {plan.Batch} x (conv {c.ConvDim} x {c.MambaDConv - 1} + SSM {c.MambaNHeads} x {c.MambaDState} x {c.MambaDHead})"));
            InspectCommand.AddRow(table, "activations", CommandRunner.Size(plan.ActivationBytes), Invariant($"rough, one prefill call of {plan.PrefillChunk} tokens: logits{(plan.LastPositionLogits ? " of the last position" : "")}, attention probabilities, the widest projection"));
            InspectCommand.AddRow(table, "total", CommandRunner.Size(plan.TotalBytes), plan.Target == ExecutionTarget.Cpu ? "RAM" : "GPU memory");
            InspectCommand.AddRow(table, "folder", CommandRunner.Size(plan.FolderBytes), "model.onnx + model.onnx.data (tokenizer files not counted)");
            output.WriteLine(Invariant($"{label}: {plan.Parameters:N0} parameters, {c.NumHiddenLayers} layers; {Precisions.Name(p)} on {Precisions.Name(plan.Target)}, batch {plan.Batch}, context {plan.Context:N0}"));
            ExportCommand.Console(output).Write(table);
            if (budget is { } b)
                output.WriteLine(plan.TotalBytes <= b
                    ? $"fits in {CommandRunner.Size(b)} of {where}: {CommandRunner.Size(b - plan.TotalBytes)} left"
                    : $"does not fit in {CommandRunner.Size(b)} of {where}: needs {CommandRunner.Size(plan.TotalBytes)}");
            return ExitCodes.Success;
        }));
        return command;
    }

    private static string WeightsHow(Precision p) => p switch
    {
        Precision.Fp32 => "float32",
        Precision.Fp16 or Precision.Bf16 => $"{Precisions.Name(p)}, 2 bytes per parameter",
        Precision.Int8 => $"2-D weights int8 in blocks of {Precisions.BlockSize} with a {Precisions.ScaleBytes}-byte scale each (1.125 bytes per parameter), the rest float32",
        _ => $"layer projections int4 in blocks of {Precisions.BlockSize} with a {Precisions.ScaleBytes}-byte scale each (0.625 bytes per parameter), embedding, lm_head and projections under 256 inputs int8, the rest float32",
    };

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);

    /// <summary>A size with its unit: B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024).</summary>
    internal static long ParseSize(string option, string text)
    {
        string t = text.Trim();
        int split = t.Length;
        while (split > 0 && !char.IsAsciiDigit(t[split - 1]) && t[split - 1] != '.') split--;
        string number = t[..split], unit = t[split..].Trim();
        long scale = unit.ToUpperInvariant() switch
        {
            "B" => 1,
            "KB" => 1000L,
            "MB" => 1000L * 1000,
            "GB" => 1000L * 1000 * 1000,
            "TB" => 1000L * 1000 * 1000 * 1000,
            "KIB" => 1L << 10,
            "MIB" => 1L << 20,
            "GIB" => 1L << 30,
            "TIB" => 1L << 40,
            _ => 0,
        };
        if (scale == 0 || !double.TryParse(number, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double value) || value <= 0)
            throw new FalconOnnxException($"{option}: '{text}' is not a size such as 16GiB or 24GB");
        return (long)(value * scale);
    }
}
