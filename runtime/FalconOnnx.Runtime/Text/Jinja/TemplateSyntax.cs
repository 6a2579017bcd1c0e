namespace FalconOnnx.Runtime.Text.Jinja;

/// <summary>Builds the one-line exception for a template that does not parse.</summary>
internal static class TemplateSyntax
{
    public static FalconModelException Error(SourcePosition position, string problem) =>
        new($"Chat template syntax error at {position}: {problem}");
}
