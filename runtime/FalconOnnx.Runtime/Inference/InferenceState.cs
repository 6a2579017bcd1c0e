using Microsoft.ML.OnnxRuntime;

namespace FalconOnnx.Runtime.Inference;

/// <summary>
/// The caches of one batch of sequences and everything a forward call binds: KV cache, conv and recurrent
/// states, input and logits buffers, all allocated once for <see cref="Capacity"/> tokens and bound to the
/// session with an <see cref="OrtIoBinding"/>. States are updated in place (past and present are one
/// buffer); with a GroupQueryAttention export the KV cache is too, so a decode step allocates nothing and
/// copies nothing but the new token's logits.
/// </summary>
public sealed class InferenceState : IDisposable
{
    private readonly FalconModel _model;
    private readonly InferenceSession _session;
    private readonly ManifestDimensions _d;
    private readonly OrtIoBinding _binding;
    private readonly RunOptions _runOptions = new();
    private readonly bool _sharedKv;
    private readonly bool _allLogits;
    private readonly int _maxChunk;

    private readonly StateMemory[] _keys;
    private readonly StateMemory[] _values;
    // Concat exports write present KV beside the past: a second buffer per layer, swapped after each call.
    private readonly StateMemory[]? _presentKeys;
    private readonly StateMemory[]? _presentValues;
    private readonly StateMemory[] _conv;
    private readonly StateMemory[] _recurrent;
    private readonly OrtValue[] _convViews;
    private readonly OrtValue[] _recurrentViews;
    // Device states cannot be zeroed from here: after a reset the next call reads host zeros as its past.
    private bool _zeroPastOnNextRun;
    private NativeBuffer<float>? _zeros;
    private readonly NativeBuffer<long> _inputIds;
    private readonly NativeBuffer<long> _positions;
    private readonly NativeBuffer<long> _mask;
    private readonly NativeBuffer<float> _logits;
    private readonly NativeBuffer<float> _lastLogits;
    private readonly long[] _maskRows;
    private readonly long[] _realTokens;
    private readonly List<OrtValue> _fixedViews = [];
    private OrtValue?[] _maskViews;
    private readonly OrtValue _decodeIds, _decodePositions, _decodeLogits;
    private int _boundTokens = -1;
    private readonly string[] _pastKeyNames, _pastValueNames, _presentKeyNames, _presentValueNames;

    internal InferenceState(FalconModel model, int batch, int capacity, int maxChunk)
    {
        _model = model;
        _session = model.Session;
        _d = model.Dimensions;
        Batch = batch;
        Capacity = capacity;
        _maxChunk = Math.Min(maxChunk, capacity);
        _sharedKv = model.Manifest.Graph.PastPresentShareBuffer;
        _allLogits = model.HasEveryPositionLogits;
        _binding = _session.CreateIoBinding();
        int layers = _d.NumLayers;
        long kvCount = (long)batch * _d.NumKeyValueHeads * capacity * _d.HeadDim;
        var kvType = StateMemory.ElementType(model.Manifest.Graph.KvDtype);
        _keys = Allocate(layers, kvCount, kvType);
        _values = Allocate(layers, kvCount, kvType);
        if (!_sharedKv)
        {
            _presentKeys = Allocate(layers, kvCount, kvType);
            _presentValues = Allocate(layers, kvCount, kvType);
        }
        _conv = Allocate(layers, (long)batch * _d.ConvDim * (_d.ConvKernel - 1));
        _recurrent = Allocate(layers, (long)batch * _d.MambaHeads * _d.MambaStateSize * _d.MambaHeadDim);
        _convViews = new OrtValue[layers];
        _recurrentViews = new OrtValue[layers];
        _zeroPastOnNextRun = _conv[0] is DeviceStateMemory;
        _inputIds = new NativeBuffer<long>((long)batch * capacity);
        _positions = new NativeBuffer<long>((long)batch * capacity);
        _mask = new NativeBuffer<long>((long)batch * capacity);
        _logits = new NativeBuffer<float>((long)batch * _d.VocabSize);
        _lastLogits = new NativeBuffer<float>((long)batch * _d.VocabSize);
        _maskRows = batch > 1 ? new long[(long)batch * capacity] : [];
        _realTokens = new long[batch];
        _maskViews = new OrtValue?[capacity + 1];
        _pastKeyNames = Names("past_key_values.{0}.key");
        _pastValueNames = Names("past_key_values.{0}.value");
        _presentKeyNames = Names("present.{0}.key");
        _presentValueNames = Names("present.{0}.value");

        _decodeIds = Fixed(_inputIds.View(batch, 1));
        _decodePositions = Fixed(_positions.View(batch, 1));
        _decodeLogits = Fixed(_logits.View(batch, 1, _d.VocabSize));
        for (int i = 0; i < layers; i++)
        {
            var conv = _convViews[i] = Fixed(_conv[i].View(ConvShape));
            var recurrent = _recurrentViews[i] = Fixed(_recurrent[i].View(RecurrentShape));
            _binding.BindInput($"past_key_values.{i}.conv_state", conv);
            _binding.BindOutput($"present.{i}.conv_state", conv);
            _binding.BindInput($"past_key_values.{i}.recurrent_state", recurrent);
            _binding.BindOutput($"present.{i}.recurrent_state", recurrent);
            if (_sharedKv)
            {
                var key = Fixed(_keys[i].View(batch, _d.NumKeyValueHeads, capacity, _d.HeadDim));
                var value = Fixed(_values[i].View(batch, _d.NumKeyValueHeads, capacity, _d.HeadDim));
                _binding.BindInput(_pastKeyNames[i], key);
                _binding.BindOutput(_presentKeyNames[i], key);
                _binding.BindInput(_pastValueNames[i], value);
                _binding.BindOutput(_presentValueNames[i], value);
            }
        }
    }

