"""hepnn's CUDA backend against cuBLAS (through CuPy) and PyTorch CUDA, one run, same device.

Cases (all float32; medians of --repeats timings, each a loop of calls closed by a device sync):
  gemm      C = A B at n = 1024..8192 and at MLP training shapes (forward X W^T, weight gradient
            dY^T X): hepnn's SIMT sgemm vs CuPy's matmul (cuBLAS, TF32 off) and torch.matmul.
  mlp       a training step (forward, BCE, backward, Adam) of 32-W-W-W-1 ReLU MLPs, W = 64 and
            128, batch 256 (launch-bound) and 2^14 / 2^17, vs torch; steps/s.
  sdpa      masked attention forward+backward, B=64 H=8 L=128 D=16 (jets padded to 128), vs
            torch.nn.functional.scaled_dot_product_attention (bool mask; and unmasked, where torch
            picks its flash kernel).
  edgeconv  64 jets x 128 particles, k=16, 64 -> 128-64-64, forward+backward vs torch's naive
            gather and factorised versions (tests/torch_graph.py) on CUDA.
  cnn       the jet-image CNN of bench_conv.py (B=64, 1x40x40) training step vs torch (cuDNN).
  encoder   2-layer TransformerEncoder (d=128, 8 heads, ff=512, B=64, L=128) forward (eval).
  rnn       GRU / LSTM (B=64, T=50, 16 -> 64, 2 layers) forward+backward vs torch (cuDNN).
  profile   (not timed) the kernels hepnn's CNN and MLP steps spend GPU time in, via torch.profiler.
TF32 is off in torch (fp32 against fp32). "host" is hepnn's host time per call before the closing
sync: close to the total means the case is bound by Python and launches, not by the kernels.
Peak: --peak-tflops (default 67, the H100/H200 SXM dense fp32 datasheet figure).
Usage: python bench/bench_cuda.py [--cases gemm,mlp,...] [--repeats 7] [--quick]
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "python"))

import hepnn  # noqa: E402
import hepnn.nn.functional as F  # noqa: E402
from hepnn import nn  # noqa: E402

ROWS = []  # (section, case, hepnn s, [(reference name, s)], flop or None, extra)


def sync():
    import cupy

    cupy.cuda.Device().synchronize()


def gpu_time(fn, repeats, min_s=0.02):
    """Median seconds per call over `repeats` timed loops; a loop is long enough (>= min_s) that
    the final sync and the timer do not matter."""
    for _ in range(3):
        fn()
    sync()
    t = time.perf_counter()
    fn()
    sync()
    once = max(time.perf_counter() - t, 1e-6)
    iters = max(1, min(1000, int(min_s / once)))
    ts, hs = [], []
    for _ in range(repeats):
        sync()
        t = time.perf_counter()
        for _ in range(iters):
            fn()
        hs.append((time.perf_counter() - t) / iters)
        sync()
        ts.append((time.perf_counter() - t) / iters)
    global LAST_HOST
    LAST_HOST = statistics.median(hs)
    return statistics.median(ts)


LAST_HOST = 0.0  # host seconds per call of the last gpu_time (before the closing sync)


def hepnn_time(fn, repeats):
    """(seconds per call, host seconds per call): host close to the total = Python/launch-bound."""
    t = gpu_time(fn, repeats)
    return t, LAST_HOST


def record(section, case, th, refs, flop=None, note=""):
    if isinstance(th, tuple):  # (total, host) from hepnn_time
        th, host = th
        note = f"host {host * 1e3:.3f} ms; {note}"
    ROWS.append((section, case, th, refs, flop, note))
    parts = " ".join(f"{n}={t * 1e3:.3f}ms({t / th:.2f}x)" for n, t in refs)
    print(f"[{section}] {case}: hepnn {th * 1e3:.3f} ms; {parts} {note}", flush=True)


def bench_gemm(cp, torch, repeats, quick):
    from hepnn import _core

    stream = lambda: cp.cuda.get_current_stream().ptr  # noqa: E731
    sizes = [1024, 2048, 4096] if quick else [1024, 2048, 4096, 8192]
    shapes = [(n, n, n, False, False) for n in sizes]
    # MLP training: forward X (M x K) W^T (N x K) and weight gradient dY^T (N x M) X (M x K).
    for m, w in ((2 ** 14, 64), (2 ** 17, 128), (2 ** 20, 256)):
        shapes += [(m, w, w, False, True), (w, w, m, True, False)]
    for m, n, k, ta, tb in shapes:
        a = cp.random.standard_normal((k, m) if ta else (m, k), dtype=cp.float32)
        b = cp.random.standard_normal((n, k) if tb else (k, n), dtype=cp.float32)
        c = cp.empty((m, n), cp.float32)
        aa, bb = (a.T if ta else a), (b.T if tb else b)
        th = hepnn_time(lambda: _core.gemm(a, b, c, trans_a=ta, trans_b=tb, stream=stream()), repeats)
        ref = cp.matmul(aa, bb)
        err = float(cp.abs(c - ref).max() / cp.abs(ref).max())
        tc = gpu_time(lambda: cp.matmul(aa, bb, out=c), repeats)
        refs = [("cuBLAS(cupy)", tc)]
        if torch is not None:
            ta_, tb_ = torch.from_dlpack(aa), torch.from_dlpack(bb)
            refs.append(("torch", gpu_time(lambda: torch.matmul(ta_, tb_), repeats)))
        label = f"{m}x{k}x{n}" + (" A^T" if ta else "") + (" B^T" if tb else "")
        record("gemm", label, th, refs, 2.0 * m * n * k, f"rel.err {err:.1e}")
        if torch is None or (m == n == k and m < 2048):
            continue
        # The opt-in TF32 tensor-core path against cuBLAS TF32 (through torch).
        hepnn.cuda.set_allow_tf32(True)
        torch.backends.cuda.matmul.allow_tf32 = True
        try:
            th = hepnn_time(lambda: _core.gemm(a, b, c, trans_a=ta, trans_b=tb, stream=stream()), repeats)
            err = float(cp.abs(c - ref).max() / cp.abs(ref).max())
            tt = gpu_time(lambda: torch.matmul(ta_, tb_), repeats)
        finally:
            hepnn.cuda.set_allow_tf32(False)
            torch.backends.cuda.matmul.allow_tf32 = False
        flop = 2.0 * m * n * k
        record("gemm TF32", label, th, [("torch TF32", tt)], flop,
               f"{100 * flop / th[0] / 1e12 / 495:.0f}% of 495 TF32; rel.err {err:.1e}")


def _mlp(width, lib):
    layers = [lib.Linear(32, width), lib.ReLU()]
    for _ in range(2):
        layers += [lib.Linear(width, width), lib.ReLU()]
    return lib.Sequential(*layers, lib.Linear(width, 1))


def bench_mlp(cp, torch, repeats, quick):
    batches = [256, 2 ** 14] if quick else [256, 2 ** 14, 2 ** 17]
    for width in (64, 128):
        for batch in batches:
            rng = np.random.default_rng(0)
            x = rng.standard_normal((batch, 32)).astype(np.float32)
            y = (rng.random((batch, 1)) < 0.5).astype(np.float32)
            hm = _mlp(width, nn).to("cuda")
            hopt = hepnn.optim.Adam(hm.parameters(), lr=1e-3)
            hx, hy = hepnn.tensor(x, device="cuda"), hepnn.tensor(y, device="cuda")
            hl = nn.BCEWithLogitsLoss()

            def h_step():
                hopt.zero_grad()
                hl(hm(hx), hy).backward()
                hopt.step()

            th = hepnn_time(h_step, repeats)
            refs = []
            if torch is not None:
                tm = _mlp(width, torch.nn).cuda()
                topt = torch.optim.Adam(tm.parameters(), lr=1e-3)
                tx, ty = torch.tensor(x, device="cuda"), torch.tensor(y, device="cuda")
                tl = torch.nn.BCEWithLogitsLoss()

                def t_step():
                    topt.zero_grad()
                    tl(tm(tx), ty).backward()
                    topt.step()

                refs.append(("torch", gpu_time(t_step, repeats)))
            flop = 6.0 * batch * (32 * width + 2 * width * width + width)
            record("mlp", f"W={width} batch={batch}", th, refs, flop, f"hepnn {1 / th[0]:.0f} steps/s")


def bench_sdpa(cp, torch, repeats, quick):
    B, H, L, D = 64, 8, 128, 16
    rng = np.random.default_rng(0)
    for padded in (True, False):
        q, k, v, g = (rng.standard_normal((B, H, L, D)).astype(np.float32) for _ in range(4))
        n = rng.integers(20, 101, size=B) if padded else np.full(B, L)
        pad = np.arange(L)[None, :] >= n[:, None]
        hq, hk, hv = (hepnn.tensor(a, device="cuda", requires_grad=True) for a in (q, k, v))
        hg = hepnn.tensor(g, device="cuda")
        hpad = cp.asarray(pad)

        def h_step():
            F.scaled_dot_product_attention(hq, hk, hv, key_padding_mask=hpad if padded else None).backward(hg)

        th = hepnn_time(h_step, repeats)
        refs = []
        if torch is not None:
            tq, tk, tv = (torch.tensor(a, device="cuda", requires_grad=True) for a in (q, k, v))
            tg = torch.tensor(g, device="cuda")
            tmask = torch.tensor(~pad, device="cuda")[:, None, None, :] if padded else None
            ho = F.scaled_dot_product_attention(hq, hk, hv, key_padding_mask=hpad if padded else None)
            to = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, attn_mask=tmask)
            keep = ~pad[:, None, :, None].repeat(H, 1)  # padded queries' rows are not compared
            diff = np.abs(ho.detach().cpu().numpy() - to.detach().cpu().numpy())
            err = float(np.where(np.broadcast_to(keep, diff.shape), diff, 0).max())

            def t_step():
                torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, attn_mask=tmask).backward(tg)

            refs.append(("torch", gpu_time(t_step, repeats)))
        else:
            err = float("nan")
        record("sdpa", "padded jets (20-100 of 128)" if padded else "no padding (torch: flash)", th, refs,
               14.0 * B * H * L * L * D, f"max|diff| {err:.1e}")


def bench_edgeconv(cp, torch, repeats, quick):
    from tests import torch_graph as TG

    B, N, C, k, widths = 64, 128, 64, 16, [128, 64, 64]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, N, C)).astype(np.float32)
    pts = rng.standard_normal((B, N, 2)).astype(np.float32)
    gy = rng.standard_normal((B, N, widths[-1])).astype(np.float32)
    mask = np.ones((B, N), bool)
    torch.manual_seed(0)
    tnaive = TG.EdgeConv(C, widths, "mean").cuda()
    tfact = TG.EdgeConv(C, widths, "mean", factorised=True).cuda()
    tfact.load_state_dict(tnaive.state_dict())
    W = [hepnn.tensor(l.weight.detach().cpu().numpy(), device="cuda", requires_grad=True) for l in tnaive.mlp]
    bs = [hepnn.tensor(l.bias.detach().cpu().numpy(), device="cuda", requires_grad=True) for l in tnaive.mlp]
    hmask = cp.asarray(mask)
    idx = F.knn(hepnn.tensor(pts, device="cuda"), k, hmask)
    xh = hepnn.tensor(x, device="cuda", requires_grad=True)
    gh = hepnn.tensor(gy, device="cuda")
    th = hepnn_time(lambda: F.edge_conv(xh, idx, W, bs, aggregation="mean").backward(gh), repeats)
    idx_t = torch.from_dlpack(idx.data).long()
    xt = torch.tensor(x, device="cuda", requires_grad=True)
    mt, gt = torch.tensor(mask, device="cuda"), torch.tensor(gy, device="cuda")
    err = float((F.edge_conv(xh, idx, W, bs, aggregation="mean").detach().cpu().numpy()
                 - tnaive(xt, mt, idx_t).detach().cpu().numpy()).__abs__().max())
    refs = [(name, gpu_time(lambda m=m: m(xt, mt, idx_t).backward(gt), repeats))
            for name, m in (("torch naive", tnaive), ("torch factorised", tfact))]
    record("edgeconv", "64x128, k=16, 64->128-64-64, fwd+bwd", th, refs, None, f"max|diff| {err:.1e}")
    pt = torch.tensor(pts, device="cuda")

    def t_knn():
        inner = -2 * torch.matmul(pt, pt.transpose(2, 1))
        sq = (pt ** 2).sum(-1, keepdim=True)
        return (sq + inner + sq.transpose(2, 1)).topk(k + 1, dim=-1, largest=False).indices

    hp = hepnn.tensor(pts, device="cuda")
    record("edgeconv", "kNN in (deta, dphi), k=16", gpu_time(lambda: F.knn(hp, k, hmask), repeats),
           [("torch matmul+topk", gpu_time(t_knn, repeats))])


def bench_cnn(cp, torch, repeats, quick):
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    import bench_conv as BC

    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 1, 40, 40)).astype(np.float32)
    y = (rng.random((64, 1)) < 0.5).astype(np.float32)
    tm = BC.torch_model(torch).cuda()
    hm = BC.hepnn_model()
    hm.load_state_dict({k: v.detach().cpu().numpy() for k, v in tm.state_dict().items()})
    hm.to("cuda")
    hx, hy = hepnn.tensor(x, device="cuda"), hepnn.tensor(y, device="cuda")
    tx, ty = torch.tensor(x, device="cuda"), torch.tensor(y, device="cuda")
    hopt, topt = hepnn.optim.SGD(hm.parameters(), lr=1e-3, momentum=0.9), torch.optim.SGD(tm.parameters(),
                                                                                         lr=1e-3, momentum=0.9)
    hl, tl = nn.BCEWithLogitsLoss(), torch.nn.BCEWithLogitsLoss()
    with hepnn.no_grad():
        err = float(np.abs(hm(hx).cpu().numpy() - tm(tx).detach().cpu().numpy()).max())

    def h_step():
        hopt.zero_grad()
        hl(hm(hx), hy).backward()
        hopt.step()

    def t_step():
        topt.zero_grad()
        tl(tm(tx), ty).backward()
        topt.step()

    def h_fwd():
        with hepnn.no_grad():
            hm(hx)

    def t_fwd():
        with torch.no_grad():
            tm(tx)

    record("cnn", "B=64 1x40x40 forward", hepnn_time(h_fwd, repeats), [("torch", gpu_time(t_fwd, repeats))],
           64.0 * BC.MODEL_FLOP, f"max|diff| {err:.1e}")
    record("cnn", "B=64 1x40x40 training step", hepnn_time(h_step, repeats), [("torch", gpu_time(t_step, repeats))],
           3 * 64.0 * BC.MODEL_FLOP)


def bench_encoder(cp, torch, repeats, quick):
    B, L, E, Hh, FF = 64, 128, 128, 8, 512
    rng = np.random.default_rng(1)
    x = rng.standard_normal((B, L, E)).astype(np.float32)
    pad = np.arange(L)[None, :] >= rng.integers(20, 101, size=B)[:, None]
    tl = torch.nn.TransformerEncoderLayer(E, Hh, FF, dropout=0.0, batch_first=True)
    tenc = torch.nn.TransformerEncoder(tl, 2, enable_nested_tensor=False).cuda().eval()
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(E, Hh, FF, dropout=0.0), 2).eval()
    enc.load_state_dict({k: v.detach().cpu().numpy() for k, v in tenc.state_dict().items()})
    enc.to("cuda")
    hx, tx = hepnn.tensor(x, device="cuda"), torch.tensor(x, device="cuda")
    hpad, tpad = cp.asarray(pad), torch.tensor(pad, device="cuda")

    def h():
        with hepnn.no_grad():
            return enc(hx, src_key_padding_mask=hpad)

    def t():
        with torch.no_grad():
            return tenc(tx, src_key_padding_mask=tpad)

    keep = ~pad[:, :, None]
    err = float(np.where(keep, np.abs(h().cpu().numpy() - t().cpu().numpy()), 0).max())
    gf = 2 * (2 * B * L * (4 * E * E + 2 * E * FF) + 4 * B * Hh * L * L * (E // Hh))
    record("encoder", "2-layer d=128 forward (eval)", hepnn_time(h, repeats), [("torch", gpu_time(t, repeats))], gf,
           f"max|diff| {err:.1e}")


def bench_rnn(cp, torch, repeats, quick):
    B, T, I, Hd = 64, 50, 16, 64
    rng = np.random.default_rng(2)
    x = rng.standard_normal((B, T, I)).astype(np.float32)
    for kind in ("GRU", "LSTM"):
        tm = getattr(torch.nn, kind)(I, Hd, num_layers=2, batch_first=True).cuda()
        hm = getattr(nn, kind)(I, Hd, num_layers=2, batch_first=True)
        hm.load_state_dict({k: v.detach().cpu().numpy() for k, v in tm.state_dict().items()})
        hm.to("cuda")
        hx = hepnn.tensor(x, device="cuda", requires_grad=True)
        tx = torch.tensor(x, device="cuda", requires_grad=True)
        err = float(np.abs(hm(hx)[0].detach().cpu().numpy() - tm(tx)[0].detach().cpu().numpy()).max())
        th = hepnn_time(lambda: hm(hx)[0].sum().backward(), repeats)
        tt = gpu_time(lambda: tm(tx)[0].sum().backward(), repeats)
        record("rnn", f"{kind} B=64 T=50 16->64 x2 fwd+bwd", th, [("torch cuDNN", tt)], None, f"max|diff| {err:.1e}")


def profile_kernels(cp, torch, repeats, quick):
    """Which kernels the hepnn CNN step, MLP step and encoder spend GPU time in (CUPTI, through
    torch.profiler, which records every kernel of the process, hepnn's and CuPy's included)."""
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    import bench_conv as BC
    from torch.profiler import ProfilerActivity, profile

    rng = np.random.default_rng(0)
    hm = BC.hepnn_model().to("cuda")
    x = hepnn.tensor(rng.standard_normal((64, 1, 40, 40)).astype(np.float32), device="cuda")
    y = hepnn.tensor((rng.random((64, 1)) < 0.5).astype(np.float32), device="cuda")
    opt, loss = hepnn.optim.SGD(hm.parameters(), lr=1e-3, momentum=0.9), nn.BCEWithLogitsLoss()

    def cnn_fwd():
        with hepnn.no_grad():
            hm(x)

    def cnn_step():
        opt.zero_grad()
        loss(hm(x), y).backward()
        opt.step()

    mm = _mlp(128, nn).to("cuda")
    mx = hepnn.tensor(rng.standard_normal((2 ** 17, 32)).astype(np.float32), device="cuda")
    my = hepnn.tensor((rng.random((2 ** 17, 1)) < 0.5).astype(np.float32), device="cuda")
    mopt = hepnn.optim.Adam(mm.parameters(), lr=1e-3)

    def mlp_step():
        mopt.zero_grad()
        loss(mm(mx), my).backward()
        mopt.step()

    for name, fn in (("CNN forward", cnn_fwd), ("CNN training step", cnn_step), ("MLP W=128 2^17 step", mlp_step)):
        for _ in range(3):
            fn()
        sync()
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            for _ in range(10):
                fn()
            sync()
        print(f"\n## kernels of hepnn's {name} (10 calls)")
        print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=12, max_name_column_width=70))


CASES = {"gemm": bench_gemm, "mlp": bench_mlp, "sdpa": bench_sdpa, "edgeconv": bench_edgeconv, "cnn": bench_cnn,
         "encoder": bench_encoder, "rnn": bench_rnn,
         "profile": profile_kernels}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", default=",".join(c for c in CASES if c != "profile"))
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--peak-tflops", type=float, default=67.0)
    args = ap.parse_args()
    import cupy as cp

    try:
        import torch

        if not torch.cuda.is_available():
            torch = None
    except ImportError:
        torch = None
    if torch is not None:  # fp32 against fp32: cuDNN would otherwise run convolutions and RNNs in TF32
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    name = cp.cuda.runtime.getDeviceProperties(0)["name"].decode()
    print(f"# device {name}; torch {torch.__version__ if torch else 'absent'}; cupy {cp.__version__}", flush=True)
    for case in args.cases.split(","):
        try:
            CASES[case](cp, torch, args.repeats, args.quick)
        except Exception as exc:  # one failing case must not hide the others' figures
            import traceback

            traceback.print_exc()
            print(f"[{case}] FAILED: {type(exc).__name__}: {exc}", flush=True)
    print(f"\n| case | hepnn ms | reference ms | ref / hepnn | hepnn TFLOP/s | % of {args.peak_tflops:g} | note |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for section, case, th, refs, flop, note in ROWS:
        ref_ms = "; ".join(f"{n} {t * 1e3:.3f}" for n, t in refs)
        ratio = "; ".join(f"{t / th:.2f}x" for _, t in refs)
        tf = f"{flop / th / 1e12:.2f}" if flop else ""
        pk = f"{100 * flop / th / 1e12 / args.peak_tflops:.0f}%" if flop else ""
        print(f"| {section}: {case} | {th * 1e3:.3f} | {ref_ms} | {ratio} | {tf} | {pk} | {note} |")


if __name__ == "__main__":
    main()
