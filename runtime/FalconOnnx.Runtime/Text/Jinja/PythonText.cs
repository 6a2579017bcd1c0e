using System.Globalization;
using System.Text;

namespace FalconOnnx.Runtime.Text.Jinja;

/// <summary>How Python's str() and repr() spell values, which is what <c>{{ }}</c> and <c>~</c> print.</summary>
internal static class PythonText
{
    public static string Str(object? value) => value switch
    {
        string s => s,
        Undefined => "",
        _ => Repr(value),
    };

    public static string Repr(object? value) => value switch
    {
        null => "None",
        bool b => b ? "True" : "False",
        long l => l.ToString(CultureInfo.InvariantCulture),
        double d => FormatFloat(d),
        string s => QuoteString(s),
        Undefined => "Undefined",
        List<object?> list => "[" + string.Join(", ", list.Select(Repr)) + "]",
        object?[] { Length: 1 } tuple => "(" + Repr(tuple[0]) + ",)",
        object?[] tuple => "(" + string.Join(", ", tuple.Select(Repr)) + ")",
        DictValue dict => "{" + string.Join(", ", dict.Select(entry => Repr(entry.Key) + ": " + Repr(entry.Value))) + "}",
        Namespace ns => "<Namespace " + string.Join(", ", ns.Attributes.Select(entry => entry.Key + "=" + Repr(entry.Value))) + ">",
        ICallable callable => $"<function {callable.Name}>",
        _ => value.ToString() ?? "",
    };

    /// <summary>
    /// Python's float repr: the shortest digits that round-trip, positional for exponents from -4 to 15 (always
    /// with a fractional part, as in "2.0"), scientific otherwise ("1e+16", "1.5e-05").
    /// </summary>
    public static string FormatFloat(double value)
    {
        if (double.IsNaN(value)) return "nan";
        if (double.IsInfinity(value)) return value > 0 ? "inf" : "-inf";

        // .NET's round-trip format gives the same shortest digits; only the layout differs.
        string roundTrip = Math.Abs(value).ToString("R", CultureInfo.InvariantCulture);
        int exponentAt = roundTrip.IndexOfAny(['E', 'e']);
        string mantissa = exponentAt < 0 ? roundTrip : roundTrip[..exponentAt];
        int exponent = exponentAt < 0 ? 0 : int.Parse(roundTrip[(exponentAt + 1)..], CultureInfo.InvariantCulture);
        int point = mantissa.IndexOf('.');
        string digits = mantissa.Replace(".", "");
        // 'decimalPoint' is where the point falls in 'digits': value = 0.digits × 10^decimalPoint.
        int decimalPoint = (point < 0 ? mantissa.Length : point) + exponent;
        int leadingZeros = digits.Length - digits.TrimStart('0').Length;
        digits = digits.Trim('0');
        decimalPoint -= leadingZeros;
        string sign = value < 0 || (value == 0 && double.IsNegative(value)) ? "-" : "";
        if (digits.Length == 0) return sign + "0.0";

        if (decimalPoint > 16 || decimalPoint < -3)
        {
            string fraction = digits.Length > 1 ? "." + digits[1..] : "";
            int shown = decimalPoint - 1;
            return $"{sign}{digits[0]}{fraction}e{(shown < 0 ? '-' : '+')}{Math.Abs(shown):00}";
        }
        if (decimalPoint <= 0) return sign + "0." + new string('0', -decimalPoint) + digits;
        if (decimalPoint >= digits.Length) return sign + digits + new string('0', decimalPoint - digits.Length) + ".0";
        return sign + digits[..decimalPoint] + "." + digits[decimalPoint..];
    }

    /// <summary>Python's string repr: single quotes unless the text has one and no double quote; control characters escaped.</summary>
    private static string QuoteString(string s)
    {
        char quote = s.Contains('\'') && !s.Contains('"') ? '"' : '\'';
        var text = new StringBuilder(s.Length + 2).Append(quote);
        foreach (char c in s)
        {
            switch (c)
            {
                case '\\': text.Append(@"\\"); break;
                case '\n': text.Append(@"\n"); break;
                case '\r': text.Append(@"\r"); break;
                case '\t': text.Append(@"\t"); break;
                default:
                    if (c == quote) text.Append('\\').Append(c);
                    else if (c < ' ' || c is >= '\x7f' and < '\xa0') text.Append(@"\x").Append(((int)c).ToString("x2", CultureInfo.InvariantCulture));
                    else text.Append(c);
                    break;
            }
        }
        return text.Append(quote).ToString();
    }
}
