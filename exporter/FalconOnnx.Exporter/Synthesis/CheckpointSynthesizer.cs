using System.Buffers;
using System.Diagnostics;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using FalconOnnx.Checkpoints;
using FalconOnnx.Export;

namespace FalconOnnx.Synthesis;

/// <summary>How far a synthesis has come, in bytes of tensor data.</summary>
public readonly record struct SynthProgress(long BytesDone, long TotalBytes, int TensorsDone, int TensorCount);

/// <param name="Shards">Safetensors files written: 1 is a plain model.safetensors.</param>
public sealed record SynthResult(string Folder, long Parameters, long Bytes, TimeSpan Elapsed, int Shards = 1);

/// <summary>
/// Writes a random Falcon-H1 checkpoint in Hugging Face's layout: config.json, model.safetensors (or shards of at
/// most 5 GB and their index, as transformers saves a larger model), a small byte-level BPE tokenizer and
/// generation_config.json. The weights are drawn block by block, each block from
/// its own stream keyed by (seed, tensor, block) (<see cref="RandomStream"/>), in parallel and never more than
/// one writer block in memory: the same seed gives the same bytes whatever the thread count, and on any machine
/// (but for the platform exp and log behind the tiny dt_bias vectors, see <see cref="WeightInit"/>).
/// </summary>
public static class CheckpointSynthesizer
{
    /// <summary>Elements per random stream: large enough to amortise a task, small enough to spread a tensor over cores.</summary>
    internal const int BlockElements = 1 << 16;

    public static SynthResult Synthesize(SynthPreset preset, ulong seed, string outputDir, CheckpointDType dtype = CheckpointDType.BF16,
        bool force = false, Action<SynthProgress>? progress = null, CancellationToken cancellationToken = default) =>
        Synthesize(preset, seed, outputDir, dtype, force, progress, maxDegreeOfParallelism: -1, cancellationToken);

    internal static SynthResult Synthesize(SynthPreset preset, ulong seed, string outputDir, CheckpointDType dtype, bool force,
        Action<SynthProgress>? progress, int maxDegreeOfParallelism, CancellationToken cancellationToken,
        long maxShardBytes = SafetensorsShards.DefaultMaxShardBytes)
    {
        var clock = Stopwatch.StartNew();
        var config = Config(preset, dtype);
        using var folder = OutputFolder.Create(outputDir, force);

        var tokenizer = ByteLevelBpeTokenizer.Train(SampleText.English, Math.Min(preset.TokenizerVocabSize, preset.VocabSize),
            preset.PadTokenId, preset.BosTokenId, preset.EosTokenId);
        tokenizer.WriteFiles(folder.Staging, preset.MaxPositionEmbeddings);
        WriteJson(Path.Combine(folder.Staging, Checkpoint.ConfigFileName), config.Source);
        WriteJson(Path.Combine(folder.Staging, "generation_config.json"), GenerationConfigJson(preset));

        var tensors = Tensors(config, seed, dtype, maxDegreeOfParallelism, cancellationToken);
        long totalBytes = tensors.Sum(t => t.ByteLength), bytesDone = 0;
        int tensorsDone = 0;
        void Report() => progress?.Invoke(new SynthProgress(bytesDone, totalBytes, tensorsDone, tensors.Count));
        var counted = tensors.Select(t => t with
        {
            Fill = (start, span) =>
            {
                t.Fill(start, span);
                bytesDone += span.Length;
                Report();
            },
        }).ToList();
        var shards = SafetensorsShards.Split(counted, maxShardBytes);
        for (int i = 0; i < shards.Count; i++)
        {
            string name = shards.Count == 1 ? Checkpoint.SingleFileName : SafetensorsShards.ShardName(i + 1, shards.Count);
            SafetensorsWriter.Write(Path.Combine(folder.Staging, name), shards[i],
                new Dictionary<string, string> { ["format"] = "pt" }, _ =>
                {
                    tensorsDone++;
                    Report();
                },
                cancellationToken);
        }
        if (shards.Count > 1) SafetensorsShards.WriteIndex(folder.Staging, shards);
        cancellationToken.ThrowIfCancellationRequested();

        folder.Commit();
        long bytes = Directory.EnumerateFiles(folder.Target).Sum(f => new FileInfo(f).Length);
        return new SynthResult(folder.Target, ParameterCount(config), bytes, clock.Elapsed, shards.Count);
    }

