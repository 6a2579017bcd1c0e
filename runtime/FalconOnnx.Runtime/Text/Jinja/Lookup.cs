namespace FalconOnnx.Runtime.Text.Jinja;

/// <summary>
/// Jinja2's two ways into a value: <c>x.name</c> tries an attribute (a method) before an item, <c>x[key]</c> an item
/// before an attribute. A miss is <see cref="Undefined"/>, never an error, so templates can test for it.
/// </summary>
internal static class Lookup
{
    public static object? Attribute(object? target, string name) => target switch
    {
        Undefined undefined => undefined,
        DictValue dict => Methods.OfDict(dict, name) ?? (dict.TryGet(name, out object? value) ? value : Missing(target, name)),
        _ => PythonAttribute(target, name),
    };

    /// <summary>An attribute in Python's sense only (a method, a namespace's or loop's attribute), never a dict item; the <c>attr</c> filter.</summary>
    public static object? PythonAttribute(object? target, string name) => target switch
    {
        Undefined undefined => undefined,
        DictValue dict => (object?)Methods.OfDict(dict, name) ?? Missing(target, name),
        string s => (object?)Methods.OfString(s, name) ?? Missing(target, name),
        Namespace ns => ns.Attributes.TryGetValue(name, out object? value) ? value : Missing(target, name),
        LoopContext loop => loop.GetAttribute(name),
        _ => Missing(target, name),
    };

    public static object? Item(object? target, object? key)
    {
        switch (target)
        {
            case Undefined undefined:
                return undefined;
            case DictValue dict when dict.TryGet(key, out object? value):
                return value;
            case IList<object?> or string when PyValue.AsInteger(key) is { } index:
                return Index(target, index);
        }
        return key is string name ? Attribute(target, name) : Missing(target, PythonText.Repr(key));
    }

    private static object? Index(object target, long index)
    {
        if (target is string s)
        {
            IReadOnlyList<string> characters = PyString.Characters(s);
            long at = index < 0 ? index + characters.Count : index;
            return at >= 0 && at < characters.Count ? characters[(int)at] : new Undefined("string index out of range");
        }
        var sequence = (IList<object?>)target;
        long position = index < 0 ? index + sequence.Count : index;
        return position >= 0 && position < sequence.Count ? sequence[(int)position] : new Undefined($"{PyValue.TypeName(target)} index out of range");
    }

    public static object? Slice(object? target, object? start, object? stop, object? step)
    {
        long? from = SliceIndex(start), to = SliceIndex(stop), stride = SliceIndex(step);
        return target switch
        {
            Undefined undefined => undefined,
            string s => PyString.Slice(s, from, to, stride),
            List<object?> list => SliceBounds.Indices(list.Count, from, to, stride).Select(i => list[i]).ToList(),
            object?[] tuple => SliceBounds.Indices(tuple.Length, from, to, stride).Select(i => tuple[i]).ToArray(),
            _ => throw new TemplateRuntimeException($"'{PyValue.TypeName(target)}' object is not subscriptable"),
        };
    }

    private static long? SliceIndex(object? value) =>
        value is null ? null
        : PyValue.AsInteger(value) ?? throw new TemplateRuntimeException($"slice indices must be integers or none, not {PyValue.TypeName(value)}");

    /// <summary>
    /// Follows a dotted path such as "function.name" or "items.0" one item lookup at a step, as the
    /// <c>attribute=</c> arguments of filters do.
    /// </summary>
    public static object? Path(object? target, string path)
    {
        foreach (string part in path.Split('.'))
            target = Item(target, long.TryParse(part, out long index) ? index : part);
        return target;
    }

    private static Undefined Missing(object? target, string name) =>
        new($"'{PyValue.TypeName(target)} object' has no attribute '{name}'");
}
