using System.Diagnostics;

namespace FalconOnnx.Benchmarks.Race;

/// <summary>Best-of-runs timings of one engine at one context depth.</summary>
public sealed record SpeedMeasurement(int Depth, int PromptTokens, int DecodeSteps, double PrefillSeconds, double DecodeSeconds)
{
    public double PrefillTokensPerSecond => PromptTokens / PrefillSeconds;
    public double DecodeTokensPerSecond => DecodeSteps / DecodeSeconds;
}

/// <summary>
/// How both engines are timed, identically: the context-depth prefix is fed once, untimed, and snapshotted;
/// each run restores it, times the prefill of the prompt, then times the greedy decode steps. Run 0 is a
/// warm-up; prefill and decode each report their best of the measured runs.
/// </summary>
public static class RaceProtocol
{
    /// <summary>Prompt tokens per forward call on both sides (llama.cpp's n_batch = n_ubatch, our PrefillChunk).</summary>
    public const int PrefillChunk = 512;

    public static SpeedMeasurement Measure(IRaceEngine engine, int[] history, int[] prompt, int decodeSteps, int runs, CancellationToken cancellationToken)
    {
        engine.Reset();
        if (history.Length > 0) engine.Prefill(history);
        var atDepth = engine.Snapshot();
        double bestPrefill = double.MaxValue, bestDecode = double.MaxValue;
        for (int run = 0; run <= runs; run++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            engine.Restore(atDepth);
            var clock = Stopwatch.StartNew();
            engine.Prefill(prompt);
            double prefill = clock.Elapsed.TotalSeconds;
            clock.Restart();
            engine.DecodeGreedy(decodeSteps);
            double decode = clock.Elapsed.TotalSeconds;
            if (run == 0) continue;
            bestPrefill = Math.Min(bestPrefill, prefill);
            bestDecode = Math.Min(bestDecode, decode);
        }
        return new SpeedMeasurement(history.Length, prompt.Length, decodeSteps, bestPrefill, bestDecode);
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
