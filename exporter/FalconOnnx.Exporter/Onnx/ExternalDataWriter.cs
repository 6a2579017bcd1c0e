using System.Buffers;
using System.Collections.Concurrent;
using Microsoft.Win32.SafeHandles;

namespace FalconOnnx.Onnx;

/// <summary>
/// Writes the external-data file on a thread of its own: a tensor's blocks are copied into a queue of at most
/// <see cref="QueuedBlocks"/> buffers and written in order, so the next block is read, converted and transposed
/// while the last one is written (and while the kernel throttles the writer to the disk's pace). Memory stays
/// bounded by the queue. A failed write is rethrown to the producer at its next block.
/// </summary>
internal sealed class ExternalDataWriter : IDisposable
{
    /// <summary>Blocks waiting for the writer thread, besides the one it writes.</summary>
    private const int QueuedBlocks = 2;

    private readonly SafeFileHandle _file;
    private readonly BlockingCollection<Block> _queue = new(QueuedBlocks);
    private readonly ArrayPool<byte> _buffers = ArrayPool<byte>.Create(maxArrayLength: 256 << 20, maxArraysPerBucket: QueuedBlocks + 2);
    private readonly Thread _thread;
    private readonly CancellationToken _cancellationToken;
    private volatile Exception? _failure;
    private volatile bool _abandoned;

    private readonly record struct Block(long Offset, byte[] Buffer, int Length, int RowBytes, long Stride);

    public ExternalDataWriter(SafeFileHandle file, CancellationToken cancellationToken)
    {
        _file = file;
        _cancellationToken = cancellationToken;
        _thread = new Thread(Run) { IsBackground = true, Name = "external data writer" };
        _thread.Start();
    }

    /// <summary>A sink for the tensor stored at <paramref name="tensorOffset"/>; <paramref name="written"/> gets each block's byte count once queued.</summary>
    public ITensorSink At(long tensorOffset, Action<long>? written = null) => new Sink(this, tensorOffset, written);

    /// <summary>Waits for every queued block to be written and rethrows a write failure.</summary>
    public void Complete()
    {
        _queue.CompleteAdding();
        _thread.Join();
        if (_failure is { } failure) throw new IOException($"writing the external data failed: {failure.Message}", failure);
    }

    private void Enqueue(long offset, ReadOnlySpan<byte> bytes, int rowBytes, long stride)
    {
        _cancellationToken.ThrowIfCancellationRequested();
        if (_failure is { } failure) throw new IOException($"writing the external data failed: {failure.Message}", failure);
        byte[] buffer = _buffers.Rent(bytes.Length);
        bytes.CopyTo(buffer);
        _queue.Add(new Block(offset, buffer, bytes.Length, rowBytes, stride), _cancellationToken);
    }

    private void Run()
    {
        foreach (var block in _queue.GetConsumingEnumerable())
        {
            try
            {
                if (_failure is null && !_abandoned) Write(block);
            }
            catch (Exception e)
            {
                _failure = e;
            }
            finally
            {
                _buffers.Return(block.Buffer);
            }
        }
    }

    private void Write(Block block)
    {
        var bytes = block.Buffer.AsSpan(0, block.Length);
        if (block.RowBytes == block.Length)
        {
            RandomAccess.Write(_file, bytes, block.Offset);
            return;
        }
        for (int i = 0; (long)i * block.RowBytes < block.Length; i++)
            RandomAccess.Write(_file, bytes.Slice(i * block.RowBytes, block.RowBytes), block.Offset + i * block.Stride);
    }

    /// <summary>Stops the writer; blocks still queued are dropped (the caller is failing or cancelled).</summary>
    public void Dispose()
    {
        if (!_queue.IsAddingCompleted)
        {
            _abandoned = true;
            _queue.CompleteAdding();
        }
        _thread.Join();
        _queue.Dispose();
    }

    private sealed class Sink(ExternalDataWriter writer, long tensorOffset, Action<long>? written) : ITensorSink
    {
        public void Write(long offset, ReadOnlySpan<byte> bytes) => WriteRows(offset, bytes, bytes.Length, bytes.Length);

        public void WriteRows(long offset, ReadOnlySpan<byte> bytes, int rowBytes, long stride)
        {
            if (bytes.IsEmpty) return;
            writer.Enqueue(tensorOffset + offset, bytes, rowBytes, stride);
            written?.Invoke(bytes.Length);
        }
    }
}
