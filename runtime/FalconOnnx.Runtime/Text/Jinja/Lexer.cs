namespace FalconOnnx.Runtime.Text.Jinja;

/// <summary>
/// Splits a template into text and tag tokens the way Jinja2's lexer does under the settings Hugging Face renders chat
/// templates with: trim_blocks and lstrip_blocks on, keep_trailing_newline off. Whitespace control is settled here, so
/// text tokens already hold exactly what will be output.
/// </summary>
internal sealed class Lexer
{
    private static readonly string[] TwoCharOperators = ["**", "//", "==", "!=", ">=", "<="];
    private const string OneCharOperators = "+-/*%~[](){}><=.:|,;";

    private readonly string _source;
    private readonly int[] _lineStarts;
    private readonly List<Token> _tokens = [];
    /// <summary>The closers owed inside the current tag; a tag end only counts when none are owed, as in Jinja2.</summary>
    private readonly Stack<char> _owedClosers = new();
    private int _pos;
    /// <summary>
    /// Jinja2 lets lstrip_blocks strip the first line of a text run only when the run starts a line: at the start of
    /// the template, or when the tag before it ended with a newline (the one trim_blocks or '-' consumed).
    /// </summary>
    private bool _lineStarting = true;

    private Lexer(string source)
    {
        _source = Normalize(source);
        var starts = new List<int> { 0 };
        for (int i = 0; i < _source.Length; i++)
            if (_source[i] == '\n') starts.Add(i + 1);
        _lineStarts = [.. starts];
    }

    public static List<Token> Tokenize(string source) => new Lexer(source).Run();

    /// <summary>
    /// Jinja2 turns every line break into '\n' and, without keep_trailing_newline, drops one newline that ends the
    /// template, so a template file's final newline never reaches the prompt.
    /// </summary>
    private static string Normalize(string source)
    {
        string text = source.Replace("\r\n", "\n").Replace('\r', '\n');
        return text.EndsWith('\n') ? text[..^1] : text;
    }

    private List<Token> Run()
    {
        while (_pos < _source.Length)
        {
            int tagStart = FindTagStart(_pos);
            if (tagStart < 0)
            {
                AddText(_source[_pos..], _pos);
                _pos = _source.Length;
                break;
            }

            char opener = _source[tagStart + 1];
            int afterOpener = tagStart + 2;
            char sign = afterOpener < _source.Length && _source[afterOpener] is '-' or '+' ? _source[afterOpener] : '\0';
            int contentStart = sign == '\0' ? afterOpener : afterOpener + 1;
            int rawBodyStart = opener == '%' ? MatchRawBegin(contentStart) : -1;

            AddText(ControlLeadingWhitespace(_source[_pos..tagStart], sign, isVariable: opener == '{'), _pos);
            SourcePosition tagPosition = PositionOf(tagStart);
            if (rawBodyStart >= 0) LexRaw(rawBodyStart, tagPosition);
            else if (opener == '#') LexComment(contentStart, tagPosition);
            else LexTag(contentStart, isVariable: opener == '{', tagPosition);
        }
        _tokens.Add(new Token(TokenKind.EndOfTemplate, "", PositionOf(_source.Length)));
        return _tokens;
    }

    private int FindTagStart(int from)
    {
        for (int i = _source.IndexOf('{', from); i >= 0 && i + 1 < _source.Length; i = _source.IndexOf('{', i + 1))
            if (_source[i + 1] is '{' or '%' or '#') return i;
        return -1;
    }

    /// <summary>
    /// '-' after the opener strips all whitespace before the tag. Otherwise lstrip_blocks removes the spaces and tabs
    /// that precede a block or comment tag on its own line, so indented template logic leaves no indentation behind;
    /// '+' opts a tag out, and '{{' is never stripped.
    /// </summary>
    private string ControlLeadingWhitespace(string text, char sign, bool isVariable)
    {
        if (sign == '-') return text.TrimEnd();
        if (sign == '+' || isVariable) return text;
        int lineStart = text.LastIndexOf('\n') + 1;
        if ((lineStart > 0 || _lineStarting) && lineStart < text.Length && IsWhitespace(text, lineStart))
            return text[..lineStart];
        return text;
    }

    /// <summary>
    /// After a tag's closer: '-' strips all following whitespace; otherwise trim_blocks drops the single newline after
    /// a block or comment tag, so a line holding only template logic leaves no empty line behind. '+' keeps it.
    /// </summary>
    private void ControlTrailingWhitespace(char sign, bool trimBlocks)
    {
        if (sign == '-')
            while (_pos < _source.Length && char.IsWhiteSpace(_source[_pos])) _pos++;
        else if (sign != '+' && trimBlocks && _pos < _source.Length && _source[_pos] == '\n')
            _pos++;
        _lineStarting = _pos > 0 && _source[_pos - 1] == '\n';
    }

