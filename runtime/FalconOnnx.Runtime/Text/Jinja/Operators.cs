namespace FalconOnnx.Runtime.Text.Jinja;

/// <summary>Python's arithmetic on template values: int stays int (except /), int with float gives float, + joins strings and lists.</summary>
internal static class Operators
{
    private static readonly Dictionary<BinaryOperator, string> Symbols = new()
    {
        [BinaryOperator.Add] = "+",
        [BinaryOperator.Subtract] = "-",
        [BinaryOperator.Multiply] = "*",
        [BinaryOperator.Divide] = "/",
        [BinaryOperator.FloorDivide] = "//",
        [BinaryOperator.Modulo] = "%",
        [BinaryOperator.Power] = "**",
        [BinaryOperator.Concat] = "~",
    };

    /// <summary>The most items or characters a repetition ('ab' * n) may make; a guard against runaway templates.</summary>
    private const long MaxRepetition = 10_000_000;

    public static object? Binary(BinaryOperator op, object? left, object? right)
    {
        if (op == BinaryOperator.Concat) return PythonText.Str(left) + PythonText.Str(right);
        if (left is Undefined undefinedLeft) throw new TemplateRuntimeException(undefinedLeft.Hint);
        if (right is Undefined undefinedRight) throw new TemplateRuntimeException(undefinedRight.Hint);
        if (PyValue.IsNumber(left) && PyValue.IsNumber(right)) return Numeric(op, left, right);

        return (op, left, right) switch
        {
            (BinaryOperator.Add, string a, string b) => a + b,
            (BinaryOperator.Add, List<object?> a, List<object?> b) => a.Concat(b).ToList(),
            (BinaryOperator.Add, object?[] a, object?[] b) => a.Concat(b).ToArray(),
            (BinaryOperator.Multiply, _, _) when Repeat(left, right) is { } repeated => repeated,
            (BinaryOperator.Modulo, string, _) => throw new TemplateRuntimeException("'%' string formatting is not supported; use '~' or the format of the values"),
            _ => throw new TemplateRuntimeException(
                $"unsupported operand type(s) for {Symbols[op]}: '{PyValue.TypeName(left)}' and '{PyValue.TypeName(right)}'"),
        };
    }

    public static object? Unary(UnaryOperator op, object? operand)
    {
        if (op == UnaryOperator.Not) return !PyValue.IsTrue(operand);
        if (operand is Undefined undefined) throw new TemplateRuntimeException(undefined.Hint);
        return (op, operand) switch
        {
            (UnaryOperator.Negate, double d) => (object)-d,
            (UnaryOperator.Negate, _) when PyValue.AsInteger(operand) is { } l => checked(-l),
            (UnaryOperator.Plus, double d) => (object)d,
            (UnaryOperator.Plus, _) when PyValue.AsInteger(operand) is { } l => l,
            _ => throw new TemplateRuntimeException(
                $"bad operand type for unary {(op == UnaryOperator.Negate ? "-" : "+")}: '{PyValue.TypeName(operand)}'"),
        };
    }

    private static object Numeric(BinaryOperator op, object? left, object? right)
    {
        long? a = PyValue.AsInteger(left), b = PyValue.AsInteger(right);
        try
        {
            if (a is { } x && b is { } y) return IntegerArithmetic(op, x, y);
            return FloatArithmetic(op, PyValue.AsDouble(left), PyValue.AsDouble(right));
        }
        catch (OverflowException)
        {
            throw new TemplateRuntimeException($"integer overflow in {Symbols[op]}");
        }
    }

    private static object IntegerArithmetic(BinaryOperator op, long x, long y)
    {
        if (y == 0 && op is BinaryOperator.Divide or BinaryOperator.FloorDivide or BinaryOperator.Modulo)
            throw new TemplateRuntimeException(op == BinaryOperator.Modulo ? "integer modulo by zero" : "division by zero");
        switch (op)
        {
            case BinaryOperator.Add: return checked(x + y);
            case BinaryOperator.Subtract: return checked(x - y);
            case BinaryOperator.Multiply: return checked(x * y);
            case BinaryOperator.Divide: return (double)x / y;
            case BinaryOperator.FloorDivide:
                long quotient = x / y;
                return x % y != 0 && (x < 0) != (y < 0) ? quotient - 1 : quotient;
            case BinaryOperator.Modulo:
                long remainder = x % y;
                return remainder != 0 && (remainder < 0) != (y < 0) ? remainder + y : remainder;
            default:
                if (y < 0) return Math.Pow(x, y);
                long power = 1;
                for (long i = 0; i < y; i++) power = checked(power * x);
                return power;
        }
    }

    private static double FloatArithmetic(BinaryOperator op, double x, double y)
    {
        if (y == 0 && op is BinaryOperator.Divide or BinaryOperator.FloorDivide or BinaryOperator.Modulo)
            throw new TemplateRuntimeException("float division by zero");
        switch (op)
        {
            case BinaryOperator.Add: return x + y;
            case BinaryOperator.Subtract: return x - y;
            case BinaryOperator.Multiply: return x * y;
            case BinaryOperator.Divide: return x / y;
            case BinaryOperator.FloorDivide: return Math.Floor(x / y);
            case BinaryOperator.Modulo:
                double remainder = x % y;
                return remainder != 0 && (remainder < 0) != (y < 0) ? remainder + y : remainder;
            default: return Math.Pow(x, y);
        }
    }

    /// <summary>Python's sequence repetition: 'ab' * 3, [0] * 3, 3 * 'ab'; null when the operands are not of that form.</summary>
    private static object? Repeat(object? left, object? right)
    {
        (object? sequence, long? count) = PyValue.AsInteger(right) is { } r ? (left, r) : (right, PyValue.AsInteger(left));
        if (count is not { } times || sequence is not (string or List<object?> or object?[])) return null;
        times = Math.Max(0, times);
        if (times > MaxRepetition || times * Math.Max(1, PyValue.Length(sequence)) > MaxRepetition)
            throw new TemplateRuntimeException($"repetition of {times} is too large");
        return sequence switch
        {
            string s => string.Concat(Enumerable.Repeat(s, (int)times)),
            List<object?> list => Enumerable.Repeat(list, (int)times).SelectMany(items => items).ToList(),
            _ => Enumerable.Repeat((object?[])sequence, (int)times).SelectMany(items => items).ToArray(),
        };
    }
}
