using System.Globalization;

namespace FalconOnnx.Runtime.Text.Jinja;

/// <summary>The filters of <c>value | name(arguments)</c>, with Jinja2's names, parameters and quirks (Hugging Face's <c>tojson</c>).</summary>
internal static class Filters
{
    private delegate object? Filter(object? value, ArgumentList arguments);

    private static readonly Dictionary<string, Filter> All = new(StringComparer.Ordinal)
    {
        ["trim"] = (v, a) => PyString.Strip(PythonText.Str(v), a.Bind("trim", "chars").OptionalString(0), start: true, end: true),
        ["upper"] = (v, a) => NoArguments(a, "upper", PythonText.Str(v).ToUpperInvariant()),
        ["lower"] = (v, a) => NoArguments(a, "lower", PythonText.Str(v).ToLowerInvariant()),
        ["capitalize"] = (v, a) => NoArguments(a, "capitalize", PyString.Capitalize(PythonText.Str(v))),
        ["title"] = (v, a) => NoArguments(a, "title", PyString.JinjaTitle(PythonText.Str(v))),
        ["string"] = (v, a) => NoArguments(a, "string", PythonText.Str(v)),
        // Hugging Face renders with autoescape off, so marking text safe changes nothing.
        ["safe"] = (v, a) => NoArguments(a, "safe", v),
        ["length"] = (v, a) => NoArguments(a, "length", PyValue.Length(v)),
        ["count"] = (v, a) => NoArguments(a, "count", PyValue.Length(v)),
        ["tojson"] = (v, a) => JsonText.Filter(v, a),
        ["join"] = Join,
        ["default"] = Default,
        ["d"] = Default,
        ["list"] = (v, a) => NoArguments(a, "list", PyValue.Iterate(v).ToList()),
        ["first"] = (v, a) => NoArguments(a, "first", PyValue.Iterate(v).Take(1).DefaultIfEmpty(new Undefined("no first item, the sequence was empty")).First()),
        ["last"] = (v, a) => NoArguments(a, "last", PyValue.Iterate(v).TakeLast(1).DefaultIfEmpty(new Undefined("no last item, the sequence was empty")).First()),
        ["reverse"] = (v, a) => NoArguments(a, "reverse", v is string s ? string.Concat(PyString.Characters(s).Reverse()) : PyValue.Iterate(v).Reverse().ToList()),
        ["replace"] = Replace,
        ["int"] = ToInteger,
        ["float"] = ToFloat,
        ["abs"] = (v, a) => NoArguments(a, "abs", v switch
        {
            double d => (object)Math.Abs(d),
            _ when PyValue.AsInteger(v) is { } l => checked(Math.Abs(l)),
            _ => throw new TemplateRuntimeException($"bad operand type for abs(): '{PyValue.TypeName(v)}'"),
        }),
        ["items"] = (v, a) => NoArguments(a, "items", v switch
        {
            DictValue dict => Methods.Items(dict),
            Undefined => new List<object?>(),
            _ => throw new TemplateRuntimeException($"the items filter needs a mapping, not {PyValue.TypeName(v)}"),
        }),
        ["attr"] = (v, a) => Lookup.PythonAttribute(v, a.Bind("attr", "name").RequireString(0)),
        ["selectattr"] = (v, a) => SelectByAttribute(v, a, "selectattr", keep: true),
        ["rejectattr"] = (v, a) => SelectByAttribute(v, a, "rejectattr", keep: false),
        ["select"] = (v, a) => Select(v, a, "select", keep: true),
        ["reject"] = (v, a) => Select(v, a, "reject", keep: false),
        ["map"] = Map,
        ["sort"] = Sort,
        ["dictsort"] = DictSort,
        ["unique"] = Unique,
        ["min"] = (v, a) => Extreme(v, a, "min", largest: false),
        ["max"] = (v, a) => Extreme(v, a, "max", largest: true),
        ["sum"] = Sum,
        ["indent"] = Indent,
    };

    public static bool Exists(string name) => All.ContainsKey(name);

    public static object? Apply(string name, object? value, ArgumentList arguments) =>
        All.TryGetValue(name, out Filter? filter)
            ? filter(value, arguments)
            : throw new TemplateRuntimeException($"unknown filter '{name}'");

    private static object? NoArguments(ArgumentList arguments, string filter, object? result)
    {
        arguments.Bind(filter);
        return result;
    }

    /// <summary><c>default(default_value='', boolean=false)</c>: replaces undefined, or with boolean=true any false value. none stays none.</summary>
    private static object? Default(object? value, ArgumentList arguments)
    {
        BoundArguments bound = arguments.Bind("default", "default_value", "boolean");
        bool replace = value is Undefined || (bound.Flag(1) && !PyValue.IsTrue(value));
        return replace ? bound.Or(0, "") : value;
    }