    private static bool IsWhitespace(string text, int from)
    {
        for (int i = from; i < text.Length; i++)
            if (!char.IsWhiteSpace(text[i])) return false;
        return true;
    }

    private void AddText(string text, int offset)
    {
        if (text.Length > 0) _tokens.Add(new Token(TokenKind.Text, text, PositionOf(offset)));
    }

    private void LexComment(int contentStart, SourcePosition tagPosition)
    {
        int close = _source.IndexOf("#}", contentStart, StringComparison.Ordinal);
        if (close < 0) throw TemplateSyntax.Error(tagPosition, "comment is not closed by '#}'");
        char sign = close > contentStart && _source[close - 1] is '-' or '+' ? _source[close - 1] : '\0';
        _pos = close + 2;
        ControlTrailingWhitespace(sign, trimBlocks: true);
    }

    /// <summary>The offset where a '{% raw %}' tag's body starts, or -1 when the block tag is not 'raw'.</summary>
    private int MatchRawBegin(int contentStart)
    {
        int i = SkipWhitespace(contentStart);
        if (string.CompareOrdinal(_source, i, "raw", 0, 3) != 0) return -1;
        i = SkipWhitespace(i + 3);
        if (Matches(i, "-%}")) return SkipWhitespace(i + 3);
        // Jinja2's raw-begin rule has no trim_blocks newline, so a newline after '{% raw %}' is kept.
        return Matches(i, "%}") ? i + 2 : -1;
    }

    private void LexRaw(int bodyStart, SourcePosition tagPosition)
    {
        for (int open = _source.IndexOf("{%", bodyStart, StringComparison.Ordinal);
             open >= 0;
             open = _source.IndexOf("{%", open + 2, StringComparison.Ordinal))
        {
            int i = open + 2;
            char sign = i < _source.Length && _source[i] is '-' or '+' ? _source[i++] : '\0';
            i = SkipWhitespace(i);
            if (string.CompareOrdinal(_source, i, "endraw", 0, 6) != 0) continue;
            i = SkipWhitespace(i + 6);
            char closeSign = i < _source.Length && _source[i] is '-' or '+' ? _source[i++] : '\0';
            if (!Matches(i, "%}")) continue;

            _lineStarting = bodyStart > 0 && _source[bodyStart - 1] == '\n';
            AddText(ControlLeadingWhitespace(_source[bodyStart..open], sign, isVariable: false), bodyStart);
            _pos = i + 2;
            ControlTrailingWhitespace(closeSign, trimBlocks: true);
            return;
        }
        throw TemplateSyntax.Error(tagPosition, "'{% raw %}' is not closed by '{% endraw %}'");
    }

    private void LexTag(int contentStart, bool isVariable, SourcePosition tagPosition)
    {
        _pos = contentStart;
        _owedClosers.Clear();
        _tokens.Add(new Token(isVariable ? TokenKind.VariableBegin : TokenKind.BlockBegin, isVariable ? "{{" : "{%", tagPosition));
        while (true)
        {
            if (_pos >= _source.Length)
                throw TemplateSyntax.Error(tagPosition, isVariable ? "'{{' is not closed by '}}'" : "'{%' is not closed by '%}'");
            if (_owedClosers.Count == 0 && TryLexTagEnd(isVariable)) return;
            if (char.IsWhiteSpace(_source[_pos])) _pos++;
            else LexTagToken();
        }
    }

    private bool TryLexTagEnd(bool isVariable)
    {
        SourcePosition position = PositionOf(_pos);
        string closer = isVariable ? "}}" : "%}";
        char sign;
        if (Matches(_pos, "-" + closer)) sign = '-';
        else if (!isVariable && Matches(_pos, "+" + closer)) sign = '+';
        else if (Matches(_pos, closer)) sign = '\0';
        else return false;

        _pos += sign == '\0' ? 2 : 3;
        _tokens.Add(new Token(isVariable ? TokenKind.VariableEnd : TokenKind.BlockEnd, closer, position));
        ControlTrailingWhitespace(sign, trimBlocks: !isVariable);
        return true;
    }

    private void LexTagToken()
    {
        char c = _source[_pos];
        SourcePosition position = PositionOf(_pos);
        if (char.IsAsciiDigit(c)) LexNumber(position);
        else if (c == '_' || char.IsLetter(c)) LexName(position);
        else if (c is '\'' or '"') LexString(position);
        else LexOperator(position);
    }

    private void LexName(SourcePosition position)
    {
        int start = _pos;
        while (_pos < _source.Length && (_source[_pos] == '_' || char.IsLetterOrDigit(_source[_pos]))) _pos++;
        _tokens.Add(new Token(TokenKind.Name, _source[start.._pos], position));
    }

