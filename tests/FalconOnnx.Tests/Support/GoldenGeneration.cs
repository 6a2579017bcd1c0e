namespace FalconOnnx.Tests.Support;

/// <summary>
/// tiny-a's golden greedy generation replayed on any implementation: feed the prompt, then each chosen token,
/// and compare every step's logits with HF's and the chosen ids with HF's.
/// </summary>
public static class GoldenGeneration
{
    /// <param name="feed">Runs tokens after the sequence so far and returns their logits ([tokens, vocab]).</param>
    public static (long[] Generated, double WorstLogitDifference) Replay(Func<long[], float[]> feed, int vocab)
    {
        var prompt = Npy.Load<long>(TestPaths.Expected("gen_prompt_ids"));
        var expectedIds = Npy.Load<long>(TestPaths.Expected("gen_new_token_ids"));
        var expectedLogits = Npy.Load<float>(TestPaths.Expected("gen_step_logits"));
        var logits = feed(prompt.Data);
        var step = logits.AsSpan(logits.Length - vocab).ToArray();
        var generated = new long[expectedIds.Data.Length];
        double worst = 0;
        for (int k = 0; k < generated.Length; k++)
        {
            worst = Math.Max(worst, Compare.MaxAbs(step, expectedLogits.Row(0, k)));
            generated[k] = Compare.ArgMax(step);
            step = feed([generated[k]]);
        }
        return (generated, worst);
    }

    public static long[] ExpectedIds => Npy.Load<long>(TestPaths.Expected("gen_new_token_ids")).Data;
}
