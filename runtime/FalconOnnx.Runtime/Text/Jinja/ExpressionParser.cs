using System.Globalization;

namespace FalconOnnx.Runtime.Text.Jinja;

/// <summary>
/// Recursive descent over Jinja2's expression grammar, with its precedence from loosest to tightest:
/// conditional, or, and, not, comparisons and 'in', + and -, ~, * / // %, **, unary - and +, then primaries with their
/// postfixes (attributes, subscripts, calls), filters and tests.
/// </summary>
internal sealed class ExpressionParser(TokenStream tokens)
{
    private static readonly Dictionary<string, ComparisonOperator> ComparisonOperators = new()
    {
        ["=="] = ComparisonOperator.Equal,
        ["!="] = ComparisonOperator.NotEqual,
        ["<"] = ComparisonOperator.Less,
        ["<="] = ComparisonOperator.LessOrEqual,
        [">"] = ComparisonOperator.Greater,
        [">="] = ComparisonOperator.GreaterOrEqual,
    };

    private static readonly Dictionary<string, BinaryOperator> MultiplicativeOperators = new()
    {
        ["*"] = BinaryOperator.Multiply,
        ["/"] = BinaryOperator.Divide,
        ["//"] = BinaryOperator.FloorDivide,
        ["%"] = BinaryOperator.Modulo,
    };

    /// <summary>
    /// Expressions separated by commas make a tuple; a single one stands alone. This is the top level of <c>{{ }}</c>,
    /// <c>set</c> values, and <c>if</c>/<c>for</c> heads (those without the conditional form, so that <c>if</c> can
    /// follow a loop's iterable as its filter).
    /// </summary>
    public Expression ParseTuple(bool withConditional = true, bool explicitParentheses = false, string? extraEndName = null)
    {
        SourcePosition position = tokens.Current.Position;
        var items = new List<Expression>();
        bool isTuple = false;
        while (true)
        {
            if (items.Count > 0) tokens.ExpectOperator(",");
            if (IsTupleEnd(extraEndName)) break;
            items.Add(ParseExpression(withConditional));
            if (tokens.Current.IsOperator(",")) isTuple = true;
            else break;
        }

        if (!isTuple)
        {
            if (items.Count > 0) return items[0];
            if (!explicitParentheses) throw tokens.Error($"expected an expression but found {tokens.Current.Describe()}");
        }
        return new TupleExpression(position, items);
    }

    private bool IsTupleEnd(string? extraEndName)
    {
        Token current = tokens.Current;
        return current.Kind is TokenKind.VariableEnd or TokenKind.BlockEnd ||
               current.IsOperator(")") ||
               extraEndName is not null && current.IsName(extraEndName);
    }

    public Expression ParseExpression(bool withConditional = true) => withConditional ? ParseConditional() : ParseOr();

    /// <summary>
    /// The names a <c>for</c> or <c>set</c> assigns: one name, names separated by commas (unpacking), or, where
    /// allowed, <c>namespace.attribute</c>.
    /// </summary>
    public AssignTarget ParseAssignTarget(bool allowNamespace, string? extraEndName)
    {
        if (allowNamespace && tokens.Current.Kind == TokenKind.Name && tokens.Peek().IsOperator("."))
        {
            Token ns = tokens.Next();
            tokens.Next();
            Token attribute = tokens.Expect(TokenKind.Name, "an attribute name");
            return new NamespaceAttributeTarget(ns.Position, ns.Value, attribute.Value);
        }

        SourcePosition position = tokens.Current.Position;
        var items = new List<AssignTarget>();
        bool isTuple = false;
        while (true)
        {
            if (items.Count > 0) tokens.ExpectOperator(",");
            if (IsTupleEnd(extraEndName)) break;
            items.Add(ParseSimpleTarget());
            if (tokens.Current.IsOperator(",")) isTuple = true;
            else break;
        }
        if (isTuple) return new TupleTarget(position, items);
        return items.Count == 1 ? items[0] : throw tokens.Error($"expected a name to assign to but found {tokens.Current.Describe()}");
    }

