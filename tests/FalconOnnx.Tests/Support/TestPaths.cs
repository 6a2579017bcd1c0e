namespace FalconOnnx.Tests.Support;

public static class TestPaths
{
    public static string Data => Path.Combine(AppContext.BaseDirectory, "data");

    /// <summary>The golden tiny-a checkpoint (Hugging Face layout) and its expected outputs.</summary>
    public static string TinyA => Path.Combine(Data, "tiny-a");

    public static string Expected(string name) => Path.Combine(TinyA, "expected", name + ".npy");

    /// <summary>A fresh folder under the test run's temp area, removed with the run.</summary>
    public static string NewTemp(string name)
    {
        string path = Path.Combine(Path.GetTempPath(), "falcon-onnx-tests", TestContext.CurrentContext.Test.ID + "-" + name + "-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        return path;
    }
}
