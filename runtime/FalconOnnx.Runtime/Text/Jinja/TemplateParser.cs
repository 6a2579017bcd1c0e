namespace FalconOnnx.Runtime.Text.Jinja;

/// <summary>Builds the statement tree of a template from its tokens; tag heads are handed to <see cref="ExpressionParser"/>.</summary>
internal sealed class TemplateParser
{
    /// <summary>Jinja2 tags that a chat template has no use for (no loader, no autoescape) and this interpreter lacks.</summary>
    private static readonly HashSet<string> UnsupportedTags =
        ["extends", "block", "include", "import", "from", "call", "filter", "with", "autoescape", "do", "trans"];

    private static readonly HashSet<string> ClosingTags =
        ["elif", "else", "endif", "endfor", "endset", "endmacro", "endgeneration", "endraw"];

    private readonly TokenStream _tokens;
    private readonly ExpressionParser _expressions;
    /// <summary>How many 'for' bodies enclose the current point (reset inside macros): break and continue need one.</summary>
    private int _loopDepth;

    private TemplateParser(TokenStream tokens)
    {
        _tokens = tokens;
        _expressions = new ExpressionParser(tokens);
    }

    /// <exception cref="FalconModelException">The template does not parse; the message names the line and column.</exception>
    public static IReadOnlyList<Statement> Parse(string source)
    {
        var parser = new TemplateParser(new TokenStream(Lexer.Tokenize(source)));
        return parser.ParseBody(enclosing: null, endTags: [], out _);
    }

    /// <summary>A block tag whose body is being parsed, for messages about a missing or wrong end tag.</summary>
    private sealed record OpenTag(string Name, SourcePosition Position);

    /// <summary>
    /// Statements up to one of <paramref name="endTags"/> (the last being the tag that closes the block), whose
    /// '{% name' is consumed; the rest of that tag is left to the caller.
    /// </summary>
    private List<Statement> ParseBody(OpenTag? enclosing, string[] endTags, out string endTag)
    {
        var body = new List<Statement>();
        while (true)
        {
            Token token = _tokens.Current;
            switch (token.Kind)
            {
                case TokenKind.Text:
                    _tokens.Next();
                    body.Add(new TextStatement(token.Position, token.Value));
                    break;
                case TokenKind.VariableBegin:
                    _tokens.Next();
                    Expression value = _expressions.ParseTuple();
                    _tokens.Expect(TokenKind.VariableEnd, "'}}'");
                    body.Add(new OutputStatement(token.Position, value));
                    break;
                case TokenKind.BlockBegin:
                    Token name = _tokens.Peek();
                    if (name.Kind == TokenKind.Name && endTags.Contains(name.Value))
                    {
                        _tokens.Next();
                        _tokens.Next();
                        endTag = name.Value;
                        return body;
                    }
                    _tokens.Next();
                    ParseTag(token.Position, enclosing, body);
                    break;
                case TokenKind.EndOfTemplate when enclosing is null:
                    endTag = "";
                    return body;
                case TokenKind.EndOfTemplate:
                    throw TemplateSyntax.Error(token.Position,
                        $"unexpected end of template: the '{enclosing.Name}' at {enclosing.Position} is not closed by '{endTags[^1]}'");
                default:
                    throw _tokens.Error($"unexpected {token.Describe()}");
            }
        }
    }

    private void ParseTag(SourcePosition position, OpenTag? enclosing, List<Statement> body)
    {
        Token keyword = _tokens.Expect(TokenKind.Name, "a tag name");
        switch (keyword.Value)
        {
            case "if":
                body.Add(ParseIf(position));
                break;
            case "for":
                body.Add(ParseFor(position));
                break;
            case "set":
                body.Add(ParseSet(position));
                break;
            case "macro":
                body.Add(ParseMacro(position));
                break;
            case "break" or "continue":
                if (_loopDepth == 0) throw TemplateSyntax.Error(keyword.Position, $"'{keyword.Value}' is only allowed inside a 'for' loop");
                ExpectBlockEnd();
                body.Add(new LoopControlStatement(position, IsBreak: keyword.Value == "break"));
                break;
            case "generation":
                // Hugging Face's AssistantTracker marks assistant text for training masks; for rendering it is transparent.
                ExpectBlockEnd();
                body.AddRange(ParseBody(new OpenTag("generation", position), ["endgeneration"], out _));
                ExpectBlockEnd();
                break;
            case var name when UnsupportedTags.Contains(name):
                throw TemplateSyntax.Error(keyword.Position, $"the '{name}' tag is not supported in chat templates");
            case var name when ClosingTags.Contains(name):
                throw TemplateSyntax.Error(keyword.Position, enclosing is null
                    ? $"unexpected '{name}': no open tag takes it"
                    : $"unexpected '{name}': the '{enclosing.Name}' at {enclosing.Position} is still open");
            case var name:
                throw TemplateSyntax.Error(keyword.Position, $"unknown tag '{name}'");
        }
    }

