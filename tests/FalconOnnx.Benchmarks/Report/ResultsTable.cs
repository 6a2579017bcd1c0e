using System.Globalization;
using System.Text;

namespace FalconOnnx.Benchmarks.Report;

/// <summary>The markdown report: the race table, the logit agreement, the machine and the files raced.</summary>
public static class ResultsTable
{
    public static string Markdown(RaceResults r)
    {
        var m = r.Machine;
        var text = new StringBuilder();
        text.AppendLine($"# Falcon-H1 {r.Size}: FalconOnnx.Runtime vs llama.cpp (LLamaSharp)");
        text.AppendLine();
        text.AppendLine($"Prefill of {r.PromptTokens} tokens and greedy decode of {r.DecodeSteps} tokens after a context of `depth` tokens, " +
            $"{m.Threads} threads on both sides, best of {r.Runs} runs after a warm-up. Ratio = ours / llama.cpp. " +
            $"% ceiling = decode tokens/s × bytes read per token / measured bandwidth (the best reading of the run, {F(m.BandwidthGigabytesPerSecond, 1)} GB/s); " +
            "% beside = the same against the better of the readings taken just before and after that row (GB/s in brackets).");
        text.AppendLine();
        text.AppendLine("| precision (ours / llama.cpp) | depth | ours prefill tok/s | llama.cpp prefill tok/s | prefill ratio | ours decode tok/s | llama.cpp decode tok/s | decode ratio | ours % ceiling | llama.cpp % ceiling | ours % beside | llama.cpp % beside |");
        text.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var row in r.Rows)
        {
            var ours = row.Ours;
            var peer = row.Peer;
            string missing = ours is null ? "n/a" : "";
            text.AppendLine(string.Join(" | ",
                $"| {row.Pair.OursLabel} / {row.Pair.PeerLabel}",
                row.Depth.ToString(CultureInfo.InvariantCulture),
                ours is null ? missing : F(ours.Speed.PrefillTokensPerSecond, 1),
                F(peer.Speed.PrefillTokensPerSecond, 1),
                ours is null ? missing : F(ours.Speed.PrefillTokensPerSecond / peer.Speed.PrefillTokensPerSecond, 2),
                ours is null ? missing : F(ours.Speed.DecodeTokensPerSecond, 2),
                F(peer.Speed.DecodeTokensPerSecond, 2),
                ours is null ? missing : F(ours.Speed.DecodeTokensPerSecond / peer.Speed.DecodeTokensPerSecond, 2),
                ours is null ? missing : F(ours.PercentOfCeiling(m.BandwidthGigabytesPerSecond), 0) + " %",
                F(peer.PercentOfCeiling(m.BandwidthGigabytesPerSecond), 0) + " %",
                ours is null ? missing : F(ours.PercentOfCeiling(row.BandwidthBeside), 0) + $" % ({F(row.BandwidthBeside, 1)})",
                F(peer.PercentOfCeiling(row.BandwidthBeside), 0) + " % |"));
        }
        foreach (var pair in r.Rows.Where(row => row.Ours is null).Select(row => row.Pair).Distinct())
            text.AppendLine().Append($"Ours at {pair.OursLabel}: {pair.OursUnavailableReason}.").AppendLine();
        text.AppendLine();
        text.AppendLine("Bytes read per decode token (weights without the gathered embedding table, KV at the mean decode context, conv + SSM states):");
        text.AppendLine();
        text.AppendLine("| precision | depth | ours weights | llama.cpp weights | ours KV | llama.cpp KV | states |");
        text.AppendLine("|---|---:|---:|---:|---:|---:|---:|");
        foreach (var row in r.Rows)
            text.AppendLine($"| {row.Pair.OursLabel} / {row.Pair.PeerLabel} | {row.Depth} | {(row.Ours is null ? "n/a" : Mib(row.Ours.Bytes.Weights))} | {Mib(row.Peer.Bytes.Weights)} | " +
                $"{(row.Ours is null ? "n/a" : Mib(row.Ours.Bytes.KeyValues))} | {Mib(row.Peer.Bytes.KeyValues)} | {Mib(row.Peer.Bytes.RecurrentStates)} |");
        text.AppendLine();
        text.AppendLine("## Logit agreement (same weights, same prompt)");
        text.AppendLine();
        text.AppendLine("| pair | prompt tokens | max abs logit difference | logit range | greedy tokens equal |");
        text.AppendLine("|---|---:|---:|---:|---:|");
        foreach (var a in r.Agreements)
            text.AppendLine($"| {a.Pair} | {a.PromptTokens} | {a.MaxAbsDifference.ToString("0.00E+00", CultureInfo.InvariantCulture)} | {F(a.LogitRange, 2)} | {a.GreedyTokensEqual} of {a.GreedyTokens} |");
        text.AppendLine();
        text.AppendLine("## Machine");
        text.AppendLine();
        text.AppendLine($"- CPU: {m.Cpu}, {m.LogicalCores} logical cores; {m.Threads} threads per side");
        text.AppendLine($"- Memory read bandwidth ({m.Threads} threads, 1 GiB streaming sum, best of 5 passes): {F(m.BandwidthGigabytesPerSecond, 2)} GB/s, the best of {m.BandwidthMeasurements}");
        text.AppendLine($"- Load average before / after: {m.LoadBefore} / {m.LoadAfter} (other processes may have been running)");
        text.AppendLine($"- {m.Runtime}; ONNX Runtime {m.OnnxRuntime}");
        text.AppendLine($"- ours: {m.OursSettings}");
        text.AppendLine($"- llama.cpp: {m.LlamaCppBuild}; {m.PeerSettings}");
        text.AppendLine($"- llama.cpp system info: `{m.LlamaCppSystemInfo}`");
        text.AppendLine();
        text.AppendLine("## Files");
        text.AppendLine();
        foreach (string file in r.PeerFiles) text.AppendLine($"- {file}");
        if (r.Notes.Count > 0)
        {
            text.AppendLine();
            text.AppendLine("## Notes");
            text.AppendLine();
            foreach (string note in r.Notes) text.AppendLine($"- {note}");
        }
        return text.ToString();
    }

    private static string F(double value, int decimals) => value.ToString("F" + decimals, CultureInfo.InvariantCulture);

    private static string Mib(long bytes) => F(bytes / 1048576.0, 1) + " MiB";
}
