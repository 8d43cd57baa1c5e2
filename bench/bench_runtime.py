"""Inference latency per call: hepnn's C++ runtime (through hepnn.runtime.Session) against ONNX
Runtime's InferenceSession (1 intra-op, 1 inter-op thread), same process, same ONNX file, for the
MLP 30-128-128-128-1 (ReLU) exported by hepnn.onnx.export, and a torch.nn.TransformerEncoder
(2 layers, d=64, 4 heads, ff=128, L=30, src_key_padding_mask) exported by torch.onnx.export
(dynamo=False, opset 17); batch 1 and 64; median and p99. Both sides pay Python's call overhead
here; the C API program in tests/cpp prints the C++-only figure (`latency_batch1_us`).

    PYTHONPATH=python python bench/bench_runtime.py [--calls 20000]
"""
import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "python"))
import hepnn  # noqa: E402
import hepnn.runtime  # noqa: E402
from hepnn import nn  # noqa: E402


def latencies(fn, calls):
    for _ in range(calls // 10):
        fn()
    out = np.empty(calls)
    for i in range(calls):
        t0 = time.perf_counter_ns()
        fn()
        out[i] = time.perf_counter_ns() - t0
    return np.median(out) / 1e3, np.percentile(out, 99) / 1e3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=20000)
    args = ap.parse_args()
    import onnxruntime as ort

    hepnn.manual_seed(0)
    model = nn.Sequential(nn.Linear(30, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(),
                          nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 1))
    hepnn.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        path = hepnn.onnx.export(model, hepnn.randn(1, 30), os.path.join(tmp, "mlp.onnx"))
        sess = hepnn.runtime.Session(path, threads=1)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = opts.inter_op_num_threads = 1
        osess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    name = sess.input_names[0]
    print(f"MLP 30-128-128-128-1, float32, 1 thread; onnxruntime {ort.__version__}; load {os.getloadavg()[0]:.2f}\n")
    print("| batch | hepnn median us | hepnn p99 us | ORT median us | ORT p99 us | ORT / hepnn (median) |")
    print("|---|---:|---:|---:|---:|---:|")
    for batch in (1, 64):
        x = np.random.default_rng(batch).standard_normal((batch, 30)).astype(np.float32)
        (y,) = sess.run({name: x})
        np.testing.assert_allclose(y, osess.run(None, {name: x})[0], rtol=1e-4, atol=1e-5)
        h = latencies(lambda: sess.run({name: x}), args.calls)
        o = latencies(lambda: osess.run(None, {name: x}), args.calls)
        print(f"| {batch} | {h[0]:.1f} | {h[1]:.1f} | {o[0]:.1f} | {o[1]:.1f} | {o[0] / h[0]:.2f}x |")
    transformer(args.calls)


def transformer(calls):
    """The masked 2-layer encoder, batch 1 and 64 (calls/20 and calls/200 timed calls)."""
    import warnings

    import onnxruntime as ort
    import torch

    torch.manual_seed(0)
    L, D = 30, 64
    layer = torch.nn.TransformerEncoderLayer(D, 4, 128, dropout=0.0, batch_first=True)
    net = torch.nn.TransformerEncoder(layer, 2, enable_nested_tensor=False).eval()
    rng = np.random.default_rng(0)

    def batch(b):
        x = rng.standard_normal((b, L, D)).astype(np.float32)
        return {"x": x, "mask": np.arange(L)[None, :] >= rng.integers(L // 2, L + 1, size=b)[:, None]}

    note = ""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "encoder.onnx")
        f = batch(2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(net, (torch.from_numpy(f["x"]), {"src_key_padding_mask": torch.from_numpy(f["mask"])}),
                              path, dynamo=False, opset_version=17, input_names=["x", "mask"], output_names=["y"],
                              dynamic_axes={"x": {0: "B"}, "mask": {0: "B"}, "y": {0: "B"}})
        try:
            hepnn.runtime.Model(path)
        except RuntimeError as e:
            if "'LayerNormalization' is not supported" not in str(e):
                raise
            # Until the runtime has LayerNormalization: both sides run it spelled out in primitives.
            sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))
            from test_runtime_torch_rnn import decompose_layernorm
            path = str(decompose_layernorm(path, os.path.join(tmp, "encoder_primitive.onnx")))
            note = " (LayerNormalization spelled out in primitives on both sides)"
        sess = hepnn.runtime.Session(path, threads=1)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = opts.inter_op_num_threads = 1
        osess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    print(f"\nTransformerEncoder 2 x (d=64, 4 heads, ff=128), L=30, padding mask, float32, 1 thread{note}\n")
    print("| batch | hepnn median us | hepnn p99 us | ORT median us | ORT p99 us | ORT / hepnn (median) |")
    print("|---|---:|---:|---:|---:|---:|")
    for b, n in ((1, max(50, calls // 20)), (64, max(20, calls // 200))):
        f = batch(b)
        (y,) = sess.run(f)
        np.testing.assert_allclose(y, osess.run(None, f)[0], rtol=1e-4, atol=1e-4)
        h = latencies(lambda: sess.run(f), n)
        o = latencies(lambda: osess.run(None, f), n)
        print(f"| {b} | {h[0]:.1f} | {h[1]:.1f} | {o[0]:.1f} | {o[1]:.1f} | {o[0] / h[0]:.2f}x |")


if __name__ == "__main__":
    main()
