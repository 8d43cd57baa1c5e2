"""Batch normalisation against PyTorch CPU in one run: BatchNorm2d on (64, 32, 40, 40) and
BatchNorm1d on 64 x 128 points with 64 channels as (64, 64, 128), training mode (batch statistics
+ running-stat update). Rows: the bare kernel (preallocated outputs) against F.batch_norm, and the
modules forward and forward + backward, and BatchNorm1d with a point mask (padded particle sets)
against torch on the packed real particles. Float32, medians of repeated timings, equal thread counts;
GB/s counts the bytes that must move at least (forward: read x, write y; backward: read x and
dy, write dx), beside the machine's measured copy bandwidth.

    PYTHONPATH=python python bench/bench_norm.py [--threads 2]
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "python"))
import hepnn  # noqa: E402
from hepnn import _core  # noqa: E402


def median_time(fn, budget=0.4):
    fn()
    t0 = time.perf_counter()
    fn()
    once = max(time.perf_counter() - t0, 1e-7)
    inner = max(1, int(1e-3 / once))
    times = []
    for _ in range(max(7, int(budget / (once * inner)))):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - t0) / inner)
    return statistics.median(times)


def copy_bandwidth():
    a = np.ones(1 << 24, np.float32)
    b = np.empty_like(a)
    return 2 * a.nbytes / median_time(lambda: np.copyto(b, a)) / 1e9


def cases(torch, rng):
    """(name, bytes moved, hepnn callable, torch callable)."""
    for label, shape, hcls, tcls in (("BatchNorm2d (64, 32, 40, 40)", (64, 32, 40, 40), hepnn.nn.BatchNorm2d, torch.nn.BatchNorm2d),
                                     ("BatchNorm1d (64, 64, 128)", (64, 64, 128), hepnn.nn.BatchNorm1d, torch.nn.BatchNorm1d)):
        C = shape[1]
        x = rng.standard_normal(shape).astype(np.float32)
        dy = rng.standard_normal(shape).astype(np.float32)
        n = x.size
        y, sm, si = np.empty_like(x), np.empty(C, np.float32), np.empty(C, np.float32)
        w, b = np.ones(C, np.float32), np.zeros(C, np.float32)
        rm, rv = np.zeros(C, np.float32), np.ones(C, np.float32)
        tx, tdy = torch.from_numpy(x), torch.from_numpy(dy)
        tw, tb, trm, trv = (torch.from_numpy(a.copy()) for a in (w, b, rm, rv))
        yield (f"{label} kernel forward", 8 * n,
               lambda: _core.batchnorm_forward(x, None, w, b, rm, rv, True, 0.1, 1e-5, y, sm, si),
               lambda: torch.nn.functional.batch_norm(tx, trm, trv, tw, tb, True, 0.1, 1e-5))
        hbn, tbn = hcls(C), tcls(C)
        hx = hepnn.tensor(x)
        yield (f"{label} module forward", 8 * n, lambda: hbn(hx), lambda: tbn(tx))
        hxg = hepnn.tensor(x, requires_grad=True)
        txg = torch.from_numpy(x.copy()).requires_grad_()

        def h_fb():
            hxg.grad = hbn.weight.grad = hbn.bias.grad = None
            hbn(hxg).backward(dy)

        def t_fb():
            txg.grad = tbn.weight.grad = tbn.bias.grad = None
            tbn(txg).backward(tdy)

        yield (f"{label} module forward + backward", 20 * n, h_fb, t_fb)
        if hcls is not hepnn.nn.BatchNorm1d:
            continue
        # Padded particle sets: ~60% of the 128 slots real. torch runs on the packed real
        # particles (M, C), what a masked batch norm must equal; the packing is not timed.
        lengths = rng.integers(25, 129, shape[0])
        mask = np.arange(shape[2])[None, :] < lengths[:, None]
        packed = torch.from_numpy(np.ascontiguousarray(np.transpose(x, (0, 2, 1))[mask])).requires_grad_()
        tdp = torch.from_numpy(np.ascontiguousarray(np.transpose(dy, (0, 2, 1))[mask]))

        def h_mask():
            hxg.grad = hbn.weight.grad = hbn.bias.grad = None
            hbn(hxg, mask=mask).backward(dy)

        def t_packed():
            packed.grad = tbn.weight.grad = tbn.bias.grad = None
            tbn(packed).backward(tdp)

        yield (f"{label} masked (60% real) fwd + bwd vs torch on packed", 20 * n, h_mask, t_packed)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, nargs="+", default=[2])
    args = ap.parse_args()
    import torch

    bw = copy_bandwidth()
    print(f"float32, training mode; torch {torch.__version__}; copy bandwidth {bw:.1f} GB/s; "
          f"load {os.getloadavg()[0]:.2f}\n")
    print("| case | threads | hepnn us | torch us | torch / hepnn | hepnn GB/s |")
    print("|---|---:|---:|---:|---:|---:|")
    for th in args.threads:
        hepnn.set_num_threads(th)
        torch.set_num_threads(th)
        for name, nbytes, h, r in cases(torch, np.random.default_rng(0)):
            th_, tr = median_time(h), median_time(r)
            print(f"| {name} | {th} | {th_ * 1e6:.0f} | {tr * 1e6:.0f} | {tr / th_:.2f}x | {nbytes / th_ / 1e9:.1f} |")


if __name__ == "__main__":
    main()
