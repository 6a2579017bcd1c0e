namespace FalconOnnx.Runtime.Text.Jinja;

/// <summary>A node of a template body: text, an output, or a tag.</summary>
internal abstract record Statement(SourcePosition Position);

internal sealed record TextStatement(SourcePosition Position, string Text) : Statement(Position);

/// <summary><c>{{ value }}</c></summary>
internal sealed record OutputStatement(SourcePosition Position, Expression Value) : Statement(Position);

/// <summary><c>{% if %}</c> with its <c>elif</c> branches in order, and the <c>else</c> body (empty when absent).</summary>
internal sealed record IfStatement(SourcePosition Position, IReadOnlyList<ConditionalBranch> Branches, IReadOnlyList<Statement> Otherwise)
    : Statement(Position);

internal sealed record ConditionalBranch(Expression Condition, IReadOnlyList<Statement> Body);

/// <summary><c>{% for target in iterable if filter %}</c>; <see cref="Otherwise"/> runs when no item passed the filter.</summary>
internal sealed record ForStatement(
    SourcePosition Position,
    AssignTarget Target,
    Expression Iterable,
    Expression? Filter,
    IReadOnlyList<Statement> Body,
    IReadOnlyList<Statement> Otherwise) : Statement(Position);

/// <summary><c>{% break %}</c> or <c>{% continue %}</c> (Hugging Face enables Jinja2's loopcontrols extension).</summary>
internal sealed record LoopControlStatement(SourcePosition Position, bool IsBreak) : Statement(Position);

/// <summary><c>{% set target = value %}</c></summary>
internal sealed record SetStatement(SourcePosition Position, AssignTarget Target, Expression Value) : Statement(Position);

/// <summary><c>{% set target | filters %}body{% endset %}</c>: the rendered body, through the filters, is assigned.</summary>
internal sealed record SetBlockStatement(
    SourcePosition Position,
    AssignTarget Target,
    IReadOnlyList<FilterCall> Filters,
    IReadOnlyList<Statement> Body) : Statement(Position);

/// <summary>A filter applied to a set block's rendered body.</summary>
internal sealed record FilterCall(SourcePosition Position, string Name, CallArguments Arguments);

/// <summary><c>{% macro name(parameters) %}body{% endmacro %}</c></summary>
internal sealed record MacroStatement(SourcePosition Position, string Name, IReadOnlyList<MacroParameter> Parameters, IReadOnlyList<Statement> Body)
    : Statement(Position);

internal sealed record MacroParameter(string Name, Expression? Default);

/// <summary>What a <c>set</c> or <c>for</c> assigns to.</summary>
internal abstract record AssignTarget(SourcePosition Position);

internal sealed record NameTarget(SourcePosition Position, string Name) : AssignTarget(Position);

/// <summary><c>a, b</c>: unpacks a sequence of exactly that many items.</summary>
internal sealed record TupleTarget(SourcePosition Position, IReadOnlyList<AssignTarget> Items) : AssignTarget(Position);

/// <summary><c>ns.attribute</c>, allowed on objects made by <c>namespace()</c> only.</summary>
internal sealed record NamespaceAttributeTarget(SourcePosition Position, string Namespace, string Attribute) : AssignTarget(Position);
