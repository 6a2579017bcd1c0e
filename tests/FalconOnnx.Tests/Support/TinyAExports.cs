using FalconOnnx.Export;

namespace FalconOnnx.Tests.Support;

/// <summary>tiny-a exported once per test run and lowering, shared by the runtime tests (read-only).</summary>
public static class TinyAExports
{
    private static readonly Dictionary<string, string> Folders = [];
    private static readonly Lock Gate = new();

    public static string Get(SsmLowering ssm = SsmLowering.Ort, AttentionLowering? attention = null)
    {
        string key = ssm + "/" + attention;
        lock (Gate)
        {
            if (!Folders.TryGetValue(key, out string? folder))
            {
                folder = Path.Combine(Path.GetTempPath(), "falcon-onnx-tests", "shared-tiny-a-" + key.Replace('/', '-') + "-" + Environment.ProcessId);
                if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
                FalconH1Exporter.Export(TestPaths.TinyA, folder, new ExportOptions { Ssm = ssm, Attention = attention });
                Folders[key] = folder;
            }
            return folder;
        }
    }

    /// <summary>The graph of an exported folder's model.onnx (its weights stay in the data file).</summary>
    public static FalconOnnx.Onnx.Proto.ModelProto Graph(string folder)
    {
        using var stream = File.OpenRead(Path.Combine(folder, FalconH1Exporter.ModelFileName));
        return FalconOnnx.Onnx.Proto.ModelProto.Parser.ParseFrom(stream);
    }

    /// <summary>The synthesized tiny preset (with its tokenizer and chat template), exported with the default lowering.</summary>
    public static string TinyWithTokenizer()
    {
        lock (Gate)
        {
            if (!Folders.TryGetValue("synth-tiny", out string? folder))
            {
                string root = Path.Combine(Path.GetTempPath(), "falcon-onnx-tests");
                string checkpoint = Path.Combine(root, "shared-tiny-a-synth-hf-" + Environment.ProcessId);
                folder = Path.Combine(root, "shared-tiny-a-synth-onnx-" + Environment.ProcessId);
                foreach (string path in new[] { checkpoint, folder })
                    if (Directory.Exists(path)) Directory.Delete(path, recursive: true);
                FalconOnnx.Synthesis.CheckpointSynthesizer.Synthesize(FalconOnnx.Synthesis.SynthPresets.Tiny, 1, checkpoint, FalconOnnx.Checkpoints.CheckpointDType.F32);
                FalconH1Exporter.Export(checkpoint, folder, new ExportOptions());
                Folders["synth-tiny"] = folder;
            }
            return folder;
        }
    }

    public static int[] PromptIds => Npy.Load<long>(TestPaths.Expected("gen_prompt_ids")).Data.Select(id => (int)id).ToArray();

    public static int[] GoldenNewIds => Npy.Load<long>(TestPaths.Expected("gen_new_token_ids")).Data.Select(id => (int)id).ToArray();
}

[SetUpFixture]
public sealed class TestRunCleanup
{
    [OneTimeTearDown]
    public void RemoveSharedExports()
    {
        string root = Path.Combine(Path.GetTempPath(), "falcon-onnx-tests");
        foreach (string folder in Directory.Exists(root) ? Directory.GetDirectories(root, "shared-tiny-a-*-" + Environment.ProcessId) : [])
            Directory.Delete(folder, recursive: true);
    }
}
