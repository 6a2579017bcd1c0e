namespace FalconOnnx.Runtime.Text.Jinja;

/// <summary>The <c>loop</c> variable of one iteration of a <c>for</c> (over the items that passed its filter).</summary>
internal sealed class LoopContext(IReadOnlyList<object?> items, int index0)
{
    public object? GetAttribute(string name) => name switch
    {
        "index" => (long)index0 + 1,
        "index0" => (long)index0,
        "revindex" => (long)(items.Count - index0),
        "revindex0" => (long)(items.Count - index0 - 1),
        "first" => index0 == 0,
        "last" => index0 == items.Count - 1,
        "length" => (long)items.Count,
        "previtem" => index0 > 0 ? items[index0 - 1] : new Undefined("there is no previous item"),
        "nextitem" => index0 < items.Count - 1 ? items[index0 + 1] : new Undefined("there is no next item"),
        "depth" => 1L,
        "depth0" => 0L,
        "cycle" => new BuiltinFunction("loop.cycle", Cycle),
        _ => new Undefined($"'LoopContext object' has no attribute '{name}'"),
    };

    private object? Cycle(ArgumentList arguments)
    {
        IReadOnlyList<object?> values = arguments.PositionalOnly("loop.cycle");
        if (values.Count == 0) throw new TemplateRuntimeException("loop.cycle() needs at least one value");
        return values[index0 % values.Count];
    }

    public override string ToString() => $"<LoopContext {index0 + 1}/{items.Count}>";
}
