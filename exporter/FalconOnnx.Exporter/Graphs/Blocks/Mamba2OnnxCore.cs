using FalconOnnx.Onnx;

namespace FalconOnnx.Graphs.Blocks;

/// <summary>
/// The <c>onnx</c> lowering: standard ONNX operators only, no Scan or Loop, so the file runs in any ONNX
/// runtime. The conv is Concat(state, x) + depthwise Conv; the recurrence is the single-step update for one
/// token and the chunked SSD algorithm (Mamba-2's state-space duality, as HF's torch_forward) for more,
/// chosen by an If on the number of new tokens. Both continue from the past state.
/// </summary>
public sealed class Mamba2OnnxCore : IMamba2Core
{
    public string Name => "onnx";

    public Value Build(GraphBuilder g, Mamba2Weights w, Mamba2Shape s, Value projected, Value mask, Mamba2State state,
        out Value presentConv, out Value presentRecurrent)
    {
        var (gate, convInput, rawDt) = Mamba2.Split(g, s, projected);

        // The window is the K−1 stored inputs followed by the new ones; its last K−1 columns are the new state.
        var window = g.Concat(2, state.PastConv, g.Transpose(convInput, 0, 2, 1));
        presentConv = g.Output(g.Slice(window, g.Constant(-(s.ConvKernel - 1)), g.Constant(long.MaxValue), g.Constant(2)), state.PresentConvName);
        var convolved = g.DepthwiseConv1d(window, w.ConvWeight, w.ConvBias, s.ConvChannels, s.ConvKernel);
        var activated = g.Mul(g.Transpose(g.Silu(convolved), 0, 2, 1), mask);
        var xbc = g.Split(activated, -1, s.Inner, s.GroupedState, s.GroupedState);
        var dt = Mamba2.TimeStep(g, s, rawDt, w.DtBias, mask);

        var newTokens = g.ShapeOf(projected, 1);
        var a = g.Reshape(w.A(g), s.Groups, s.Heads / s.Groups, 1, 1);
        var scan = g.If(g.Equal(newTokens, g.Constant(1L)), [ElementType.Float, ElementType.Float],
            then => SingleStep(then, s, a, xbc[0], xbc[1], xbc[2], dt, state.PastRecurrent),
            otherwise => Chunked(otherwise, s, a, xbc[0], xbc[1], xbc[2], dt, state.PastRecurrent, newTokens));
        presentRecurrent = g.Output(scan[1], state.PresentRecurrentName);
        return Mamba2.Epilogue(g, w, s, scan[0], xbc[0], gate);
    }

    /// <summary>
    /// One token, per head h of group g: S' = exp(dt·A)·S + B ⊗ (dt·x), y = C·S'. Heads are viewed as
    /// [groups, heads per group] so B and C broadcast without being copied per head.
    /// </summary>
    /// <param name="a">A = −exp(A_log) as [groups, heads per group, 1, 1].</param>
    private static Value[] SingleStep(GraphBuilder g, Mamba2Shape s, Value a, Value x, Value b, Value c, Value dt, Value past)
    {
        int r = s.Heads / s.Groups, n = s.StateSize, p = s.HeadDim;
        var dt5 = g.Reshape(dt, 0, s.Groups, r, 1, 1);
        var decay = g.Exp(g.Mul(dt5, a));
        var input = g.Mul(g.Reshape(b, 0, s.Groups, 1, n, 1), g.Mul(dt5, g.Reshape(x, 0, s.Groups, r, 1, p)));
        var next = g.Add(g.Mul(decay, g.Reshape(past, 0, s.Groups, r, n, p)), input);
        var y = g.MatMul(g.Reshape(c, 0, s.Groups, 1, 1, n), next);
        return [g.Reshape(y, 0, 1, s.Inner), g.Reshape(next, 0, s.Heads, n, p)];
    }

