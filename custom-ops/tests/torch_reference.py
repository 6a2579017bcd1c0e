#!/usr/bin/env python3
"""The Mamba2Mixer math in PyTorch, written the way HF's torch path computes prefill (chunked SSD: causal
conv, softplus, the chunked scan, D skip, gate and grouped RMSNorm), used by gpu-check.sh twice:

* in float64, as a second reference for the CUDA kernels on the Falcon-H1 head shapes (T = 1 .. 2048),
  through libmamba2_cuda_capi.so (ctypes; the kernels run on torch's current stream);
* in float32 on the same GPU, as the speed baseline for a 2048-token prefill.

    python3 torch_reference.py --lib build/libmamba2_cuda_capi.so

The helpers (make_inputs, mixer) are also used by ort_cpu_check.py.
"""
import argparse
import ctypes
import math
import sys

import torch
import torch.nn.functional as F

# name, heads, head_dim, d_state, groups, gated RMSNorm
MODEL_SHAPES = [
    ("0.5B", 24, 64, 128, 1, False),
    ("1.5B-Deep", 24, 64, 256, 1, True),
    ("7B", 24, 128, 256, 1, True),
    ("34B", 32, 128, 256, 2, True),
]
D_CONV = 4
DTYPES = {"fp32": (0, torch.float32), "fp16": (1, torch.float16), "bf16": (2, torch.bfloat16)}


class Config:
    def __init__(self, heads, head_dim, state, groups, norm, norm_before_gate=False, epsilon=1e-5, dt_min=0.0,
                 dt_max=0.0, d_conv=D_CONV):
        self.heads, self.head_dim, self.state, self.groups = heads, head_dim, state, groups
        self.norm, self.norm_before_gate, self.epsilon = norm, norm_before_gate, epsilon
        self.dt_min, self.dt_max, self.d_conv = dt_min, dt_max, d_conv
        self.inner = heads * head_dim
        self.conv_dim = self.inner + 2 * groups * state
        self.width = 2 * self.inner + 2 * groups * state + heads


def make_inputs(cfg, batch, tokens, past_columns, generator, device, random_past=True, bias=True, left_pads=None):
    """Random inputs with the scales of tests/test_support.h (outputs and states of order 1), float64."""
    def uniform(shape, low, high):
        return torch.rand(shape, generator=generator, device=device, dtype=torch.float64) * (high - low) + low

    gn = cfg.groups * cfg.state
    bc = 3.0 / math.sqrt(cfg.state) + 0.5
    projected = torch.cat([uniform((batch, tokens, cfg.inner), -2.0, 3.0),
                           uniform((batch, tokens, cfg.inner), -1.5, 1.5),
                           uniform((batch, tokens, 2 * gn), -bc, bc),
                           uniform((batch, tokens, cfg.heads), -4.0, 1.0)], dim=-1)
    total = past_columns + tokens
    mask = torch.ones(batch, total, dtype=torch.int64, device=device)
    for row, pads in enumerate(left_pads or []):
        mask[row, :pads] = 0
    projected = projected * (mask[:, -tokens:, None] != 0)  # the graph zeroes in_proj's input at pads
    state_scale = 2.0 / math.sqrt(cfg.state)
    return {
        "projected": projected,
        "conv_weight": uniform((cfg.conv_dim, 1, cfg.d_conv), -0.6, 0.6),
        "conv_bias": uniform((cfg.conv_dim,), -0.3, 0.3) if bias else None,
        "dt_bias": uniform((cfg.heads,), -2.0, 0.5),
        "A_log": uniform((cfg.heads,), -1.0, 1.5),
        "D": uniform((cfg.heads,), 0.5, 1.5),
        "norm_weight": uniform((cfg.inner,), 0.5, 1.5) if cfg.norm else None,
        "attention_mask": mask,
        "past_conv": uniform((batch, cfg.conv_dim, cfg.d_conv - 1), -1.5, 1.5) if random_past
        else torch.zeros(batch, cfg.conv_dim, cfg.d_conv - 1, dtype=torch.float64, device=device),
        "past_recurrent": uniform((batch, cfg.heads, cfg.state, cfg.head_dim), -state_scale, state_scale) if random_past
        else torch.zeros(batch, cfg.heads, cfg.state, cfg.head_dim, dtype=torch.float64, device=device),
    }


