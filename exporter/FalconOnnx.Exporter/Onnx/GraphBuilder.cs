using System.Globalization;

namespace FalconOnnx.Onnx;

/// <summary>One dimension of a shape annotation: a fixed size or a named symbolic size.</summary>
public readonly record struct Dim(long? Size, string? Symbol)
{
    public static implicit operator Dim(long size) => new(size, null);

    public static implicit operator Dim(string symbol) => new(null, symbol);

    public override string ToString() => Size?.ToString(CultureInfo.InvariantCulture) ?? Symbol ?? "?";
}

/// <summary>A tensor flowing through the graph. Its name is fixed when the graph is written.</summary>
public sealed class Value
{
    internal Value(string name, ElementType? type, Dim[]? shape)
    {
        Name = name;
        Type = type;
        Shape = shape;
    }

    public string Name { get; internal set; }

    public ElementType? Type { get; internal set; }

    public Dim[]? Shape { get; internal set; }

    internal bool IsGraphInput { get; set; }

    internal bool IsInitializer { get; set; }

    internal bool IsGraphOutput { get; set; }

    public override string ToString() => Name;
}

public sealed record Node(string OpType, string Domain, IReadOnlyList<Value?> Inputs, IReadOnlyList<Value> Outputs,
    IReadOnlyDictionary<string, object> Attributes, string Name);

/// <summary>
/// A small graph-building API: typed values, initializers, nodes and shape annotations. The model code
/// (<c>Graphs/</c>) composes blocks from it; everything about the ONNX file format lives in <see cref="OnnxModelWriter"/>.
/// Subgraphs (the branches of <c>If</c>) share their parent's names and initializers.
/// </summary>
public sealed partial class GraphBuilder
{
    private readonly GraphBuilder? _parent;
    private readonly List<Node> _nodes = [];
    private readonly List<Value> _inputs = [];
    private readonly List<Value> _outputs = [];
    private readonly List<(Value Value, TensorData Data)> _initializers = [];
    private readonly Dictionary<string, Value> _constants = [];
    private readonly HashSet<string> _names;
    private readonly Stack<string> _scopes = new();
    private readonly Dictionary<string, int> _opsetImports;

    public GraphBuilder(string name)
    {
        Name = name;
        _names = new HashSet<string>(StringComparer.Ordinal);
        _opsetImports = new Dictionary<string, int>(StringComparer.Ordinal);
    }

    private GraphBuilder(GraphBuilder parent, string name)
    {
        _parent = parent;
        Name = name;
        _names = parent._names;
        _opsetImports = parent._opsetImports;
        foreach (string scope in parent._scopes.Reverse()) _scopes.Push(scope);
    }

    public string Name { get; }

    /// <summary>True for the model's main graph, false for the branches of an <c>If</c>.</summary>
    public bool IsRoot => _parent is null;

    public IReadOnlyList<Node> Nodes => _nodes;

    public IReadOnlyList<Value> Inputs => _inputs;

    public IReadOnlyList<Value> Outputs => _outputs;

    /// <summary>Initializers of the whole model (a subgraph registers them in its root graph).</summary>
    public IReadOnlyList<(Value Value, TensorData Data)> Initializers => Root._initializers;

    public IReadOnlyDictionary<string, int> OpsetImports => _opsetImports;

    private GraphBuilder Root => _parent?.Root ?? this;

    /// <summary>Declares the version of an operator domain the graph uses ("" is the standard domain).</summary>
    public void Import(string domain, int version) => _opsetImports[domain] = version;

    /// <summary>Prefixes the names of the values created inside the scope, so a graph viewer shows the structure.</summary>
    public IDisposable Scope(string name)
    {
        _scopes.Push(name);
        return new ScopeExit(_scopes);
    }

    private sealed class ScopeExit(Stack<string> scopes) : IDisposable
    {
        public void Dispose() => scopes.Pop();
    }

    public GraphBuilder Subgraph(string name) => new(this, UniqueName(name));

    public Value Input(string name, ElementType type, params Dim[] shape)
    {
        var value = new Value(Claim(name), type, shape) { IsGraphInput = true };
        _inputs.Add(value);
        return value;
    }

    /// <summary>Makes <paramref name="value"/> a graph output called <paramref name="name"/>.</summary>
    public Value Output(Value value, string name, ElementType? type = null, params Dim[]? shape)
    {
        if (value.IsGraphInput || value.IsInitializer || value.IsGraphOutput || _parent is not null && !OwnsNodeOutput(value))
            value = Identity(value);
        // The old name stays reserved: it is the producing node's name.
        value.Name = Claim(name);
        value.IsGraphOutput = true;
        if (type is not null) value.Type = type;
        if (shape is not null && shape.Length > 0) value.Shape = shape;
        _outputs.Add(value);
        return value;
    }

    /// <summary>Lists <paramref name="output"/> first among the graph outputs (order is cosmetic in ONNX).</summary>
    public void ListOutputFirst(Value output)
    {
        if (_outputs.Remove(output)) _outputs.Insert(0, output);
    }

    private bool OwnsNodeOutput(Value value) => _nodes.Any(n => n.Outputs.Contains(value));

