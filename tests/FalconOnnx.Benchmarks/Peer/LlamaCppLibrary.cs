using System.Text.Json.Nodes;
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

    /// <summary>The native libraries LLamaSharp loaded, relative to the application folder (the CPU build shows in the path).</summary>
    public static IReadOnlyList<string> LoadedLibraries
    {
        get
        {
            lock (Gate)
                return _messages.Where(m => m.Contains("Successfully loaded", StringComparison.Ordinal))
                    .Select(m => m.Split('\'')) .Where(parts => parts.Length >= 2)
                    .Select(parts => Path.GetRelativePath(AppContext.BaseDirectory, parts[1])).Distinct().ToList();
        }
    }

    /// <summary>llama.cpp's warnings and errors so far.</summary>
    public static IReadOnlyList<string> Warnings { get { lock (Gate) return _messages.Where(m => m.StartsWith("Warning") || m.StartsWith("Error")).Distinct().ToList(); } }

    /// <summary>
    /// LLamaSharp's package version. Its assembly carries none (0.0.0.0), so it is read from the application's
    /// dependency file, where NuGet recorded the package as "LLamaSharp/version".
    /// </summary>
    public static string LLamaSharpVersion { get; } = PackageVersion("LLamaSharp");

    private static string PackageVersion(string package)
    {
        var files = (AppContext.GetData("APP_CONTEXT_DEPS_FILES") as string ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Append(Path.Combine(AppContext.BaseDirectory, System.Reflection.Assembly.GetEntryAssembly()?.GetName().Name + ".deps.json"));
        foreach (string file in files.Where(File.Exists))
            if (JsonNode.Parse(File.ReadAllText(file))?["libraries"] is JsonObject libraries)
                foreach (var (name, _) in libraries)
                    if (name.StartsWith(package + "/", StringComparison.Ordinal)) return name[(package.Length + 1)..];
        return "unknown";
    }

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