    private AssignTarget ParseSimpleTarget()
    {
        Token token = tokens.Current;
        if (token.IsOperator("("))
        {
            tokens.Next();
            AssignTarget inner = ParseAssignTarget(allowNamespace: false, extraEndName: null);
            tokens.ExpectOperator(")");
            return inner;
        }
        if (token.Kind != TokenKind.Name || IsConstantName(token.Value))
            throw tokens.Error($"cannot assign to {token.Describe()}");
        tokens.Next();
        return new NameTarget(token.Position, token.Value);
    }

    private static bool IsConstantName(string name) =>
        name is "true" or "false" or "True" or "False" or "none" or "None";

    private Expression ParseConditional()
    {
        Expression expression = ParseOr();
        while (tokens.SkipName("if"))
        {
            Expression condition = ParseOr();
            Expression? otherwise = tokens.SkipName("else") ? ParseConditional() : null;
            expression = new ConditionalExpression(expression.Position, condition, expression, otherwise);
        }
        return expression;
    }

    private Expression ParseOr()
    {
        Expression left = ParseAnd();
        while (tokens.SkipName("or")) left = new LogicalExpression(left.Position, IsAnd: false, left, ParseAnd());
        return left;
    }

    private Expression ParseAnd()
    {
        Expression left = ParseNot();
        while (tokens.SkipName("and")) left = new LogicalExpression(left.Position, IsAnd: true, left, ParseNot());
        return left;
    }

    private Expression ParseNot()
    {
        if (!tokens.Current.IsName("not")) return ParseComparison();
        Token not = tokens.Next();
        return new UnaryExpression(not.Position, UnaryOperator.Not, ParseNot());
    }

    private Expression ParseComparison()
    {
        Expression first = ParseAdditive();
        var rest = new List<ComparisonOperand>();
        while (true)
        {
            Token current = tokens.Current;
            if (current.Kind == TokenKind.Operator && ComparisonOperators.TryGetValue(current.Value, out ComparisonOperator op))
            {
                tokens.Next();
                rest.Add(new ComparisonOperand(op, ParseAdditive()));
            }
            else if (tokens.SkipName("in"))
            {
                rest.Add(new ComparisonOperand(ComparisonOperator.In, ParseAdditive()));
            }
            else if (current.IsName("not") && tokens.Peek().IsName("in"))
            {
                tokens.Next();
                tokens.Next();
                rest.Add(new ComparisonOperand(ComparisonOperator.NotIn, ParseAdditive()));
            }
            else break;
        }
        return rest.Count == 0 ? first : new ComparisonExpression(first.Position, first, rest);
    }

    private Expression ParseAdditive()
    {
        Expression left = ParseConcat();
        while (tokens.Current.IsOperator("+") || tokens.Current.IsOperator("-"))
        {
            BinaryOperator op = tokens.Next().Value == "+" ? BinaryOperator.Add : BinaryOperator.Subtract;
            left = new BinaryExpression(left.Position, op, left, ParseConcat());
        }
        return left;
    }

    /// <summary>As in Jinja2, '~' binds tighter than '+' and looser than '*'.</summary>
    private Expression ParseConcat()
    {
        Expression left = ParseMultiplicative();
        while (tokens.SkipOperator("~")) left = new BinaryExpression(left.Position, BinaryOperator.Concat, left, ParseMultiplicative());
        return left;
    }

    private Expression ParseMultiplicative()
    {
        Expression left = ParsePower();
        while (tokens.Current.Kind == TokenKind.Operator && MultiplicativeOperators.TryGetValue(tokens.Current.Value, out BinaryOperator op))
        {
            tokens.Next();
            left = new BinaryExpression(left.Position, op, left, ParsePower());
        }
        return left;
    }

    /// <summary>Left-associative, as Jinja2 parses it (Python's ** is right-associative).</summary>
    private Expression ParsePower()
    {
        Expression left = ParseUnary();
        while (tokens.SkipOperator("**")) left = new BinaryExpression(left.Position, BinaryOperator.Power, left, ParseUnary());
        return left;
    }

    private Expression ParseUnary(bool withFilters = true)
    {
        Token token = tokens.Current;
        Expression node;
        if (token.IsOperator("-") || token.IsOperator("+"))
        {
            tokens.Next();
            UnaryOperator op = token.Value == "-" ? UnaryOperator.Negate : UnaryOperator.Plus;
            node = new UnaryExpression(token.Position, op, ParseUnary(withFilters: false));
        }
        else
        {
            node = ParsePrimary();
        }
        node = ParsePostfix(node);
        return withFilters ? ParseFiltersAndTests(node) : node;
    }