    private long[] ConvShape => [Batch, _d.ConvDim, _d.ConvKernel - 1];

    private long[] RecurrentShape => [Batch, _d.MambaHeads, _d.MambaStateSize, _d.MambaHeadDim];

    private string[] Names(string format) => Enumerable.Range(0, _d.NumLayers).Select(i => string.Format(format, i)).ToArray();

    private StateMemory[] Allocate(int layers, long count, Microsoft.ML.OnnxRuntime.Tensors.TensorElementType type = Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float) =>
        Enumerable.Range(0, layers).Select(_ => StateMemory.Create(_model, count, type)).ToArray();

    private OrtValue Fixed(OrtValue value)
    {
        _fixedViews.Add(value);
        return value;
    }

    public int Batch { get; }

    /// <summary>Tokens each sequence can hold (prompt, padding and generated tokens).</summary>
    public int Capacity { get; }

    /// <summary>Positions filled so far (the same for every row; left padding counts).</summary>
    public int Length { get; private set; }

    /// <summary>Forward calls made through this state so far (prefill chunks and decode steps; not cleared by <see cref="Reset"/>).</summary>
    public long Calls { get; private set; }

    /// <summary>Tokens per row that a prefill call carries at most (longer prompts are fed in chunks).</summary>
    public int MaxChunk => _maxChunk;

    /// <summary>True when the export can continue a batch of several rows with several tokens per call.</summary>
    public bool CanContinueBatchWithChunks => !_sharedKv || Batch == 1;

    public FalconModel Model => _model;

    /// <summary>Real (non-padding) tokens of each row so far.</summary>
    public ReadOnlySpan<long> RealTokens => _realTokens;

    /// <summary>
    /// Prepares the attention-mask views up to <paramref name="length"/> positions, so that the steps that reach
    /// them allocate nothing. Called before a decode loop for the whole planned range.
    /// </summary>
    public void Reserve(int length)
    {
        for (int total = Length + 1; total <= Math.Min(length, Capacity); total++)
            _maskViews[total] ??= _mask.View(Batch, total);
    }

    /// <summary>
    /// Runs <paramref name="tokensPerRow"/> new tokens of every row (<paramref name="ids"/> is [batch, tokens],
    /// <paramref name="real"/> 1 for a token and 0 for left padding) and returns each row's logits at its last
    /// position, [batch, vocab]. The span is valid until the next call.
    /// </summary>
    public ReadOnlySpan<float> Forward(ReadOnlySpan<long> ids, ReadOnlySpan<long> real, int tokensPerRow)
        => Run(ids, real, tokensPerRow, everyPosition: false);

