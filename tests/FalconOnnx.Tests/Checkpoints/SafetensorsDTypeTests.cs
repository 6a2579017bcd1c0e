using FalconOnnx.Checkpoints;
using FalconOnnx.Tests.Support;

namespace FalconOnnx.Tests.Checkpoints;

public sealed class SafetensorsDTypeTests
{
    [TestCase(CheckpointDType.F32)]
    [TestCase(CheckpointDType.F16)]
    [TestCase(CheckpointDType.BF16)]
    public void Safetensors_ReadsEachDType_AsTheValuesWritten(CheckpointDType dtype)
    {
        // Values exactly representable in all three types, so the expected floats are exact.
        float[] values = [0f, 1f, -2.5f, 0.15625f, 1024f, -0.0078125f, 3.5f, 96f];
        byte[] bytes = dtype switch
        {
            CheckpointDType.F32 => System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()).ToArray(),
            CheckpointDType.F16 => values.SelectMany(v => BitConverter.GetBytes((Half)v)).ToArray(),
            _ => values.SelectMany(v => BitConverter.GetBytes((ushort)(BitConverter.SingleToUInt32Bits(v) >> 16))).ToArray(),
        };
        string path = TestPaths.NewTemp("dtype") + ".safetensors";
        try
        {
            SafetensorsWriter.Write(path, [new TensorToWrite("t", dtype, [2, 4], (offset, destination) => bytes.AsSpan((int)offset, destination.Length).CopyTo(destination))]);
            using var file = SafetensorsFile.Open(path);
            var tensor = file.Tensors["t"];
            var read = new float[8];
            tensor.ReadFloats(0, read);
            var tail = new float[3];
            tensor.ReadFloats(5, tail);
            Assert.Multiple(() =>
            {
                Assert.That(tensor.DType, Is.EqualTo(dtype));
                Assert.That(tensor.Shape, Is.EqualTo(new long[] { 2, 4 }));
                Assert.That(read, Is.EqualTo(values));
                Assert.That(tail, Is.EqualTo(values[5..]));
            });
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Test]
    public void Safetensors_UnsupportedDType_IsRejectedWithTheTensorName()
    {
        string path = TestPaths.NewTemp("i64") + ".safetensors";
        try
        {
            var header = System.Text.Encoding.UTF8.GetBytes("{\"ids\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}");
            File.WriteAllBytes(path, [.. BitConverter.GetBytes((ulong)header.Length), .. header, .. new byte[8]]);
            var error = Assert.Throws<FalconOnnxException>(() => SafetensorsFile.Open(path).Dispose());
            Assert.That(error!.Message, Does.Contain("'ids'").And.Contain("'I64'"));
        }
        finally
        {
            File.Delete(path);
        }
    }
}
