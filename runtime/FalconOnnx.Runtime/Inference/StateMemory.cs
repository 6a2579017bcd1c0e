using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace FalconOnnx.Runtime.Inference;

/// <summary>
/// Float32 memory for a cache or state tensor, where the execution provider computes: host memory for the CPU,
/// device memory for CUDA (so states never cross the bus between steps). Views give it any shape.
/// </summary>
internal abstract class StateMemory : IDisposable
{
    protected StateMemory(long count) => Count = count;

    public long Count { get; }

    public abstract OrtValue View(params long[] shape);

    /// <summary>Copies the whole buffer to the host.</summary>
    public abstract void CopyTo(float[] destination);

    /// <summary>Copies the whole buffer from the host.</summary>
    public abstract void CopyFrom(float[] source);

    /// <summary>Zeroes the buffer, when the memory is addressable here (host); false when it is not.</summary>
    public abstract bool TryClear();

    public abstract void Dispose();

    public static StateMemory Create(FalconModel model, long count) =>
        model.Options.ExecutionProvider == ExecutionProvider.Cuda ? new DeviceStateMemory(model, count) : new HostStateMemory(count);
}

internal sealed class HostStateMemory(long count) : StateMemory(count)
{
    private readonly NativeBuffer<float> _buffer = new(count);

    public Span<float> Span => _buffer.Span;

    public override OrtValue View(params long[] shape) => _buffer.View(shape);

    public override void CopyTo(float[] destination) => _buffer.Span.CopyTo(destination);

    public override void CopyFrom(float[] source) => source.AsSpan(0, (int)Count).CopyTo(_buffer.Span);

    public override bool TryClear()
    {
        _buffer.Clear();
        return true;
    }

    public override void Dispose() => _buffer.Dispose();
}

/// <summary>
/// CUDA device memory from the session's allocator. It cannot be zeroed from here; a fresh state is zeroed by
/// binding host zeros as the past input once (see <see cref="InferenceState"/>).
/// </summary>
internal sealed unsafe class DeviceStateMemory : StateMemory
{
    private readonly OrtValue _allocation;
    private readonly OrtMemoryInfo _info;
    private readonly IntPtr _pointer;

    public DeviceStateMemory(FalconModel model, long count) : base(count)
    {
        _info = new OrtMemoryInfo(OrtMemoryInfo.allocatorCUDA, OrtAllocatorType.DeviceAllocator, model.Options.DeviceId, OrtMemType.Default);
        using var allocator = new OrtAllocator(model.Session, _info);
        _allocation = OrtValue.CreateAllocatedTensorValue(allocator, TensorElementType.Float, [count]);
        // The address of device memory, taken without reading it.
        _pointer = (IntPtr)Unsafe.AsPointer(ref MemoryMarshal.GetReference(_allocation.GetTensorMutableRawData()));
    }

    public override OrtValue View(params long[] shape)
    {
        long count = 1;
        foreach (long d in shape) count *= d;
        return OrtValue.CreateTensorValueWithData(_info, TensorElementType.Float, shape, _pointer, count * sizeof(float));
    }

    public override void CopyTo(float[] destination)
    {
        using var source = View(Count);
        using var host = OrtValue.CreateTensorValueFromMemory(destination, [Count]);
        OrtEnv.Instance().CopyTensors([source], [host], null);
    }

    public override void CopyFrom(float[] source)
    {
        using var host = OrtValue.CreateTensorValueFromMemory(source, [Count]);
        using var destination = View(Count);
        OrtEnv.Instance().CopyTensors([host], [destination], null);
    }

    public override bool TryClear() => false;

    public override void Dispose()
    {
        _allocation.Dispose();
        _info.Dispose();
    }
}
