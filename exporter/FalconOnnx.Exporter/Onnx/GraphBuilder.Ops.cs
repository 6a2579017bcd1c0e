namespace FalconOnnx.Onnx;

/// <summary>The standard ONNX operators the models use, one method each (opset 21 semantics).</summary>
public sealed partial class GraphBuilder
{
    private static Dictionary<string, object> Attrs(params (string Name, object Value)[] attributes)
        => attributes.ToDictionary(a => a.Name, a => a.Value);

    public Value Add(Value a, Value b) => Node1("Add", [a, b]);

    public Value Sub(Value a, Value b) => Node1("Sub", [a, b]);

    public Value Mul(Value a, Value b) => Node1("Mul", [a, b]);

    public Value Mul(Value a, float b) => Mul(a, Scalar(b));

    public Value Div(Value a, Value b) => Node1("Div", [a, b]);

    public Value Neg(Value a) => Node1("Neg", [a]);

    public Value Exp(Value a) => Node1("Exp", [a]);

    public Value Sqrt(Value a) => Node1("Sqrt", [a]);

    public Value Sigmoid(Value a) => Node1("Sigmoid", [a]);

    public Value Softplus(Value a) => Node1("Softplus", [a]);

    public Value Cos(Value a) => Node1("Cos", [a]);

    public Value Sin(Value a) => Node1("Sin", [a]);

    public Value Min(Value a, Value b) => Node1("Min", [a, b]);

    public Value Max(Value a, Value b) => Node1("Max", [a, b]);

    /// <summary>x · sigmoid(x), the activation Falcon-H1 calls SiLU.</summary>
    public Value Silu(Value x) => Mul(x, Sigmoid(x));

    public Value MatMul(Value a, Value b) => Node1("MatMul", [a, b]);

    public Value Identity(Value a) => Node1("Identity", [a]);

    public Value Cast(Value a, ElementType to) => Node1("Cast", [a], Attrs(("to", (long)to)));

    public Value Reshape(Value data, params long[] shape) => Node1("Reshape", [data, Constant(shape)]);

    public Value Reshape(Value data, Value shape) => Node1("Reshape", [data, shape]);

    public Value Transpose(Value data, params long[] perm) => Node1("Transpose", [data], Attrs(("perm", perm)));

    public Value Unsqueeze(Value data, params long[] axes) => Node1("Unsqueeze", [data, Constant(axes)]);

    public Value Squeeze(Value data, params long[] axes) => Node1("Squeeze", [data, Constant(axes)]);

    public Value Expand(Value data, Value shape) => Node1("Expand", [data, shape]);

    public Value Concat(long axis, params Value[] inputs) => Node1("Concat", inputs, Attrs(("axis", axis)));

    public Value[] Split(Value data, long axis, params long[] sizes)
        => Node("Split", [data, Constant(sizes)], sizes.Length, Attrs(("axis", axis)));

    public Value Slice(Value data, Value starts, Value ends, Value axes, Value? steps = null)
        => Node1("Slice", steps is null ? [data, starts, ends, axes] : [data, starts, ends, axes, steps]);

    /// <summary>data[..., start:end, ...] along one axis with constant bounds.</summary>
    public Value Slice(Value data, long axis, long start, long end) => Slice(data, Constant(start), Constant(end), Constant(axis));

    public Value Gather(Value data, Value indices, long axis = 0) => Node1("Gather", [data, indices], Attrs(("axis", axis)));

    public Value Shape(Value data) => Node1("Shape", [data]);

    /// <summary>The number of elements, as an int64 scalar.</summary>
    public Value Size(Value data) => Node1("Size", [data]);

    /// <summary>The size of one axis, as a 1-element int64 tensor.</summary>
    public Value ShapeOf(Value data, long axis) => Node1("Shape", [data], Attrs(("start", axis), ("end", axis + 1)));

    public Value ReduceMean(Value data, long axis, bool keepDims = true)
        => Node1("ReduceMean", [data, Constant(axis)], Attrs(("keepdims", keepDims ? 1L : 0L)));

    public Value Pow(Value data, float exponent) => Node1("Pow", [data, Scalar(exponent)]);

    public Value ReduceSum(Value data, long axis, bool keepDims = true)
        => Node1("ReduceSum", [data, Constant(axis)], Attrs(("keepdims", keepDims ? 1L : 0L)));

    public Value Softmax(Value data, long axis = -1) => Node1("Softmax", [data], Attrs(("axis", axis)));

    public Value CumSum(Value data, long axis, bool exclusive = false)
        => Node1("CumSum", [data, ScalarInt64(axis)], Attrs(("exclusive", exclusive ? 1L : 0L)));

    public Value Range(Value start, Value limit, Value delta) => Node1("Range", [start, limit, delta]);

    public Value Where(Value condition, Value whenTrue, Value whenFalse) => Node1("Where", [condition, whenTrue, whenFalse]);

    public Value LessOrEqual(Value a, Value b) => Node1("LessOrEqual", [a, b]);

    public Value Less(Value a, Value b) => Node1("Less", [a, b]);

    public Value Equal(Value a, Value b) => Node1("Equal", [a, b]);

    public Value And(Value a, Value b) => Node1("And", [a, b]);

    public Value Pad(Value data, Value pads) => Node1("Pad", [data, pads]);

    public Value Clip(Value data, Value? min, Value? max) => Node1("Clip", [data, min, max]);

    /// <summary>Depthwise 1-D convolution without padding: weight [channels, 1, kernel].</summary>
    public Value DepthwiseConv1d(Value data, Value weight, Value? bias, long channels, long kernel)
        => Node1("Conv", bias is null ? [data, weight] : [data, weight, bias],
            Attrs(("group", channels), ("kernel_shape", new[] { kernel }), ("pads", new long[] { 0, 0 }), ("strides", new long[] { 1 })));

    /// <summary>
    /// ONNX <c>If</c>: both branches are subgraphs built by the callbacks and must return values of the same
    /// types; they read outer-scope values directly.
    /// </summary>
    public Value[] If(Value condition, ElementType[] outputTypes, Func<GraphBuilder, Value[]> thenBranch, Func<GraphBuilder, Value[]> elseBranch)
    {
        var thenGraph = Subgraph("then");
        var elseGraph = Subgraph("else");
        AddBranchOutputs(thenGraph, thenBranch(thenGraph), outputTypes);
        AddBranchOutputs(elseGraph, elseBranch(elseGraph), outputTypes);
        var outputs = Node("If", [condition], outputTypes.Length, Attrs(("then_branch", thenGraph), ("else_branch", elseGraph)));
        for (int i = 0; i < outputs.Length; i++) outputs[i].Type = outputTypes[i];
        return outputs;
    }

    private static void AddBranchOutputs(GraphBuilder branch, Value[] outputs, ElementType[] types)
    {
        if (outputs.Length != types.Length) throw new InvalidOperationException($"branch {branch.Name} returns {outputs.Length} values, expected {types.Length}");
        for (int i = 0; i < outputs.Length; i++) branch.Output(outputs[i], branch.Name + "_out" + i, types[i]);
    }
}
