namespace FalconOnnx.Runtime;

/// <summary>A folder, manifest, prompt or option the runtime refuses; the message names the value.</summary>
public sealed class FalconModelException : Exception
{
    public FalconModelException(string message) : base(message) { }

    public FalconModelException(string message, Exception inner) : base(message, inner) { }
}
