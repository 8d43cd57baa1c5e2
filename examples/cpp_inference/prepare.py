"""Makes what the C++ program (main.cpp) reads: trains the H -> WW MLP of examples/higgs_ww.py,
folds the feature standardisation into its first layer and appends a sigmoid, so the exported
model takes raw features and returns the signal probability; exports it with hepnn.onnx.export and
writes held-out events in the program's event file format.

    python examples/cpp_inference/prepare.py --out cpp_inference_data [--epochs 10] [--events 2000]

Event file: the 8 bytes ``HEPNNEV1``, int64 n_events, int64 n_features (little-endian), then the
float32 features, n_events x n_features, row-major (raw, not standardised).
"""
import argparse
import os
import sys

import numpy as np

import hepnn
import hepnn.onnx
from hepnn import metrics, nn
from hepnn.data import StandardScaler, train_val_test_split

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from higgs_ww import class_balanced, load_sample, train_mlp  # noqa: E402

MAGIC = b"HEPNNEV1"


def write_events(path, X):
    """Write a (n_events, n_features) array as an event file; returns `path`.

    >>> import tempfile, numpy as np
    >>> p = write_events(os.path.join(tempfile.mkdtemp(), "ev.bin"), np.ones((3, 2)))
    >>> read_events(p).shape
    (3, 2)
    """
    X = np.ascontiguousarray(X, dtype="<f4")
    if X.ndim != 2 or X.size == 0 or not np.isfinite(X).all():
        raise ValueError(f"[write_events] need a non-empty, finite 2-D array, got shape {X.shape}")
    with open(path, "wb") as f:
        f.write(MAGIC + np.array(X.shape, "<i8").tobytes() + X.tobytes())
    return path


def read_events(path):
    """The (n_events, n_features) float32 array of an event file written by write_events."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != MAGIC or len(data) < 24:
        raise ValueError(f"[read_events] {path} is not an event file")
    n, k = (int(v) for v in np.frombuffer(data[8:24], "<i8"))
    if n < 1 or k < 1 or len(data) != 24 + 4 * n * k:
        raise ValueError(f"[read_events] {path}: header says {n} x {k}, the file has {len(data) - 24} bytes of features")
    return np.frombuffer(data[24:], "<f4").reshape(n, k).astype(np.float32)


def deployable(model, scaler):
    """A Sequential computing sigmoid(model(scaler.transform(x))) on raw features x: the scaler
    becomes part of the first Linear (W' = W / scale, b' = b - W' mean), so the C++ side needs
    no preprocessing. The other layers are shared with `model`."""
    layers = list(model)
    first = layers[0]
    if not isinstance(first, nn.Linear):
        raise TypeError(f"[deployable] the model must start with a Linear layer, got {type(first).__name__}")
    mean, scale = np.asarray(scaler.mean, np.float64), np.asarray(scaler.scale, np.float64)
    w = first.weight.numpy().astype(np.float64) / scale
    b = first.bias.numpy().astype(np.float64) - w @ mean
    folded = nn.Linear(first.in_features, first.out_features)
    folded.load_state_dict({"weight": w.astype(np.float32), "bias": b.astype(np.float32)})
    return nn.Sequential(folded, *layers[1:], nn.Sigmoid())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="cpp_inference_data")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--events", type=int, default=2000, help="held-out events written for the C++ program")
    ap.add_argument("--train-events", type=int, default=0, help="train on a subsample of this size (0: all)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    hepnn.manual_seed(args.seed)
    os.makedirs(args.out, exist_ok=True)

    X, y, w_phys, names = load_sample()
    if args.train_events:
        keep = np.random.default_rng(args.seed).permutation(len(y))[:args.train_events + args.events]
        X, y, w_phys = X[keep], y[keep], w_phys[keep]
    w = class_balanced(y, w_phys)
    test_size = min(args.events, len(y) // 2)
    X_tr, X_va, X_te, y_tr, y_va, y_te, w_tr, w_va, w_te = train_val_test_split(
        X, y, w, val_size=0.2, test_size=test_size, stratify=y, seed=args.seed)
    scaler = StandardScaler().fit(X_tr)
    model, _, hist, _ = train_mlp(scaler.transform(X_tr).astype(np.float32), y_tr, w_tr,
                                  scaler.transform(X_va).astype(np.float32), y_va, w_va, args.epochs, args.seed)

    # hepnn's own answer for the written events: the trained model on standardised features.
    X_te = X_te.astype(np.float32)
    logits = hepnn.predict(model, scaler.transform(X_te).astype(np.float32)).astype(np.float64)
    scores = 1.0 / (1.0 + np.exp(-logits))
    auc = metrics.roc_auc_score(y_te, scores.ravel())

    onnx_path = hepnn.onnx.export(deployable(model, scaler), X_te[:2], os.path.join(args.out, "hww_mlp.onnx"),
                                  input_names=("features",), output_names=("p_signal",))
    events_path = write_events(os.path.join(args.out, "events.bin"), X_te)
    print(f"trained {len(hist.history['loss'])} epochs on {len(y_tr)} events; held-out AUC {auc:.4f}")
    print(f"wrote {onnx_path} ({', '.join(names)} -> p_signal) and {events_path} ({len(y_te)} events)")
    return {"model": onnx_path, "events": events_path, "features": X_te, "labels": y_te, "scores": scores}


if __name__ == "__main__":
    main()
