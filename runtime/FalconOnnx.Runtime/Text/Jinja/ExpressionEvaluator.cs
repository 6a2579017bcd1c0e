namespace FalconOnnx.Runtime.Text.Jinja;

/// <summary>Evaluates expressions in a scope. A runtime error leaves stamped with the innermost expression's position.</summary>
internal static class ExpressionEvaluator
{
    public static object? Evaluate(Expression expression, Scope scope)
    {
        try
        {
            return EvaluateNode(expression, scope);
        }
        catch (TemplateRuntimeException e) when (e.Position is null)
        {
            e.Position = expression.Position;
            throw;
        }
    }

    private static object? EvaluateNode(Expression expression, Scope scope) => expression switch
    {
        LiteralExpression literal => literal.Value,
        NameExpression name => scope.Lookup(name.Name),
        ListExpression list => list.Items.Select(item => Evaluate(item, scope)).ToList(),
        TupleExpression tuple => tuple.Items.Select(item => Evaluate(item, scope)).ToArray(),
        DictExpression dict => EvaluateDict(dict, scope),
        AttributeExpression attribute => Lookup.Attribute(Evaluate(attribute.Target, scope), attribute.Name),
        ItemExpression item => Lookup.Item(Evaluate(item.Target, scope), Evaluate(item.Index, scope)),
        SliceExpression slice => Lookup.Slice(
            Evaluate(slice.Target, scope), EvaluateOptional(slice.Start, scope), EvaluateOptional(slice.Stop, scope), EvaluateOptional(slice.Step, scope)),
        CallExpression call => Call(Evaluate(call.Callee, scope), EvaluateArguments(call.Arguments, scope)),
        FilterExpression filter => Filters.Apply(filter.Name, Evaluate(filter.Value, scope), EvaluateArguments(filter.Arguments, scope)),
        TestExpression test => TestFunctions.Apply(test.Name, Evaluate(test.Value, scope), EvaluateArguments(test.Arguments, scope)) != test.Negated,
        UnaryExpression unary => Operators.Unary(unary.Operator, Evaluate(unary.Operand, scope)),
        BinaryExpression binary => Operators.Binary(binary.Operator, Evaluate(binary.Left, scope), Evaluate(binary.Right, scope)),
        LogicalExpression logical => EvaluateLogical(logical, scope),
        ComparisonExpression comparison => EvaluateComparison(comparison, scope),
        ConditionalExpression conditional => PyValue.IsTrue(Evaluate(conditional.Condition, scope))
            ? Evaluate(conditional.WhenTrue, scope)
            : conditional.WhenFalse is null ? new Undefined("the condition was false and there is no 'else'") : Evaluate(conditional.WhenFalse, scope),
        _ => throw new InvalidOperationException($"unknown expression {expression.GetType().Name}"),
    };

    public static ArgumentList EvaluateArguments(CallArguments arguments, Scope scope) =>
        arguments.Positional.Count == 0 && arguments.Named.Count == 0
            ? ArgumentList.Empty
            : new ArgumentList(
                arguments.Positional.Select(argument => Evaluate(argument, scope)).ToList(),
                arguments.Named.Select(named => new KeyValuePair<string, object?>(named.Key, Evaluate(named.Value, scope))).ToList());

    private static object? EvaluateOptional(Expression? expression, Scope scope) =>
        expression is null ? null : Evaluate(expression, scope);

    private static DictValue EvaluateDict(DictExpression expression, Scope scope)
    {
        var dict = new DictValue();
        foreach (var (key, value) in expression.Entries) dict.Put(Evaluate(key, scope), Evaluate(value, scope));
        return dict;
    }

    private static object? Call(object? callee, ArgumentList arguments) => callee switch
    {
        ICallable callable => callable.Call(arguments),
        Undefined undefined => throw new TemplateRuntimeException(undefined.Hint),
        _ => throw new TemplateRuntimeException($"'{PyValue.TypeName(callee)}' object is not callable"),
    };

    private static object? EvaluateLogical(LogicalExpression logical, Scope scope)
    {
        object? left = Evaluate(logical.Left, scope);
        bool decided = logical.IsAnd ? !PyValue.IsTrue(left) : PyValue.IsTrue(left);
        return decided ? left : Evaluate(logical.Right, scope);
    }

    private static bool EvaluateComparison(ComparisonExpression comparison, Scope scope)
    {
        object? left = Evaluate(comparison.First, scope);
        foreach (ComparisonOperand operand in comparison.Rest)
        {
            object? right = Evaluate(operand.Right, scope);
            bool holds = operand.Operator switch
            {
                ComparisonOperator.Equal => PyValue.Equal(left, right),
                ComparisonOperator.NotEqual => !PyValue.Equal(left, right),
                ComparisonOperator.Less => PyValue.Compare(left, right, "<") < 0,
                ComparisonOperator.LessOrEqual => PyValue.Compare(left, right, "<=") <= 0,
                ComparisonOperator.Greater => PyValue.Compare(left, right, ">") > 0,
                ComparisonOperator.GreaterOrEqual => PyValue.Compare(left, right, ">=") >= 0,
                ComparisonOperator.In => PyValue.Contains(right, left),
                _ => !PyValue.Contains(right, left),
            };
            if (!holds) return false;
            left = right;
        }
        return true;
    }
}
