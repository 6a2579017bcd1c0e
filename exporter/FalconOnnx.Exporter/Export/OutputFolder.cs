using System.Diagnostics;

namespace FalconOnnx.Export;

/// <summary>
/// An output folder written beside its target and renamed into place at the end, so a failed, cancelled or
/// killed export never leaves a half-written folder under the target name. A staging folder left by a killed
/// process (its pid no longer running) is removed by the next export to the same target.
/// </summary>
public sealed class OutputFolder : IDisposable
{
    private bool _committed;

    private OutputFolder(string target, string staging)
    {
        Target = target;
        Staging = staging;
    }

    public string Target { get; }

    /// <summary>Where the files are written until <see cref="Commit"/>.</summary>
    public string Staging { get; }

    public static OutputFolder Create(string target, bool force, string? mustNotContain = null)
    {
        target = Path.GetFullPath(target.TrimEnd(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar));
        if (mustNotContain is not null)
        {
            string protectedPath = Path.GetFullPath(mustNotContain).TrimEnd(Path.DirectorySeparatorChar) + Path.DirectorySeparatorChar;
            string targetPath = target + Path.DirectorySeparatorChar;
            if (protectedPath.StartsWith(targetPath, StringComparison.Ordinal) || targetPath.StartsWith(protectedPath, StringComparison.Ordinal))
                throw new FalconOnnxException($"{target}: the output folder must not be or contain the input folder {mustNotContain}");
        }
        if (File.Exists(target)) throw new FalconOnnxException($"{target}: output path exists and is a file");
        if (Directory.Exists(target) && !force)
            throw new FalconOnnxException($"{target}: output folder already exists (pass --force to replace it)");
        string parent = Path.GetDirectoryName(target)!;
        Directory.CreateDirectory(parent);
        RemoveAbandoned(parent, Path.GetFileName(target));
        string staging = Path.Combine(parent, $".{Path.GetFileName(target)}.partial-{Environment.ProcessId}");
        if (Directory.Exists(staging)) Directory.Delete(staging, recursive: true);
        Directory.CreateDirectory(staging);
        return new OutputFolder(target, staging);
    }

    /// <summary>Moves the staged files under the target name, replacing an existing folder.</summary>
    public void Commit()
    {
        if (Directory.Exists(Target))
        {
            string old = Path.Combine(Path.GetDirectoryName(Target)!, $".{Path.GetFileName(Target)}.old-{Environment.ProcessId}");
            Directory.Move(Target, old);
            Directory.Move(Staging, Target);
            Directory.Delete(old, recursive: true);
        }
        else
        {
            Directory.Move(Staging, Target);
        }
        _committed = true;
    }

    public void Dispose()
    {
        if (!_committed && Directory.Exists(Staging))
        {
            try { Directory.Delete(Staging, recursive: true); }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
    }

    private static void RemoveAbandoned(string parent, string name)
    {
        foreach (string path in Directory.EnumerateDirectories(parent, $".{name}.*-*"))
        {
            string suffix = path[(path.LastIndexOf('-') + 1)..];
            if (!int.TryParse(suffix, out int pid) || pid == Environment.ProcessId || IsRunning(pid)) continue;
            try { Directory.Delete(path, recursive: true); }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
    }

    private static bool IsRunning(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }
}
