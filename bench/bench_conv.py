"""CNN speed, hepnn vs PyTorch CPU (forward, forward+backward) and ONNX Runtime (forward), one run.

Model (a jet-image tagger): B=64, 1x40x40 -> Conv2d(1,32,3,pad 1)-ReLU-MaxPool2 -> Conv2d(32,64,3,
pad 1)-ReLU-MaxPool2 -> Flatten -> Linear(6400, 1). Same weights in every framework, 2 threads
each, float32, medians over repeats; per-layer figures for the two conv layers too. Usage:
    python bench/bench_conv.py [--threads 2] [--repeats 7] [--iters 10]
"""
import argparse
import os
import statistics
import tempfile
import time

import numpy as np

import hepnn
from hepnn import nn

# Multiply-adds x 2 of the two conv layers and the head, per sample.
CONV1_FLOP = 2 * 32 * 40 * 40 * 9
CONV2_FLOP = 2 * 64 * 20 * 20 * 32 * 9
HEAD_FLOP = 2 * 6400
MODEL_FLOP = CONV1_FLOP + CONV2_FLOP + HEAD_FLOP


def hepnn_model():
    return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(6400, 1))


def torch_model(torch):
    tn = torch.nn
    return tn.Sequential(tn.Conv2d(1, 32, 3, padding=1), tn.ReLU(), tn.MaxPool2d(2),
                         tn.Conv2d(32, 64, 3, padding=1), tn.ReLU(), tn.MaxPool2d(2),
                         tn.Flatten(), tn.Linear(6400, 1))


def timeit(fn, iters, repeats):
    """Median seconds per call."""
    for _ in range(3):
        fn()
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(iters):
            fn()
        ts.append((time.perf_counter() - t) / iters)
    return statistics.median(ts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--batch", type=int, default=64)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    hepnn.set_num_threads(args.threads)
    B = args.batch
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, 1, 40, 40)).astype(np.float32)
    target = (rng.random((B, 1)) < 0.5).astype(np.float32)

    tm = torch_model(torch)
    hm = hepnn_model()
    hm.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    xt, tt, xh, th = torch.from_numpy(x), torch.from_numpy(target), hepnn.tensor(x), hepnn.tensor(target)
    tloss, hloss = torch.nn.BCEWithLogitsLoss(), nn.BCEWithLogitsLoss()
    out_t = tm(xt).detach().numpy()
    out_h = hm(xh).numpy()
    print(f"max |hepnn - torch| on the logits: {np.abs(out_t - out_h).max():.2e}")

    res = {}

    def h_fwd():
        with hepnn.no_grad():
            hm(xh)

    def t_fwd():
        with torch.no_grad():
            tm(xt)

    def h_step():
        hm.zero_grad()
        hloss(hm(xh), th).backward()

    def t_step():
        tm.zero_grad()
        tloss(tm(xt), tt).backward()

    res["hepnn fwd"] = timeit(h_fwd, args.iters, args.repeats)
    res["torch fwd"] = timeit(t_fwd, args.iters, args.repeats)
    res["hepnn fwd+bwd"] = timeit(h_step, args.iters, args.repeats)
    res["torch fwd+bwd"] = timeit(t_step, args.iters, args.repeats)

    try:
        import onnxruntime as ort

        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "cnn.onnx")
            torch.onnx.export(tm, (xt,), path, dynamo=False, opset_version=17, input_names=["x"],
                              dynamic_axes={"x": {0: "B"}})
            so = ort.SessionOptions()
            so.intra_op_num_threads = args.threads
            so.inter_op_num_threads = 1
            sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
            res["ort fwd"] = timeit(lambda: sess.run(None, {"x": x}), args.iters, args.repeats)
    except ImportError:
        pass

    # Per layer (forward, fused conv + ReLU), the CNN's own shapes.
    c1, c2 = hm[0], hm[3]
    x2 = hepnn.tensor(rng.standard_normal((B, 32, 20, 20)).astype(np.float32))
    x2t = torch.from_numpy(x2.numpy())
    with hepnn.no_grad():
        res["hepnn conv1+relu"] = timeit(lambda: c1(xh, activation="relu"), args.iters, args.repeats)
        res["hepnn conv2+relu"] = timeit(lambda: c2(x2, activation="relu"), args.iters, args.repeats)
    with torch.no_grad():
        res["torch conv1+relu"] = timeit(lambda: torch.relu(tm[0](xt)), args.iters, args.repeats)
        res["torch conv2+relu"] = timeit(lambda: torch.relu(tm[3](x2t)), args.iters, args.repeats)

    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"\nCNN B={B}, 1x40x40, {args.threads} threads, float32; ms per batch (median of {args.repeats}x{args.iters}); "
          f"load average after: {load}")
    print(f"{'':22s}{'ms':>9s}{'GFLOP/s':>10s}")
    flops = {"fwd": MODEL_FLOP * B, "fwd+bwd": 3 * MODEL_FLOP * B, "conv1+relu": CONV1_FLOP * B,
             "conv2+relu": CONV2_FLOP * B}
    for k, v in res.items():
        kind = k.split(" ", 1)[1]
        print(f"{k:22s}{v * 1e3:9.3f}{flops[kind] / v / 1e9:10.1f}")
    print()
    print(f"forward:         hepnn / torch speed-up {res['torch fwd'] / res['hepnn fwd']:.2f}x")
    if "ort fwd" in res:
        print(f"forward:         hepnn / ONNX Runtime speed-up {res['ort fwd'] / res['hepnn fwd']:.2f}x (target >= 1)")
    print(f"forward+backward: hepnn / torch speed-up {res['torch fwd+bwd'] / res['hepnn fwd+bwd']:.2f}x (target >= 1.5)")
    print(f"conv1+relu:      hepnn / torch {res['torch conv1+relu'] / res['hepnn conv1+relu']:.2f}x; "
          f"conv2+relu: {res['torch conv2+relu'] / res['hepnn conv2+relu']:.2f}x")


if __name__ == "__main__":
    main()