    /// <summary>
    /// T tokens in chunks of L = min(T, chunk_size), T padded to nc·L with zeros (dt = 0 adds nothing and does
    /// not decay). Layout [batch, groups, heads/group, nc, L, ...]. Per chunk, with a the log decays dt·A and
    /// cum their cumulative sum:
    ///   y_t  = Σ_{s≤t} exp(cum_t − cum_s)·(C_t·B_s)·dt_s·x_s        (within the chunk)
    ///        + exp(cum_t)·C_t·S_chunk                               (from the state entering it)
    ///   ΔS   = Σ_s exp(cum_L − cum_s)·B_s ⊗ (dt_s·x_s)              (what the chunk adds)
    /// and the entering states come from one matrix product over chunks with the same segment-sum decay.
    /// </summary>
    private static Value[] Chunked(GraphBuilder g, Mamba2Shape s, Value a, Value x, Value b, Value c, Value dt,
        Value past, Value newTokens)
    {
        int groups = s.Groups, r = s.Heads / s.Groups, n = s.StateSize, p = s.HeadDim;
        var one = g.Constant(1L);
        var length = g.Min(newTokens, g.Constant((long)s.ChunkSize));
        var chunks = g.Div(g.Sub(g.Add(newTokens, length), one), length);
        var padding = g.Sub(g.Mul(chunks, length), newTokens);
        var pads = g.Concat(0, g.Constant(0L, 0L, 0L, 0L), padding, g.Constant(0L));

        // [batch, T, ...] → [batch, nc, L, ...] → group-major layouts.
        Value Chunk(Value v, params long[] tail) => g.Reshape(g.Pad(v, pads), g.Concat(0, g.Constant(0L), chunks, length, g.Constant(tail)));
        var xs = g.Transpose(Chunk(x, groups, r, p), 0, 3, 4, 1, 2, 5);               // [b, G, r, nc, L, P]
        var bs = g.Unsqueeze(g.Transpose(Chunk(b, groups, n), 0, 3, 1, 2, 4), 2);     // [b, G, 1, nc, L, N]
        var cs = g.Unsqueeze(g.Transpose(Chunk(c, groups, n), 0, 3, 1, 2, 4), 2);     // [b, G, 1, nc, L, N]
        var dts = g.Transpose(Chunk(dt, groups, r), 0, 3, 4, 1, 2);                    // [b, G, r, nc, L]
        var logDecay = g.Mul(dts, a);
        var cumulative = g.CumSum(logDecay, -1);

        // Within chunks.
        var bt = g.Transpose(bs, 0, 1, 2, 3, 5, 4);                                    // [b, G, 1, nc, N, L]
        var weights = g.Mul(g.Mul(g.MatMul(cs, bt), SegmentDecay(g, logDecay, length)), g.Unsqueeze(dts, -2));
        var diagonal = g.MatMul(weights, xs);                                          // [b, G, r, nc, L, P]

        // What each chunk adds to the state.
        var last = g.Slice(cumulative, g.Constant(-1L), g.Constant(long.MaxValue), g.Constant(-1L)); // [b, G, r, nc, 1]
        var toEnd = g.Mul(g.Exp(g.Sub(last, cumulative)), dts);
        var added = g.MatMul(bt, g.Mul(xs, g.Unsqueeze(toEnd, -1)));                   // [b, G, r, nc, N, P]

        // States entering each chunk, and the final one: a segment-sum over [past, chunk 0, ..., chunk nc−1].
        var states = g.Concat(3, g.Reshape(past, 0, groups, r, 1, n, p), added);       // [b, G, r, nc+1, N, P]
        var totals = g.Pad(g.Squeeze(last, -1), g.Constant(0, 0, 0, 1, 0, 0, 0, 0));  // [b, G, r, nc+1]
        var chunkCount = g.Add(chunks, one);
        var flat = g.Reshape(states, 0, groups, r, -1, n * p);
        var propagated = g.MatMul(SegmentDecay(g, totals, chunkCount), flat);         // [b, G, r, nc+1, N·P]
        var entering = g.Reshape(g.Slice(propagated, g.Constant(0L), chunks, g.Constant(3L)), 0, groups, r, -1, n, p);
        var final = g.Reshape(g.Slice(propagated, chunks, chunkCount, g.Constant(3L)), 0, s.Heads, n, p);

        var offDiagonal = g.Mul(g.MatMul(cs, entering), g.Unsqueeze(g.Exp(cumulative), -1));
        var y = g.Transpose(g.Add(diagonal, offDiagonal), 0, 3, 4, 1, 2, 5);           // [b, nc, L, G, r, P]
        y = g.Reshape(y, 0, -1, s.Inner);
        y = g.Slice(y, g.Constant(0L), newTokens, g.Constant(1L));
        return [y, final];
    }

    /// <summary>
    /// exp(segsum(a)) over the last axis of length <paramref name="length"/>: [..., i, j] = exp(a_{j+1} + … + a_i)
    /// for j ≤ i and 0 above the diagonal. The sums are running sums of masked copies, not differences of
    /// cumulative sums, which keeps them exact where the decays are large (as HF's segment_sum).
    /// </summary>
    private static Value SegmentDecay(GraphBuilder g, Value a, Value length)
    {
        var positions = g.Range(g.ScalarInt64(0), g.Squeeze(length, 0), g.ScalarInt64(1));
        var rows = g.Unsqueeze(positions, 1);
        var columns = g.Unsqueeze(positions, 0);
        var repeated = g.Expand(g.Unsqueeze(a, -1), g.Concat(0, g.Constant(1L), length));   // [..., L, L]: a_i at [i, j]
        var strictlyBelow = g.Where(g.Less(columns, rows), repeated, g.Scalar(0f));
        var sums = g.CumSum(strictlyBelow, -2);
        return g.Exp(g.Where(g.LessOrEqual(columns, rows), sums, g.Scalar(float.NegativeInfinity)));
    }
}
