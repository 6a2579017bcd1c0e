namespace FalconOnnx.Runtime.Text.Jinja;

internal enum TokenKind
{
    /// <summary>Literal template text, already trimmed by whitespace control.</summary>
    Text,
    VariableBegin,
    VariableEnd,
    BlockBegin,
    BlockEnd,
    Name,
    /// <summary>A string literal; the value has its escapes decoded.</summary>
    String,
    Integer,
    Float,
    Operator,
    EndOfTemplate,
}

internal readonly record struct Token(TokenKind Kind, string Value, SourcePosition Position)
{
    public bool IsOperator(string op) => Kind == TokenKind.Operator && Value == op;

    public bool IsName(string name) => Kind == TokenKind.Name && Value == name;

    /// <summary>How the token reads in an error message; never more than one line.</summary>
    public string Describe() => Kind switch
    {
        TokenKind.EndOfTemplate => "end of template",
        TokenKind.Text => "template text",
        TokenKind.VariableBegin => "'{{'",
        TokenKind.VariableEnd => "'}}'",
        TokenKind.BlockBegin => "'{%'",
        TokenKind.BlockEnd => "'%}'",
        TokenKind.String => "string " + PythonText.Repr(Value.Length > 40 ? Value[..40] + "..." : Value),
        _ => $"'{Value}'",
    };
}
