"""Fused attention and a transformer encoder, hepnn vs PyTorch CPU in one run (same shapes,
same threads, runs interleaved, medians).

1. Masked scaled dot-product attention, q/k/v (B=64, H=8, L=128, D=16), forward and
   forward+backward, against torch.nn.functional.scaled_dot_product_attention with a boolean
   (B, 1, 1, L) mask; jets padded to 128 (20-100 real particles) and a fully real batch.
2. A 2-layer TransformerEncoder (d=128, 8 heads, ff=512, B=64, L=128, padded jets) forward in
   eval mode under no_grad, against torch's (its default fast path included), and one
   forward+backward in train mode (dropout 0; torch's fast path is off there).
GFLOP/s count the dense products (4 B H L^2 D forward, 14 B H L^2 D forward+backward) whether or
not padded keys are skipped. Usage: python bench/bench_attention.py [--threads 2] [--repeats 15]
"""
import argparse
import statistics
import time

import numpy as np

import hepnn
from hepnn import nn
import hepnn.nn.functional as F


def _interleaved(fns, repeats, warmup=2):
    for fn in fns:
        for _ in range(warmup):
            fn()
    times = [[] for _ in fns]
    for _ in range(repeats):
        for t, fn in zip(times, fns):
            t0 = time.perf_counter()
            fn()
            t.append(time.perf_counter() - t0)
    return [statistics.median(t) for t in times]


def bench_sdpa(torch, repeats, padded):
    B, H, L, D = 64, 8, 128, 16
    rng = np.random.default_rng(0)
    q, k, v, g = (rng.standard_normal((B, H, L, D)).astype(np.float32) for _ in range(4))
    n = rng.integers(20, 101, size=B) if padded else np.full(B, L)
    pad = np.arange(L)[None, :] >= n[:, None]
    hq, hk, hv = (hepnn.tensor(a, requires_grad=True) for a in (q, k, v))
    hg = hepnn.tensor(g)
    tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    tg = torch.tensor(g)
    tmask = torch.tensor(~pad)[:, None, None, :]

    def h_fwd():
        with hepnn.no_grad():
            F.scaled_dot_product_attention(hq, hk, hv, key_padding_mask=pad)

    def t_fwd():
        with torch.no_grad():
            torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, attn_mask=tmask)

    def h_step():
        out = F.scaled_dot_product_attention(hq, hk, hv, key_padding_mask=pad)
        out.backward(hg)

    def t_step():
        out = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, attn_mask=tmask)
        out.backward(tg)

    label = "padded jets (20-100 of 128)" if padded else "no padding"
    rows = []
    for what, hf, tf, flops in (("forward", h_fwd, t_fwd, 4), ("forward+backward", h_step, t_step, 14)):
        th, tt = _interleaved([hf, tf], repeats)
        gf = flops * B * H * L * L * D / 1e9
        rows.append((f"SDPA {what}, {label}", th, tt, gf))
    return rows


def bench_encoder(torch, repeats):
    B, L, E, Hh, FF = 64, 128, 128, 8, 512
    rng = np.random.default_rng(1)
    x = rng.standard_normal((B, L, E)).astype(np.float32)
    n = rng.integers(20, 101, size=B)
    pad = np.arange(L)[None, :] >= n[:, None]
    tl = torch.nn.TransformerEncoderLayer(E, Hh, FF, dropout=0.0, batch_first=True)
    tenc = torch.nn.TransformerEncoder(tl, 2).eval()
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(E, Hh, FF, dropout=0.0), 2).eval()
    enc.load_state_dict({k: v.detach().numpy() for k, v in tenc.state_dict().items()})
    hx, tx, tpad = hepnn.tensor(x), torch.tensor(x), torch.tensor(pad)

    def h():
        with hepnn.no_grad():
            enc(hx, src_key_padding_mask=pad)

    def t():
        with torch.no_grad():
            tenc(tx, src_key_padding_mask=tpad)

    hg, tg = hepnn.tensor(np.ones_like(x)), torch.ones(x.shape)
    enc.train()
    tenc.train()

    def h_step():
        enc(hx, src_key_padding_mask=pad).backward(hg)

    def t_step():
        tenc(tx, src_key_padding_mask=tpad).backward(tg)

    th2, tt2 = _interleaved([h_step, t_step], repeats)
    enc.eval()
    tenc.eval()
    th, tt = _interleaved([h, t], repeats)
    # per layer: 2 (4 E^2 + 2 E FF) per token for the linear layers, 4 B H L^2 D for attention
    gf = 2 * (2 * B * L * (4 * E * E + 2 * E * FF) + 4 * B * Hh * L * L * (E // Hh)) / 1e9
    return [("2-layer encoder forward (eval, no_grad, padded jets)", th, tt, gf),
            ("2-layer encoder forward+backward (train, dropout 0, padded jets)", th2, tt2, 3 * gf)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    hepnn.set_num_threads(args.threads)
    rows = bench_sdpa(torch, args.repeats, True) + bench_sdpa(torch, args.repeats, False)
    rows += bench_encoder(torch, max(5, args.repeats // 3))
    print(f"threads={args.threads} repeats={args.repeats} torch {torch.__version__}")
    print("| case | hepnn ms | torch ms | torch / hepnn | hepnn GFLOP/s | torch GFLOP/s |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, th, tt, gf in rows:
        print(f"| {name} | {th * 1e3:.2f} | {tt * 1e3:.2f} | {tt / th:.2f}x | {gf / th:.1f} | {gf / tt:.1f} |")


if __name__ == "__main__":
    main()
