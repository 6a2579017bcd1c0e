namespace FalconOnnx.Tests.Support;

/// <summary>Temporary folders of one test, all removed by <see cref="RemoveAll"/> (call it from a TearDown).</summary>
public sealed class TempFolders
{
    private readonly List<string> _folders = [];

    public string New(string name)
    {
        string path = TestPaths.NewTemp(name);
        _folders.Add(path);
        return path;
    }

    public void RemoveAll()
    {
        foreach (string folder in _folders)
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        _folders.Clear();
    }
}