def causal_conv(window, weight, bias):
    """Depthwise conv over [past | new] without padding: out[:, c, t] = b[c] + sum_k w[c, k] window[:, c, t + k]."""
    taps = window.unfold(2, weight.shape[-1], 1)  # [batch, channels, T, K]
    out = (taps * weight[:, 0, None, :]).sum(-1)
    return out if bias is None else out + bias[:, None]


def ssd_chunked(x, dt, a, b, c, initial_state, chunk):
    """The SSD scan in chunks: x [batch, T, H, P], dt [batch, T, H], a [H], b/c [batch, T, H, N],
    initial_state [batch, H, N, P] (the (N, P) layout of the op). Returns y (without D) and the last state."""
    batch, tokens, heads, head_dim = x.shape
    pad = (-tokens) % chunk
    if pad:  # padded steps have dt = 0: no decay, no input
        x, dt, b, c = (F.pad(t, (0, 0) * (t.dim() - 2) + (0, pad)) for t in (x, dt, b, c))
    chunks = (tokens + pad) // chunk
    x = x.reshape(batch, chunks, chunk, heads, head_dim)
    b = b.reshape(batch, chunks, chunk, heads, -1)
    c = c.reshape(batch, chunks, chunk, heads, -1)
    dt = dt.reshape(batch, chunks, chunk, heads)
    log_decay = (dt * a).permute(0, 3, 1, 2)                       # [batch, H, chunks, L]
    cumulative = torch.cumsum(log_decay, dim=-1)
    causal = torch.ones(chunk, chunk, dtype=torch.bool, device=x.device).tril()
    segment = (cumulative[..., :, None] - cumulative[..., None, :]).masked_fill(~causal, float("-inf"))
    decay_within = torch.exp(segment)                              # [batch, H, chunks, L(t), L(s)]
    dtx = x * dt[..., None]                                        # [batch, chunks, L, H, P]
    scores = torch.einsum("bclhn,bcshn->bhcls", c, b) * decay_within
    y_diagonal = torch.einsum("bhcls,bcshp->bclhp", scores, dtx)
    decay_to_end = torch.exp(cumulative[..., -1:] - cumulative)   # [batch, H, chunks, L]
    chunk_states = torch.einsum("bcshn,bhcs,bcshp->bchnp", b, decay_to_end, dtx)
    chunk_decay = torch.exp(cumulative[..., -1])                   # [batch, H, chunks]
    state = initial_state
    entering = []
    for i in range(chunks):  # the inter-chunk recurrence: a handful of steps
        entering.append(state)
        state = chunk_decay[:, :, i, None, None] * state + chunk_states[:, i]
    entering = torch.stack(entering, dim=1)                        # [batch, chunks, H, N, P]
    y_off = torch.einsum("bclhn,bchnp,bhcl->bclhp", c, entering, torch.exp(cumulative))
    y = (y_diagonal + y_off).reshape(batch, chunks * chunk, heads, head_dim)[:, :tokens]
    return y, state


