using ScottPlot;

namespace FalconOnnx.Benchmarks.Report;

/// <summary>Grouped bars, prefill tokens/s beside decode tokens/s, one group per precision pair and depth.</summary>
public static class ResultsChart
{
    private static readonly Color OursColor = Colors.SteelBlue;
    private static readonly Color PeerColor = Colors.DarkOrange;

    public static void SavePng(RaceResults results, string path)
    {
        var multiplot = new Multiplot();
        multiplot.AddPlots(2);
        multiplot.Layout = new ScottPlot.MultiplotLayouts.Columns();
        Draw(multiplot.GetPlot(0), results, "prefill", row => (row.Ours?.Speed.PrefillTokensPerSecond, row.Peer.Speed.PrefillTokensPerSecond));
        Draw(multiplot.GetPlot(1), results, "decode", row => (row.Ours?.Speed.DecodeTokensPerSecond, row.Peer.Speed.DecodeTokensPerSecond));
        multiplot.SavePng(path, 1400, 560);
    }

    private static void Draw(Plot plot, RaceResults results, string phase, Func<RaceRow, (double? Ours, double Peer)> value)
    {
        var bars = new List<Bar>();
        var ticks = new List<Tick>();
        for (int group = 0; group < results.Rows.Count; group++)
        {
            var row = results.Rows[group];
            var (ours, peer) = value(row);
            double center = group * 3;
            if (ours is { } o) bars.Add(new Bar { Position = center - 0.5, Value = o, FillColor = OursColor, Label = Label(o) });
            bars.Add(new Bar { Position = center + 0.5, Value = peer, FillColor = PeerColor, Label = Label(peer) });
            ticks.Add(new Tick(center, $"{row.Pair.OursLabel}/{row.Pair.PeerLabel}\ndepth {row.Depth}", isMajor: true));
        }
        var barPlot = plot.Add.Bars(bars);
        barPlot.ValueLabelStyle.FontSize = 11;
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(ticks.ToArray());
        // Head room above the tallest bar keeps its value label clear of the legend.
        plot.Axes.Margins(bottom: 0, top: 0.3);
        plot.Title($"Falcon-H1 {results.Size} {phase}, {results.Machine.Threads} threads");
        plot.YLabel($"{phase} tokens/s");
        plot.Legend.ManualItems.Add(new LegendItem { LabelText = "FalconOnnx.Runtime", FillColor = OursColor });
        plot.Legend.ManualItems.Add(new LegendItem { LabelText = "llama.cpp (LLamaSharp)", FillColor = PeerColor });
        plot.Legend.Alignment = Alignment.UpperRight;
        plot.ShowLegend();
    }

    private static string Label(double value) => value >= 100 ? value.ToString("F0") : value.ToString("F1");
}
