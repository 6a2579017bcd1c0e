namespace FalconOnnx;

/// <summary>
/// Bad input: a file, field or value that FalconOnnx refuses. The message is one line that names the
/// offending file, field or tensor and the value found, so a user can fix it without reading code.
/// Command-line tools map it to exit code 2.
/// </summary>
public sealed class FalconOnnxException : Exception
{
    public FalconOnnxException(string message) : base(message) { }

    public FalconOnnxException(string message, Exception inner) : base(message, inner) { }
}