    private static object? Join(object? value, ArgumentList arguments)
    {
        BoundArguments bound = arguments.Bind("join", "d", "attribute");
        string separator = PythonText.Str(bound.Or(0, ""));
        string? attribute = bound.OptionalString(1);
        IEnumerable<object?> items = PyValue.Iterate(value);
        if (attribute is not null) items = items.Select(item => Lookup.Path(item, attribute));
        return string.Join(separator, items.Select(PythonText.Str));
    }

    private static object? Replace(object? value, ArgumentList arguments)
    {
        BoundArguments bound = arguments.Bind("replace", "old", "new", "count");
        long count = bound.Or(2, null) is null ? -1 : bound.Integer(2, -1);
        return PyString.Replace(PythonText.Str(value), PythonText.Str(bound.Required(0)), PythonText.Str(bound.Required(1)), count);
    }

    /// <summary>Jinja2's int: parse a string in the base, else through float ("42.9" gives 42), else the default.</summary>
    private static object? ToInteger(object? value, ArgumentList arguments)
    {
        BoundArguments bound = arguments.Bind("int", "default", "base");
        object? fallback = bound.Or(0, 0L);
        int radix = (int)bound.Integer(1, 10);
        switch (value)
        {
            case long or bool: return PyValue.AsInteger(value);
            case double d: return double.IsFinite(d) && Math.Abs(d) < 9.2e18 ? (long)Math.Truncate(d) : fallback;
            case string s:
                string digits = s.Trim().Replace("_", "");
                if (radix == 10 && long.TryParse(digits, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long parsed)) return parsed;
                if (radix is 2 or 8 or 16 && digits.Length > 0)
                {
                    try { return Convert.ToInt64(digits, radix); }
                    catch (FormatException) { }
                    catch (OverflowException) { }
                }
                return ParseFloat(s) is { } f && double.IsFinite(f) && Math.Abs(f) < 9.2e18 ? (long)Math.Truncate(f) : fallback;
            default: return fallback;
        }
    }

    private static object? ToFloat(object? value, ArgumentList arguments)
    {
        object? fallback = arguments.Bind("float", "default").Or(0, 0.0);
        return value switch
        {
            double d => d,
            long or bool => PyValue.AsDouble(value),
            string s => ParseFloat(s) ?? fallback,
            _ => fallback,
        };
    }

