namespace FalconOnnx.Runtime.Text.Jinja;

/// <summary>A Python dict: insertion-ordered, with keys compared the Python way (1, 1.0 and True are one key).</summary>
internal sealed class DictValue() : OrderedDictionary<object, object?>(KeyComparer.Instance)
{
    /// <summary>Adds or replaces; none and unhashable keys (lists, dicts) are refused.</summary>
    public void Put(object? key, object? value) =>
        this[key ?? throw new TemplateRuntimeException("none is not supported as a dict key")] = value;

    public bool TryGet(object? key, out object? value)
    {
        value = null;
        return key is not null && IsHashable(key) && TryGetValue(key, out value);
    }

    public static bool IsHashable(object key) => key is not (List<object?> or DictValue or Namespace);

    private sealed class KeyComparer : IEqualityComparer<object>
    {
        public static readonly KeyComparer Instance = new();

        public new bool Equals(object? x, object? y) => PyValue.Equal(x, y);

        public int GetHashCode(object key) => key switch
        {
            bool b => (b ? 1L : 0L).GetHashCode(),
            long l => l.GetHashCode(),
            double d when double.IsInteger(d) && Math.Abs(d) < 9.2e18 => ((long)d).GetHashCode(),
            double d => d.GetHashCode(),
            string s => StringComparer.Ordinal.GetHashCode(s),
            object?[] tuple => tuple.Aggregate(17, (hash, item) => hash * 31 + (item is null ? 0 : GetHashCode(item))),
            _ when !IsHashable(key) => throw new TemplateRuntimeException($"unhashable type: '{PyValue.TypeName(key)}'"),
            _ => key.GetHashCode(),
        };
    }
}
