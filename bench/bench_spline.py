"""Rational-quadratic spline kernels against the same transform in vectorised PyTorch (CPU, one
run, equal thread counts): forward (y, logdet) and forward + backward (gradients w.r.t. x and the
unnormalised widths, heights, derivatives). Float32, 65536 x 32 elements, K = 8 bins by default,
inputs spread over [-1.2 B, 1.2 B]. Medians of alternating repeated timings; GB/s counts the bytes that must
move at least (forward: read x and 3K-1 parameters, write y and logdet; backward: read those and
dy, dlogdet, write dx and the 3K-1 parameter gradients), beside the measured copy bandwidth. The
hepnn rows call _core directly with preallocated outputs, and also through the autograd op.

    PYTHONPATH=python python bench/bench_spline.py [--threads 2] [--batch 65536] [--dims 32] [--bins 8] [--reps 9]
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "python"))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import hepnn  # noqa: E402
from hepnn import _core  # noqa: E402
from hepnn._ops_spline import rq_spline  # noqa: E402

BOUND = 3.0


def median_time(fn, budget=1.0):
    fn()
    t0 = time.perf_counter()
    fn()
    once = max(time.perf_counter() - t0, 1e-7)
    times = []
    for _ in range(max(5, int(budget / once))):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def paired_medians(fa, fb, reps):
    """Medians of fa and fb timed alternately, so a shared machine's load hits both alike."""
    fa(), fb()
    ta, tb = [], []
    for _ in range(reps):
        for fn, out in ((fa, ta), (fb, tb)):
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
    return statistics.median(ta), statistics.median(tb)


def copy_bandwidth():
    a = np.ones(1 << 24, np.float32)
    b = np.empty_like(a)
    return 2 * a.nbytes / median_time(lambda: np.copyto(b, a), 0.3) / 1e9


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=65536)
    ap.add_argument("--dims", type=int, default=32)
    ap.add_argument("--bins", type=int, default=8)
    ap.add_argument("--reps", type=int, default=9)
    args = ap.parse_args(argv)
    import torch

    from tests import torch_flows as TF

    hepnn.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    N, D, K = args.batch, args.dims, args.bins
    M = N * D
    rng = np.random.default_rng(0)
    x = rng.uniform(-1.2 * BOUND, 1.2 * BOUND, (N, D)).astype(np.float32)
    W, H = (rng.standard_normal((N, D, K)).astype(np.float32) for _ in range(2))
    Dv = rng.standard_normal((N, D, K - 1)).astype(np.float32)
    gy, gl = (rng.standard_normal((N, D)).astype(np.float32) for _ in range(2))
    y, ld, dx = (np.empty_like(x) for _ in range(3))
    dW, dH, dD = np.empty_like(W), np.empty_like(H), np.empty_like(Dv)

    def h_fwd():
        _core.spline_forward(x, W, H, Dv, y, ld, BOUND)

    def h_fwd_bwd():
        _core.spline_forward(x, W, H, Dv, y, ld, BOUND)
        _core.spline_backward(x, W, H, Dv, gy, gl, dx, dW, dH, dD, BOUND)

    def h_inv():
        _core.spline_inverse(y, W, H, Dv, dx, ld, BOUND)

    ts = [hepnn.tensor(a, requires_grad=True) for a in (x, W, H, Dv)]
    tgy, tgl = hepnn.tensor(gy), hepnn.tensor(gl)

    def h_autograd():
        for t in ts:
            t.grad = None
        yy, ll = rq_spline(*ts, bound=BOUND)
        ((yy * tgy).sum() + (ll * tgl).sum()).backward()

    tt = [torch.tensor(a, requires_grad=True) for a in (x, W, H, Dv)]
    tgy_t, tgl_t = torch.tensor(gy), torch.tensor(gl)

    def t_fwd():
        with torch.no_grad():
            TF.rq_spline(*tt, bound=BOUND)

    def t_fwd_bwd():
        yy, ll = TF.rq_spline(*tt, bound=BOUND)
        torch.autograd.backward([yy, ll], [tgy_t, tgl_t])
        for t in tt:
            t.grad = None

    # Same answers before timing (float32; the torch twin is the paper's cumsum form).
    h_fwd_bwd()
    yy, ll = TF.rq_spline(*tt, bound=BOUND)
    torch.autograd.backward([yy, ll], [tgy_t, tgl_t])
    err_y = float(np.abs(y - yy.detach().numpy()).max())
    # NOTE: log f' has a kink at every knot (f'' jumps), so an element within float32 rounding
    # of a knot may take either bin and get a different logdet gradient: count, don't max.
    ref_dw = tt[1].grad.numpy()
    off_dw = int(np.sum(np.abs(dW - ref_dw) > 1e-2 * (1 + np.abs(ref_dw))))
    for t in tt:
        t.grad = None

    bw = copy_bandwidth()
    P = 3 * K - 1
    fwd_bytes, bwd_bytes = 4 * M * (1 + P + 2), 4 * M * ((1 + P + 2) + (1 + P + 2) + (1 + P))
    rows = [("forward", h_fwd, t_fwd, fwd_bytes),
            ("forward + backward (kernels)", h_fwd_bwd, t_fwd_bwd, bwd_bytes),
            ("forward + backward (autograd op)", h_autograd, t_fwd_bwd, bwd_bytes)]
    print(f"rational-quadratic spline, float32, {N} x {D} elements, K = {K}, {args.threads} threads; "
          f"copy bandwidth {bw:.1f} GB/s; max |y - y_torch| {err_y:.1e}; dW entries off by > 1%: "
          f"{off_dw} of {dW.size}")
    print(f"| case | hepnn ms | torch ms | speed-up | hepnn Melem/s | hepnn GB/s (of {bw:.0f}) |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, hf, tf, nbytes in rows:
        th, tt_ = paired_medians(hf, tf, args.reps)
        print(f"| {name} | {th * 1e3:.1f} | {tt_ * 1e3:.1f} | {tt_ / th:.2f}x | {M / th / 1e6:.0f} | "
              f"{nbytes / th / 1e9:.1f} ({nbytes / th / 1e9 / bw:.0%}) |")
    ti = median_time(h_inv)
    print(f"| inverse (no torch twin) | {ti * 1e3:.1f} | | | {M / ti / 1e6:.0f} | "
          f"{fwd_bytes / ti / 1e9:.1f} ({fwd_bytes / ti / 1e9 / bw:.0%}) |")


if __name__ == "__main__":
    main()