    private void LexNumber(SourcePosition position)
    {
        int start = _pos;
        if (_source[_pos] == '0' && _pos + 1 < _source.Length && "bBoOxX".Contains(_source[_pos + 1]))
        {
            LexPrefixedInteger(position);
            return;
        }

        SkipDigits();
        // As in Jinja2, digits right after a '.' never start a float, so 'items.0.1' is two integer subscripts.
        bool isFloat = false;
        if (start == 0 || _source[start - 1] != '.')
        {
            if (_pos + 1 < _source.Length && _source[_pos] == '.' && char.IsAsciiDigit(_source[_pos + 1]))
            {
                _pos++;
                SkipDigits();
                isFloat = true;
            }
            if (_pos < _source.Length && _source[_pos] is 'e' or 'E')
            {
                int exponent = _pos + 1;
                if (exponent < _source.Length && _source[exponent] is '+' or '-') exponent++;
                if (exponent < _source.Length && char.IsAsciiDigit(_source[exponent]))
                {
                    _pos = exponent;
                    SkipDigits();
                    isFloat = true;
                }
            }
        }
        string digits = _source[start.._pos].Replace("_", "");
        _tokens.Add(new Token(isFloat ? TokenKind.Float : TokenKind.Integer, digits, position));
    }

    /// <summary>Digits with single underscores between them, as Python and Jinja2 allow.</summary>
    private void SkipDigits()
    {
        while (_pos < _source.Length &&
               (char.IsAsciiDigit(_source[_pos]) ||
                _source[_pos] == '_' && _pos + 1 < _source.Length && char.IsAsciiDigit(_source[_pos + 1])))
            _pos++;
    }

    private void LexPrefixedInteger(SourcePosition position)
    {
        int radix = char.ToLowerInvariant(_source[_pos + 1]) switch { 'b' => 2, 'o' => 8, _ => 16 };
        _pos += 2;
        long value = 0;
        int digitCount = 0;
        while (_pos < _source.Length)
        {
            char c = _source[_pos];
            if (c == '_') { _pos++; continue; }
            int digit = char.IsAsciiDigit(c) ? c - '0' : char.IsAsciiHexDigit(c) ? char.ToLowerInvariant(c) - 'a' + 10 : -1;
            if (digit < 0 || digit >= radix) break;
            value = checked(value * radix + digit);
            digitCount++;
            _pos++;
        }
        if (digitCount == 0) throw TemplateSyntax.Error(position, "number prefix has no digits");
        _tokens.Add(new Token(TokenKind.Integer, value.ToString(System.Globalization.CultureInfo.InvariantCulture), position));
    }

    private void LexString(SourcePosition position)
    {
        char quote = _source[_pos];
        int start = _pos + 1;
        int i = start;
        while (i < _source.Length && _source[i] != quote)
            i += _source[i] == '\\' ? 2 : 1;
        if (i >= _source.Length) throw TemplateSyntax.Error(position, "string literal is not closed");
        _pos = i + 1;
        _tokens.Add(new Token(TokenKind.String, StringEscapes.Decode(_source[start..i], position), position));
    }

    private void LexOperator(SourcePosition position)
    {
        foreach (string op in TwoCharOperators)
        {
            if (!Matches(_pos, op)) continue;
            _pos += 2;
            _tokens.Add(new Token(TokenKind.Operator, op, position));
            return;
        }

        char c = _source[_pos];
        if (!OneCharOperators.Contains(c))
            throw TemplateSyntax.Error(position, $"unexpected character {PythonText.Repr(c.ToString())}");
        switch (c)
        {
            case '(': _owedClosers.Push(')'); break;
            case '[': _owedClosers.Push(']'); break;
            case '{': _owedClosers.Push('}'); break;
            case ')' or ']' or '}':
                if (_owedClosers.Count == 0) throw TemplateSyntax.Error(position, $"unexpected '{c}'");
                char owed = _owedClosers.Pop();
                if (owed != c) throw TemplateSyntax.Error(position, $"unexpected '{c}', expected '{owed}'");
                break;
        }
        _pos++;
        _tokens.Add(new Token(TokenKind.Operator, c.ToString(), position));
    }

    private bool Matches(int offset, string text) =>
        offset + text.Length <= _source.Length && string.CompareOrdinal(_source, offset, text, 0, text.Length) == 0;

    private int SkipWhitespace(int offset)
    {
        while (offset < _source.Length && char.IsWhiteSpace(_source[offset])) offset++;
        return offset;
    }

    private SourcePosition PositionOf(int offset)
    {
        int line = Array.BinarySearch(_lineStarts, offset);
        if (line < 0) line = ~line - 1;
        return new SourcePosition(line + 1, offset - _lineStarts[line] + 1);
    }
}
