using System.Text;

namespace FalconOnnx.Runtime.Text;

/// <summary>
/// Streams text while watching for stop strings: text that could still be the start of a stop string is held
/// back, and once a stop string appears everything from it on is dropped.
/// </summary>
public sealed class StopStringFilter(IReadOnlyList<string> stopStrings)
{
    private readonly StringBuilder _held = new();

    public bool Stopped { get; private set; }

    /// <summary>Adds generated text; returns what can be shown now.</summary>
    public string Push(string text)
    {
        if (Stopped) return "";
        if (stopStrings.Count == 0) return text;
        _held.Append(text);
        string held = _held.ToString();
        int stop = -1;
        foreach (string s in stopStrings)
        {
            int at = held.IndexOf(s, StringComparison.Ordinal);
            if (at >= 0 && (stop < 0 || at < stop)) stop = at;
        }
        if (stop >= 0)
        {
            Stopped = true;
            _held.Clear();
            return held[..stop];
        }
        int keep = LongestStopPrefixAtEnd(held);
        _held.Clear().Append(held, held.Length - keep, keep);
        return held[..^keep];
    }

    /// <summary>The text held back at the end of generation (it did not turn into a stop string).</summary>
    public string Flush()
    {
        string rest = Stopped ? "" : _held.ToString();
        _held.Clear();
        return rest;
    }

    private int LongestStopPrefixAtEnd(string text)
    {
        int longest = 0;
        foreach (string s in stopStrings)
            for (int length = Math.Min(s.Length - 1, text.Length); length > longest; length--)
                if (text.AsSpan(text.Length - length).SequenceEqual(s.AsSpan(0, length)))
                {
                    longest = length;
                    break;
                }
        return longest;
    }
}
