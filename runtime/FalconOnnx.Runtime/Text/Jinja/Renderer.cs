using System.Text;

namespace FalconOnnx.Runtime.Text.Jinja;

/// <summary>What a body asks of its enclosing loop after it ran.</summary>
internal enum LoopFlow { Next, Break, Continue }

/// <summary>Runs statements, appending their output. One renderer serves one render call.</summary>
internal sealed class Renderer
{
    /// <summary>Deeper macro recursion than any chat template needs means a runaway template.</summary>
    private const int MaxMacroDepth = 64;

    private int _macroDepth;

    public string RenderTemplate(IReadOnlyList<Statement> body, Scope scope)
    {
        var output = new StringBuilder();
        Render(body, scope, output);
        return output.ToString();
    }

    public LoopFlow Render(IReadOnlyList<Statement> body, Scope scope, StringBuilder output)
    {
        foreach (Statement statement in body)
        {
            LoopFlow flow;
            try
            {
                flow = Execute(statement, scope, output);
            }
            catch (TemplateRuntimeException e) when (e.Position is null)
            {
                e.Position = statement.Position;
                throw;
            }
            if (flow != LoopFlow.Next) return flow;
        }
        return LoopFlow.Next;
    }

    private LoopFlow Execute(Statement statement, Scope scope, StringBuilder output)
    {
        switch (statement)
        {
            case TextStatement text:
                output.Append(text.Text);
                return LoopFlow.Next;
            case OutputStatement print:
                output.Append(PythonText.Str(ExpressionEvaluator.Evaluate(print.Value, scope)));
                return LoopFlow.Next;
            case IfStatement conditional:
                foreach (ConditionalBranch branch in conditional.Branches)
                    if (PyValue.IsTrue(ExpressionEvaluator.Evaluate(branch.Condition, scope)))
                        return Render(branch.Body, scope, output);
                return Render(conditional.Otherwise, scope, output);
            case ForStatement loop:
                return ExecuteFor(loop, scope, output);
            case LoopControlStatement control:
                return control.IsBreak ? LoopFlow.Break : LoopFlow.Continue;
            case SetStatement set:
                Assign(set.Target, ExpressionEvaluator.Evaluate(set.Value, scope), scope);
                return LoopFlow.Next;
            case SetBlockStatement setBlock:
                ExecuteSetBlock(setBlock, scope);
                return LoopFlow.Next;
            case MacroStatement macro:
                scope.Set(macro.Name, new MacroFunction(macro, scope, this));
                return LoopFlow.Next;
            default:
                throw new InvalidOperationException($"unknown statement {statement.GetType().Name}");
        }
    }

    private LoopFlow ExecuteFor(ForStatement loop, Scope scope, StringBuilder output)
    {
        List<object?> items = PyValue.Iterate(ExpressionEvaluator.Evaluate(loop.Iterable, scope)).ToList();
        if (loop.Filter is { } filter)
        {
            // Jinja2 filters before looping, so loop.length, loop.last and the else branch see only the kept items.
            items = items.Where(item =>
            {
                var itemScope = new Scope(scope);
                Assign(loop.Target, item, itemScope);
                return PyValue.IsTrue(ExpressionEvaluator.Evaluate(filter, itemScope));
            }).ToList();
        }
        if (items.Count == 0) return Render(loop.Otherwise, scope, output);

        for (int i = 0; i < items.Count; i++)
        {
            var iterationScope = new Scope(scope);
            Assign(loop.Target, items[i], iterationScope);
            iterationScope.Set("loop", new LoopContext(items, i));
            if (Render(loop.Body, iterationScope, output) == LoopFlow.Break) break;
        }
        return LoopFlow.Next;
    }

    private void ExecuteSetBlock(SetBlockStatement setBlock, Scope scope)
    {
        var body = new StringBuilder();
        Render(setBlock.Body, new Scope(scope), body);
        object? value = body.ToString();
        foreach (FilterCall filter in setBlock.Filters)
        {
            try
            {
                value = Filters.Apply(filter.Name, value, ExpressionEvaluator.EvaluateArguments(filter.Arguments, scope));
            }
            catch (TemplateRuntimeException e) when (e.Position is null)
            {
                e.Position = filter.Position;
                throw;
            }
        }
        Assign(setBlock.Target, value, scope);
    }

    private static void Assign(AssignTarget target, object? value, Scope scope)
    {
        switch (target)
        {
            case NameTarget name:
                scope.Set(name.Name, value);
                break;
            case TupleTarget tuple:
                List<object?> items = PyValue.Iterate(value).ToList();
                if (items.Count != tuple.Items.Count)
                    throw new TemplateRuntimeException(items.Count > tuple.Items.Count
                        ? $"too many values to unpack (expected {tuple.Items.Count})"
                        : $"not enough values to unpack (expected {tuple.Items.Count}, got {items.Count})");
                for (int i = 0; i < items.Count; i++) Assign(tuple.Items[i], items[i], scope);
                break;
            case NamespaceAttributeTarget attribute:
                if (scope.Lookup(attribute.Namespace) is not Namespace ns)
                    throw new TemplateRuntimeException($"cannot assign attribute on non-namespace object '{attribute.Namespace}'");
                ns.Attributes[attribute.Attribute] = value;
                break;
        }
    }

    /// <summary>A macro defined by <c>{% macro %}</c>: calling it renders its body with the arguments bound, in a scope under the one it was defined in.</summary>
    private sealed class MacroFunction(MacroStatement macro, Scope definitionScope, Renderer renderer) : ICallable
    {
        public string Name => macro.Name;

        public object? Call(ArgumentList arguments)
        {
            IReadOnlyList<MacroParameter> parameters = macro.Parameters;
            if (arguments.Positional.Count > parameters.Count)
                throw new TemplateRuntimeException($"macro '{Name}' takes {parameters.Count} arguments ({arguments.Positional.Count} given)");
            var scope = new Scope(definitionScope);
            var given = new HashSet<string>(StringComparer.Ordinal);
            for (int i = 0; i < arguments.Positional.Count; i++)
            {
                scope.Set(parameters[i].Name, arguments.Positional[i]);
                given.Add(parameters[i].Name);
            }
            foreach (var (name, value) in arguments.Named)
            {
                if (!parameters.Any(p => p.Name == name)) throw new TemplateRuntimeException($"macro '{Name}' has no parameter '{name}'");
                if (!given.Add(name)) throw new TemplateRuntimeException($"macro '{Name}' got multiple values for '{name}'");
                scope.Set(name, value);
            }
            // Defaults are evaluated at call time in the macro's scope, so they may use earlier parameters, as in Jinja2.
            foreach (MacroParameter parameter in parameters.Where(p => !given.Contains(p.Name)))
                scope.Set(parameter.Name, parameter.Default is null
                    ? new Undefined($"parameter '{parameter.Name}' was not provided")
                    : ExpressionEvaluator.Evaluate(parameter.Default, scope));

            if (renderer._macroDepth >= MaxMacroDepth) throw new TemplateRuntimeException($"macro '{Name}' recurses more than {MaxMacroDepth} deep");
            renderer._macroDepth++;
            try
            {
                var output = new StringBuilder();
                renderer.Render(macro.Body, scope, output);
                return output.ToString();
            }
            finally
            {
                renderer._macroDepth--;
            }
        }
    }
}