    /// <summary>
    /// Like <see cref="Forward"/> but returns the logits of every new position, [batch, tokens, vocab] (for
    /// evaluation by teacher forcing). Needs an export with logits for all positions.
    /// </summary>
    public ReadOnlySpan<float> ForwardEveryPosition(ReadOnlySpan<long> ids, ReadOnlySpan<long> real, int tokensPerRow)
    {
        _model.RequireEveryPositionLogits();
        return Run(ids, real, tokensPerRow, everyPosition: true);
    }

    private ReadOnlySpan<float> Run(ReadOnlySpan<long> ids, ReadOnlySpan<long> real, int tokensPerRow, bool everyPosition)
    {
        int t = tokensPerRow;
        if (t < 1) throw new ArgumentOutOfRangeException(nameof(tokensPerRow), $"{t} tokens per row");
        if (ids.Length != Batch * t || real.Length != Batch * t) throw new ArgumentException($"expected {Batch} x {t} ids and mask values");
        if (Length + t > Capacity)
            throw new FalconModelException($"the sequence would hold {Length + t} tokens, beyond this state's capacity of {Capacity}");
        if (_sharedKv && Batch > 1 && t > 1 && Length > 0)
            throw new FalconModelException($"this export (attention {_model.Manifest.Graph.Attention}) cannot continue a batch of {Batch} sequences with {t} tokens per call; prefill a batch in one call, or export with --attention concat");

        int total = Length + t;
        ids.CopyTo(_inputIds.Span[..(Batch * t)]);
        var positions = _positions.Span;
        for (int b = 0; b < Batch; b++)
            for (int i = 0; i < t; i++)
                // Positions count real tokens (cumsum(mask) − 1); a pad's position is never used.
                positions[b * t + i] = real[b * t + i] != 0 ? _realTokens[b]++ : 1;
        WriteMask(real, t, total);

        if (t != _boundTokens || t > 1)
        {
            bool decode = t == 1;
            _binding.BindInput("input_ids", decode ? _decodeIds : Temporary(_inputIds.View(Batch, t)));
            _binding.BindInput("position_ids", decode ? _decodePositions : Temporary(_positions.View(Batch, t)));
            _binding.BindOutput("logits", decode || !_allLogits ? _decodeLogits : Temporary(PrefillLogits(t)));
            _boundTokens = t;
        }
        _binding.BindInput("attention_mask", _maskViews[total] ??= _mask.View(Batch, total));
        if (!_sharedKv) BindConcatKv(total);
        bool zeroPast = _zeroPastOnNextRun;
        if (zeroPast) BindPastStates(fromZeros: true);

        _session.RunWithBinding(_runOptions, _binding);
        Calls++;
        if (zeroPast)
        {
            BindPastStates(fromZeros: false);
            _zeroPastOnNextRun = false;
        }
        DisposeTemporaries();
        Length = total;
        if (!_sharedKv) SwapKv();

        if (t == 1 || !_allLogits) return _logits.Slice(0, Batch * _d.VocabSize);
        int vocab = _d.VocabSize;
        if (everyPosition)
        {
            // Kept until the next call, which replaces it.
            _everyPosition?.Dispose();
            _everyPosition = _prefillLogits;
            _prefillLogits = null;
            return _everyPosition!.Slice(0, Batch * t * vocab);
        }
        var last = _lastLogits.Span;
        for (int b = 0; b < Batch; b++)
            _prefillLogits!.Slice(((long)b * t + t - 1) * vocab, vocab).CopyTo(last.Slice(b * vocab, vocab));
        _prefillLogits!.Dispose();
        _prefillLogits = null;
        return last;
    }

    private NativeBuffer<float>? _prefillLogits;
    private NativeBuffer<float>? _everyPosition;

    /// <summary>An export with logits for every position needs [batch, t, vocab] for a prefill call, only for that call.</summary>
    private OrtValue PrefillLogits(int t)
    {
        _prefillLogits = new NativeBuffer<float>((long)Batch * t * _d.VocabSize);
        return _prefillLogits.View(Batch, t, _d.VocabSize);
    }

