namespace FalconOnnx.Runtime.Text.Jinja;

/// <summary>
/// Python semantics over the values a template works with: null (None), bool, long (int), double (float), string,
/// <c>List&lt;object?&gt;</c> (list), <c>object?[]</c> (tuple), <see cref="DictValue"/>, <see cref="Undefined"/>,
/// <see cref="Namespace"/>, <see cref="LoopContext"/> and <see cref="ICallable"/>.
/// </summary>
internal static class PyValue
{
    public static string TypeName(object? value) => value switch
    {
        null => "NoneType",
        bool => "bool",
        long => "int",
        double => "float",
        string => "str",
        List<object?> => "list",
        object?[] => "tuple",
        DictValue => "dict",
        Undefined => "Undefined",
        Namespace => "Namespace",
        LoopContext => "LoopContext",
        ICallable => "function",
        _ => value.GetType().Name,
    };

    public static bool IsTrue(object? value) => value switch
    {
        null => false,
        bool b => b,
        long l => l != 0,
        double d => d != 0,
        string s => s.Length > 0,
        Undefined => false,
        IList<object?> sequence => sequence.Count > 0,
        DictValue dict => dict.Count > 0,
        _ => true,
    };

    public static bool IsNumber(object? value) => value is bool or long or double;

    /// <summary>The value as a Python int (bools count, as in Python), or null.</summary>
    public static long? AsInteger(object? value) => value switch
    {
        long l => l,
        bool b => b ? 1 : 0,
        _ => null,
    };

    public static double AsDouble(object? value) => value switch
    {
        double d => d,
        long l => l,
        bool b => b ? 1 : 0,
        _ => throw new InvalidOperationException($"{TypeName(value)} is not a number"),
    };

    /// <summary>The items a <c>for</c> visits: a list's or tuple's items, a dict's keys, a string's characters.</summary>
    public static IEnumerable<object?> Iterate(object? value) => value switch
    {
        IList<object?> sequence => sequence,
        DictValue dict => dict.Keys,
        string s => PyString.Characters(s),
        Undefined => [],
        _ => throw new TemplateRuntimeException($"'{TypeName(value)}' object is not iterable"),
    };

    public static long Length(object? value) => value switch
    {
        string s => PyString.Length(s),
        IList<object?> sequence => sequence.Count,
        DictValue dict => dict.Count,
        Undefined => 0,
        _ => throw new TemplateRuntimeException($"object of type '{TypeName(value)}' has no len()"),
    };

    /// <summary>Python's ==: numbers by value across int, float and bool; containers item by item.</summary>
    public static bool Equal(object? a, object? b)
    {
        if (a is Undefined || b is Undefined) return a is Undefined && b is Undefined;
        if (IsNumber(a) && IsNumber(b))
        {
            long? x = AsInteger(a), y = AsInteger(b);
            return x is not null && y is not null ? x == y : AsDouble(a) == AsDouble(b);
        }
        return (a, b) switch
        {
            (null, _) => b is null,
            (string x, string y) => x == y,
            (List<object?> x, List<object?> y) => SequenceEqual(x, y),
            (object?[] x, object?[] y) => SequenceEqual(x, y),
            (DictValue x, DictValue y) => x.Count == y.Count && x.All(entry => y.TryGet(entry.Key, out object? other) && Equal(entry.Value, other)),
            _ => ReferenceEquals(a, b),
        };
    }

    private static bool SequenceEqual(IList<object?> x, IList<object?> y)
    {
        if (x.Count != y.Count) return false;
        for (int i = 0; i < x.Count; i++)
            if (!Equal(x[i], y[i])) return false;
        return true;
    }

    /// <summary>Python's ordering for &lt; &lt;= &gt; &gt;=: numbers, strings, and lists or tuples item by item.</summary>
    public static int Compare(object? a, object? b, string op)
    {
        if (IsNumber(a) && IsNumber(b))
        {
            long? x = AsInteger(a), y = AsInteger(b);
            return x is not null && y is not null ? x.Value.CompareTo(y.Value) : AsDouble(a).CompareTo(AsDouble(b));
        }
        return (a, b) switch
        {
            (string x, string y) => Math.Sign(string.CompareOrdinal(x, y)),
            (List<object?> x, List<object?> y) => CompareSequences(x, y, op),
            (object?[] x, object?[] y) => CompareSequences(x, y, op),
            _ => throw new TemplateRuntimeException(
                a is Undefined u ? u.Hint : b is Undefined v ? v.Hint
                : $"'{op}' not supported between instances of '{TypeName(a)}' and '{TypeName(b)}'"),
        };
    }

    private static int CompareSequences(IList<object?> x, IList<object?> y, string op)
    {
        for (int i = 0; i < x.Count && i < y.Count; i++)
            if (!Equal(x[i], y[i])) return Compare(x[i], y[i], op);
        return x.Count.CompareTo(y.Count);
    }

    /// <summary>Python's <c>in</c>: a substring, an equal item, or a dict key.</summary>
    public static bool Contains(object? container, object? item) => container switch
    {
        string s when item is string part => s.Contains(part, StringComparison.Ordinal),
        string => throw new TemplateRuntimeException($"'in <string>' requires string as left operand, not {TypeName(item)}"),
        IList<object?> sequence => sequence.Any(element => Equal(element, item)),
        DictValue dict => dict.TryGet(item, out _),
        Undefined => false,
        _ => throw new TemplateRuntimeException($"argument of type '{TypeName(container)}' is not iterable"),
    };
}
