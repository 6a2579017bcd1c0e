namespace FalconOnnx.Runtime.Text.Jinja;

/// <summary>
/// Variables visible at a point of the template. Each loop iteration and macro call gets a child scope, so a plain
/// <c>set</c> there is lost when it ends, as in Jinja2; <c>if</c> opens none.
/// </summary>
internal sealed class Scope(Scope? parent)
{
    private readonly Dictionary<string, object?> _variables = new(StringComparer.Ordinal);

    public object? Lookup(string name)
    {
        for (Scope? scope = this; scope is not null; scope = scope.Parent)
            if (scope._variables.TryGetValue(name, out object? value)) return value;
        return Undefined.Named(name);
    }

    public void Set(string name, object? value) => _variables[name] = value;

    public Scope? Parent { get; } = parent;
}
