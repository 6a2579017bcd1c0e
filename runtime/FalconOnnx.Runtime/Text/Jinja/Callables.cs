namespace FalconOnnx.Runtime.Text.Jinja;

/// <summary>Something a template may call: a global function, a bound string or dict method, a macro.</summary>
internal interface ICallable
{
    string Name { get; }

    object? Call(ArgumentList arguments);
}

internal sealed class BuiltinFunction(string name, Func<ArgumentList, object?> body) : ICallable
{
    public string Name { get; } = name;

    public object? Call(ArgumentList arguments) => body(arguments);
}
