namespace FalconOnnx.Runtime.Text.Jinja;

/// <summary>The evaluated arguments of a call, filter or test.</summary>
internal sealed class ArgumentList(IReadOnlyList<object?> positional, IReadOnlyList<KeyValuePair<string, object?>> named)
{
    public static readonly ArgumentList Empty = new([], []);

    public IReadOnlyList<object?> Positional { get; } = positional;

    public IReadOnlyList<KeyValuePair<string, object?>> Named { get; } = named;

    /// <summary>
    /// Matches the arguments to <paramref name="parameters"/> as Python would: positional values in order, then
    /// named values by name. Too many values, or a name that is no parameter, is an error naming <paramref name="callee"/>.
    /// </summary>
    public BoundArguments Bind(string callee, params string[] parameters)
    {
        if (Positional.Count > parameters.Length)
            throw new TemplateRuntimeException($"{callee}() takes at most {parameters.Length} arguments ({Positional.Count} given)");
        var values = new object?[parameters.Length];
        var given = new bool[parameters.Length];
        for (int i = 0; i < Positional.Count; i++)
        {
            values[i] = Positional[i];
            given[i] = true;
        }
        foreach (var (name, value) in Named)
        {
            int index = Array.IndexOf(parameters, name);
            if (index < 0) throw new TemplateRuntimeException($"{callee}() got an unexpected keyword argument '{name}'");
            if (given[index]) throw new TemplateRuntimeException($"{callee}() got multiple values for argument '{name}'");
            values[index] = value;
            given[index] = true;
        }
        return new BoundArguments(callee, parameters, values, given);
    }

    /// <summary>Positional arguments only, any number (for functions like <c>loop.cycle</c>).</summary>
    public IReadOnlyList<object?> PositionalOnly(string callee) =>
        Named.Count == 0 ? Positional : throw new TemplateRuntimeException($"{callee}() takes no keyword arguments");
}

internal sealed class BoundArguments(string callee, string[] parameters, object?[] values, bool[] given)
{
    public bool Has(int index) => given[index];

    public object? Or(int index, object? fallback) => given[index] ? values[index] : fallback;

    public object? Required(int index) =>
        given[index] ? values[index] : throw new TemplateRuntimeException($"{callee}() missing argument '{parameters[index]}'");

    public string? OptionalString(int index) => given[index] && values[index] is not null ? RequireString(index) : null;

    public string RequireString(int index) =>
        Required(index) as string ?? throw new TemplateRuntimeException(
            $"{callee}() argument '{parameters[index]}' must be a string, not {PyValue.TypeName(values[index])}");

    public bool Flag(int index) => given[index] && PyValue.IsTrue(values[index]);

    public long Integer(int index, long fallback) =>
        !given[index] ? fallback
        : PyValue.AsInteger(values[index]) ?? throw new TemplateRuntimeException(
            $"{callee}() argument '{parameters[index]}' must be an integer, not {PyValue.TypeName(values[index])}");
}
