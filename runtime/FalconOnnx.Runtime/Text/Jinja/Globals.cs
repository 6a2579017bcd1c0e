namespace FalconOnnx.Runtime.Text.Jinja;

/// <summary>
/// The functions every chat template sees: Jinja2's range, namespace and dict, and the two Hugging Face adds,
/// raise_exception and strftime_now.
/// </summary>
internal static class Globals
{
    /// <summary>Jinja2's sandbox refuses larger ranges; so does this interpreter.</summary>
    private const long MaxRange = 100_000;

    public static IEnumerable<KeyValuePair<string, object?>> Create(TimeProvider clock) =>
    [
        new("range", new BuiltinFunction("range", Range)),
        new("namespace", new BuiltinFunction("namespace", MakeNamespace)),
        new("dict", new BuiltinFunction("dict", MakeDict)),
        new("raise_exception", new BuiltinFunction("raise_exception", RaiseException)),
        new("strftime_now", new BuiltinFunction("strftime_now",
            arguments => Strftime.Format(clock.GetLocalNow(), arguments.Bind("strftime_now", "format").RequireString(0)))),
    ];

    private static object? Range(ArgumentList arguments)
    {
        IReadOnlyList<object?> values = arguments.PositionalOnly("range");
        if (values.Count is < 1 or > 3) throw new TemplateRuntimeException($"range() takes 1 to 3 arguments ({values.Count} given)");
        long[] numbers = values.Select(v => PyValue.AsInteger(v) ?? throw new TemplateRuntimeException(
            $"range() arguments must be integers, not {PyValue.TypeName(v)}")).ToArray();
        (long start, long stop, long step) = numbers.Length switch
        {
            1 => (0, numbers[0], 1),
            2 => (numbers[0], numbers[1], 1),
            _ => (numbers[0], numbers[1], numbers[2]),
        };
        if (step == 0) throw new TemplateRuntimeException("range() step must not be zero");
        // Python's len(range): ceil((stop - start) / step), at least 0; in double so huge bounds cannot overflow.
        double length = Math.Max(0, Math.Ceiling(((double)stop - start) / step));
        if (length > MaxRange) throw new TemplateRuntimeException($"range() of {length} items is too big (at most {MaxRange})");
        long count = (long)length;
        var items = new List<object?>();
        for (long i = 0; i < count; i++) items.Add(start + i * step);
        return items;
    }

    /// <summary><c>namespace(mapping?, name=value, ...)</c>, as Jinja2's Namespace takes them.</summary>
    private static object? MakeNamespace(ArgumentList arguments)
    {
        var ns = new Namespace();
        foreach (var (key, value) in InitialEntries(arguments, "namespace"))
            ns.Attributes[key as string ?? throw new TemplateRuntimeException("namespace() attribute names must be strings")] = value;
        return ns;
    }

    private static object? MakeDict(ArgumentList arguments)
    {
        var dict = new DictValue();
        foreach (var (key, value) in InitialEntries(arguments, "dict")) dict.Put(key, value);
        return dict;
    }

    private static IEnumerable<KeyValuePair<object, object?>> InitialEntries(ArgumentList arguments, string callee)
    {
        if (arguments.Positional.Count > 1) throw new TemplateRuntimeException($"{callee}() takes at most one positional argument");
        var entries = new List<KeyValuePair<object, object?>>();
        if (arguments.Positional.Count == 1)
        {
            if (arguments.Positional[0] is not DictValue mapping)
                throw new TemplateRuntimeException($"{callee}() positional argument must be a mapping, not {PyValue.TypeName(arguments.Positional[0])}");
            entries.AddRange(mapping);
        }
        entries.AddRange(arguments.Named.Select(named => new KeyValuePair<object, object?>(named.Key, named.Value)));
        return entries;
    }

    /// <summary>Templates call this to refuse a conversation (a bad role order, say); the message is the template's own.</summary>
    private static object? RaiseException(ArgumentList arguments)
    {
        string message = PythonText.Str(arguments.Bind("raise_exception", "message").Required(0));
        throw new FalconModelException($"Chat template raised an error: {message}");
    }
}
