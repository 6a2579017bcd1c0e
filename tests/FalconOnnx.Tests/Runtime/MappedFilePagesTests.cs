using System.IO.MemoryMappedFiles;
using FalconOnnx.Runtime.Inference;
using FalconOnnx.Tests.Support;

namespace FalconOnnx.Tests.Runtime;

/// <summary>Dropping a mapped file's resident pages loses nothing: unchanged mappings are released, changed ones kept.</summary>
public sealed class MappedFilePagesTests
{
    private const int Bytes = 1 << 20;

    [Test]
    public void UnchangedMapping_IsReleased_AndReadsTheSameAfterwards([Values(MemoryMappedFileAccess.Read, MemoryMappedFileAccess.CopyOnWrite)] MemoryMappedFileAccess access)
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("reads /proc/self/smaps");
        string path = TestPaths.NewTemp("mapped") + ".bin";
        var content = new byte[Bytes];
        new Random(5).NextBytes(content);
        File.WriteAllBytes(path, content);
        try
        {
            using var file = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, access);
            using var view = file.CreateViewAccessor(0, Bytes, access);
            Assert.That(Sum(view), Is.EqualTo(content.Sum(b => (long)b)), "read through the mapping");
            Assert.That(MappedFilePages.Resident(path), Is.GreaterThanOrEqualTo(Bytes));

            Assert.That(MappedFilePages.Release(path), Is.GreaterThanOrEqualTo(Bytes));
            Assert.That(MappedFilePages.Resident(path), Is.Zero);
            Assert.That(Sum(view), Is.EqualTo(content.Sum(b => (long)b)), "read again after the release");
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Test]
    public void PrivateMappingWithChangedPages_IsKept()
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("reads /proc/self/smaps");
        string path = TestPaths.NewTemp("mapped") + ".bin";
        File.WriteAllBytes(path, new byte[Bytes]);
        try
        {
            using var file = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.CopyOnWrite);
            using var view = file.CreateViewAccessor(0, Bytes, MemoryMappedFileAccess.CopyOnWrite);
            Sum(view);
            view.Write(4096 * 3, (byte)42);   // a private copy of that page, in this process only

            Assert.That(MappedFilePages.Release(path), Is.Zero);
            Assert.That(MappedFilePages.Resident(path), Is.GreaterThanOrEqualTo(Bytes), "still resident");
            Assert.That(view.ReadByte(4096 * 3), Is.EqualTo(42));
            Assert.That(File.ReadAllBytes(path).Any(b => b != 0), Is.False, "the file itself is unchanged");
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static long Sum(MemoryMappedViewAccessor view)
    {
        long sum = 0;
        for (long i = 0; i < Bytes; i++) sum += view.ReadByte(i);
        return sum;
    }
}
