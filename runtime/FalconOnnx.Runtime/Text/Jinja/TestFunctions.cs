namespace FalconOnnx.Runtime.Text.Jinja;

/// <summary>The tests of <c>value is name(arguments)</c>, with Jinja2's names and aliases.</summary>
internal static class TestFunctions
{
    private delegate bool Test(object? value, ArgumentList arguments);

    private static readonly Dictionary<string, Test> All = new(StringComparer.Ordinal)
    {
        ["defined"] = (v, a) => NoArguments(a, "defined", v is not Undefined),
        ["undefined"] = (v, a) => NoArguments(a, "undefined", v is Undefined),
        ["none"] = (v, a) => NoArguments(a, "none", v is null),
        ["boolean"] = (v, a) => NoArguments(a, "boolean", v is bool),
        ["true"] = (v, a) => NoArguments(a, "true", v is true),
        ["false"] = (v, a) => NoArguments(a, "false", v is false),
        ["integer"] = (v, a) => NoArguments(a, "integer", v is long),
        ["float"] = (v, a) => NoArguments(a, "float", v is double),
        // Python's bool is a number, so Jinja2's 'number' test accepts true and false.
        ["number"] = (v, a) => NoArguments(a, "number", PyValue.IsNumber(v)),
        ["string"] = (v, a) => NoArguments(a, "string", v is string),
        ["mapping"] = (v, a) => NoArguments(a, "mapping", v is DictValue),
        ["iterable"] = (v, a) => NoArguments(a, "iterable", v is string or IList<object?> or DictValue or Undefined),
        ["sequence"] = (v, a) => NoArguments(a, "sequence", v is string or IList<object?> or DictValue or Undefined),
        ["callable"] = (v, a) => NoArguments(a, "callable", v is ICallable),
        ["lower"] = (v, a) => NoArguments(a, "lower", PyString.IsAllCase(PythonText.Str(v), upper: false)),
        ["upper"] = (v, a) => NoArguments(a, "upper", PyString.IsAllCase(PythonText.Str(v), upper: true)),
        ["odd"] = (v, a) => NoArguments(a, "odd", IsOdd(v)),
        ["even"] = (v, a) => NoArguments(a, "even", !IsOdd(v)),
        ["divisibleby"] = (v, a) => PyValue.Equal(Operators.Binary(BinaryOperator.Modulo, v, Other(a, "divisibleby", "num")), 0L),
        ["sameas"] = (v, a) => IsSameAs(v, Other(a, "sameas", "other")),
        ["in"] = (v, a) => PyValue.Contains(Other(a, "in", "seq"), v),
        ["eq"] = Equal, ["equalto"] = Equal, ["=="] = Equal,
        ["ne"] = (v, a) => !PyValue.Equal(v, Other(a, "ne", "other")), ["!="] = (v, a) => !PyValue.Equal(v, Other(a, "!=", "other")),
        ["lt"] = Ordered("<", c => c < 0), ["lessthan"] = Ordered("<", c => c < 0), ["<"] = Ordered("<", c => c < 0),
        ["le"] = Ordered("<=", c => c <= 0), ["<="] = Ordered("<=", c => c <= 0),
        ["gt"] = Ordered(">", c => c > 0), ["greaterthan"] = Ordered(">", c => c > 0), [">"] = Ordered(">", c => c > 0),
        ["ge"] = Ordered(">=", c => c >= 0), [">="] = Ordered(">=", c => c >= 0),
        ["filter"] = (v, a) => NoArguments(a, "filter", v is string name && Filters.Exists(name)),
        ["test"] = (v, a) => NoArguments(a, "test", v is string name && Exists(name)),
    };

    public static bool Exists(string name) => All.ContainsKey(name);

    public static bool Apply(string name, object? value, ArgumentList arguments) =>
        All.TryGetValue(name, out Test? test)
            ? test(value, arguments)
            : throw new TemplateRuntimeException($"unknown test '{name}'");

    private static bool Equal(object? value, ArgumentList arguments) => PyValue.Equal(value, Other(arguments, "eq", "other"));

    private static Test Ordered(string op, Func<int, bool> holds) =>
        (value, arguments) => holds(PyValue.Compare(value, Other(arguments, op, "other"), op));

    private static object? Other(ArgumentList arguments, string test, string parameter) => arguments.Bind(test, parameter).Required(0);

    private static bool NoArguments(ArgumentList arguments, string test, bool result)
    {
        arguments.Bind(test);
        return result;
    }

    private static bool IsOdd(object? value) =>
        PyValue.Equal(Operators.Binary(BinaryOperator.Modulo, value, 2L), 1L);

    /// <summary>Python's 'is': the same object, which for none, booleans, numbers and strings means the same value.</summary>
    private static bool IsSameAs(object? value, object? other) =>
        value is null or bool or long or double or string ? Equals(value, other) : ReferenceEquals(value, other);
}
