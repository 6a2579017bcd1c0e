namespace FalconOnnx.Runtime.Text.Jinja;

/// <summary>
/// A template that parsed but cannot be rendered with these values (an unsupported operation, a missing filter, a
/// wrong argument). The innermost expression or statement being evaluated stamps its position on the way out.
/// </summary>
internal sealed class TemplateRuntimeException(string message) : Exception(message)
{
    public SourcePosition? Position { get; set; }
}
