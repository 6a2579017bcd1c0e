using System.Globalization;
using FalconOnnx.Onnx.Proto;
using Google.Protobuf;

namespace FalconOnnx.Onnx;

/// <summary>Progress of a model write: the initializer being written, the running count of its bytes and of all (alignment not counted).</summary>
public readonly record struct WriteProgress(string TensorName, int TensorsWritten, int TensorCount, long BytesWritten, long TotalBytes);

/// <summary>
/// Writes a <see cref="GraphBuilder"/> as an ONNX model plus one external-data file. Every initializer of at
/// least <see cref="ExternalThreshold"/> bytes goes to the data file, written one tensor at a time, block by block
/// (<see cref="ExternalDataWriter"/> writes while the next block is converted), so model.onnx stays small (protobuf
/// caps a message at 2 GB) and no weight is held in memory: only initializers under 1 KiB enter the protobuf. Large tensors
/// start at 64 KiB boundaries so ONNX Runtime can memory-map them on every platform.
/// </summary>
public static class OnnxModelWriter
{
    public const int IrVersion = 10;
    public const long ExternalThreshold = 1024;
    private const long LargeAlignment = 64 * 1024;
    private const long SmallAlignment = 64;

    public static void Write(GraphBuilder graph, string folder, string modelFileName, string dataFileName,
        IReadOnlyDictionary<string, string>? metadata = null, Action<WriteProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        if (dataFileName.IndexOfAny(['/', '\\']) >= 0 || dataFileName is "." or "..")
            throw new ArgumentException($"external data file name must be a plain file name, got '{dataFileName}'", nameof(dataFileName));

        var initializers = graph.Initializers;
        var locations = new Dictionary<Value, (long Offset, long Length)>();
        long total = 0;
        // Large tensors first, back to back at 64 KiB boundaries, then the small ones: a small tensor between two
        // large ones would cost up to 64 KiB of padding.
        foreach (bool large in new[] { true, false })
            foreach (var (value, data) in initializers)
            {
                if (data.ByteLength < ExternalThreshold || (data.ByteLength >= LargeAlignment) != large) continue;
                total = Align(total, large ? LargeAlignment : SmallAlignment);
                locations[value] = (total, data.ByteLength);
                total += data.ByteLength;
            }

        string dataPath = Path.Combine(folder, dataFileName);
        using (var handle = File.OpenHandle(dataPath, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, FileOptions.None, total))
        {
            using var writer = new ExternalDataWriter(handle, cancellationToken);
            long written = 0, payload = locations.Values.Sum(l => l.Length);
            int index = 0;
            foreach (var (value, data) in initializers)
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (!locations.TryGetValue(value, out var location))
                {
                    index++;
                    continue;
                }
                // Progress block by block, so a tensor of gigabytes moves the bar too.
                data.WriteTo(writer.At(location.Offset, bytes =>
                {
                    written += bytes;
                    progress?.Invoke(new WriteProgress(value.Name, index, initializers.Count, written, payload));
                }));
                index++;
                progress?.Invoke(new WriteProgress(value.Name, index, initializers.Count, written, payload));
            }
            writer.Complete();
            RandomAccess.FlushToDisk(handle);
        }

