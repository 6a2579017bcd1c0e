namespace FalconOnnx.Onnx;

/// <summary>ONNX tensor element types (values of <c>TensorProto.DataType</c>).</summary>
public enum ElementType
{
    Float = 1,
    UInt8 = 2,
    Int8 = 3,
    Int32 = 6,
    Int64 = 7,
    Bool = 9,
    Float16 = 10,
    BFloat16 = 16,
}

public static class ElementTypeExtensions
{
    public static int Size(this ElementType type) => type switch
    {
        ElementType.Float or ElementType.Int32 => 4,
        ElementType.Int64 => 8,
        ElementType.Float16 or ElementType.BFloat16 => 2,
        ElementType.UInt8 or ElementType.Int8 or ElementType.Bool => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, null),
    };

    public static string OnnxName(this ElementType type) => type switch
    {
        ElementType.Float => "float32",
        ElementType.Float16 => "float16",
        ElementType.BFloat16 => "bfloat16",
        ElementType.Int64 => "int64",
        ElementType.Int32 => "int32",
        ElementType.UInt8 => "uint8",
        ElementType.Int8 => "int8",
        ElementType.Bool => "bool",
        _ => type.ToString(),
    };
}