    /// <summary>Parameters stored by a checkpoint with this config (every tensor of <see cref="FalconH1Tensors.Expected"/>).</summary>
    public static long ParameterCount(FalconH1Config config) =>
        FalconH1Tensors.Expected(config).Values.Sum(shape => shape.Aggregate(1L, (a, b) => a * b));

    /// <summary>The preset's config, parsed back from the config.json a synthesis writes.</summary>
    public static FalconH1Config Config(SynthPreset preset, CheckpointDType dtype = CheckpointDType.BF16) =>
        FalconH1Config.Parse(ConfigJson(preset, dtype));

    /// <summary>
    /// config.json as a released Falcon-H1 checkpoint writes it (transformers v4 field names, keys sorted): every
    /// field the model reads, plus the training-only ones a real file carries, with the values the weights were
    /// drawn for (<c>initializer_range</c>, <c>time_step_*</c>).
    /// </summary>
    public static JsonObject ConfigJson(SynthPreset p, CheckpointDType dtype = CheckpointDType.BF16)
    {
        var m = p.Multipliers;
        var fields = new SortedDictionary<string, JsonNode?>(StringComparer.Ordinal)
        {
            ["_name_or_path"] = p.ModelId,
            ["architectures"] = new JsonArray("FalconH1ForCausalLM"),
            ["attention_bias"] = p.AttentionBias,
            ["attention_dropout"] = 0.0,
            ["attention_in_multiplier"] = m.AttentionIn,
            ["attention_out_multiplier"] = m.AttentionOut,
            ["attn_layer_indices"] = null,
            ["bos_token_id"] = p.BosTokenId,
            ["embedding_multiplier"] = m.Embedding,
            ["eos_token_id"] = p.EosTokenId,
            ["head_dim"] = p.HeadDim,
            ["hidden_act"] = "silu",
            ["hidden_size"] = p.HiddenSize,
            ["initializer_range"] = 0.02,
            ["intermediate_size"] = p.IntermediateSize,
            ["key_multiplier"] = m.Key,
            ["lm_head_multiplier"] = m.LmHead,
            ["mamba_chunk_size"] = p.MambaChunkSize,
            ["mamba_conv_bias"] = p.MambaConvBias,
            ["mamba_d_conv"] = p.MambaDConv,
            ["mamba_d_head"] = p.MambaDHead,
            ["mamba_d_ssm"] = p.MambaDSsm,
            ["mamba_d_state"] = p.MambaDState,
            ["mamba_expand"] = p.MambaExpand,
            ["mamba_n_groups"] = p.MambaNGroups,
            ["mamba_n_heads"] = p.MambaNHeads,
            ["mamba_norm_before_gate"] = p.MambaNormBeforeGate,
            ["mamba_proj_bias"] = p.MambaProjBias,
            ["mamba_rms_norm"] = p.MambaRmsNorm,
            ["mamba_use_mlp"] = true,
            ["max_position_embeddings"] = p.MaxPositionEmbeddings,
            ["mlp_bias"] = p.MlpBias,
            ["mlp_expansion_factor"] = 8,
            ["mlp_multipliers"] = new JsonArray(m.Mlp.Select(v => (JsonNode)v).ToArray()),
            ["model_type"] = "falcon_h1",
            ["num_attention_heads"] = p.NumAttentionHeads,
            ["num_hidden_layers"] = p.NumHiddenLayers,
            ["num_key_value_heads"] = p.NumKeyValueHeads,
            ["num_logits_to_keep"] = 1,
            ["pad_token_id"] = p.PadTokenId,
            ["projectors_bias"] = p.ProjectorsBias,
            ["rms_norm_eps"] = p.RmsNormEps,
            ["rope_scaling"] = null,
            ["rope_theta"] = p.RopeTheta,
            ["ssm_in_multiplier"] = m.SsmIn,
            ["ssm_multipliers"] = new JsonArray(m.Ssm.Select(v => (JsonNode)v).ToArray()),
            ["ssm_out_multiplier"] = m.SsmOut,
            ["tie_word_embeddings"] = p.TieWordEmbeddings,
            ["time_step_floor"] = 0.0001,
            ["time_step_max"] = 0.1,
            ["time_step_min"] = 0.001,
            ["torch_dtype"] = TorchDType(dtype),
            ["use_cache"] = true,
            ["vocab_size"] = p.VocabSize,
        };
        if (p.ModelId is null) fields.Remove("_name_or_path");
        // Through text, so the values are JSON numbers as read from a file (a JsonValue built from an int does not
        // read back as a long, which FalconH1Config asks for).
        return JsonNode.Parse(new JsonObject(fields).ToJsonString())!.AsObject();
    }

