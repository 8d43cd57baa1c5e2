"""Inference latency per call: hepnn's C++ runtime (through hepnn.runtime.Session) against ONNX
Runtime's InferenceSession (1 intra-op, 1 inter-op thread), same process, same ONNX file, for the
MLP 30-128-128-128-1 (ReLU) exported by hepnn.onnx.export; batch 1 and 64; median and p99.
Then a torch.nn.TransformerEncoder (2 layers, d=64, 4 heads, ff=128, L=30, src_key_padding_mask)
exported by torch.onnx.export (dynamo=False, opset 17).
Then the jet-image CNN of bench/bench_conv.py (1x40x40 -> conv32-ReLU-pool -> conv64-ReLU-pool ->
dense), exported by torch.onnx.export (skipped without torch), same table.
Both sides pay Python's call overhead here; the C API program in tests/cpp prints the C++-only
figure (`latency_batch1_us`). ONNX Runtime runs twice: plain `run` (it converts the NumPy inputs and
allocates the outputs each call) and `run_with_iobinding` with inputs and outputs bound once as
OrtValues over NumPy arrays, its cheapest Python path (ORT's C headers are not on this machine, so
its C API is not timed; the issue allows this substitute).

    PYTHONPATH=python python bench/bench_runtime.py [--calls 20000] [--cnn-calls 300]
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


HEADER = ("| batch | hepnn median us | hepnn p99 us | ORT run median us | ORT run p99 us | ORT IOBinding median us "
          "| ORT IOBinding p99 us | ORT run / hepnn | ORT IOBinding / hepnn |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|")


def bound_run(osess, feeds):
    """ORT's run_with_iobinding over inputs and outputs bound once (outputs preallocated from a
    plain run's shapes); returns the call and the bound output arrays."""
    import onnxruntime as ort

    io = osess.io_binding()
    for k, v in feeds.items():
        io.bind_ortvalue_input(k, ort.OrtValue.ortvalue_from_numpy(v))
    outs = []
    for meta, y in zip(osess.get_outputs(), osess.run(None, feeds)):
        buf = np.empty_like(y)
        io.bind_ortvalue_output(meta.name, ort.OrtValue.ortvalue_from_numpy(buf))
        outs.append(buf)
    return (lambda: osess.run_with_iobinding(io)), outs


def row(batch, sess, osess, feeds, calls, rtol, atol):
    """One table row: hepnn, ORT run and ORT IOBinding on the same feeds, outputs checked first."""
    (y,) = sess.run(feeds)
    np.testing.assert_allclose(y, osess.run(None, feeds)[0], rtol=rtol, atol=atol)
    bound, outs = bound_run(osess, feeds)
    bound()
    np.testing.assert_allclose(y, outs[0], rtol=rtol, atol=atol)
    h = latencies(lambda: sess.run(feeds), calls)
    o = latencies(lambda: osess.run(None, feeds), calls)
    b = latencies(bound, calls)
    print(f"| {batch} | {h[0]:.1f} | {h[1]:.1f} | {o[0]:.1f} | {o[1]:.1f} | {b[0]:.1f} | {b[1]:.1f} | "
          f"{o[0] / h[0]:.2f}x | {b[0] / h[0]:.2f}x |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=20000)
    ap.add_argument("--cnn-calls", type=int, default=300, help="calls per batch size for the CNN")
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
    print(HEADER)
    for batch in (1, 64):
        x = np.random.default_rng(batch).standard_normal((batch, 30)).astype(np.float32)
        row(batch, sess, osess, {name: x}, args.calls, 1e-4, 1e-5)
    transformer(args.calls)
    cnn(args.cnn_calls, ort)


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
    print(HEADER)
    for b, n in ((1, max(50, calls // 20)), (64, max(20, calls // 200))):
        row(b, sess, osess, batch(b), n, 1e-4, 1e-4)

def cnn(calls, ort):
    try:
        import torch
    except ImportError:
        print("\n(no torch: CNN skipped)")
        return
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from bench_conv import torch_model

    torch.manual_seed(0)
    torch.set_num_threads(1)
    tm = torch_model(torch).eval()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "cnn.onnx")
        torch.onnx.export(tm, (torch.zeros(1, 1, 40, 40),), path, dynamo=False, opset_version=17, input_names=["x"],
                          dynamic_axes={"x": {0: "B"}})
        sess = hepnn.runtime.Session(path, threads=1)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = opts.inter_op_num_threads = 1
        osess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    print(f"\nCNN 1x40x40 conv32-pool-conv64-pool-dense (torch export, steps {sess.model.steps}), float32, "
          f"1 thread; {calls} calls; load {os.getloadavg()[0]:.2f}\n")
    print(HEADER)
    for batch in (1, 64):
        x = np.random.default_rng(batch).standard_normal((batch, 1, 40, 40)).astype(np.float32)
        row(batch, sess, osess, {"x": x}, calls, 1e-4, 1e-5)

if __name__ == "__main__":
    main()