def mixer(inputs, cfg, dtype, chunk=256):
    """The whole mixer between in_proj and out_proj, computed in `dtype`. Returns y, present_conv, present_recurrent."""
    cast = lambda t: None if t is None else t.to(dtype)
    projected = cast(inputs["projected"])
    batch, tokens, _ = projected.shape
    gn = cfg.groups * cfg.state
    z = projected[..., :cfg.inner]
    xbc_raw = projected[..., cfg.inner:cfg.inner + cfg.conv_dim]
    dt_raw = projected[..., cfg.inner + cfg.conv_dim:]
    mask = (inputs["attention_mask"][:, -tokens:] != 0).to(dtype)
    window = torch.cat([cast(inputs["past_conv"]), xbc_raw.transpose(1, 2)], dim=2)
    present_conv = window[:, :, window.shape[2] - (cfg.d_conv - 1):]
    xbc = F.silu(causal_conv(window, cast(inputs["conv_weight"]), cast(inputs["conv_bias"]))).transpose(1, 2)
    xbc = xbc * mask[..., None]
    x = xbc[..., :cfg.inner].reshape(batch, tokens, cfg.heads, cfg.head_dim)
    per_group = cfg.heads // cfg.groups
    b = xbc[..., cfg.inner:cfg.inner + gn].reshape(batch, tokens, cfg.groups, cfg.state).repeat_interleave(per_group, 2)
    c = xbc[..., cfg.inner + gn:].reshape(batch, tokens, cfg.groups, cfg.state).repeat_interleave(per_group, 2)
    dt = F.softplus(dt_raw + cast(inputs["dt_bias"])).clamp(min=cfg.dt_min)
    if cfg.dt_max > 0 and math.isfinite(cfg.dt_max):
        dt = dt.clamp(max=cfg.dt_max)
    dt = dt * mask[..., None]
    a = -torch.exp(cast(inputs["A_log"]))
    y, state = ssd_chunked(x, dt, a, b, c, cast(inputs["past_recurrent"]), chunk)
    y = (y + cast(inputs["D"])[:, None] * x).reshape(batch, tokens, cfg.inner)
    gate = F.silu(z)
    if inputs["norm_weight"] is None:
        return y * gate, present_conv, state
    v = y if cfg.norm_before_gate else y * gate
    v = v.reshape(batch, tokens, cfg.groups, -1)
    v = v * torch.rsqrt(v.pow(2).mean(-1, keepdim=True) + cfg.epsilon)
    out = v.reshape(batch, tokens, cfg.inner) * cast(inputs["norm_weight"])
    return (out * gate if cfg.norm_before_gate else out), present_conv, state


# ---- the CUDA kernels through ctypes ----
class CudaMixer:
    def __init__(self, path):
        self.lib = ctypes.CDLL(path)
        self.lib.falcon_mamba2_workspace_bytes.argtypes = [ctypes.POINTER(ctypes.c_int64), ctypes.POINTER(ctypes.c_float)]
        self.lib.falcon_mamba2_workspace_bytes.restype = ctypes.c_size_t
        self.lib.falcon_mamba2_run.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_int64),
                                               ctypes.POINTER(ctypes.c_float), ctypes.POINTER(ctypes.c_void_p),
                                               ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
        self.lib.falcon_mamba2_run.restype = ctypes.c_char_p

    def prepare(self, inputs, cfg, dtype_name, in_place=False):
        """Device tensors in the kernel's types and a closure that enqueues one call on torch's stream."""
        code, dtype = DTYPES[dtype_name]
        t = {k: (None if v is None else v.to(torch.int64 if k == "attention_mask" else torch.float32).contiguous())
             for k, v in inputs.items()}
        t["projected"] = inputs["projected"].to(dtype).contiguous()
        batch, tokens, _ = t["projected"].shape
        y = torch.full((batch, tokens, cfg.inner), float("nan"), dtype=dtype, device=t["projected"].device)
        conv = t["past_conv"].clone() if in_place else torch.full_like(t["past_conv"], float("nan"))
        state = t["past_recurrent"].clone() if in_place else torch.full_like(t["past_recurrent"], float("nan"))
        past_conv = conv if in_place else t["past_conv"]
        past_state = state if in_place else t["past_recurrent"]
        dims = (ctypes.c_int64 * 9)(batch, tokens, t["attention_mask"].shape[1], cfg.heads, cfg.head_dim, cfg.groups,
                                    cfg.state, cfg.d_conv, int(cfg.norm_before_gate))
        scalars = (ctypes.c_float * 3)(cfg.epsilon, cfg.dt_min, cfg.dt_max)
        workspace = torch.empty(max(1, self.lib.falcon_mamba2_workspace_bytes(dims, scalars)), dtype=torch.uint8,
                                device=y.device)
        pointer = lambda v: None if v is None else v.data_ptr()
        pointers = (ctypes.c_void_p * 13)(*[pointer(v) for v in (
            t["projected"], t["conv_weight"], t["conv_bias"], t["dt_bias"], t["A_log"], t["D"], t["norm_weight"],
            t["attention_mask"], past_conv, past_state, y, conv, state)])
        keep = (t, workspace, past_conv, past_state)

        def run():
            error = self.lib.falcon_mamba2_run(code, dims, scalars, pointers, workspace.data_ptr(), workspace.numel(),
                                               torch.cuda.current_stream().cuda_stream)
            if error:
                raise RuntimeError(error.decode())
            _ = keep
        return run, (y, conv, state)


