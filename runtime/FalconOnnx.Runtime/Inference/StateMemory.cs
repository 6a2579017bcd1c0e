using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace FalconOnnx.Runtime.Inference;

/// <summary>
/// Memory for a cache or state tensor, where the execution provider computes: host memory for the CPU, device
/// memory for CUDA (so states never cross the bus between steps). Views give it any shape; its element type is
/// float32 for states and the export's KV type (float32, float16 or bfloat16) for the KV cache.
/// </summary>
internal abstract class StateMemory : IDisposable
{
    protected StateMemory(long count, TensorElementType type)
    {
        Count = count;
        Type = type;
        ElementSize = type is TensorElementType.Float16 or TensorElementType.BFloat16 ? 2 : 4;
    }

    public long Count { get; }

    public TensorElementType Type { get; }

    public int ElementSize { get; }

    public long Bytes => Count * ElementSize;

    public abstract OrtValue View(params long[] shape);

    /// <summary>Copies the whole buffer to the host.</summary>
    public abstract void CopyTo(byte[] destination);

    /// <summary>Copies the whole buffer from the host.</summary>
    public abstract void CopyFrom(byte[] source);

    /// <summary>Zeroes the buffer, when the memory is addressable here (host); false when it is not.</summary>
    public abstract bool TryClear();

    public abstract void Dispose();

    public static StateMemory Create(FalconModel model, long count, TensorElementType type = TensorElementType.Float) =>
        model.Options.ExecutionProvider == ExecutionProvider.Cuda ? new DeviceStateMemory(model, count, type) : new HostStateMemory(count, type);

    /// <summary>The ONNX Runtime element type of a manifest dtype name.</summary>
    public static TensorElementType ElementType(string dtype) => dtype switch
    {
        "float32" => TensorElementType.Float,
        "float16" => TensorElementType.Float16,
        "bfloat16" => TensorElementType.BFloat16,
        _ => throw new FalconModelException($"KV cache dtype '{dtype}' is not supported (float32, float16 or bfloat16)"),
    };
}

internal sealed class HostStateMemory : StateMemory
{
    private readonly NativeBuffer<byte> _buffer;

    public HostStateMemory(long count, TensorElementType type) : base(count, type) => _buffer = new NativeBuffer<byte>(count * ElementSize);

    public override OrtValue View(params long[] shape)
    {
        long count = 1;
        foreach (long d in shape) count *= d;
        if (count > Count) throw new ArgumentOutOfRangeException(nameof(shape), $"view of {count} elements over a buffer of {Count}");
        return OrtValue.CreateTensorValueWithData(OrtMemoryInfo.DefaultInstance, Type, shape, _buffer.Pointer, count * ElementSize);
    }

    public override void CopyTo(byte[] destination) => _buffer.Span.CopyTo(destination);

    public override void CopyFrom(byte[] source) => source.AsSpan(0, (int)Bytes).CopyTo(_buffer.Span);

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

    public DeviceStateMemory(FalconModel model, long count, TensorElementType type) : base(count, type)
    {
        _info = new OrtMemoryInfo(OrtMemoryInfo.allocatorCUDA, OrtAllocatorType.DeviceAllocator, model.Options.DeviceId, OrtMemType.Default);
        using var allocator = new OrtAllocator(model.Session, _info);
        _allocation = OrtValue.CreateAllocatedTensorValue(allocator, type, [count]);
        // The address of device memory, taken without reading it.
        _pointer = (IntPtr)Unsafe.AsPointer(ref MemoryMarshal.GetReference(_allocation.GetTensorMutableRawData()));
    }

    public override OrtValue View(params long[] shape)
    {
        long count = 1;
        foreach (long d in shape) count *= d;
        return OrtValue.CreateTensorValueWithData(_info, Type, shape, _pointer, count * ElementSize);
    }

    public override void CopyTo(byte[] destination)
    {
        using var source = View(Count);
        using var host = OrtValue.CreateTensorValueWithData(OrtMemoryInfo.DefaultInstance, Type, [Count], Pin(destination, out var handle), Bytes);
        try { OrtEnv.Instance().CopyTensors([source], [host], null); }
        finally { handle.Free(); }
    }

    public override void CopyFrom(byte[] source)
    {
        using var host = OrtValue.CreateTensorValueWithData(OrtMemoryInfo.DefaultInstance, Type, [Count], Pin(source, out var handle), Bytes);
        using var destination = View(Count);
        try { OrtEnv.Instance().CopyTensors([host], [destination], null); }
        finally { handle.Free(); }
    }

    private static IntPtr Pin(byte[] array, out GCHandle handle)
    {
        handle = GCHandle.Alloc(array, GCHandleType.Pinned);
        return handle.AddrOfPinnedObject();
    }

    public override bool TryClear() => false;

    public override void Dispose()
    {
        _allocation.Dispose();
        _info.Dispose();
    }
}
