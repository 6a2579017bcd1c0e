using FalconOnnx.Export;
using FalconOnnx.Graphs.Blocks;
using FalconOnnx.Runtime;
using FalconOnnx.Tests.Support;
using Microsoft.ML.OnnxRuntime;

namespace FalconOnnx.Tests.Export;

/// <summary>The --ssm custom export: it carries and names its operator library, and says when the library is missing.</summary>
public sealed class CustomOpExportTests
{
    [Test]
    public void CustomExport_CarriesItsLibrary_AndNamesItInTheManifestAndGenAiConfig()
    {
        string folder = TinyAExports.Get(SsmLowering.Custom);
        var manifest = ModelManifest.Load(folder);
        Assert.Multiple(() =>
        {
            Assert.That(manifest.CustomOpsLibrary, Is.EqualTo(Mamba2CustomCore.LibraryFileName));
            Assert.That(File.Exists(Path.Combine(folder, Mamba2CustomCore.LibraryFileName)), Is.True);
            Assert.That(manifest.Graph.Opsets, Does.ContainKey("falcon_onnx"));
            Assert.That(File.ReadAllText(Path.Combine(folder, "genai_config.json")), Does.Contain($"\"custom_ops_library\": \"{Mamba2CustomCore.LibraryFileName}\""));
        });
    }

    [Test]
    public void CustomExport_WithoutItsLibrary_GivesAnErrorNamingTheLibrary()
    {
        string copy = TestPaths.NewTemp("custom-without-library");
        Directory.CreateDirectory(copy);
        try
        {
            foreach (string file in Directory.GetFiles(TinyAExports.Get(SsmLowering.Custom)))
                if (Path.GetFileName(file) != Mamba2CustomCore.LibraryFileName) File.Copy(file, Path.Combine(copy, Path.GetFileName(file)));
            var error = Assert.Throws<FalconModelException>(() => FalconModel.Load(copy));
            Assert.That(error!.Message, Does.Contain(Mamba2CustomCore.LibraryFileName).And.Contain("missing"));

            // Plain ONNX Runtime without the library names the operator it cannot find.
            var ort = Assert.Throws<OnnxRuntimeException>(() => new InferenceSession(Path.Combine(copy, "model.onnx")).Dispose());
            Assert.That(ort!.Message, Does.Contain("Mamba2Mixer"));
        }
        finally
        {
            Directory.Delete(copy, recursive: true);
        }
    }
}
