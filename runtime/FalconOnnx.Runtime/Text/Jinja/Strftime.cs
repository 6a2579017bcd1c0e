using System.Globalization;
using System.Text;

namespace FalconOnnx.Runtime.Text.Jinja;

/// <summary>
/// Python's datetime.strftime in the C locale (English names), for Hugging Face's <c>strftime_now</c>. Includes the
/// glibc '%-d' forms (no padding) that Python on Linux accepts and some templates use.
/// </summary>
internal static class Strftime
{
    public static string Format(DateTimeOffset time, string format)
    {
        var text = new StringBuilder();
        for (int i = 0; i < format.Length; i++)
        {
            if (format[i] != '%' || i + 1 >= format.Length)
            {
                text.Append(format[i]);
                continue;
            }
            bool unpadded = format[i + 1] == '-' && i + 2 < format.Length;
            if (unpadded) i++;
            char directive = format[++i];
            text.Append(Directive(time, directive, unpadded)
                ?? throw new TemplateRuntimeException($"strftime_now() does not support '%{(unpadded ? "-" : "")}{directive}'"));
        }
        return text.ToString();
    }

    private static string? Directive(DateTimeOffset time, char directive, bool unpadded)
    {
        CultureInfo c = CultureInfo.InvariantCulture;
        string Number(int value, int width) => unpadded ? value.ToString(c) : value.ToString(new string('0', width), c);
        int hour12 = time.Hour % 12 == 0 ? 12 : time.Hour % 12;
        return directive switch
        {
            'a' => time.ToString("ddd", c),
            'A' => time.ToString("dddd", c),
            'b' or 'h' => time.ToString("MMM", c),
            'B' => time.ToString("MMMM", c),
            'd' => Number(time.Day, 2),
            'e' => time.Day.ToString(c).PadLeft(2),
            'H' => Number(time.Hour, 2),
            'I' => Number(hour12, 2),
            'j' => Number(time.DayOfYear, 3),
            'm' => Number(time.Month, 2),
            'M' => Number(time.Minute, 2),
            'S' => Number(time.Second, 2),
            'f' => (time.Ticks % TimeSpan.TicksPerSecond / 10).ToString("000000", c),
            'p' => time.Hour < 12 ? "AM" : "PM",
            'y' => Number(time.Year % 100, 2),
            'Y' => time.Year.ToString(c),
            'u' => (time.DayOfWeek == DayOfWeek.Sunday ? 7 : (int)time.DayOfWeek).ToString(c),
            'w' => ((int)time.DayOfWeek).ToString(c),
            'z' => (time.Offset < TimeSpan.Zero ? "-" : "+") + time.Offset.Duration().ToString("hhmm", c),
            'F' => time.ToString("yyyy-MM-dd", c),
            'D' or 'x' => time.ToString("MM/dd/yy", c),
            'T' or 'X' => time.ToString("HH:mm:ss", c),
            'R' => time.ToString("HH:mm", c),
            'c' => time.ToString("ddd MMM ", c) + time.Day.ToString(c).PadLeft(2) + time.ToString(" HH:mm:ss yyyy", c),
            'n' => "\n",
            't' => "\t",
            '%' => "%",
            _ => null,
        };
    }
}