    private IfStatement ParseIf(SourcePosition position)
    {
        var open = new OpenTag("if", position);
        var branches = new List<ConditionalBranch>();
        Expression condition = _expressions.ParseTuple(withConditional: false);
        ExpectBlockEnd();
        while (true)
        {
            List<Statement> body = ParseBody(open, ["elif", "else", "endif"], out string end);
            branches.Add(new ConditionalBranch(condition, body));
            if (end == "elif")
            {
                condition = _expressions.ParseTuple(withConditional: false);
                ExpectBlockEnd();
                continue;
            }

            List<Statement> otherwise = [];
            if (end == "else")
            {
                ExpectBlockEnd();
                otherwise = ParseBody(open, ["endif"], out _);
            }
            ExpectBlockEnd();
            return new IfStatement(position, branches, otherwise);
        }
    }

    private ForStatement ParseFor(SourcePosition position)
    {
        var open = new OpenTag("for", position);
        AssignTarget target = _expressions.ParseAssignTarget(allowNamespace: false, extraEndName: "in");
        _tokens.ExpectName("in");
        Expression iterable = _expressions.ParseTuple(withConditional: false, extraEndName: "recursive");
        Expression? filter = _tokens.SkipName("if") ? _expressions.ParseExpression() : null;
        if (_tokens.Current.IsName("recursive")) throw _tokens.Error("recursive loops are not supported");
        ExpectBlockEnd();

        _loopDepth++;
        List<Statement> body = ParseBody(open, ["else", "endfor"], out string end);
        _loopDepth--;
        List<Statement> otherwise = [];
        if (end == "else")
        {
            ExpectBlockEnd();
            otherwise = ParseBody(open, ["endfor"], out _);
        }
        ExpectBlockEnd();
        return new ForStatement(position, target, iterable, filter, body, otherwise);
    }

    private Statement ParseSet(SourcePosition position)
    {
        AssignTarget target = _expressions.ParseAssignTarget(allowNamespace: true, extraEndName: null);
        if (_tokens.SkipOperator("="))
        {
            Expression value = _expressions.ParseTuple();
            ExpectBlockEnd();
            return new SetStatement(position, target, value);
        }

        if (target is TupleTarget) throw _tokens.Error("a 'set' block assigns one name, not several");
        var filters = new List<FilterCall>();
        while (_tokens.Current.IsOperator("|")) filters.Add(_expressions.ParseFilterCall());
        ExpectBlockEnd();
        List<Statement> body = ParseBody(new OpenTag("set", position), ["endset"], out _);
        ExpectBlockEnd();
        return new SetBlockStatement(position, target, filters, body);
    }

    private MacroStatement ParseMacro(SourcePosition position)
    {
        Token name = _tokens.Expect(TokenKind.Name, "a macro name");
        _tokens.ExpectOperator("(");
        var parameters = new List<MacroParameter>();
        while (!_tokens.Current.IsOperator(")"))
        {
            if (parameters.Count > 0) _tokens.ExpectOperator(",");
            Token parameter = _tokens.Expect(TokenKind.Name, "a parameter name");
            Expression? defaultValue = _tokens.SkipOperator("=") ? _expressions.ParseExpression() : null;
            if (defaultValue is null && parameters.Count > 0 && parameters[^1].Default is not null)
                throw TemplateSyntax.Error(parameter.Position, $"parameter '{parameter.Value}' without a default follows one with a default");
            parameters.Add(new MacroParameter(parameter.Value, defaultValue));
        }
        _tokens.ExpectOperator(")");
        ExpectBlockEnd();

        int enclosingLoops = _loopDepth;
        _loopDepth = 0;
        List<Statement> body = ParseBody(new OpenTag("macro", position), ["endmacro"], out _);
        _loopDepth = enclosingLoops;
        ExpectBlockEnd();
        return new MacroStatement(position, name.Value, parameters, body);
    }

    private void ExpectBlockEnd() => _tokens.Expect(TokenKind.BlockEnd, "'%}'");
}
