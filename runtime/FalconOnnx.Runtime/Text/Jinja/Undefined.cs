namespace FalconOnnx.Runtime.Text.Jinja;

/// <summary>
/// Jinja2's default undefined value: renders as nothing, is false, iterates as empty and has length 0, so templates
/// can probe optional fields. Operations that need a real value (arithmetic, calls) fail with <see cref="Hint"/>.
/// Unlike Jinja2, attributes and items of an undefined value are undefined rather than an error, so
/// <c>a.b.c is defined</c> is simply false.
/// </summary>
internal sealed class Undefined(string hint)
{
    public string Hint { get; } = hint;

    public static Undefined Named(string name) => new($"'{name}' is undefined");
}
