using System.Text.Json.Nodes;
using FalconOnnx.Checkpoints;
using FalconOnnx.Runtime;

namespace FalconOnnx.Export;

/// <summary>
/// genai_config.json for onnxruntime-genai's generic "decoder" model. GenAI finds the conv and recurrent
/// states by name (past_key_values.%d.conv_state / .recurrent_state) next to the KV names given here.
/// </summary>
public static class GenAiConfig
{
    public static JsonObject Create(FalconH1Config c, ModelManifest manifest)
    {
        var sessionOptions = new JsonObject { ["log_id"] = "falcon-onnx", ["provider_options"] = new JsonArray() };
        if (manifest.CustomOpsLibrary is { } library) sessionOptions["custom_ops_library"] = library;
        return new JsonObject
        {
            ["model"] = new JsonObject
            {
                ["type"] = "decoder",
                ["vocab_size"] = c.VocabSize,
                ["context_length"] = c.MaxPositionEmbeddings,
                ["bos_token_id"] = c.BosTokenId,
                ["eos_token_id"] = new JsonArray(c.EosTokenIds.Select(id => (JsonNode)id).ToArray()),
                ["pad_token_id"] = c.PadTokenId,
                ["decoder"] = new JsonObject
                {
                    ["filename"] = manifest.Graph.File,
                    ["session_options"] = sessionOptions,
                    ["head_size"] = c.HeadDim,
                    ["hidden_size"] = c.HiddenSize,
                    ["num_attention_heads"] = c.NumAttentionHeads,
                    ["num_key_value_heads"] = c.NumKeyValueHeads,
                    ["num_hidden_layers"] = c.NumHiddenLayers,
                    ["inputs"] = new JsonObject
                    {
                        ["input_ids"] = "input_ids",
                        ["attention_mask"] = "attention_mask",
                        ["position_ids"] = "position_ids",
                        ["past_key_names"] = "past_key_values.%d.key",
                        ["past_value_names"] = "past_key_values.%d.value",
                    },
                    ["outputs"] = new JsonObject
                    {
                        ["logits"] = "logits",
                        ["present_key_names"] = "present.%d.key",
                        ["present_value_names"] = "present.%d.value",
                    },
                },
            },
            ["search"] = new JsonObject
            {
                ["max_length"] = c.MaxPositionEmbeddings,
                ["do_sample"] = false,
                ["num_beams"] = 1,
                ["past_present_share_buffer"] = manifest.Graph.PastPresentShareBuffer,
            },
        };
    }
}