        var model = new ModelProto
        {
            IrVersion = IrVersion,
            ProducerName = "FalconOnnx",
            ProducerVersion = typeof(OnnxModelWriter).Assembly.GetName().Version?.ToString() ?? "0",
            Graph = BuildGraph(graph, value => locations.TryGetValue(value, out var l) ? l : null, dataFileName),
        };
        foreach (var (domain, version) in graph.OpsetImports.OrderBy(d => d.Key, StringComparer.Ordinal))
            model.OpsetImport.Add(new OperatorSetIdProto { Domain = domain, Version = version });
        if (metadata is not null)
            foreach (var (key, v) in metadata) model.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = v });

        using var stream = new FileStream(Path.Combine(folder, modelFileName), FileMode.CreateNew, FileAccess.Write);
        model.WriteTo(stream);
        stream.Flush(flushToDisk: true);
    }

    private static long Align(long offset, long alignment) => (offset + alignment - 1) / alignment * alignment;

    private static GraphProto BuildGraph(GraphBuilder graph, Func<Value, (long Offset, long Length)?> location, string dataFileName)
    {
        var proto = new GraphProto { Name = graph.Name };
        foreach (var input in graph.Inputs) proto.Input.Add(ValueInfo(input));
        foreach (var output in graph.Outputs) proto.Output.Add(ValueInfo(output));
        foreach (var node in graph.Nodes) proto.Node.Add(BuildNode(node, location, dataFileName));
        var declared = new HashSet<Value>(graph.Inputs.Concat(graph.Outputs));
        foreach (var node in graph.Nodes)
            foreach (var output in node.Outputs)
                if (output.Shape is not null && output.Type is not null && !declared.Contains(output))
                    proto.ValueInfo.Add(ValueInfo(output));

        if (graph.IsRoot)
        {
            foreach (var (value, data) in graph.Initializers)
            {
                var tensor = new TensorProto { Name = value.Name, DataType = (int)data.Type };
                tensor.Dims.AddRange(data.Shape);
                if (location(value) is { } l)
                {
                    tensor.DataLocation = TensorProto.Types.DataLocation.External;
                    tensor.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = dataFileName });
                    tensor.ExternalData.Add(new StringStringEntryProto { Key = "offset", Value = l.Offset.ToString(CultureInfo.InvariantCulture) });
                    tensor.ExternalData.Add(new StringStringEntryProto { Key = "length", Value = l.Length.ToString(CultureInfo.InvariantCulture) });
                }
                else
                {
                    tensor.RawData = ByteString.CopyFrom(data.ToArray());
                }
                proto.Initializer.Add(tensor);
            }
        }
        return proto;
    }

    private static NodeProto BuildNode(Node node, Func<Value, (long Offset, long Length)?> location, string dataFileName)
    {
        var proto = new NodeProto { OpType = node.OpType, Domain = node.Domain, Name = node.Name };
        foreach (var input in node.Inputs) proto.Input.Add(input?.Name ?? "");
        foreach (var output in node.Outputs) proto.Output.Add(output.Name);
        foreach (var (name, value) in node.Attributes.OrderBy(a => a.Key, StringComparer.Ordinal))
            proto.Attribute.Add(BuildAttribute(name, value, location, dataFileName));
        return proto;
    }

    private static AttributeProto BuildAttribute(string name, object value, Func<Value, (long Offset, long Length)?> location, string dataFileName)
    {
        var attribute = new AttributeProto { Name = name };
        switch (value)
        {
            case long i:
                attribute.Type = AttributeProto.Types.AttributeType.Int;
                attribute.I = i;
                break;
            case int i:
                attribute.Type = AttributeProto.Types.AttributeType.Int;
                attribute.I = i;
                break;
            case float f:
                attribute.Type = AttributeProto.Types.AttributeType.Float;
                attribute.F = f;
                break;
            case string s:
                attribute.Type = AttributeProto.Types.AttributeType.String;
                attribute.S = ByteString.CopyFromUtf8(s);
                break;
            case long[] ints:
                attribute.Type = AttributeProto.Types.AttributeType.Ints;
                attribute.Ints.AddRange(ints);
                break;
            case float[] floats:
                attribute.Type = AttributeProto.Types.AttributeType.Floats;
                attribute.Floats.AddRange(floats);
                break;
            case GraphBuilder subgraph:
                attribute.Type = AttributeProto.Types.AttributeType.Graph;
                attribute.G = BuildGraph(subgraph, location, dataFileName);
                break;
            default:
                throw new ArgumentException($"attribute '{name}' has unsupported type {value.GetType().Name}");
        }
        return attribute;
    }

    private static ValueInfoProto ValueInfo(Value value)
    {
        var tensorType = new TypeProto.Types.Tensor { ElemType = (int)(value.Type ?? throw new InvalidOperationException($"value '{value.Name}' has no element type")) };
        if (value.Shape is not null)
        {
            tensorType.Shape = new TensorShapeProto();
            foreach (var dim in value.Shape)
            {
                var d = new TensorShapeProto.Types.Dimension();
                if (dim.Size is { } size) d.DimValue = size;
                else if (dim.Symbol is { } symbol) d.DimParam = symbol;
                tensorType.Shape.Dim.Add(d);
            }
        }
        return new ValueInfoProto { Name = value.Name, Type = new TypeProto { TensorType = tensorType } };
    }
}
