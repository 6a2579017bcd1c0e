using System.CommandLine;
using FalconOnnx.Onnx;
using FalconOnnx.Onnx.Proto;
using FalconOnnx.Runtime;
using Spectre.Console;

namespace FalconOnnx.Cli.Commands;

public static class InspectCommand
{
    public static Command Create()
    {
        var folder = new Argument<string>("folder") { Description = "An exported folder" };
        var command = new Command("inspect", "Show an exported folder: manifest, graph inputs and outputs, operator counts") { folder };
        command.SetAction(parse => CommandRunner.Run(parse.InvocationConfiguration.Error, _ =>
        {
            string path = parse.GetValue(folder)!;
            var manifest = ModelManifest.Load(path);
            string modelPath = Path.Combine(path, manifest.Graph.File);
            if (!File.Exists(modelPath)) throw new FalconModelException($"{modelPath}: graph file named by the manifest is missing");
            ModelProto model;
            using (var stream = File.OpenRead(modelPath)) model = ModelProto.Parser.ParseFrom(stream);
            var console = ExportCommand.Console(parse.InvocationConfiguration.Output);

            var d = manifest.Dimensions;
            var summary = new Table().AddColumns("manifest", "value").HideHeaders();
            AddRow(summary, "abi version", manifest.AbiVersion.ToString());
            AddRow(summary, "model", $"{manifest.ModelType}: {d.NumLayers} layers, hidden {d.HiddenSize}, vocab {d.VocabSize}, context {d.ContextLength}");
            AddRow(summary, "attention", $"{d.NumAttentionHeads} heads / {d.NumKeyValueHeads} KV heads x {d.HeadDim}");
            AddRow(summary, "mamba-2", $"{d.MambaHeads} heads x {d.MambaHeadDim}, state {d.MambaStateSize}, conv {d.ConvDim} x {d.ConvKernel}");
            AddRow(summary, "export", $"precision {manifest.Options.Precision}, ssm {manifest.Options.Ssm}, target {manifest.Options.TargetEp}, quantization {Quantization(manifest.Options.Quantization)}");
            AddRow(summary, "graph", $"{manifest.Graph.File} (ir {model.IrVersion}; {string.Join(", ", model.OpsetImport.Select(o => $"{(o.Domain == "" ? "ai.onnx" : o.Domain)} {o.Version}"))}), logits {manifest.Graph.Logits}, KV share buffer {manifest.Graph.PastPresentShareBuffer}");
            AddRow(summary, "custom ops", manifest.CustomOpsLibrary ?? "none");
            AddRow(summary, "source", string.Join(", ", manifest.Source.Files.Select(f => $"{f.Name} ({CommandRunner.Size(f.Bytes)}, sha256 {f.Sha256[..12]}…)")));
            console.Write(summary);

            var io = new Table().AddColumns("", "name", "type", "shape");
            foreach (var input in model.Graph.Input) AddRow(io, "in", input.Name, TypeName(input), Shape(input));
            foreach (var output in model.Graph.Output) AddRow(io, "out", output.Name, TypeName(output), Shape(output));
            console.Write(io);

            var counts = new Dictionary<string, int>();
            Count(model.Graph, counts);
            var ops = new Table().AddColumns("operator", "count");
            foreach (var (op, count) in counts.OrderByDescending(c => c.Value).ThenBy(c => c.Key, StringComparer.Ordinal)) AddRow(ops, op, count.ToString());
            console.Write(ops);
            long weights = model.Graph.Initializer.Sum(t => t.Dims.Aggregate(1L, (a, b) => a * b));
            console.MarkupLineInterpolated($"{model.Graph.Node.Count} nodes, {model.Graph.Initializer.Count} initializers, {weights:N0} parameters stored");
            return ExitCodes.Success;
        }));
        return command;
    }

    private static string Quantization(ManifestQuantization? q) => q is null ? "none"
        : $"block {q.BlockSize}, {(q.Symmetric ? "symmetric" : "with zero points")}, accuracy level {q.AccuracyLevel}; " +
          string.Join(", ", q.Weights.GroupBy(w => w.Value).OrderBy(g => g.Key).Select(g => $"{g.Count()} weights {g.Key}"));

    /// <summary>Adds plain-text cells (tensor shapes contain '[' which Spectre would read as markup).</summary>
    internal static void AddRow(Table table, params string[] cells) => table.AddRow(cells.Select(c => new Text(c)).ToArray());

    private static void Count(GraphProto graph, Dictionary<string, int> counts)
    {
        foreach (var node in graph.Node)
        {
            string key = node.Domain is "" or "ai.onnx" ? node.OpType : $"{node.Domain}.{node.OpType}";
            counts[key] = counts.GetValueOrDefault(key) + 1;
            foreach (var attribute in node.Attribute)
                if (attribute.G is not null) Count(attribute.G, counts);
        }
    }

    private static string TypeName(ValueInfoProto value) => ((ElementType)value.Type.TensorType.ElemType).OnnxName();

    private static string Shape(ValueInfoProto value) => value.Type.TensorType.Shape is { } shape
        ? "[" + string.Join(", ", shape.Dim.Select(d => d.ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue ? d.DimValue.ToString() : d.DimParam)) + "]"
        : "?";
}
