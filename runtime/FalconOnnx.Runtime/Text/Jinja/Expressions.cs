namespace FalconOnnx.Runtime.Text.Jinja;

internal abstract record Expression(SourcePosition Position);

/// <summary>A constant: a string, long, double, bool, or null (Jinja's none).</summary>
internal sealed record LiteralExpression(SourcePosition Position, object? Value) : Expression(Position);

internal sealed record NameExpression(SourcePosition Position, string Name) : Expression(Position);

internal sealed record ListExpression(SourcePosition Position, IReadOnlyList<Expression> Items) : Expression(Position);

internal sealed record TupleExpression(SourcePosition Position, IReadOnlyList<Expression> Items) : Expression(Position);

internal sealed record DictExpression(SourcePosition Position, IReadOnlyList<KeyValuePair<Expression, Expression>> Entries) : Expression(Position);

/// <summary><c>target.name</c>: an attribute first (such as a method), then an item, as Jinja2 looks it up.</summary>
internal sealed record AttributeExpression(SourcePosition Position, Expression Target, string Name) : Expression(Position);

/// <summary><c>target[index]</c>: an item first, then an attribute.</summary>
internal sealed record ItemExpression(SourcePosition Position, Expression Target, Expression Index) : Expression(Position);

/// <summary><c>target[start:stop:step]</c> with Python's slice rules.</summary>
internal sealed record SliceExpression(SourcePosition Position, Expression Target, Expression? Start, Expression? Stop, Expression? Step)
    : Expression(Position);

internal sealed record CallArguments(IReadOnlyList<Expression> Positional, IReadOnlyList<KeyValuePair<string, Expression>> Named)
{
    public static readonly CallArguments None = new([], []);
}

internal sealed record CallExpression(SourcePosition Position, Expression Callee, CallArguments Arguments) : Expression(Position);

/// <summary><c>value | name(arguments)</c></summary>
internal sealed record FilterExpression(SourcePosition Position, Expression Value, string Name, CallArguments Arguments) : Expression(Position);

/// <summary><c>value is [not] name(arguments)</c></summary>
internal sealed record TestExpression(SourcePosition Position, Expression Value, string Name, CallArguments Arguments, bool Negated)
    : Expression(Position);

internal enum UnaryOperator { Negate, Plus, Not }

internal sealed record UnaryExpression(SourcePosition Position, UnaryOperator Operator, Expression Operand) : Expression(Position);

internal enum BinaryOperator { Add, Subtract, Multiply, Divide, FloorDivide, Modulo, Power, Concat }

internal sealed record BinaryExpression(SourcePosition Position, BinaryOperator Operator, Expression Left, Expression Right) : Expression(Position);

/// <summary><c>and</c> / <c>or</c>: like Python, the result is the deciding operand, not a bool.</summary>
internal sealed record LogicalExpression(SourcePosition Position, bool IsAnd, Expression Left, Expression Right) : Expression(Position);

internal enum ComparisonOperator { Equal, NotEqual, Less, LessOrEqual, Greater, GreaterOrEqual, In, NotIn }

internal sealed record ComparisonOperand(ComparisonOperator Operator, Expression Right);

/// <summary><c>a &lt; b &lt;= c</c>: chained like Python, each operand evaluated once.</summary>
internal sealed record ComparisonExpression(SourcePosition Position, Expression First, IReadOnlyList<ComparisonOperand> Rest) : Expression(Position);

/// <summary><c>whenTrue if condition else whenFalse</c>; without <c>else</c> a false condition gives undefined.</summary>
internal sealed record ConditionalExpression(SourcePosition Position, Expression Condition, Expression WhenTrue, Expression? WhenFalse)
    : Expression(Position);
