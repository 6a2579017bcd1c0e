using System.Text;

namespace FalconOnnx.Runtime.Text;

/// <summary>
/// Turns generated tokens into text as they come. A token may end in the middle of a UTF-8 character (byte-level
/// BPE splits characters across tokens); those bytes are held back until the character is complete, so the
/// stream never shows a replacement character that the full decode would not.
/// </summary>
public sealed class StreamingDecoder(FalconTokenizer tokenizer, bool skipSpecialTokens = true)
{
    private readonly byte[] _pending = new byte[8];
    private int _pendingCount;
    private readonly char[] _chars = new char[64];

    /// <summary>The text that <paramref name="id"/> completes (possibly empty).</summary>
    public string Append(int id)
    {
        var bytes = tokenizer.TokenBytes(id, skipSpecialTokens);
        if (bytes.IsEmpty) return "";
        var builder = new StringBuilder();
        foreach (byte b in bytes)
        {
            if (_pendingCount == _pending.Length) Flush(builder, complete: true);
            _pending[_pendingCount++] = b;
            Flush(builder, complete: false);
        }
        return builder.ToString();
    }

    /// <summary>Whatever is held back, decoded as is (called at the end of a stream).</summary>
    public string Finish()
    {
        var builder = new StringBuilder();
        Flush(builder, complete: true);
        return builder.ToString();
    }

    private void Flush(StringBuilder builder, bool complete)
    {
        int length = complete ? _pendingCount : CompletePrefix(_pending.AsSpan(0, _pendingCount));
        if (length == 0) return;
        int count = Encoding.UTF8.GetChars(_pending.AsSpan(0, length), _chars);
        builder.Append(_chars, 0, count);
        _pending.AsSpan(length, _pendingCount - length).CopyTo(_pending);
        _pendingCount -= length;
    }

    /// <summary>Bytes up to the start of an unfinished multi-byte sequence at the end.</summary>
    private static int CompletePrefix(ReadOnlySpan<byte> bytes)
    {
        for (int back = 1; back <= Math.Min(3, bytes.Length); back++)
        {
            byte b = bytes[^back];
            if ((b & 0xC0) == 0x80) continue;       // continuation byte: look further back
            int needed = (b & 0xE0) == 0xC0 ? 2 : (b & 0xF0) == 0xE0 ? 3 : (b & 0xF8) == 0xF0 ? 4 : 1;
            return needed > back ? bytes.Length - back : bytes.Length;
        }
        return bytes.Length;
    }

    public void Reset() => _pendingCount = 0;
}