    private static double? ParseFloat(string text)
    {
        string s = text.Trim().Replace("_", "");
        string lower = s.ToLowerInvariant().TrimStart('+');
        if (lower is "inf" or "infinity") return double.PositiveInfinity;
        if (lower is "-inf" or "-infinity") return double.NegativeInfinity;
        if (lower is "nan" or "-nan") return double.NaN;
        return double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double parsed) ? parsed : null;
    }

    /// <summary><c>selectattr(attribute[, test, args...])</c>: items whose attribute passes the test, or is true without one.</summary>
    private static List<object?> SelectByAttribute(object? value, ArgumentList arguments, string filter, bool keep)
    {
        IReadOnlyList<object?> positional = arguments.PositionalOnly(filter);
        string attribute = positional.Count > 0 && positional[0] is string name
            ? name
            : throw new TemplateRuntimeException($"{filter}() needs an attribute name");
        Func<object?, bool> passes = TestOrTruth(positional.Skip(1).ToList());
        return PyValue.Iterate(value).Where(item => passes(Lookup.Path(item, attribute)) == keep).ToList();
    }

    /// <summary><c>select([test, args...])</c>: items that pass the test, or are true without one.</summary>
    private static List<object?> Select(object? value, ArgumentList arguments, string filter, bool keep)
    {
        Func<object?, bool> passes = TestOrTruth(arguments.PositionalOnly(filter));
        return PyValue.Iterate(value).Where(item => passes(item) == keep).ToList();
    }

    private static Func<object?, bool> TestOrTruth(IReadOnlyList<object?> testAndArguments)
    {
        if (testAndArguments.Count == 0) return PyValue.IsTrue;
        string test = testAndArguments[0] as string ?? throw new TemplateRuntimeException("a test name must be a string");
        var testArguments = new ArgumentList(testAndArguments.Skip(1).ToList(), []);
        return item => TestFunctions.Apply(test, item, testArguments);
    }

    /// <summary><c>map(attribute='name', default=...)</c> picks an attribute of each item; <c>map('filter', args...)</c> applies a filter to each.</summary>
    private static List<object?> Map(object? value, ArgumentList arguments)
    {
        IEnumerable<object?> items = PyValue.Iterate(value);
        if (arguments.Positional.Count == 0)
        {
            BoundArguments bound = arguments.Bind("map", "attribute", "default");
            string attribute = bound.RequireString(0);
            return items.Select(item =>
            {
                object? picked = Lookup.Path(item, attribute);
                return picked is Undefined && bound.Has(1) ? bound.Or(1, null) : picked;
            }).ToList();
        }
        string filter = arguments.Positional[0] as string ?? throw new TemplateRuntimeException("map() needs a filter name or attribute=");
        var filterArguments = new ArgumentList(arguments.Positional.Skip(1).ToList(), arguments.Named);
        return items.Select(item => Apply(filter, item, filterArguments)).ToList();
    }

    private static List<object?> Sort(object? value, ArgumentList arguments)
    {
        BoundArguments bound = arguments.Bind("sort", "reverse", "case_sensitive", "attribute");
        Func<object?, object?> key = SortKey(bound.Flag(1), bound.OptionalString(2));
        List<object?> sorted = [.. PyValue.Iterate(value).OrderBy(key, OrderingComparer.Instance)];
        if (bound.Flag(0)) sorted.Reverse();
        return sorted;
    }

    /// <summary><c>dictsort(case_sensitive=false, by='key', reverse=false)</c>: a dict's (key, value) pairs in order.</summary>
    private static List<object?> DictSort(object? value, ArgumentList arguments)
    {
        BoundArguments bound = arguments.Bind("dictsort", "case_sensitive", "by", "reverse");
        if (value is not DictValue dict) throw new TemplateRuntimeException($"dictsort needs a mapping, not {PyValue.TypeName(value)}");
        int part = (bound.OptionalString(1) ?? "key") switch
        {
            "key" => 0,
            "value" => 1,
            var other => throw new TemplateRuntimeException($"dictsort() 'by' must be 'key' or 'value', not '{other}'"),
        };
        Func<object?, object?> key = SortKey(bound.Flag(0), attribute: null);
        List<object?> sorted = [.. Methods.Items(dict).OrderBy(pair => key(((object?[])pair!)[part]), OrderingComparer.Instance)];
        if (bound.Flag(2)) sorted.Reverse();
        return sorted;
    }

    private static List<object?> Unique(object? value, ArgumentList arguments)
    {
        BoundArguments bound = arguments.Bind("unique", "case_sensitive", "attribute");
        Func<object?, object?> key = SortKey(bound.Flag(0), bound.OptionalString(1));
        var seen = new List<object?>();
        var unique = new List<object?>();
        foreach (object? item in PyValue.Iterate(value))
        {
            object? itemKey = key(item);
            if (seen.Any(other => PyValue.Equal(other, itemKey))) continue;
            seen.Add(itemKey);
            unique.Add(item);
        }
        return unique;
    }

    private static object? Extreme(object? value, ArgumentList arguments, string filter, bool largest)
    {
        BoundArguments bound = arguments.Bind(filter, "case_sensitive", "attribute");
        Func<object?, object?> key = SortKey(bound.Flag(0), bound.OptionalString(1));
        List<object?> items = PyValue.Iterate(value).ToList();
        if (items.Count == 0) return new Undefined($"no {filter} item, the sequence was empty");
        return largest ? items.MaxBy(key, OrderingComparer.Instance) : items.MinBy(key, OrderingComparer.Instance);
    }

    private static object? Sum(object? value, ArgumentList arguments)
    {
        BoundArguments bound = arguments.Bind("sum", "attribute", "start");
        string? attribute = bound.OptionalString(0);
        object? total = bound.Or(1, 0L);
        foreach (object? item in PyValue.Iterate(value))
            total = Operators.Binary(BinaryOperator.Add, total, attribute is null ? item : Lookup.Path(item, attribute));
        return total;
    }

    /// <summary>Jinja2's sort key: an optional attribute path, and strings lower-cased unless case_sensitive.</summary>
    private static Func<object?, object?> SortKey(bool caseSensitive, string? attribute) => item =>
    {
        object? key = attribute is null ? item : Lookup.Path(item, attribute);
        return !caseSensitive && key is string s ? s.ToLowerInvariant() : key;
    };

    /// <summary><c>indent(width=4, first=false, blank=false)</c>: indents every line but the first (unless first=true), and blank lines only with blank=true.</summary>
    private static object? Indent(object? value, ArgumentList arguments)
    {
        BoundArguments bound = arguments.Bind("indent", "width", "first", "blank");
        string indentation = bound.Or(0, 4L) is string text ? text : new string(' ', (int)Math.Clamp(bound.Integer(0, 4), 0, 256));
        List<string> lines = PyString.SplitLines(PythonText.Str(value) + "\n");
        string result = bound.Flag(2)
            ? string.Join("\n" + indentation, lines)
            : lines[0] + string.Concat(lines.Skip(1).Select(line => "\n" + (line.Length > 0 ? indentation + line : line)));
        return bound.Flag(1) ? indentation + result : result;
    }

    private sealed class OrderingComparer : IComparer<object?>
    {
        public static readonly OrderingComparer Instance = new();

        public int Compare(object? x, object? y) => PyValue.Compare(x, y, "<");
    }
}