    /// <summary>A named weight, written to the external-data file when the model is saved.</summary>
    public Value Initializer(string name, TensorData data)
    {
        var value = new Value(Claim(name), data.Type, data.Shape.Select(d => (Dim)d).ToArray()) { IsInitializer = true };
        Root._initializers.Add((value, data));
        return value;
    }

    /// <summary>An int64 constant, shared by every use of the same values.</summary>
    public Value Constant(params long[] values) => Constant(values, [values.Length]);

    public Value Constant(long[] values, long[] shape)
    {
        string key = "i64:" + string.Join(',', shape) + ":" + string.Join(',', values);
        return SharedConstant(key, () => ArrayTensorData.Int64s(shape, values));
    }

    /// <summary>A scalar int64 constant (rank 0).</summary>
    public Value ScalarInt64(long value) => Constant([value], []);

    /// <summary>A scalar float constant (rank 0).</summary>
    public Value Scalar(float value)
    {
        string key = "f32:" + BitConverter.SingleToInt32Bits(value).ToString(CultureInfo.InvariantCulture);
        return SharedConstant(key, () => ArrayTensorData.Floats([], [value]));
    }

    /// <summary>A scalar constant of a floating-point element type (float32, float16 or bfloat16).</summary>
    public Value Scalar(float value, ElementType type)
    {
        if (type == ElementType.Float) return Scalar(value);
        ushort bits = type switch
        {
            ElementType.Float16 => BitConverter.HalfToUInt16Bits((Half)value),
            ElementType.BFloat16 => BFloat16Bits(value),
            _ => throw new ArgumentOutOfRangeException(nameof(type), type, "a floating-point type"),
        };
        string key = type + ":" + bits.ToString(CultureInfo.InvariantCulture);
        return SharedConstant(key, () => ArrayTensorData.Create(type, [], [bits]));
    }

    private static ushort BFloat16Bits(float value)
    {
        Span<ushort> bits = stackalloc ushort[1];
        Checkpoints.FloatConversion.SingleToBFloat16([value], bits);
        return bits[0];
    }

    public Value Constant(float[] values, long[] shape)
    {
        string key = "f32:" + string.Join(',', shape) + ":" + string.Join(',', values.Select(v => BitConverter.SingleToInt32Bits(v)));
        return SharedConstant(key, () => ArrayTensorData.Floats(shape, values));
    }

    private Value SharedConstant(string key, Func<TensorData> create)
    {
        var constants = Root._constants;
        if (!constants.TryGetValue(key, out var value))
        {
            var data = create();
            string name = "const_" + string.Join('x', data.Shape) + "_" + constants.Count.ToString(CultureInfo.InvariantCulture);
            value = Root.InitializerUnscoped(name, data);
            constants[key] = value;
        }
        return value;
    }

    private Value InitializerUnscoped(string name, TensorData data)
    {
        var value = new Value(UniqueName(name, scoped: false), data.Type, data.Shape.Select(d => (Dim)d).ToArray()) { IsInitializer = true };
        _names.Add(value.Name);
        _initializers.Add((value, data));
        return value;
    }

    /// <summary>Adds a node and returns its outputs.</summary>
    /// <param name="absentOutputs">Positions of optional outputs left out (ONNX's empty name): the operator does not
    /// produce them. Their Values here have empty names and must not be consumed.</param>
    public Value[] Node(string opType, IReadOnlyList<Value?> inputs, int outputCount = 1,
        IReadOnlyDictionary<string, object>? attributes = null, string domain = "", ElementType? outputType = null, params int[] absentOutputs)
    {
        var outputs = new Value[outputCount];
        for (int i = 0; i < outputCount; i++)
        {
            if (absentOutputs.Contains(i))
            {
                outputs[i] = new Value("", null, null);
                continue;
            }
            string name = UniqueName(outputCount == 1 ? opType : opType + "_" + i.ToString(CultureInfo.InvariantCulture));
            _names.Add(name);
            outputs[i] = new Value(name, outputType, null);
        }
        _nodes.Add(new Node(opType, domain, inputs.ToArray(), outputs, attributes ?? EmptyAttributes, outputs[0].Name));
        return outputs;
    }

    public Value Node1(string opType, IReadOnlyList<Value?> inputs, IReadOnlyDictionary<string, object>? attributes = null,
        string domain = "") => Node(opType, inputs, 1, attributes, domain)[0];

    /// <summary>Records the shape of an intermediate value (written as value_info).</summary>
    public Value Annotate(Value value, ElementType type, params Dim[] shape)
    {
        value.Type = type;
        value.Shape = shape;
        return value;
    }

    private static readonly IReadOnlyDictionary<string, object> EmptyAttributes = new Dictionary<string, object>();

    private string Claim(string name)
    {
        if (!_names.Add(name)) throw new InvalidOperationException($"graph value name '{name}' is used twice");
        return name;
    }

    private string UniqueName(string name, bool scoped = true)
    {
        string prefix = scoped && _scopes.Count > 0 ? "/" + string.Join('/', _scopes.Reverse()) + "/" : "";
        string candidate = prefix + name;
        for (int i = 1; _names.Contains(candidate); i++) candidate = prefix + name + "_" + i.ToString(CultureInfo.InvariantCulture);
        return candidate;
    }
}
