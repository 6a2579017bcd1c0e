using System.Globalization;
using System.Text;

namespace FalconOnnx.Runtime.Text.Jinja;

/// <summary>
/// The <c>tojson</c> filter as Hugging Face defines it for chat templates: Python's json.dumps with ensure_ascii off
/// by default (so non-ASCII text stays as is and nothing is HTML-escaped, unlike Jinja2's own tojson), and the
/// indent, separators and sort_keys options.
/// </summary>
internal sealed class JsonText
{
    private readonly bool _ensureAscii;
    private readonly string? _indent;
    private readonly string _itemSeparator;
    private readonly string _keySeparator;
    private readonly bool _sortKeys;
    private readonly StringBuilder _text = new();

    private JsonText(bool ensureAscii, string? indent, string itemSeparator, string keySeparator, bool sortKeys)
    {
        _ensureAscii = ensureAscii;
        _indent = indent;
        _itemSeparator = itemSeparator;
        _keySeparator = keySeparator;
        _sortKeys = sortKeys;
    }

    /// <summary>The filter: <c>tojson(ensure_ascii=False, indent=None, separators=None, sort_keys=False)</c>.</summary>
    public static string Filter(object? value, ArgumentList arguments)
    {
        BoundArguments bound = arguments.Bind("tojson", "ensure_ascii", "indent", "separators", "sort_keys");
        string? indent = bound.Or(1, null) switch
        {
            null => null,
            string s => s,
            var width when PyValue.AsInteger(width) is { } spaces => new string(' ', (int)Math.Clamp(spaces, 0, 64)),
            var other => throw new TemplateRuntimeException($"tojson() indent must be an integer or a string, not {PyValue.TypeName(other)}"),
        };
        // json.dumps: ", " between items without indent, "," with it (the newline separates them).
        (string item, string key) = bound.Or(2, null) switch
        {
            null => (indent is null ? ", " : ",", ": "),
            IList<object?> { Count: 2 } pair when pair[0] is string a && pair[1] is string b => (a, b),
            var other => throw new TemplateRuntimeException($"tojson() separators must be two strings, not {PythonText.Repr(other)}"),
        };
        var writer = new JsonText(bound.Flag(0), indent, item, key, bound.Flag(3));
        writer.Write(value, depth: 0);
        return writer._text.ToString();
    }

    private void Write(object? value, int depth)
    {
        switch (value)
        {
            case null: _text.Append("null"); break;
            case bool b: _text.Append(b ? "true" : "false"); break;
            case long l: _text.Append(l.ToString(CultureInfo.InvariantCulture)); break;
            case double d: _text.Append(double.IsNaN(d) ? "NaN" : double.IsInfinity(d) ? (d > 0 ? "Infinity" : "-Infinity") : PythonText.FormatFloat(d)); break;
            case string s: WriteString(s); break;
            case IList<object?> sequence: WriteArray(sequence, depth); break;
            case DictValue dict: WriteObject(dict, depth); break;
            default: throw new TemplateRuntimeException($"Object of type {PyValue.TypeName(value)} is not JSON serializable");
        }
    }

    private void WriteArray(IList<object?> items, int depth)
    {
        if (items.Count == 0)
        {
            _text.Append("[]");
            return;
        }
        _text.Append('[');
        for (int i = 0; i < items.Count; i++)
        {
            if (i > 0) _text.Append(_itemSeparator);
            NewLine(depth + 1);
            Write(items[i], depth + 1);
        }
        NewLine(depth);
        _text.Append(']');
    }

    private void WriteObject(DictValue dict, int depth)
    {
        if (dict.Count == 0)
        {
            _text.Append("{}");
            return;
        }
        var entries = dict.Select(entry => (Key: KeyText(entry.Key), entry.Value)).ToList();
        if (_sortKeys) entries = [.. entries.OrderBy(entry => entry.Key, StringComparer.Ordinal)];
        _text.Append('{');
        for (int i = 0; i < entries.Count; i++)
        {
            if (i > 0) _text.Append(_itemSeparator);
            NewLine(depth + 1);
            WriteString(entries[i].Key);
            _text.Append(_keySeparator);
            Write(entries[i].Value, depth + 1);
        }
        NewLine(depth);
        _text.Append('}');
    }

    /// <summary>json.dumps turns int, float and bool keys into their JSON spelling as strings.</summary>
    private static string KeyText(object key) => key switch
    {
        string s => s,
        bool b => b ? "true" : "false",
        long l => l.ToString(CultureInfo.InvariantCulture),
        double d => PythonText.FormatFloat(d),
        _ => throw new TemplateRuntimeException($"keys must be str, int, float or bool, not {PyValue.TypeName(key)}"),
    };

    private void NewLine(int depth)
    {
        if (_indent is null) return;
        _text.Append('\n');
        for (int i = 0; i < depth; i++) _text.Append(_indent);
    }

    private void WriteString(string s)
    {
        _text.Append('"');
        foreach (char c in s)
        {
            switch (c)
            {
                case '"': _text.Append("\\\""); break;
                case '\\': _text.Append(@"\\"); break;
                case '\n': _text.Append(@"\n"); break;
                case '\r': _text.Append(@"\r"); break;
                case '\t': _text.Append(@"\t"); break;
                case '\b': _text.Append(@"\b"); break;
                case '\f': _text.Append(@"\f"); break;
                default:
                    if (c < ' ' || (_ensureAscii && c > '\x7e'))
                        _text.Append(@"\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    else
                        _text.Append(c);
                    break;
            }
        }
        _text.Append('"');
    }
}
