"""EdgeConv forward + backward, hepnn's fused kernel vs PyTorch CPU in one run, plus kNN alone.

Shape (the default): 64 jets x 128 particles, k = 16, 64 input features, edge MLP widths
128-64-64 (ReLU after each), mean aggregation, float32. Torch runs twice: naive (gather every
neighbour, concat [x_i, x_j - x_i], MLP on the B x N x k x 2C edge tensor) and factorised (two
per-point GEMMs for the first layer, then the same per-edge layers). kNN indices are computed once
and shared; kNN is timed on its own in (deta, dphi) and in the 64-d feature space.
GFLOP/s use one count for all three: the factorised algorithm's forward + backward arithmetic
(3 x forward GEMM FLOPs; hepnn's tile recompute in backward is extra work not credited).
Usage: python bench/bench_edgeconv.py [--threads 2] [--repeats 7] [--widths 128 64 64]
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

import hepnn
import hepnn.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def median_time(fn, repeats, warmup=2):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def forward_flops(B, N, C, k, widths):
    E = B * N * k
    f = 2 * B * N * C * 2 * widths[0] + E * widths[0]  # P, Q GEMM + the per-edge add
    for a, b in zip(widths[:-1], widths[1:]):
        f += 2 * E * a * b
    return f


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--particles", type=int, default=128)
    ap.add_argument("--features", type=int, default=64)
    ap.add_argument("-k", type=int, default=16)
    ap.add_argument("--widths", type=int, nargs="+", default=[128, 64, 64])
    ap.add_argument("--aggregation", default="mean")
    args = ap.parse_args()
    import torch

    from tests import torch_graph as TG

    torch.set_num_threads(args.threads)
    hepnn.set_num_threads(args.threads)
    B, N, C, k, widths = args.batch, args.particles, args.features, args.k, args.widths
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, N, C)).astype(np.float32)
    pts = rng.standard_normal((B, N, 2)).astype(np.float32)
    mask = np.ones((B, N), bool)
    torch.manual_seed(0)
    tnaive = TG.EdgeConv(C, widths, args.aggregation)
    tfact = TG.EdgeConv(C, widths, args.aggregation, factorised=True)
    tfact.load_state_dict(tnaive.state_dict())
    W = [hepnn.tensor(l.weight.detach().numpy(), requires_grad=True) for l in tnaive.mlp]
    bs = [hepnn.tensor(l.bias.detach().numpy(), requires_grad=True) for l in tnaive.mlp]
    idx = F.knn(hepnn.tensor(pts), k, mask)
    idx_t = torch.from_numpy(idx.numpy())
    mask_t = torch.from_numpy(mask)
    gy = rng.standard_normal((B, N, widths[-1])).astype(np.float32)
    gy_t = torch.from_numpy(gy)

    xh = hepnn.tensor(x, requires_grad=True)

    def hep_fwd():
        with hepnn.no_grad():
            F.edge_conv(xh, idx, W, bs, aggregation=args.aggregation)

    def hep_fb():
        y = F.edge_conv(xh, idx, W, bs, aggregation=args.aggregation)
        y.backward(gy)

    xt = torch.from_numpy(x).requires_grad_(True)

    def torch_runs(model):
        def fwd():
            with torch.no_grad():
                model(xt, mask_t, idx_t)

        def fb():
            model(xt, mask_t, idx_t).backward(gy_t)
        return fwd, fb

    # Same numbers first: the three implementations must agree.
    y_h = F.edge_conv(hepnn.tensor(x), idx, W, bs, aggregation=args.aggregation).numpy()
    with torch.no_grad():
        y_t = tnaive(torch.from_numpy(x), mask_t, idx_t).numpy()
    err = float(np.max(np.abs(y_h - y_t)))

    fl = forward_flops(B, N, C, k, widths)
    rows = []
    t_h = (median_time(hep_fwd, args.repeats), median_time(hep_fb, args.repeats))
    for name, model in (("torch naive", tnaive), ("torch factorised", tfact)):
        fwd, fb = torch_runs(model)
        rows.append((name, median_time(fwd, args.repeats), median_time(fb, args.repeats)))

    # kNN alone.
    pts_t, x_t = torch.from_numpy(pts), torch.from_numpy(x)

    def torch_knn_topk(c):  # the usual ParticleNet form: -|xi - xj|^2 via one matmul, then topk
        inner = -2 * torch.matmul(c, c.transpose(2, 1))
        sq = (c ** 2).sum(-1, keepdim=True)
        d = sq + inner + sq.transpose(2, 1)
        return d.topk(k + 1, dim=-1, largest=False).indices[:, :, 1:]

    knn_rows = []
    for label, ch, ct in (("(deta, dphi), D = 2", hepnn.tensor(pts), pts_t), (f"features, D = {C}", hepnn.tensor(x), x_t)):
        th = median_time(lambda: F.knn(ch, k, mask), args.repeats)
        tt = median_time(lambda: torch_knn_topk(ct), args.repeats)
        knn_rows.append((label, th, tt))

    print(f"# EdgeConv {B} x {N}, k = {k}, C = {C}, widths {'-'.join(map(str, widths))}, "
          f"{args.aggregation} aggregation, float32, {args.threads} threads; max |hepnn - torch| = {err:.2e}")
    print(f"torch {torch.__version__}; forward FLOPs (factorised count) = {fl / 1e9:.2f} G")
    print("| implementation | forward ms | fwd+bwd ms | fwd+bwd GFLOP/s | hepnn speed-up fwd | hepnn speed-up fwd+bwd |")
    print("|---|---:|---:|---:|---:|---:|")
    print(f"| hepnn fused | {t_h[0] * 1e3:.1f} | {t_h[1] * 1e3:.1f} | {3 * fl / t_h[1] / 1e9:.1f} | 1.00 | 1.00 |")
    for name, tf, tb in rows:
        print(f"| {name} | {tf * 1e3:.1f} | {tb * 1e3:.1f} | {3 * fl / tb / 1e9:.1f} | {tf / t_h[0]:.2f} | {tb / t_h[1]:.2f} |")
    print()
    print("| kNN (k = %d) | hepnn ms | torch matmul+topk ms | torch / hepnn |" % k)
    print("|---|---:|---:|---:|")
    for label, th, tt in knn_rows:
        print(f"| {label} | {th * 1e3:.2f} | {tt * 1e3:.2f} | {tt / th:.2f} |")


if __name__ == "__main__":
    main()