    /// <summary>attention_mask is [batch, total] with rows packed at the current length.</summary>
    private void WriteMask(ReadOnlySpan<long> real, int t, int total)
    {
        var mask = _mask.Span;
        if (Batch == 1)
        {
            real.CopyTo(mask.Slice(Length, t));
            return;
        }
        for (int b = 0; b < Batch; b++)
        {
            real.Slice(b * t, t).CopyTo(_maskRows.AsSpan(b * Capacity + Length, t));
            _maskRows.AsSpan(b * Capacity, total).CopyTo(mask.Slice(b * total, total));
        }
    }

    /// <summary>Binds the past conv and recurrent inputs to host zeros (a fresh device state) or to the states themselves.</summary>
    private void BindPastStates(bool fromZeros)
    {
        long largest = Math.Max(_conv[0].Count, _recurrent[0].Count);
        if (fromZeros) _zeros ??= new NativeBuffer<float>(largest);
        for (int i = 0; i < _d.NumLayers; i++)
        {
            _binding.BindInput($"past_key_values.{i}.conv_state", fromZeros ? Temporary(_zeros!.View(ConvShape)) : _convViews[i]);
            _binding.BindInput($"past_key_values.{i}.recurrent_state", fromZeros ? Temporary(_zeros!.View(RecurrentShape)) : _recurrentViews[i]);
        }
    }

    private readonly List<OrtValue> _temporaries = [];

    private OrtValue Temporary(OrtValue value)
    {
        _temporaries.Add(value);
        return value;
    }

    private void DisposeTemporaries()
    {
        if (_temporaries.Count == 0) return;
        // The binding holds its own reference to bound values; ours can go once the run is over.
        foreach (var value in _temporaries) value.Dispose();
        _temporaries.Clear();
        _boundTokens = -1;
    }

    private void BindConcatKv(int total)
    {
        for (int i = 0; i < _d.NumLayers; i++)
        {
            _binding.BindInput(_pastKeyNames[i], Temporary(_keys[i].View(Batch, _d.NumKeyValueHeads, Length, _d.HeadDim)));
            _binding.BindInput(_pastValueNames[i], Temporary(_values[i].View(Batch, _d.NumKeyValueHeads, Length, _d.HeadDim)));
            _binding.BindOutput(_presentKeyNames[i], Temporary(_presentKeys![i].View(Batch, _d.NumKeyValueHeads, total, _d.HeadDim)));
            _binding.BindOutput(_presentValueNames[i], Temporary(_presentValues![i].View(Batch, _d.NumKeyValueHeads, total, _d.HeadDim)));
        }
    }

    private void SwapKv()
    {
        for (int i = 0; i < _d.NumLayers; i++)
        {
            (_keys[i], _presentKeys![i]) = (_presentKeys[i], _keys[i]);
            (_values[i], _presentValues![i]) = (_presentValues[i], _values[i]);
        }
    }

    /// <summary>Forgets every sequence: length 0, zero states. The buffers stay allocated.</summary>
    public void Reset()
    {
        Length = 0;
        Array.Clear(_realTokens);
        bool cleared = true;
        foreach (var buffer in _conv.Concat(_recurrent)) cleared &= buffer.TryClear();
        _zeroPastOnNextRun = !cleared;
        _mask.Clear();
        Array.Clear(_maskRows);
    }

    public void Dispose()
    {
        DisposeTemporaries();
        foreach (var view in _maskViews) view?.Dispose();
        foreach (var view in _fixedViews) view.Dispose();
        _binding.Dispose();
        _runOptions.Dispose();
        foreach (var buffer in _keys.Concat(_values).Concat(_presentKeys ?? []).Concat(_presentValues ?? []).Concat(_conv).Concat(_recurrent)) buffer.Dispose();
        _inputIds.Dispose();
        _positions.Dispose();
        _mask.Dispose();
        _logits.Dispose();
        _lastLogits.Dispose();
        _prefillLogits?.Dispose();
        _everyPosition?.Dispose();
        _zeros?.Dispose();
    }

