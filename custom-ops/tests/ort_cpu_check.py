#!/usr/bin/env python3
"""End-to-end check of libfalcon_onnx_ops through ONNX Runtime's CPU provider: a one-node model with
falcon_onnx:Mamba2Mixer, run by the onnxruntime Python package against torch_reference.mixer in float64.
Covers registration, attribute reading, absent optional inputs (""), a prefill with left padding followed by a
decode step from the returned states, ORT's intra-op pool, and a shape error reported by the kernel.

    python3 ort_cpu_check.py --lib build/libfalcon_onnx_ops.so
"""
import argparse
import sys

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import TensorProto, helper

from torch_reference import Config, make_inputs, mixer

INPUTS = ["projected", "conv_weight", "conv_bias", "dt_bias", "A_log", "D", "norm_weight", "attention_mask",
          "past_conv_state", "past_recurrent_state"]
OUTPUTS = ["y", "present_conv_state", "present_recurrent_state"]


def one_node_model(cfg, with_bias, with_norm):
    node_inputs = [name if (name != "conv_bias" or with_bias) and (name != "norm_weight" or with_norm) else ""
                   for name in INPUTS]
    node = helper.make_node("Mamba2Mixer", node_inputs, OUTPUTS, domain="falcon_onnx", n_heads=cfg.heads,
                            head_dim=cfg.head_dim, n_groups=cfg.groups, d_state=cfg.state, d_conv=cfg.d_conv,
                            chunk_size=256, norm_before_gate=int(cfg.norm_before_gate), epsilon=cfg.epsilon,
                            dt_min=cfg.dt_min, dt_max=float("inf"))
    shapes = {"projected": ["batch", "T", cfg.width], "conv_weight": [cfg.conv_dim, 1, cfg.d_conv],
              "conv_bias": [cfg.conv_dim], "dt_bias": [cfg.heads], "A_log": [cfg.heads], "D": [cfg.heads],
              "norm_weight": [cfg.inner], "attention_mask": ["batch", "total"],
              "past_conv_state": ["batch", cfg.conv_dim, cfg.d_conv - 1],
              "past_recurrent_state": ["batch", cfg.heads, cfg.state, cfg.head_dim]}
    graph_inputs = [helper.make_tensor_value_info(n, TensorProto.INT64 if n == "attention_mask" else TensorProto.FLOAT,
                                                  shapes[n]) for n in INPUTS if n in node_inputs]
    graph_outputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in OUTPUTS]
    graph = helper.make_graph([node], "mamba2_mixer", graph_inputs, graph_outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid("falcon_onnx", 1)])
    model.ir_version = 9
    return model.SerializeToString()


def session(lib, model_bytes, threads):
    options = ort.SessionOptions()
    options.register_custom_ops_library(lib)
    options.intra_op_num_threads = threads
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


def feeds_of(inputs, names):
    def array(v):
        return v.cpu().numpy().astype(np.int64 if v.dtype == torch.int64 else np.float32)
    key = {"past_conv_state": "past_conv", "past_recurrent_state": "past_recurrent"}
    return {n: array(inputs[key.get(n, n)]) for n in names}


def worst(got, want):
    difference = np.abs(got.astype(np.float64) - want.cpu().numpy())
    return float(difference.max()) if difference.size else 0.0, float(np.abs(want.cpu().numpy()).max())


def check_case(lib, name, cfg, with_bias, with_norm, generator):
    sess = session(lib, one_node_model(cfg, with_bias, with_norm), threads=4)
    names = [i.name for i in sess.get_inputs()]
    prefill = make_inputs(cfg, 2, 37, 0, generator, "cpu", random_past=False, bias=with_bias, left_pads=[0, 9])
    got = sess.run(OUTPUTS, feeds_of(prefill, names))
    want = mixer(prefill, cfg, torch.float64)
    # one decode step from the states the op returned
    step = make_inputs(cfg, 2, 1, 37, generator, "cpu", bias=with_bias, left_pads=[0, 9])
    for k in ("conv_weight", "conv_bias", "dt_bias", "A_log", "D", "norm_weight"):
        step[k] = prefill[k]
    step["past_conv"], step["past_recurrent"] = torch.from_numpy(got[1]).double(), torch.from_numpy(got[2]).double()
    got_step = sess.run(OUTPUTS, feeds_of(step, names))
    step["past_conv"], step["past_recurrent"] = want[1], want[2]
    want_step = mixer(step, cfg, torch.float64)
    errors = [worst(g, w) for g, w in zip(got + got_step, list(want) + list(want_step))]
    ok = all(e <= 1e-5 * max(1.0, scale) for e, scale in errors)
    print(f"{name:44s} max|d| prefill y/conv/S {errors[0][0]:.1e} {errors[1][0]:.1e} {errors[2][0]:.1e}, "
          f"decode {errors[3][0]:.1e} {errors[4][0]:.1e} {errors[5][0]:.1e}  {'ok' if ok else 'FAIL'}")
    return ok


def check_shape_error(lib, generator):
    cfg = Config(4, 16, 16, 1, False)
    sess = session(lib, one_node_model(cfg, True, False), threads=1)
    inputs = make_inputs(cfg, 1, 5, 0, generator, "cpu")
    feeds = feeds_of(inputs, [i.name for i in sess.get_inputs()])
    feeds["dt_bias"] = np.zeros(3, dtype=np.float32)
    try:
        sess.run(OUTPUTS, feeds)
    except Exception as e:  # ORT raises its own exception types
        ok = "dt_bias" in str(e)
        print(f"{'wrong dt_bias shape is refused':44s} {str(e).splitlines()[0][:90]}  {'ok' if ok else 'FAIL'}")
        return ok
    print(f"{'wrong dt_bias shape is refused':44s} no error  FAIL")
    return False


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lib", required=True, help="path to libfalcon_onnx_ops.so")
    args = parser.parse_args()
    print(f"\nlibfalcon_onnx_ops through onnxruntime {ort.__version__} (onnx {onnx.__version__}), CPU provider")
    generator = torch.Generator().manual_seed(7)
    results = [
        check_case(args.lib, "0.5B-like heads, bias, no norm", Config(6, 64, 128, 1, False), True, False, generator),
        check_case(args.lib, "G=2, no conv_bias (\"\"), gate-then-norm", Config(4, 32, 32, 2, True), False, True, generator),
        check_case(args.lib, "norm-then-gate", Config(4, 32, 32, 1, True, norm_before_gate=True), True, True, generator),
        check_shape_error(args.lib, generator),
    ]
    ok = all(results)
    print(f"SUMMARY|check|ORT CPU end-to-end (onnxruntime {ort.__version__})|{'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