def within(got, want, relative, absolute):
    """Largest |got - want| and whether every element is within absolute * max(1, |want|max) + relative * |want|."""
    got, want = got.double(), want.double()
    difference = (got - want).abs()
    limit = absolute * max(1.0, want.abs().max().item()) + relative * want.abs()
    worst = difference.max().item() if difference.numel() else 0.0
    return (worst if not math.isnan(worst) else float("inf")), bool((difference <= limit).all().item())


Y_TOLERANCE = {"fp32": (0.0, 1e-4), "fp16": (1.0 / 1024, 1e-4), "bf16": (1.0 / 128, 1e-4)}


def check_against_float64(cuda, generator, device):
    failures = 0
    print("\nCUDA kernels vs this PyTorch code in float64 (chunk 256)")
    for name, heads, head_dim, state, groups, norm in MODEL_SHAPES:
        cfg = Config(heads, head_dim, state, groups, norm)
        for tokens in (1, 7, 128, 2048):
            inputs = make_inputs(cfg, 2 if tokens == 128 else 1, tokens, 6 if tokens < 128 else 0, generator, device,
                                 random_past=tokens < 128, left_pads=[0, 40] if tokens == 128 else None)
            for dtype_name, (_, dtype) in DTYPES.items():
                rounded = dict(inputs, projected=inputs["projected"].to(dtype).double())
                want = mixer(rounded, cfg, torch.float64)
                run, got = cuda.prepare(rounded, cfg, dtype_name, in_place=tokens in (1, 128))
                run()
                torch.cuda.synchronize()
                y = within(got[0], want[0], *Y_TOLERANCE[dtype_name])
                conv = within(got[1], want[1], 0.0, 1e-4)
                st = within(got[2], want[2], 0.0, 1e-4)
                ok = y[1] and conv[1] and st[1]
                failures += 0 if ok else 1
                print(f"{name:10s} T={tokens:<5d} {dtype_name}  max|dy| {y[0]:9.2e}  max|dconv| {conv[0]:9.2e}  "
                      f"max|dS| {st[0]:9.2e}  {'ok' if ok else 'FAIL'}")
    print(f"SUMMARY|check|CUDA model shapes T=1..2048 vs torch float64 (fp32/fp16/bf16)|{'FAIL' if failures else 'PASS'}")
    return failures


def median_ms(fn, repeats=10, warmup=3):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop))
    return sorted(times)[len(times) // 2]


def compare_prefill_speed(cuda, generator, device):
    print("\nPrefill of 2048 tokens, batch 1, fp32: this PyTorch code (chunk 256) vs the CUDA kernels, same GPU")
    print(f"{'shape':10s} {'torch ms':>10s} {'kernels ms':>11s} {'speedup':>8s}")
    for name, heads, head_dim, state, groups, norm in MODEL_SHAPES:
        cfg = Config(heads, head_dim, state, groups, norm)
        inputs = {k: (None if v is None else v.float() if v.is_floating_point() else v)
                  for k, v in make_inputs(cfg, 1, 2048, 0, generator, device, random_past=False).items()}
        with torch.no_grad():
            torch_ms = median_ms(lambda: mixer(inputs, cfg, torch.float32))
        run, _ = cuda.prepare(inputs, cfg, "fp32", in_place=True)
        kernel_ms = median_ms(run)
        print(f"{name:10s} {torch_ms:10.3f} {kernel_ms:11.3f} {torch_ms / kernel_ms:7.1f}x")
        print(f"SUMMARY|time|prefill 2048 {name} fp32: torch {torch_ms:.3f} ms, kernels {kernel_ms:.3f} ms|"
              f"{torch_ms / kernel_ms:.1f}x faster")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lib", required=True, help="path to libmamba2_cuda_capi.so")
    args = parser.parse_args()
    device = torch.device("cuda")
    torch.backends.cuda.matmul.allow_tf32 = False  # the fp32 baseline in true fp32, like the kernels
    torch.backends.cudnn.allow_tf32 = False
    generator = torch.Generator(device=device)
    generator.manual_seed(2024)
    cuda = CudaMixer(args.lib)
    failures = check_against_float64(cuda, generator, device)
    compare_prefill_speed(cuda, generator, device)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
