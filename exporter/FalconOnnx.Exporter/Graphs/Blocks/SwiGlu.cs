using FalconOnnx.Onnx;

namespace FalconOnnx.Graphs.Blocks;

/// <summary>gate and up fused into one [hidden, 2·intermediate] matrix (gate first); μP folded into the weights.</summary>
public sealed record SwiGluWeights(Value GateUp, Value? GateUpBias, Value Down, Value? DownBias);

/// <summary>SwiGLU feed-forward: down( up(x) · SiLU(gate(x)) ).</summary>
public static class SwiGlu
{
    public static Value Build(GraphBuilder g, SwiGluWeights w, Value x, int intermediate)
    {
        var gateUp = Linear.Build(g, x, w.GateUp, w.GateUpBias);
        var parts = g.Split(gateUp, -1, intermediate, intermediate);
        return Linear.Build(g, g.Mul(parts[1], g.Silu(parts[0])), w.Down, w.DownBias);
    }
}

/// <summary>y = x · W (+ b) with W stored [in, out].</summary>
public static class Linear
{
    public static Value Build(GraphBuilder g, Value x, Value weight, Value? bias)
    {
        var y = g.MatMul(x, weight);
        return bias is null ? y : g.Add(y, bias);
    }
}
