"""The other kernel families against PyTorch CPU in one run: activations, softmax, fused losses
(value + gradient), the fused linear layer (forward + backward), the Adam step, and DisCo against
its NumPy reference. Float32, medians of repeated timings, equal thread counts; the GB/s column
counts the bytes the hepnn kernel must move at least, beside the machine's measured copy bandwidth.

    PYTHONPATH=python python bench/bench_kernels.py [--threads 1 2]
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


def median_time(fn, budget=0.3):
    fn()
    t0 = time.perf_counter()
    fn()
    once = max(time.perf_counter() - t0, 1e-7)
    inner = max(1, int(1e-3 / once))
    times = []
    for _ in range(max(5, int(budget / (once * inner)))):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - t0) / inner)
    return statistics.median(times)


def cases(torch, rng):
    """(name, bytes moved, hepnn callable, reference callable, reference name)."""
    F = torch.nn.functional
    n = 1 << 20
    x = rng.standard_normal(n).astype(np.float32)
    y = np.empty_like(x)
    tx = torch.from_numpy(x)
    for act, tf in (("relu", F.relu), ("gelu", F.gelu), ("sigmoid", torch.sigmoid), ("tanh", torch.tanh)):
        yield (f"{act} forward, 2^20", 8 * n, lambda act=act: _core.act_forward(act, x, y),
               lambda tf=tf: tf(tx), "torch")

    s = rng.standard_normal((4096, 256)).astype(np.float32)
    so = np.empty_like(s)
    ts = torch.from_numpy(s)
    yield ("softmax last axis, 4096 x 256", 8 * s.size, lambda: _core.softmax_forward(s, so, -1),
           lambda: torch.softmax(ts, -1), "torch")

    logits = rng.standard_normal((n, 1)).astype(np.float32)
    target = (rng.random((n, 1)) < 0.5).astype(np.float32)
    grad, loss = np.empty_like(logits), np.empty(1, np.float32)
    tl = torch.from_numpy(logits).requires_grad_()
    tt = torch.from_numpy(target)

    def torch_bce():
        tl.grad = None
        F.binary_cross_entropy_with_logits(tl, tt).backward()

    yield ("BCE-with-logits value + grad, 2^20", 12 * n,
           lambda: _core.bce_with_logits_loss(logits, target, None, "mean", None, grad, loss), torch_bce, "torch")

    cl = rng.standard_normal((65536, 10)).astype(np.float32)
    labels = rng.integers(0, 10, 65536)
    cgrad = np.empty_like(cl)
    tcl = torch.from_numpy(cl).requires_grad_()
    tlab = torch.from_numpy(labels)

    def torch_ce():
        tcl.grad = None
        F.cross_entropy(tcl, tlab).backward()

    yield ("cross-entropy value + grad, 65536 x 10", 8 * cl.size + 8 * len(labels),
           lambda: _core.cross_entropy_loss(cl, labels, None, "mean", None, cgrad, loss), torch_ce, "torch")

    B, I, O = 256, 128, 128
    xb = rng.standard_normal((B, I)).astype(np.float32)
    w = (rng.standard_normal((O, I)) * 0.1).astype(np.float32)
    b = np.zeros(O, np.float32)
    yb, dy = np.empty((B, O), np.float32), rng.standard_normal((B, O)).astype(np.float32)
    dx, dw, db = np.empty_like(xb), np.empty_like(w), np.empty_like(b)
    txb = torch.from_numpy(xb).requires_grad_()
    tw, tb = torch.from_numpy(w).requires_grad_(), torch.from_numpy(b).requires_grad_()
    tdy = torch.from_numpy(dy)

    def hepnn_linear():
        _core.linear_forward(xb, w, b, yb, None, "relu")
        _core.linear_backward(xb, w, None, yb, dy, dx, dw, db, "relu")

    def torch_linear():
        txb.grad = tw.grad = tb.grad = None
        F.relu(F.linear(txb, tw, tb)).backward(tdy)

    yield ("linear+relu fwd+bwd, 256 x 128 -> 128", 4 * (3 * B * I + 3 * O * I + 3 * B * O), hepnn_linear,
           torch_linear, "torch")

    p = rng.standard_normal(n).astype(np.float32)
    g = rng.standard_normal(n).astype(np.float32)
    m1, m2 = np.zeros_like(p), np.zeros_like(p)
    tp = torch.nn.Parameter(torch.from_numpy(p.copy()))
    tp.grad = torch.from_numpy(g)
    topt = torch.optim.Adam([tp], lr=1e-3)
    yield ("Adam step, 2^20 parameters", 4 * 7 * n,
           lambda: _core.adam_step([p], [g], [m1], [m2], None, 10, 1e-3), topt.step, "torch")

    bd = 2048
    sc = rng.random(bd)
    ms = rng.uniform(50, 150, bd)
    dl, dg = np.empty(1), np.empty(bd)

    def numpy_disco():
        a = np.abs(sc[:, None] - sc[None, :])
        c = np.abs(ms[:, None] - ms[None, :])
        A = a - a.mean(0) - a.mean(1)[:, None] + a.mean()
        C = c - c.mean(0) - c.mean(1)[:, None] + c.mean()
        return (A * C).mean() / np.sqrt((A * A).mean() * (C * C).mean())

    yield (f"DisCo value + grad, B = {bd} (float64)", 8 * 4 * bd,
           lambda: _core.disco_loss(sc, ms, None, dl, dg), numpy_disco, "NumPy value only")


def copy_bandwidth():
    a = np.ones(1 << 24, np.float32)
    b = np.empty_like(a)
    return 2 * a.nbytes / median_time(lambda: np.copyto(b, a)) / 1e9


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    import torch

    bw = copy_bandwidth()
    print(f"float32 unless noted; torch {torch.__version__}; copy bandwidth {bw:.1f} GB/s; load {os.getloadavg()[0]:.2f}\n")
    print("| kernel | threads | hepnn us | reference us | reference | reference / hepnn | hepnn GB/s |")
    print("|---|---:|---:|---:|---|---:|---:|")
    for th in args.threads:
        hepnn.set_num_threads(th)
        torch.set_num_threads(th)
        for name, nbytes, h, r, rname in cases(torch, np.random.default_rng(0)):
            th_, tr = median_time(h), median_time(r)
            print(f"| {name} | {th} | {th_ * 1e6:.1f} | {tr * 1e6:.1f} | {rname} | {tr / th_:.2f}x | {nbytes / th_ / 1e9:.1f} |")


if __name__ == "__main__":
    main()
