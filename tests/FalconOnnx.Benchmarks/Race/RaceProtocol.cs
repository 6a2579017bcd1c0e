using System.Diagnostics;

namespace FalconOnnx.Benchmarks.Race;

/// <summary>Best-of-runs timings of one engine at one context depth.</summary>
public sealed record SpeedMeasurement(int Depth, int PromptTokens, int DecodeSteps, double PrefillSeconds, double DecodeSeconds)
{
    public double PrefillTokensPerSecond => PromptTokens / PrefillSeconds;
    public double DecodeTokensPerSecond => DecodeSteps / DecodeSeconds;
}

/// <summary>
/// How the engines are timed, identically and side by side: each feeds the context-depth prefix once, untimed,
/// and snapshots it; then, run after run, each engine in turn restores it, times the prefill of the prompt and
/// times the greedy decode steps. The engines alternate within every run (and swap order between runs), so a
/// busy spell on a shared machine falls on both rather than on whichever side ran during it. Run 0 is a warm-up;
/// prefill and decode each report their best of the measured runs.
/// </summary>
public static class RaceProtocol
{
    /// <summary>Prompt tokens per forward call on both sides (llama.cpp's n_batch = n_ubatch, our PrefillChunk).</summary>
    public const int PrefillChunk = 512;

    public static SpeedMeasurement[] MeasureSideBySide(IReadOnlyList<IRaceEngine> engines, int[] history, int[] prompt, int decodeSteps, int runs, CancellationToken cancellationToken)
    {
        var atDepth = engines.Select(engine =>
        {
            engine.Reset();
            if (history.Length > 0) engine.Prefill(history);
            return engine.Snapshot();
        }).ToArray();
        var bestPrefill = Enumerable.Repeat(double.MaxValue, engines.Count).ToArray();
        var bestDecode = Enumerable.Repeat(double.MaxValue, engines.Count).ToArray();
        for (int run = 0; run <= runs; run++)
        {
            var order = Enumerable.Range(0, engines.Count);
            foreach (int i in run % 2 == 0 ? order : order.Reverse())
            {
                cancellationToken.ThrowIfCancellationRequested();
                engines[i].Restore(atDepth[i]);
                var clock = Stopwatch.StartNew();
                engines[i].Prefill(prompt);
                double prefill = clock.Elapsed.TotalSeconds;
                clock.Restart();
                engines[i].DecodeGreedy(decodeSteps);
                double decode = clock.Elapsed.TotalSeconds;
                if (run == 0) continue;
                bestPrefill[i] = Math.Min(bestPrefill[i], prefill);
                bestDecode[i] = Math.Min(bestDecode[i], decode);
            }
        }
        return Enumerable.Range(0, engines.Count)
            .Select(i => new SpeedMeasurement(history.Length, prompt.Length, decodeSteps, bestPrefill[i], bestDecode[i])).ToArray();
    }

    /// <summary>The same pseudo-random token ids for both engines: ids from 16 (past the special tokens) to the vocabulary end.</summary>
    public static int[] Tokens(int count, int vocabularySize, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => random.Next(Math.Min(16, vocabularySize - 1), vocabularySize)).ToArray();
    }

    public static int ArgMax(ReadOnlySpan<float> logits)
    {
        int best = 0;
        for (int i = 1; i < logits.Length; i++) if (logits[i] > logits[best]) best = i;
        return best;
    }
}
