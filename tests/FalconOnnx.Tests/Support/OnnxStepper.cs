using FalconOnnx.Runtime;
using Microsoft.ML.OnnxRuntime;

namespace FalconOnnx.Tests.Support;

/// <summary>
/// Drives an exported folder through plain ONNX Runtime, one call at a time, with full control of the inputs:
/// the reference harness of the export tests. Conv and recurrent states are bound either to separate
/// present buffers or to the past buffers themselves (in place), as GenAI and the runtime do.
/// </summary>
public sealed class OnnxStepper : IDisposable
{
    private readonly InferenceSession _session;
    private readonly bool _inPlace;
    private readonly int _maxLength;

    private bool SharedKv => _inPlace && Manifest.Graph.PastPresentShareBuffer;

    /// <param name="inPlaceStates">Bind every present output to its past buffer: conv and recurrent states always,
    /// and KV too when the export shares one max-length KV buffer (<paramref name="maxLength"/> positions).</param>
    public OnnxStepper(string folder, bool inPlaceStates = false, int maxLength = 64, GraphOptimizationLevel optimization = GraphOptimizationLevel.ORT_ENABLE_ALL)
    {
        _maxLength = maxLength;
        Manifest = ModelManifest.Load(folder);
        using var options = new SessionOptions { GraphOptimizationLevel = optimization, IntraOpNumThreads = 2 };
        if (Manifest.CustomOpsLibrary is { } library) options.RegisterCustomOpLibrary(Path.GetFullPath(Path.Combine(folder, library)));
        _session = new InferenceSession(Path.Combine(folder, Manifest.Graph.File), options);
        _inPlace = inPlaceStates;
    }

    public ModelManifest Manifest { get; }

    public ManifestDimensions Dims => Manifest.Dimensions;

    public sealed class State(int batch, int layers)
    {
        public int Batch { get; } = batch;
        public int PastLength { get; set; }
        public float[][] Keys { get; } = new float[layers][];
        public float[][] Values { get; } = new float[layers][];
        public float[][] Conv { get; } = new float[layers][];
        public float[][] Recurrent { get; } = new float[layers][];
        public List<long> Mask { get; } = [];
    }

    public State NewState(int batch)
    {
        var d = Dims;
        var state = new State(batch, d.NumLayers);
        for (int i = 0; i < d.NumLayers; i++)
        {
            state.Keys[i] = SharedKv ? new float[batch * d.NumKeyValueHeads * _maxLength * d.HeadDim] : [];
            state.Values[i] = SharedKv ? new float[state.Keys[i].Length] : [];
            state.Conv[i] = new float[batch * d.ConvDim * (d.ConvKernel - 1)];
            state.Recurrent[i] = new float[batch * d.MambaHeads * d.MambaStateSize * d.MambaHeadDim];
        }
        return state;
    }

    /// <summary>Runs new tokens [batch, T] with the full mask [batch, past+T]; returns logits [batch, T, vocab].</summary>
    public float[] Run(State state, long[] ids, long[] mask, long[] positions)
    {
        var d = Dims;
        int batch = state.Batch, tokens = ids.Length / batch, total = mask.Length / batch;
        if (total != state.PastLength + tokens) throw new ArgumentException($"mask covers {total} positions, expected {state.PastLength + tokens}");
        using var binding = _session.CreateIoBinding();
        var owned = new List<OrtValue>();
        OrtValue Tensor<T>(T[] data, params long[] shape) where T : unmanaged
        {
            var value = OrtValue.CreateTensorValueFromMemory(data, shape);
            owned.Add(value);
            return value;
        }
        binding.BindInput("input_ids", Tensor(ids, batch, tokens));
        binding.BindInput("attention_mask", Tensor(mask, batch, total));
        binding.BindInput("position_ids", Tensor(positions, batch, tokens));
        var logits = new float[batch * tokens * d.VocabSize];
        binding.BindOutput("logits", Tensor(logits, batch, tokens, d.VocabSize));
        var presentKeys = new float[d.NumLayers][];
        var presentValues = new float[d.NumLayers][];
        var presentConv = new float[d.NumLayers][];
        var presentRecurrent = new float[d.NumLayers][];
        long[] kvPast = [batch, d.NumKeyValueHeads, SharedKv ? _maxLength : state.PastLength, d.HeadDim];
        long[] kvPresent = [batch, d.NumKeyValueHeads, total, d.HeadDim];
        long[] convShape = [batch, d.ConvDim, d.ConvKernel - 1];
        long[] recurrentShape = [batch, d.MambaHeads, d.MambaStateSize, d.MambaHeadDim];
        for (int i = 0; i < d.NumLayers; i++)
        {
            var pastKey = Tensor(state.Keys[i], kvPast);
            var pastValue = Tensor(state.Values[i], kvPast);
            binding.BindInput($"past_key_values.{i}.key", pastKey);
            binding.BindInput($"past_key_values.{i}.value", pastValue);
            if (SharedKv)
            {
                presentKeys[i] = state.Keys[i];
                presentValues[i] = state.Values[i];
                binding.BindOutput($"present.{i}.key", pastKey);
                binding.BindOutput($"present.{i}.value", pastValue);
            }
            else
            {
                presentKeys[i] = new float[kvPresent.Aggregate(1L, (a, b) => a * b)];
                presentValues[i] = new float[presentKeys[i].Length];
                binding.BindOutput($"present.{i}.key", Tensor(presentKeys[i], kvPresent));
                binding.BindOutput($"present.{i}.value", Tensor(presentValues[i], kvPresent));
            }
            var conv = Tensor(state.Conv[i], convShape);
            var recurrent = Tensor(state.Recurrent[i], recurrentShape);
            binding.BindInput($"past_key_values.{i}.conv_state", conv);
            binding.BindInput($"past_key_values.{i}.recurrent_state", recurrent);
            if (_inPlace)
            {
                binding.BindOutput($"present.{i}.conv_state", conv);
                binding.BindOutput($"present.{i}.recurrent_state", recurrent);
            }
            else
            {
                presentConv[i] = new float[state.Conv[i].Length];
                presentRecurrent[i] = new float[state.Recurrent[i].Length];
                binding.BindOutput($"present.{i}.conv_state", Tensor(presentConv[i], convShape));
                binding.BindOutput($"present.{i}.recurrent_state", Tensor(presentRecurrent[i], recurrentShape));
            }
        }
        using (var runOptions = new RunOptions()) _session.RunWithBinding(runOptions, binding);
        foreach (var value in owned) value.Dispose();
        for (int i = 0; i < d.NumLayers; i++)
        {
            state.Keys[i] = presentKeys[i];
            state.Values[i] = presentValues[i];
            if (!_inPlace)
            {
                state.Conv[i] = presentConv[i];
                state.Recurrent[i] = presentRecurrent[i];
            }
        }
        state.PastLength = total;
        return logits;
    }

    /// <summary>Runs a single sequence [T] from the current state, extending the mask with ones.</summary>
    public float[] RunSequence(State state, ReadOnlySpan<long> ids)
    {
        var positions = new long[ids.Length];
        for (int i = 0; i < ids.Length; i++) positions[i] = state.PastLength + i;
        var mask = Enumerable.Repeat(1L, state.PastLength + ids.Length).ToArray();
        return Run(state, ids.ToArray(), mask, positions);
    }

    public void Dispose() => _session.Dispose();
}