    private static JsonObject GenerationConfigJson(SynthPreset p) => new()
    {
        ["_from_model_config"] = true,
        ["bos_token_id"] = p.BosTokenId,
        ["eos_token_id"] = p.EosTokenId,
        ["pad_token_id"] = p.PadTokenId,
    };

    private static string TorchDType(CheckpointDType dtype) => dtype switch
    {
        CheckpointDType.F32 => "float32",
        CheckpointDType.F16 => "float16",
        CheckpointDType.BF16 => "bfloat16",
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, null),
    };

    private static void WriteJson(string path, JsonObject json) =>
        File.WriteAllText(path, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");

    /// <summary>Every tensor of the config in checkpoint order, each filled from its own streams.</summary>
    private static List<TensorToWrite> Tensors(FalconH1Config config, ulong seed, CheckpointDType dtype, int maxDegreeOfParallelism,
        CancellationToken cancellationToken)
    {
        var tensors = new List<TensorToWrite>();
        var staging = new StagingBuffer();
        int index = 0;
        foreach (var (name, shape) in FalconH1Tensors.Expected(config))
        {
            var drawer = new TensorDrawer(WeightInit.For(name, config), seed, index++, dtype, maxDegreeOfParallelism, staging, cancellationToken);
            tensors.Add(new TensorToWrite(name, dtype, shape, drawer.Fill));
        }
        return tensors;
    }

    /// <summary>The writer's blocks are drawn into this array (a span cannot enter a parallel loop), then copied.</summary>
    private sealed class StagingBuffer
    {
        private byte[] _bytes = [];

        public byte[] Rent(int length) => _bytes.Length >= length ? _bytes : _bytes = new byte[length];
    }

    /// <summary>Draws the bytes of one tensor for <see cref="SafetensorsWriter"/>, random block by random block.</summary>
    private sealed class TensorDrawer(WeightInit init, ulong seed, int tensorIndex, CheckpointDType dtype, int maxDegreeOfParallelism,
        StagingBuffer staging, CancellationToken cancellationToken)
    {
        private readonly int _elementSize = SafetensorsFile.ElementSize(dtype);

        /// <summary>Fills <paramref name="destination"/>, the tensor's bytes from <paramref name="startByte"/> on.</summary>
        public void Fill(long startByte, Span<byte> destination)
        {
            long first = startByte / _elementSize;
            int count = destination.Length / _elementSize;
            byte[] bytes = staging.Rent(destination.Length);
            var options = new ParallelOptions { MaxDegreeOfParallelism = maxDegreeOfParallelism, CancellationToken = cancellationToken };
            Parallel.For(first / BlockElements, (first + count - 1) / BlockElements + 1, options,
                () => ArrayPool<float>.Shared.Rent(BlockElements),
                (block, _, scratch) =>
                {
                    DrawOverlap(block, first, count, scratch, bytes);
                    return scratch;
                },
                scratch => ArrayPool<float>.Shared.Return(scratch));
            bytes.AsSpan(0, destination.Length).CopyTo(destination);
        }

        /// <summary>
        /// Draws random block <paramref name="block"/> from its first element (where its stream starts) up to the end
        /// of the requested elements [first, first + count), and converts the part inside them. A shorter draw is a
        /// prefix of a longer one, so a block split between two requests gets the same values.
        /// </summary>
        private void DrawOverlap(long block, long first, int count, float[] scratch, byte[] bytes)
        {
            long blockStart = block * BlockElements;
            long from = Math.Max(blockStart, first), to = Math.Min(blockStart + BlockElements, first + count);
            var random = RandomStream.For(seed, tensorIndex, block);
            var values = scratch.AsSpan(0, (int)(to - blockStart));
            init.Fill(ref random, values);
            var source = values[(int)(from - blockStart)..];
            var target = bytes.AsSpan((int)(from - first) * _elementSize, source.Length * _elementSize);
            switch (dtype)
            {
                case CheckpointDType.F32:
                    MemoryMarshal.AsBytes(source).CopyTo(target);
                    break;
                case CheckpointDType.F16:
                    TensorPrimitives.ConvertToHalf(source, MemoryMarshal.Cast<byte, Half>(target));
                    break;
                case CheckpointDType.BF16:
                    FloatConversion.SingleToBFloat16(source, MemoryMarshal.Cast<byte, ushort>(target));
                    break;
            }
        }
    }
}
