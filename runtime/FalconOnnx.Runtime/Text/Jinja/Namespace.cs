namespace FalconOnnx.Runtime.Text.Jinja;

/// <summary>
/// What <c>namespace(...)</c> makes: the one object whose attributes <c>{% set ns.name = ... %}</c> may change, which is
/// how Jinja2 templates carry a value out of a loop body (a plain set inside a loop is local to the iteration).
/// </summary>
internal sealed class Namespace
{
    public OrderedDictionary<string, object?> Attributes { get; } = new(StringComparer.Ordinal);
}
