"""Recurrent layers, hepnn vs PyTorch CPU in one run: GRU and LSTM forward (no grad) and
forward+backward (sum of outputs and final states), float32, same shapes and thread count.

Shapes: B=64, L=30, input 16, hidden 64, 1 and 2 layers (plus variable lengths and a
bidirectional case). GFLOP/s counts the GEMM work only (input and hidden projections; backward
= 2x forward), which is what the time is spent on. Usage:
    PYTHONPATH=python python bench/bench_rnn.py [--threads 2 1] [--iters 30] [--repeats 7]
"""
import argparse
import itertools
import os
import statistics
import time

import numpy as np

import hepnn
from hepnn import nn

GATES = {"lstm": 4, "gru": 3}


def gemm_flops(mode, L, B, I, H, layers, D):
    G, total = GATES[mode], 0
    for layer in range(layers):
        width = I if layer == 0 else D * H
        total += D * 2 * L * B * G * H * (width + H)
    return total


def _median_s(fn, iters, repeats):
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(iters):
            fn()
        times.append((time.perf_counter() - t) / iters)
    return statistics.median(times)


def bench_case(torch, mode, L, B, I, H, layers, D, lengths, iters, repeats):
    tcls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[mode]
    hcls = {"lstm": nn.LSTM, "gru": nn.GRU}[mode]
    tmodel = tcls(I, H, num_layers=layers, bidirectional=D == 2)
    model = hcls(I, H, num_layers=layers, bidirectional=D == 2)
    model.load_state_dict({k: v.detach().numpy() for k, v in tmodel.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((L, B, I)).astype(np.float32)
    hx, tx = hepnn.tensor(x), torch.from_numpy(x)
    pack = torch.nn.utils.rnn.pack_padded_sequence
    tl = None if lengths is None else torch.from_numpy(lengths)

    def h_fwd():
        with hepnn.no_grad():
            model(hx, lengths=lengths)

    def t_run():
        inp = tx if tl is None else pack(tx, tl, enforce_sorted=False)
        return tmodel(inp)

    def t_fwd():
        with torch.no_grad():
            t_run()

    def h_fb():
        model.zero_grad()
        out, hn = model(hx, lengths=lengths)
        h = hn[0] if mode == "lstm" else hn
        (out.sum() + h.sum()).backward()

    def t_fb():
        tmodel.zero_grad()
        out, hn = t_run()
        out = out if tl is None else out.data
        h = hn[0] if mode == "lstm" else hn
        (out.sum() + h.sum()).backward()

    flops = gemm_flops(mode, L, B, I, H, layers, D)
    rows = []
    for label, hf, tf, mult in (("forward", h_fwd, t_fwd, 1), ("forward+backward", h_fb, t_fb, 3)):
        th = _median_s(hf, iters, repeats)
        tt = _median_s(tf, iters, repeats)
        rows.append((label, th, tt, mult * flops))
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, nargs="+", default=[2])
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    import torch

    L, B, I, H = 30, 64, 16, 64
    lengths = (np.random.default_rng(1).integers(5, L + 1, B)).astype(np.int64)
    cases = [(m, layers, 1, None) for m in ("gru", "lstm") for layers in (1, 2)]
    cases += [(m, 1, 1, lengths) for m in ("gru", "lstm")] + [(m, 1, 2, None) for m in ("gru", "lstm")]
    print(f"B={B}, L={L}, input {I}, hidden {H}, float32; median of {args.repeats} x {args.iters} "
          f"calls; torch {torch.__version__}; load average {os.getloadavg()[0]:.1f} at start\n")
    print("| layer | threads | pass | hepnn ms | torch ms | torch / hepnn | hepnn GFLOP/s | torch GFLOP/s |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for (mode, layers, D, lens), threads in itertools.product(cases, args.threads):
        torch.set_num_threads(threads)
        hepnn.set_num_threads(threads)
        name = f"{mode.upper()} {layers} layer{'s' if layers > 1 else ''}" + \
            (", bidirectional" if D == 2 else "") + (", lengths 5-30" if lens is not None else "")
        for label, th, tt, fl in bench_case(torch, mode, L, B, I, H, layers, D, lens, args.iters, args.repeats):
            print(f"| {name} | {threads} | {label} | {th * 1e3:.3f} | {tt * 1e3:.3f} | {tt / th:.2f}x | "
                  f"{fl / th / 1e9:.1f} | {fl / tt / 1e9:.1f} |")


if __name__ == "__main__":
    main()
