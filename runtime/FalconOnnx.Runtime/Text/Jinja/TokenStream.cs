namespace FalconOnnx.Runtime.Text.Jinja;

/// <summary>The parser's cursor over the lexer's tokens; the last token is always <see cref="TokenKind.EndOfTemplate"/>.</summary>
internal sealed class TokenStream(IReadOnlyList<Token> tokens)
{
    private int _index;

    public Token Current => tokens[_index];

    public Token Peek() => tokens[Math.Min(_index + 1, tokens.Count - 1)];

    public Token Next()
    {
        Token token = tokens[_index];
        if (_index < tokens.Count - 1) _index++;
        return token;
    }

    public bool SkipOperator(string op)
    {
        if (!Current.IsOperator(op)) return false;
        Next();
        return true;
    }

    public bool SkipName(string name)
    {
        if (!Current.IsName(name)) return false;
        Next();
        return true;
    }

    public Token ExpectOperator(string op) =>
        Current.IsOperator(op) ? Next() : throw Error($"expected '{op}' but found {Current.Describe()}");

    public Token ExpectName(string name) =>
        Current.IsName(name) ? Next() : throw Error($"expected '{name}' but found {Current.Describe()}");

    public Token Expect(TokenKind kind, string what) =>
        Current.Kind == kind ? Next() : throw Error($"expected {what} but found {Current.Describe()}");

    public FalconModelException Error(string problem) => TemplateSyntax.Error(Current.Position, problem);
}
