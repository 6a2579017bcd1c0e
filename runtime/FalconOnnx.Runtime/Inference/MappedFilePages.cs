using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;

namespace FalconOnnx.Runtime.Inference;

/// <summary>
/// Drops this process's resident pages of a memory-mapped file where that loses nothing (Linux): a shared mapping, or
/// a private one without pages of its own (no copy-on-write changes), holds only copies of the page cache, so
/// <c>madvise(MADV_DONTNEED)</c> just unmaps them and a later read maps them again from the page cache.
/// </summary>
internal static partial class MappedFilePages
{
    private const int MadvDontNeed = 4;

    /// <summary>Releases the resident pages of every unchanged mapping of <paramref name="path"/>; returns the bytes released.</summary>
    public static long Release(string path)
    {
        if (!OperatingSystem.IsLinux() || RealPath(path) is not { } target) return 0;
        long released = 0;
        foreach (var mapping in Mappings(target))
        {
            if (mapping.RssBytes == 0 || (!mapping.Shared && mapping.AnonymousBytes != 0)) continue;
            if (madvise((nint)mapping.Start, (nuint)(mapping.End - mapping.Start), MadvDontNeed) == 0) released += mapping.RssBytes;
        }
        return released;
    }

    /// <summary>Resident bytes of the mappings of <paramref name="path"/>.</summary>
    public static long Resident(string path) =>
        OperatingSystem.IsLinux() && RealPath(path) is { } target ? Mappings(target).Sum(m => m.RssBytes) : 0;

    private sealed record Mapping(ulong Start, ulong End, bool Shared, long RssBytes, long AnonymousBytes);

    // "7f45b5a6a000-7f45b5a6d000 rw-p 0e7ff000 fd:00 1234   /path/to/file"
    [GeneratedRegex(@"^([0-9a-f]+)-([0-9a-f]+) \S{3}([ps]) \S+ \S+ \d+\s+(.*)$")]
    private static partial Regex Header();

    /// <summary>The mappings of <paramref name="path"/> in /proc/self/smaps (each header line, then its Rss and Anonymous lines).</summary>
    private static List<Mapping> Mappings(string path)
    {
        var mappings = new List<Mapping>();
        (ulong start, ulong end, bool shared)? current = null;
        long rss = 0;
        foreach (string line in File.ReadLines("/proc/self/smaps"))
        {
            if (Header().Match(line) is { Success: true } header)
            {
                current = header.Groups[4].Value == path
                    ? (ulong.Parse(header.Groups[1].Value, NumberStyles.HexNumber), ulong.Parse(header.Groups[2].Value, NumberStyles.HexNumber), header.Groups[3].Value == "s")
                    : null;
                rss = 0;
            }
            else if (current is not null && line.StartsWith("Rss:", StringComparison.Ordinal)) rss = Kilobytes(line);
            else if (current is { } m && line.StartsWith("Anonymous:", StringComparison.Ordinal))
            {
                mappings.Add(new Mapping(m.start, m.end, m.shared, rss, Kilobytes(line)));
                current = null;
            }
        }
        return mappings;
    }

    private static long Kilobytes(string line) => long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;

    private static string? RealPath(string path)
    {
        nint resolved = realpath(path, 0);
        if (resolved == 0) return null;
        try { return Marshal.PtrToStringUTF8(resolved); }
        finally { unsafe { NativeMemory.Free((void*)resolved); } }
    }

    [LibraryImport("libc")]
    private static partial int madvise(nint address, nuint length, int advice);

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint realpath(string path, nint resolved);
}
