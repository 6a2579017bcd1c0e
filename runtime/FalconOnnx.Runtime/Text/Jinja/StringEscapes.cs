using System.Globalization;
using System.Text;

namespace FalconOnnx.Runtime.Text.Jinja;

/// <summary>Decodes the backslash escapes of a string literal the way Python's 'unicode-escape' codec (used by Jinja2) does.</summary>
internal static class StringEscapes
{
    public static string Decode(string body, SourcePosition position)
    {
        if (!body.Contains('\\')) return body;
        var text = new StringBuilder(body.Length);
        for (int i = 0; i < body.Length; i++)
        {
            char c = body[i];
            if (c != '\\' || i + 1 >= body.Length)
            {
                text.Append(c);
                continue;
            }

            char escape = body[++i];
            switch (escape)
            {
                case '\n': break; // a backslash before a line break joins the lines
                case '\\' or '\'' or '"': text.Append(escape); break;
                case 'a': text.Append('\a'); break;
                case 'b': text.Append('\b'); break;
                case 'f': text.Append('\f'); break;
                case 'n': text.Append('\n'); break;
                case 'r': text.Append('\r'); break;
                case 't': text.Append('\t'); break;
                case 'v': text.Append('\v'); break;
                case >= '0' and <= '7':
                    int octalEnd = i;
                    while (octalEnd < body.Length && octalEnd < i + 3 && body[octalEnd] is >= '0' and <= '7') octalEnd++;
                    text.Append((char)Convert.ToInt32(body[i..octalEnd], 8));
                    i = octalEnd - 1;
                    break;
                case 'x': i = AppendHex(body, i, 2, text, position); break;
                case 'u': i = AppendHex(body, i, 4, text, position); break;
                case 'U': i = AppendHex(body, i, 8, text, position); break;
                default:
                    // Python keeps an unknown escape as written, backslash included.
                    text.Append('\\').Append(escape);
                    break;
            }
        }
        return text.ToString();
    }

    /// <summary>Appends the code point spelled by exactly <paramref name="digits"/> hex digits after body[at]; returns the last index used.</summary>
    private static int AppendHex(string body, int at, int digits, StringBuilder text, SourcePosition position)
    {
        int start = at + 1;
        bool complete = start + digits <= body.Length;
        for (int i = start; complete && i < start + digits; i++) complete = char.IsAsciiHexDigit(body[i]);
        if (!complete)
            throw TemplateSyntax.Error(position, $"truncated \\{body[at]} escape in string literal");

        long codePoint = long.Parse(body.AsSpan(start, digits), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        if (codePoint > 0x10FFFF)
            throw TemplateSyntax.Error(position, $"\\{body[at]} escape in string literal is beyond Unicode");
        if (codePoint is >= 0xD800 and <= 0xDFFF) text.Append((char)codePoint);
        else text.Append(char.ConvertFromUtf32((int)codePoint));
        return start + digits - 1;
    }
}