    /// <summary>
    /// Copies everything that defines the sequences so far: KV up to the current length, conv and recurrent
    /// states, masks and positions. Restoring it continues exactly from here.
    /// </summary>
    public StateSnapshot Capture()
    {
        int kvHeads = _d.NumKeyValueHeads, hd = _d.HeadDim * _keys[0].ElementSize, stride = _sharedKv ? Capacity : Length;
        var keys = new byte[_d.NumLayers][];
        var values = new byte[_d.NumLayers][];
        for (int i = 0; i < _d.NumLayers; i++)
        {
            keys[i] = CopyKv(_keys[i], stride);
            values[i] = CopyKv(_values[i], stride);
        }
        return new StateSnapshot(Batch, Length, keys, values,
            _conv.Select(ReadStates).ToArray(), _recurrent.Select(ReadStates).ToArray(),
            _mask.Span[..(Batch * Length)].ToArray(), _maskRows.ToArray(), _realTokens.ToArray(), Capacity);

        byte[] CopyKv(StateMemory buffer, int rowStride)
        {
            var all = new byte[buffer.Bytes];
            buffer.CopyTo(all);
            var copy = new byte[(long)Batch * kvHeads * Length * hd];
            for (int row = 0; row < Batch * kvHeads; row++)
                all.AsSpan(row * rowStride * hd, Length * hd).CopyTo(copy.AsSpan(row * Length * hd, Length * hd));
            return copy;
        }
    }

    /// <summary>A state's contents; zeros when a fresh device state has not been written yet.</summary>
    private byte[] ReadStates(StateMemory buffer)
    {
        var copy = new byte[buffer.Bytes];
        if (!_zeroPastOnNextRun) buffer.CopyTo(copy);
        return copy;
    }

    /// <summary>Puts a <see cref="Capture"/>d state back (from this state or another of the same model and batch).</summary>
    public void Restore(StateSnapshot snapshot)
    {
        if (snapshot.Batch != Batch) throw new FalconModelException($"the snapshot holds {snapshot.Batch} sequences, this state {Batch}");
        if (snapshot.Length > Capacity) throw new FalconModelException($"the snapshot holds {snapshot.Length} tokens, beyond this state's capacity of {Capacity}");
        int kvHeads = _d.NumKeyValueHeads, hd = _d.HeadDim * _keys[0].ElementSize, length = snapshot.Length, stride = _sharedKv ? Capacity : length;
        var all = new byte[_keys[0].Bytes];
        for (int i = 0; i < _d.NumLayers; i++)
        {
            WriteKv(_keys[i], snapshot.Keys[i]);
            WriteKv(_values[i], snapshot.Values[i]);
            _conv[i].CopyFrom(snapshot.Conv[i]);
            _recurrent[i].CopyFrom(snapshot.Recurrent[i]);
        }
        _zeroPastOnNextRun = false;

        void WriteKv(StateMemory buffer, byte[] rows)
        {
            for (int row = 0; row < Batch * kvHeads; row++)
                rows.AsSpan(row * length * hd, length * hd).CopyTo(all.AsSpan(row * stride * hd, length * hd));
            buffer.CopyFrom(all);
        }
        _mask.Clear();
        snapshot.Mask.CopyTo(_mask.Span);
        Array.Clear(_maskRows);
        for (int b = 0; b < Batch && Batch > 1; b++)
            snapshot.MaskRows.AsSpan(b * snapshot.Capacity, length).CopyTo(_maskRows.AsSpan(b * Capacity, length));
        snapshot.RealTokens.CopyTo(_realTokens, 0);
        Length = length;
    }
}

/// <summary>
/// A copy of an <see cref="InferenceState"/>'s sequences (see <see cref="InferenceState.Capture"/>): the raw bytes
/// of the KV rows up to the length (in the export's KV type) and of the float32 states.
/// </summary>
public sealed record StateSnapshot(int Batch, int Length, byte[][] Keys, byte[][] Values, byte[][] Conv, byte[][] Recurrent,
    long[] Mask, long[] MaskRows, long[] RealTokens, int Capacity)
{
    /// <summary>Bytes held by the copy.</summary>
    public long Bytes => Keys.Sum(k => (long)k.Length) + Values.Sum(v => (long)v.Length) + Conv.Sum(c => (long)c.Length) + Recurrent.Sum(r => (long)r.Length);
}
