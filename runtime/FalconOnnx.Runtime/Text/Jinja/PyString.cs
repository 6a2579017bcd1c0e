using System.Text;
using System.Text.RegularExpressions;

namespace FalconOnnx.Runtime.Text.Jinja;

/// <summary>
/// Python's str operations. Python counts and indexes code points, not UTF-16 units, so a string holding characters
/// beyond the Basic Multilingual Plane (emoji) is handled by code point.
/// </summary>
internal static partial class PyString
{
    public static bool IsSpace(char c) => char.IsWhiteSpace(c) || c is >= '\x1c' and <= '\x1f';

    private static bool HasSurrogates(string s) => s.AsSpan().IndexOfAnyInRange('\uD800', '\uDFFF') >= 0;

    public static long Length(string s) => HasSurrogates(s) ? s.EnumerateRunes().Count() : s.Length;

    /// <summary>Each code point as a one-character string.</summary>
    public static IReadOnlyList<string> Characters(string s) =>
        HasSurrogates(s) ? s.EnumerateRunes().Select(r => r.ToString()).ToList() : s.Select(c => c.ToString()).ToList();

    public static string Strip(string s, string? chars, bool start, bool end)
    {
        Func<char, bool> strips = chars is null ? IsSpace : chars.Contains;
        int first = 0, last = s.Length;
        if (start) while (first < last && strips(s[first])) first++;
        if (end) while (last > first && strips(s[last - 1])) last--;
        return s[first..last];
    }

    /// <summary>str.split: on runs of whitespace (ignoring the ends) without a separator, else on each separator.</summary>
    public static List<object?> Split(string s, string? separator, long maxSplit)
    {
        var parts = new List<object?>();
        if (separator is null)
        {
            int i = 0;
            while (true)
            {
                while (i < s.Length && IsSpace(s[i])) i++;
                if (i >= s.Length) break;
                if (maxSplit >= 0 && parts.Count == maxSplit)
                {
                    parts.Add(Strip(s[i..], null, start: false, end: true));
                    break;
                }
                int start = i;
                while (i < s.Length && !IsSpace(s[i])) i++;
                parts.Add(s[start..i]);
            }
            return parts;
        }

        if (separator.Length == 0) throw new TemplateRuntimeException("empty separator");
        int from = 0;
        while (maxSplit < 0 || parts.Count < maxSplit)
        {
            int at = s.IndexOf(separator, from, StringComparison.Ordinal);
            if (at < 0) break;
            parts.Add(s[from..at]);
            from = at + separator.Length;
        }
        parts.Add(s[from..]);
        return parts;
    }

    /// <summary>str.replace; an empty <paramref name="old"/> inserts <paramref name="replacement"/> around every character, as Python does.</summary>
    public static string Replace(string s, string old, string replacement, long count)
    {
        var text = new StringBuilder();
        int from = 0, done = 0;
        if (old.Length == 0)
        {
            foreach (string character in Characters(s))
            {
                if (count < 0 || done < count) { text.Append(replacement); done++; }
                text.Append(character);
            }
            if (count < 0 || done < count) text.Append(replacement);
            return text.ToString();
        }
        while (count < 0 || done < count)
        {
            int at = s.IndexOf(old, from, StringComparison.Ordinal);
            if (at < 0) break;
            text.Append(s, from, at - from).Append(replacement);
            from = at + old.Length;
            done++;
        }
        return text.Append(s, from, s.Length - from).ToString();
    }

    /// <summary>str.capitalize: the first character upper case, the rest lower case.</summary>
    public static string Capitalize(string s) =>
        s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..].ToLowerInvariant();

    /// <summary>str.title: a cased character after an uncased one is upper case, any other cased character lower case.</summary>
    public static string Title(string s)
    {
        var text = new StringBuilder(s.Length);
        bool previousCased = false;
        foreach (char c in s)
        {
            bool cased = char.IsUpper(c) || char.IsLower(c);
            text.Append(!cased ? c : previousCased ? char.ToLowerInvariant(c) : char.ToUpperInvariant(c));
            previousCased = cased;
        }
        return text.ToString();
    }

    /// <summary>Jinja2's title filter: words start after '-', whitespace or an opening bracket; each word is capitalized.</summary>
    public static string JinjaTitle(string s) =>
        string.Concat(WordBeginning().Split(s).Where(part => part.Length > 0).Select(part => char.ToUpperInvariant(part[0]) + part[1..].ToLowerInvariant()));

    [GeneratedRegex(@"([-\s({\[<]+)")]
    private static partial Regex WordBeginning();

    /// <summary>str.islower / str.isupper: at least one cased character, and every cased one in that case.</summary>
    public static bool IsAllCase(string s, bool upper)
    {
        bool anyCased = false;
        foreach (char c in s)
        {
            if (upper ? char.IsLower(c) : char.IsUpper(c)) return false;
            anyCased |= char.IsUpper(c) || char.IsLower(c);
        }
        return anyCased;
    }

    /// <summary>str.splitlines without the line ends.</summary>
    public static List<string> SplitLines(string s)
    {
        var lines = new List<string>();
        int start = 0, i = 0;
        while (i < s.Length)
        {
            char c = s[i];
            if (c is '\n' or '\r' or '\v' or '\f' or '\x1c' or '\x1d' or '\x1e' or '\x85' or '\u2028' or '\u2029')
            {
                lines.Add(s[start..i]);
                i += c == '\r' && i + 1 < s.Length && s[i + 1] == '\n' ? 2 : 1;
                start = i;
            }
            else i++;
        }
        if (start < s.Length) lines.Add(s[start..]);
        return lines;
    }

    /// <summary>Python's s[start:stop:step] over code points.</summary>
    public static string Slice(string s, long? start, long? stop, long? step)
    {
        if (!HasSurrogates(s) && (step ?? 1) == 1)
        {
            var (from, to) = SliceBounds.Contiguous(s.Length, start, stop);
            return s[from..to];
        }
        IReadOnlyList<string> characters = Characters(s);
        return string.Concat(SliceBounds.Indices(characters.Count, start, stop, step).Select(i => characters[i]));
    }
}
