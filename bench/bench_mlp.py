"""MLP training throughput, hepnn vs PyTorch CPU in one run, plus the Python overhead per op.

Model: 30 -> W -> W -> W -> 1, ReLU, BCE-with-logits, Adam, batch 256 (W = 128 and 512).
Both frameworks get the same thread count; medians over repeats. Usage:
    python bench/bench_mlp.py [--threads 1 2] [--steps 200] [--repeats 5]
"""
import argparse
import statistics
import time

import numpy as np

import hepnn
from hepnn import nn


def _hepnn_model(width):
    return nn.Sequential(nn.Linear(30, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                         nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 1))


def _samples_per_s(model, opt, loss_fn, xs, ys, batch, steps, repeats):
    """Median training throughput of one framework's step loop (the code reads the same for both)."""

    def run(n):
        for i in range(n):
            loss = loss_fn(model(xs[i % len(xs)]), ys[i % len(ys)])
            opt.zero_grad()
            loss.backward()
            opt.step()
        return loss.item()

    run(10)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        run(steps)
        times.append(time.perf_counter() - t)
    return batch * steps / statistics.median(times)


def bench_hepnn(width, batch, steps, repeats, data):
    model = _hepnn_model(width)
    opt = hepnn.optim.Adam(model.parameters(), lr=1e-3)
    return _samples_per_s(model, opt, nn.BCEWithLogitsLoss(), [hepnn.tensor(x) for x, _ in data],
                          [hepnn.tensor(y) for _, y in data], batch, steps, repeats)


def bench_torch(torch, width, batch, steps, repeats, data):
    tn = torch.nn
    model = tn.Sequential(tn.Linear(30, width), tn.ReLU(), tn.Linear(width, width), tn.ReLU(),
                          tn.Linear(width, width), tn.ReLU(), tn.Linear(width, 1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    return _samples_per_s(model, opt, tn.BCEWithLogitsLoss(), [torch.from_numpy(x) for x, _ in data],
                          [torch.from_numpy(y) for _, y in data], batch, steps, repeats)


def op_overhead(repeats):
    """Seconds per autograd-recorded op on 4x4 tensors, minus the raw NumPy cost of the same op."""
    a = hepnn.randn(4, 4, requires_grad=True)
    b = hepnn.randn(4, 4, requires_grad=True)
    an, bn = a.numpy(), b.numpy()
    n = 20000
    res = {}
    for label, f_h, f_n in [("a + b", lambda: a + b, lambda: an + bn), ("a * b", lambda: a * b, lambda: an * bn),
                            ("a.relu()", lambda: a.relu(), lambda: np.maximum(an, 0))]:
        th, tn_ = [], []
        for _ in range(repeats):
            t = time.perf_counter()
            for _ in range(n):
                f_h()
            th.append((time.perf_counter() - t) / n)
            t = time.perf_counter()
            for _ in range(n):
                f_n()
            tn_.append((time.perf_counter() - t) / n)
        res[label] = (statistics.median(th), statistics.median(tn_))
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--widths", type=int, nargs="+", default=[128, 512])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    try:
        import torch
    except ImportError:
        torch = None
    rng = np.random.default_rng(0)
    data = [(rng.standard_normal((args.batch, 30)).astype(np.float32),
             (rng.random((args.batch, 1)) < 0.5).astype(np.float32)) for _ in range(8)]
    print(f"MLP 30-W-W-W-1 ReLU, BCE-with-logits, Adam, batch {args.batch}, float32; samples/s (median of {args.repeats})\n")
    print("| width | threads | hepnn samples/s | torch samples/s | hepnn / torch |")
    print("|---|---|---|---|---|")
    for width in args.widths:
        for th in args.threads:
            hepnn.set_num_threads(th)
            h = bench_hepnn(width, args.batch, args.steps, args.repeats, data)
            if torch is not None:
                torch.set_num_threads(th)
                t = bench_torch(torch, width, args.batch, args.steps, args.repeats, data)
                print(f"| {width} | {th} | {h:,.0f} | {t:,.0f} | {h / t:.2f}x |")
            else:
                print(f"| {width} | {th} | {h:,.0f} | (torch not installed) | - |")
    print("\nPython overhead per autograd op, 4x4 float32 (median):\n")
    print("| op | hepnn us | numpy us | overhead us |")
    print("|---|---|---|---|")
    for label, (th, tn_) in op_overhead(args.repeats).items():
        print(f"| `{label}` | {th * 1e6:.2f} | {tn_ * 1e6:.2f} | {(th - tn_) * 1e6:.2f} |")


if __name__ == "__main__":
    main()