    private Expression ParsePrimary()
    {
        Token token = tokens.Current;
        switch (token.Kind)
        {
            case TokenKind.Name:
                tokens.Next();
                return token.Value switch
                {
                    "true" or "True" => new LiteralExpression(token.Position, true),
                    "false" or "False" => new LiteralExpression(token.Position, false),
                    "none" or "None" => new LiteralExpression(token.Position, null),
                    _ => new NameExpression(token.Position, token.Value),
                };
            case TokenKind.String:
                // Adjacent string literals join, as in Python.
                string text = tokens.Next().Value;
                while (tokens.Current.Kind == TokenKind.String) text += tokens.Next().Value;
                return new LiteralExpression(token.Position, text);
            case TokenKind.Integer:
                tokens.Next();
                return long.TryParse(token.Value, NumberStyles.None, CultureInfo.InvariantCulture, out long integer)
                    ? new LiteralExpression(token.Position, integer)
                    : throw TemplateSyntax.Error(token.Position, $"integer {token.Value} is too large");
            case TokenKind.Float:
                tokens.Next();
                return new LiteralExpression(token.Position, double.Parse(token.Value, NumberStyles.Float, CultureInfo.InvariantCulture));
            case TokenKind.Operator when token.Value == "(":
                tokens.Next();
                Expression inner = ParseTuple(explicitParentheses: true);
                tokens.ExpectOperator(")");
                return inner;
            case TokenKind.Operator when token.Value == "[":
                return ParseList();
            case TokenKind.Operator when token.Value == "{":
                return ParseDict();
            default:
                throw tokens.Error($"expected an expression but found {token.Describe()}");
        }
    }

    private ListExpression ParseList()
    {
        Token open = tokens.ExpectOperator("[");
        var items = new List<Expression>();
        while (!tokens.Current.IsOperator("]"))
        {
            if (items.Count > 0)
            {
                tokens.ExpectOperator(",");
                if (tokens.Current.IsOperator("]")) break;
            }
            items.Add(ParseExpression());
        }
        tokens.ExpectOperator("]");
        return new ListExpression(open.Position, items);
    }

    private DictExpression ParseDict()
    {
        Token open = tokens.ExpectOperator("{");
        var entries = new List<KeyValuePair<Expression, Expression>>();
        while (!tokens.Current.IsOperator("}"))
        {
            if (entries.Count > 0)
            {
                tokens.ExpectOperator(",");
                if (tokens.Current.IsOperator("}")) break;
            }
            Expression key = ParseExpression();
            tokens.ExpectOperator(":");
            entries.Add(new(key, ParseExpression()));
        }
        tokens.ExpectOperator("}");
        return new DictExpression(open.Position, entries);
    }

    private Expression ParsePostfix(Expression node)
    {
        while (true)
        {
            if (tokens.Current.IsOperator(".")) node = ParseAttribute(node);
            else if (tokens.Current.IsOperator("[")) node = ParseSubscript(node);
            else if (tokens.Current.IsOperator("(")) node = new CallExpression(node.Position, node, ParseCallArguments());
            else return node;
        }
    }

    /// <summary>Filters, tests and calls may follow each other freely, as in Jinja2.</summary>
    private Expression ParseFiltersAndTests(Expression node)
    {
        while (true)
        {
            if (tokens.Current.IsOperator("|"))
            {
                FilterCall filter = ParseFilterCall();
                node = new FilterExpression(filter.Position, node, filter.Name, filter.Arguments);
            }
            else if (tokens.Current.IsName("is")) node = ParseTest(node);
            else if (tokens.Current.IsOperator("(")) node = new CallExpression(node.Position, node, ParseCallArguments());
            else return node;
        }
    }

    private Expression ParseAttribute(Expression node)
    {
        tokens.ExpectOperator(".");
        Token name = tokens.Next();
        return name.Kind switch
        {
            TokenKind.Name => new AttributeExpression(node.Position, node, name.Value),
            // 'items.0' is Jinja2's spelling of items[0].
            TokenKind.Integer => new ItemExpression(node.Position, node, new LiteralExpression(name.Position, long.Parse(name.Value, CultureInfo.InvariantCulture))),
            _ => throw TemplateSyntax.Error(name.Position, $"expected an attribute name after '.' but found {name.Describe()}"),
        };
    }

