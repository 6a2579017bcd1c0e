namespace FalconOnnx.Runtime.Text.Jinja;

/// <summary>The str and dict methods templates call, bound to their object. Methods that would change a value are absent, as in Jinja2's immutable sandbox that Hugging Face uses.</summary>
internal static class Methods
{
    public static ICallable? OfString(string s, string name)
    {
        Func<ArgumentList, object?>? body = name switch
        {
            "strip" or "lstrip" or "rstrip" => arguments =>
            {
                string? chars = arguments.Bind(name, "chars").OptionalString(0);
                return PyString.Strip(s, chars, start: name != "rstrip", end: name != "lstrip");
            },
            "split" => arguments =>
            {
                BoundArguments bound = arguments.Bind(name, "sep", "maxsplit");
                return PyString.Split(s, bound.OptionalString(0), bound.Integer(1, -1));
            },
            "startswith" or "endswith" => arguments => Affix(s, name, arguments.Bind(name, "prefix").Required(0)),
            "upper" => arguments => NoArguments(arguments, name, s.ToUpperInvariant()),
            "lower" => arguments => NoArguments(arguments, name, s.ToLowerInvariant()),
            "title" => arguments => NoArguments(arguments, name, PyString.Title(s)),
            "capitalize" => arguments => NoArguments(arguments, name, PyString.Capitalize(s)),
            "splitlines" => arguments => NoArguments(arguments, name, PyString.SplitLines(s).Cast<object?>().ToList()),
            "replace" => arguments =>
            {
                BoundArguments bound = arguments.Bind(name, "old", "new", "count");
                return PyString.Replace(s, bound.RequireString(0), bound.RequireString(1), bound.Integer(2, -1));
            },
            "join" => arguments => string.Join(s, PyValue.Iterate(arguments.Bind(name, "iterable").Required(0)).Select(RequireString)),
            "find" => arguments =>
            {
                int at = s.IndexOf(arguments.Bind(name, "sub").RequireString(0), StringComparison.Ordinal);
                return at < 0 ? -1L : PyString.Length(s[..at]);
            },
            "count" => arguments => (long)PyString.Split(s, arguments.Bind(name, "sub").RequireString(0), -1).Count - 1,
            _ => null,
        };
        return body is null ? null : new BuiltinFunction("str." + name, body);
    }

    public static ICallable? OfDict(DictValue dict, string name)
    {
        Func<ArgumentList, object?>? body = name switch
        {
            "get" => arguments =>
            {
                BoundArguments bound = arguments.Bind(name, "key", "default");
                return dict.TryGet(bound.Required(0), out object? value) ? value : bound.Or(1, null);
            },
            "items" => arguments => NoArguments(arguments, name, Items(dict)),
            "keys" => arguments => NoArguments(arguments, name, dict.Keys.Cast<object?>().ToList()),
            "values" => arguments => NoArguments(arguments, name, dict.Values.ToList()),
            _ => null,
        };
        return body is null ? null : new BuiltinFunction("dict." + name, body);
    }

    /// <summary>The (key, value) pairs of a dict as a list of 2-tuples.</summary>
    public static List<object?> Items(DictValue dict) => dict.Select(entry => (object?)new object?[] { entry.Key, entry.Value }).ToList();

    private static object? NoArguments(ArgumentList arguments, string name, object? result)
    {
        arguments.Bind(name);
        return result;
    }

    private static bool Affix(string s, string name, object? affixes)
    {
        IEnumerable<object?> candidates = affixes is object?[] tuple ? tuple : [affixes];
        return candidates.Any(candidate => name == "startswith"
            ? s.StartsWith(RequireString(candidate), StringComparison.Ordinal)
            : s.EndsWith(RequireString(candidate), StringComparison.Ordinal));
    }

    private static string RequireString(object? value) =>
        value as string ?? throw new TemplateRuntimeException($"expected a string, not {PyValue.TypeName(value)}");
}
