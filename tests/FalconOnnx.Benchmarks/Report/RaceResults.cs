using FalconOnnx.Benchmarks.Race;

namespace FalconOnnx.Benchmarks.Report;

/// <summary>One side's figures for one precision at one depth, with what its decode step reads.</summary>
public sealed record SideResult(SpeedMeasurement Speed, BytesPerToken Bytes)
{
    /// <summary>Decode speed as a share of the bandwidth ceiling (bandwidth / bytes read per token).</summary>
    public double PercentOfCeiling(double gigabytesPerSecond) => Speed.DecodeTokensPerSecond * Bytes.Total / (gigabytesPerSecond * 1e9) * 100;
}

/// <summary>One row of the table: a precision pair at a context depth; <see cref="Ours"/> is null when this build cannot export the precision.
/// <see cref="BandwidthBeside"/> (GB/s) is the better of the bandwidth readings taken just before and just after the row's measurement.</summary>
public sealed record RaceRow(PrecisionPair Pair, int Depth, SideResult? Ours, SideResult Peer, double BandwidthBeside);

/// <summary>How closely llama.cpp's logits follow ours on the same prompt.</summary>
public sealed record LogitAgreement(string Pair, int PromptTokens, double MaxAbsDifference, double LogitRange, int GreedyTokens, int GreedyTokensEqual);

/// <summary>The machine and the conditions of the run.</summary>
public sealed record MachineDescription(
    string Cpu, int LogicalCores, int Threads, double BandwidthGigabytesPerSecond, string BandwidthMeasurements, string LoadBefore, string LoadAfter,
    string Runtime, string OnnxRuntime, string OursSettings, string LlamaCppBuild, string LlamaCppSystemInfo, string PeerSettings);

/// <summary>Everything one run produced.</summary>
public sealed record RaceResults(
    string Size, int PromptTokens, int DecodeSteps, int Runs, MachineDescription Machine,
    IReadOnlyList<RaceRow> Rows, IReadOnlyList<LogitAgreement> Agreements, IReadOnlyList<string> PeerFiles, IReadOnlyList<string> Notes);