    private Expression ParseSubscript(Expression node)
    {
        tokens.ExpectOperator("[");
        Expression? start = null;
        if (!tokens.Current.IsOperator(":"))
        {
            start = ParseExpression();
            if (!tokens.Current.IsOperator(":"))
            {
                if (tokens.Current.IsOperator(",")) throw tokens.Error("subscripts with several values are not supported");
                tokens.ExpectOperator("]");
                return new ItemExpression(node.Position, node, start);
            }
        }

        tokens.ExpectOperator(":");
        Expression? stop = tokens.Current.IsOperator("]") || tokens.Current.IsOperator(":") ? null : ParseExpression();
        Expression? step = null;
        if (tokens.SkipOperator(":") && !tokens.Current.IsOperator("]")) step = ParseExpression();
        tokens.ExpectOperator("]");
        return new SliceExpression(node.Position, node, start, stop, step);
    }

    /// <summary>'| name' with optional arguments; the name may be dotted, as Jinja2 allows.</summary>
    public FilterCall ParseFilterCall()
    {
        tokens.ExpectOperator("|");
        Token name = tokens.Expect(TokenKind.Name, "a filter name");
        string fullName = ParseDottedRest(name.Value);
        CallArguments arguments = tokens.Current.IsOperator("(") ? ParseCallArguments() : CallArguments.None;
        return new FilterCall(name.Position, fullName, arguments);
    }

    private TestExpression ParseTest(Expression node)
    {
        Token isToken = tokens.ExpectName("is");
        bool negated = tokens.SkipName("not");
        Token name = tokens.Expect(TokenKind.Name, "a test name");
        string fullName = ParseDottedRest(name.Value);

        CallArguments arguments = CallArguments.None;
        if (tokens.Current.IsOperator("("))
        {
            arguments = ParseCallArguments();
        }
        else if (StartsTestArgument(tokens.Current))
        {
            // Jinja2 takes one bare argument after a test name: 'x is divisibleby 3', 'x is sameas false'.
            if (tokens.Current.IsName("is")) throw tokens.Error("tests cannot be chained with 'is'");
            arguments = new CallArguments([ParsePostfix(ParsePrimary())], []);
        }
        return new TestExpression(isToken.Position, node, fullName, arguments, negated);
    }

    private static bool StartsTestArgument(Token token)
    {
        if (token.IsName("else") || token.IsName("or") || token.IsName("and")) return false;
        return token.Kind is TokenKind.Name or TokenKind.String or TokenKind.Integer or TokenKind.Float ||
               token.IsOperator("[") || token.IsOperator("{");
    }

    private string ParseDottedRest(string name)
    {
        while (tokens.SkipOperator(".")) name += "." + tokens.Expect(TokenKind.Name, "a name").Value;
        return name;
    }

    private CallArguments ParseCallArguments()
    {
        tokens.ExpectOperator("(");
        var positional = new List<Expression>();
        var named = new List<KeyValuePair<string, Expression>>();
        while (!tokens.Current.IsOperator(")"))
        {
            if (positional.Count + named.Count > 0)
            {
                tokens.ExpectOperator(",");
                if (tokens.Current.IsOperator(")")) break;
            }
            if (tokens.Current.IsOperator("*") || tokens.Current.IsOperator("**"))
                throw tokens.Error("'*' and '**' arguments are not supported");

            if (tokens.Current.Kind == TokenKind.Name && tokens.Peek().IsOperator("="))
            {
                Token name = tokens.Next();
                tokens.Next();
                if (named.Any(n => n.Key == name.Value))
                    throw TemplateSyntax.Error(name.Position, $"argument '{name.Value}' is given twice");
                named.Add(new(name.Value, ParseExpression()));
            }
            else
            {
                if (named.Count > 0) throw tokens.Error("a positional argument follows a keyword argument");
                positional.Add(ParseExpression());
            }
        }
        tokens.ExpectOperator(")");
        return new CallArguments(positional, named);
    }
}
