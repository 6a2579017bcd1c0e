namespace FalconOnnx.Runtime.Text.Jinja;

/// <summary>Python's rules for the indices a slice selects (negative indices count from the end, bounds clamp).</summary>
internal static class SliceBounds
{
    public static IEnumerable<int> Indices(int length, long? start, long? stop, long? step)
    {
        long stride = step ?? 1;
        if (stride == 0) throw new TemplateRuntimeException("slice step cannot be zero");
        long first = Adjust(start, length, stride, stride < 0 ? length - 1 : 0);
        long end = Adjust(stop, length, stride, stride < 0 ? -1 : length);
        for (long i = first; stride > 0 ? i < end : i > end; i += stride) yield return (int)i;
    }

    /// <summary>The [from, to) range of a slice with step 1.</summary>
    public static (int From, int To) Contiguous(int length, long? start, long? stop)
    {
        long from = Adjust(start, length, 1, 0);
        long to = Adjust(stop, length, 1, length);
        return ((int)from, (int)Math.Max(from, to));
    }

    private static long Adjust(long? index, int length, long stride, long whenAbsent)
    {
        if (index is not { } value) return whenAbsent;
        if (value < 0)
        {
            value += length;
            if (value < 0) value = stride < 0 ? -1 : 0;
        }
        else if (value >= length)
        {
            value = stride < 0 ? length - 1 : length;
        }
        return value;
    }
}
