using LLama.Native;

namespace FalconOnnx.Benchmarks.Peer;

/// <summary>
/// Loads LLamaSharp's native llama.cpp once and keeps what it logs: which CPU build LLamaSharp chose (noavx, avx,
/// avx2 or avx512, from the CPU's features), and llama.cpp's own warnings and errors, for the report.
/// </summary>
public static class LlamaCppLibrary
{
    private static readonly object Gate = new();
    private static bool _loaded;
    private static readonly List<string> _messages = [];

    /// <summary>LLamaSharp's lines about which native library it loaded.</summary>
    public static IReadOnlyList<string> LibraryMessages { get { lock (Gate) return _messages.Where(IsLibraryLine).ToList(); } }

    /// <summary>llama.cpp's warnings and errors so far.</summary>
    public static IReadOnlyList<string> Warnings { get { lock (Gate) return _messages.Where(m => m.StartsWith("Warning") || m.StartsWith("Error")).Distinct().ToList(); } }

    /// <summary>llama.cpp's system_info line (the CPU features its build uses).</summary>
    public static string SystemInfo { get; private set; } = "";

    public static void EnsureLoaded()
    {
        lock (Gate)
        {
            if (_loaded) return;
            NativeLibraryConfig.All.WithLogCallback((level, message) =>
            {
                if (level is LLamaLogLevel.Warning or LLamaLogLevel.Error || IsLibraryLine(message))
                    lock (Gate) _messages.Add($"{level}: {message.TrimEnd()}");
            });
            NativeApi.llama_empty_call();
            SystemInfo = (System.Runtime.InteropServices.Marshal.PtrToStringUTF8(NativeApi.llama_print_system_info()) ?? "").TrimEnd();
            _loaded = true;
        }
    }

    private static bool IsLibraryLine(string message) => message.Contains("native library", StringComparison.OrdinalIgnoreCase)
        || message.Contains("libllama", StringComparison.OrdinalIgnoreCase);
}
