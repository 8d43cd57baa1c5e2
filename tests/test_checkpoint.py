"""Checkpoints: round trip of model, optimizer and scaler (training resumes exactly as an
uninterrupted run), crash safety (a process killed mid-save leaves a complete file), and
refusal of truncated, foreign, hostile and mismatched files without touching the model."""
import doctest
import json
import os
import signal
import struct
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import hepnn
from hepnn.callbacks import ModelCheckpoint
from hepnn.checkpoint import load, read, save
from hepnn.train import fit

stn = pytest.importorskip("safetensors.numpy")

# The folder holding the hepnn this process imported (installed or in-tree), for subprocesses.
PYTHON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(hepnn.__file__)))


class Scaler:
    """The scaler protocol save()/load() rely on: state_dict() -> dict of arrays (+ plain values)."""

    def __init__(self, mean=None, std=None):
        self.mean, self.std, self.n_seen = mean, std, 0

    def fit(self, X):
        self.mean, self.std, self.n_seen = X.mean(axis=0), X.std(axis=0), len(X)
        return self

    def state_dict(self):
        return {"mean": self.mean, "std": self.std, "n_seen": self.n_seen}

    def load_state_dict(self, state):
        self.mean, self.std, self.n_seen = np.asarray(state["mean"]), np.asarray(state["std"]), state["n_seen"]


def _model(seed=0, hidden=16):
    hepnn.manual_seed(seed)
    return hepnn.nn.Sequential(hepnn.nn.Linear(5, hidden), hepnn.nn.ReLU(), hepnn.nn.Linear(hidden, 1))


def _data(n=256, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5)).astype(np.float32)
    y = (X[:, 0] - X[:, 2] > 0).astype(np.float32)
    w = rng.uniform(0.5, 1.5, n).astype(np.float32)
    return X, y, w


def _state(model):
    return {k: v.copy() for k, v in model.state_dict().items()}


def _opt_state(opt):
    sd = opt.state_dict()
    return {i: {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in st.items()}
            for i, st in sd["state"].items()}, sd["param_groups"]


def _assert_same_opt_state(a, b):
    (sa, ga), (sb, gb) = a, b
    assert ga == gb and sa.keys() == sb.keys()
    for i in sa:
        assert sa[i].keys() == sb[i].keys()
        for k in sa[i]:
            assert np.array_equal(sa[i][k], sb[i][k]), (i, k)


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / "model.safetensors")


# ---- round trip -------------------------------------------------------------------------------
@pytest.mark.parametrize("make_opt", [
    lambda p: hepnn.optim.Adam(p, lr=3e-3, betas=(0.8, 0.95), amsgrad=True),
    lambda p: hepnn.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True),
    lambda p: hepnn.optim.RMSprop(p, lr=1e-3, momentum=0.5, centered=True),
])
def test_resumed_training_equals_uninterrupted_run(path, make_opt):
    X, y, w = _data()
    loss = hepnn.nn.BCEWithLogitsLoss()
    kw = dict(train=(X, y, w), val=(X[:64], y[:64]), batch_size=32, seed=11, progress=False)

    ref = _model()
    ref_opt = make_opt(ref.parameters())
    ref_hist = fit(ref, loss, ref_opt, epochs=4, **kw)

    first = _model()
    first_opt = make_opt(first.parameters())
    fit(first, loss, first_opt, epochs=2, **kw)
    scaler = Scaler().fit(X)
    save(path, first, optimizer=first_opt, scaler=scaler, metadata={"epoch": 2, "note": "H->WW"})

    resumed = _model(seed=99)  # different initial weights: everything must come from the file
    resumed_opt = make_opt(resumed.parameters())
    scaler2 = Scaler()
    meta = load(path, resumed, optimizer=resumed_opt, scaler=scaler2)
    assert meta == {"epoch": 2, "note": "H->WW"}
    for k, v in _state(first).items():
        assert np.array_equal(resumed.state_dict()[k], v)
    _assert_same_opt_state(_opt_state(resumed_opt), _opt_state(first_opt))
    assert np.array_equal(scaler2.mean, scaler.mean) and np.array_equal(scaler2.std, scaler.std)
    assert scaler2.n_seen == 256 and scaler2.mean.dtype == scaler.mean.dtype

    hist = fit(resumed, loss, resumed_opt, epochs=4, initial_epoch=2, **kw)
    for k, v in _state(ref).items():
        assert np.array_equal(resumed.state_dict()[k], v), k
    assert hist["val_loss"] == ref_hist["val_loss"][2:]


def test_hyper_parameters_and_types_restored(path):
    model = _model()
    opt = hepnn.optim.Adam(model.parameters(), lr=1e-3, betas=(0.85, 0.99))
    opt.param_groups[0]["lr"] = 2.5e-4  # as a schedule leaves it
    opt.param_groups[0]["initial_lr"] = 1e-3
    save(path, model, optimizer=opt)
    other = _model(1)
    opt2 = hepnn.optim.Adam(other.parameters())
    load(path, other, optimizer=opt2)
    g = opt2.param_groups[0]
    assert g["lr"] == 2.5e-4 and g["initial_lr"] == 1e-3 and g["betas"] == (0.85, 0.99)
    assert isinstance(g["betas"], tuple)
    assert g["params"] is not None and len(g["params"]) == 4


def test_file_is_plain_safetensors_with_documented_layout(path):
    model = _model()
    opt = hepnn.optim.Adam(model.parameters())
    X, y, _ = _data(64)
    fit(model, hepnn.nn.BCEWithLogitsLoss(), opt, train=(X, y), epochs=1, batch_size=16, progress=False)
    save(path, model, optimizer=opt, scaler=Scaler().fit(X), metadata={"auc": 0.93})
    tensors = stn.load_file(path)
    assert set(tensors) == ({f"model.{k}" for k in model.state_dict()}
                            | {f"optim.{i}.{k}" for i in range(4) for k in ("exp_avg", "exp_avg_sq")}
                            | {"scaler.mean", "scaler.std"})
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    meta = header["__metadata__"]
    assert json.loads(meta["hepnn.user"]) == {"auc": 0.93}
    optim = json.loads(meta["hepnn.optim"])
    assert optim["class"] == "Adam" and optim["scalars"]["0"]["step"] == 4
    assert not any(f.startswith(".model.safetensors.") for f in os.listdir(os.path.dirname(path)))
    info = read(path)
    assert info["optimizer_class"] == "Adam" and info["scaler"]["n_seen"] == 64


def test_save_overwrites_and_model_only(path):
    a, b = _model(0), _model(1)
    save(path, a)
    save(path, b, metadata={"v": 2})
    c = _model(2)
    assert load(path, c) == {"v": 2}
    assert np.array_equal(c.state_dict()["0.weight"], b.state_dict()["0.weight"])
    assert load(path) == {"v": 2}  # metadata only


def test_float64_model_and_buffers(path):
    model = _model().double()
    model.register_buffer("calib", hepnn.tensor(np.arange(3.0)))
    save(path, model)
    other = _model(5).double()
    other.register_buffer("calib", hepnn.tensor(np.zeros(3)))
    load(path, other)
    assert other.state_dict()["0.weight"].dtype == np.float64
    assert np.array_equal(other.state_dict()["0.weight"], model.state_dict()["0.weight"])
    assert np.array_equal(other.calib.numpy(), np.arange(3.0))


def test_save_refuses_bad_metadata(path):
    with pytest.raises(TypeError, match=r"\[save\] metadata must be a dict"):
        save(path, _model(), metadata=[1, 2])
    with pytest.raises(TypeError, match="JSON-serialisable"):
        save(path, _model(), metadata={"x": object()})
    assert not os.path.exists(path) and os.listdir(os.path.dirname(path)) == []


def test_model_checkpoint_callback_keeps_the_best(tmp_path):
    X, y, _ = _data(128)
    model = _model()
    opt = hepnn.optim.Adam(model.parameters(), lr=1e-2)
    cb = ModelCheckpoint(str(tmp_path / "best.safetensors"))
    every = ModelCheckpoint(str(tmp_path / "ep{epoch:02d}.safetensors"), save_best_only=False)
    hist = fit(model, hepnn.nn.BCEWithLogitsLoss(), opt, train=(X, y), val=(X, y), epochs=4,
               batch_size=32, seed=0, callbacks=[cb, every], progress=False)
    best = int(np.argmin(hist["val_loss"]))
    meta = load(str(tmp_path / "best.safetensors"))
    assert meta["epoch"] == best == cb.best_epoch and meta["val_loss"] == min(hist["val_loss"])
    assert sorted(p.name for p in tmp_path.glob("ep*")) == [f"ep{i:02d}.safetensors" for i in range(4)]
    last = _model(3)
    load(str(tmp_path / "ep03.safetensors"), last)
    assert np.array_equal(last.state_dict()["2.bias"], model.state_dict()["2.bias"])


# ---- crash safety -----------------------------------------------------------------------------
_WRITER = textwrap.dedent("""
    import os, stat, sys, time, numpy as np, hepnn
    from hepnn.checkpoint import save
    path, slow = sys.argv[1], sys.argv[2] == "slow"
    if slow:  # a slow disk: each file fsync announces itself, then takes 0.5 s
        real_fsync = os.fsync
        def fsync(fd):
            if stat.S_ISREG(os.fstat(fd).st_mode):
                print("fsync", flush=True)
                time.sleep(0.5)
            real_fsync(fd)
        os.fsync = fsync
    model = hepnn.nn.Sequential(hepnn.nn.Linear(1500, 1500), hepnn.nn.Linear(1500, 1500))  # ~18 MB
    version = 0
    while True:
        for p in model.parameters():
            p.data[...] = version
        save(path, model, metadata={"version": version})
        print("saved", version, flush=True)
        version += 1
""")


def _writer(tmp_path, mode):
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    env = {**os.environ, "PYTHONPATH": PYTHON_DIR + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen([sys.executable, str(script), str(tmp_path / "big.safetensors"), mode],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)


def _load_big(tmp_path):
    model = hepnn.nn.Sequential(hepnn.nn.Linear(1500, 1500), hepnn.nn.Linear(1500, 1500))
    v = load(str(tmp_path / "big.safetensors"), model)["version"]
    for arr in model.state_dict().values():
        assert (arr == v).all(), "the file mixes two versions"
    return v


def test_killed_mid_save_keeps_the_previous_file(tmp_path):
    """Killed while the new version is written but not yet renamed: the last complete version loads."""
    proc = _writer(tmp_path, "slow")
    lines = []
    try:
        while len([ln for ln in lines if ln.startswith("fsync")]) < 3:  # third save in progress
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            lines.append(line.strip())
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert lines[-2:] == ["saved 1", "fsync"]
    leftovers = [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
    assert len(leftovers) == 1 and os.path.getsize(tmp_path / leftovers[0]) > 18_000_000
    assert _load_big(tmp_path) == 1


def test_killed_at_random_moments_leaves_a_complete_file(tmp_path):
    rng = np.random.default_rng(0)
    for round_ in range(3):
        proc = _writer(tmp_path, "fast")
        try:
            first = proc.stdout.readline()  # one complete save exists before the kill
            assert first.startswith("saved"), proc.stderr.read()
            time.sleep(float(rng.uniform(0.0, 0.3)))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        assert _load_big(tmp_path) >= 0
        for name in os.listdir(tmp_path):  # leftovers of a killed save do not matter
            if name.endswith(".tmp"):
                os.unlink(tmp_path / name)


# ---- refusals ---------------------------------------------------------------------------------
@pytest.fixture
def saved(path):
    model = _model()
    opt = hepnn.optim.Adam(model.parameters())
    X, y, _ = _data(64)
    fit(model, hepnn.nn.BCEWithLogitsLoss(), opt, train=(X, y), epochs=1, progress=False)
    save(path, model, optimizer=opt, metadata={"ok": True})
    with open(path, "rb") as f:
        return path, f.read()


def _untouched_pair():
    model = _model(7)
    opt = hepnn.optim.Adam(model.parameters())
    X, y, _ = _data(32)
    fit(model, hepnn.nn.BCEWithLogitsLoss(), opt, train=(X, y), epochs=1, progress=False)
    return model, opt, _state(model), _opt_state(opt)


def _assert_untouched(model, opt, before, opt_before):
    for k, v in before.items():
        assert np.array_equal(model.state_dict()[k], v)
    _assert_same_opt_state(_opt_state(opt), opt_before)


def _corrupt(blob, how):
    (n,) = struct.unpack("<Q", blob[:8])
    return {
        "empty": b"",
        "4 bytes": blob[:4],
        "length only": blob[:8],
        "half header": blob[:8 + n // 2],
        "header only": blob[:8 + n],
        "half data": blob[:8 + n + (len(blob) - 8 - n) // 2],
        "one byte short": blob[:-1],
        "one byte extra": blob + b"\0",
        "huge header length": struct.pack("<Q", 2**62) + blob[8:],
        "text file": b"epoch,loss\n1,0.5\n",
        "pickle": b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x01a\x94K\x01s.",
        "header not object": struct.pack("<Q", 2) + b"[]",
        "bad offsets": blob.replace(b'"data_offsets":[0,', b'"data_offsets":[9,', 1),
    }[how]


@pytest.mark.parametrize("how", ["empty", "4 bytes", "length only", "half header", "header only",
                                 "half data", "one byte short", "one byte extra",
                                 "huge header length", "text file", "pickle", "header not object",
                                 "bad offsets"])
def test_truncated_or_hostile_files_refused(saved, how):
    path, blob = saved
    with open(path, "wb") as f:
        f.write(_corrupt(blob, how))
    model, opt, before, opt_before = _untouched_pair()
    with pytest.raises(ValueError, match=r"\[load\] .*model\.safetensors: "):
        load(path, model, optimizer=opt)
    _assert_untouched(model, opt, before, opt_before)


def test_foreign_safetensors_file_refused(path):
    stn.save_file({"weight": np.zeros((2, 2), np.float32)}, path)
    model = _model()
    before = _state(model)
    with pytest.raises(ValueError, match="not a hepnn checkpoint"):
        load(path, model)
    assert all(np.array_equal(model.state_dict()[k], v) for k, v in before.items())


def test_nan_weights_in_file_refused(path):
    model = _model()
    model.state_dict()  # copies; poison the parameter itself
    model[0].weight.data[0, 0] = np.nan
    save(path, model)
    with pytest.raises(ValueError, match=r"0\.weight contains NaN"):
        load(path, _model(1))


@pytest.mark.parametrize("other, message", [
    (lambda: _model(hidden=8), r"0\.weight has shape \(16, 5\) in the file, the model expects \(8, 5\)"),
    (lambda: hepnn.nn.Sequential(hepnn.nn.Linear(5, 16), hepnn.nn.ReLU(), hepnn.nn.Linear(16, 1),
                                 hepnn.nn.ReLU(), hepnn.nn.Linear(1, 1)), r"missing weights \['4\.weight', '4\.bias'\]"),
    (lambda: hepnn.nn.Sequential(hepnn.nn.Linear(5, 16)), r"unexpected weights \['2\.bias', '2\.weight'\]"),
])
def test_mismatched_model_refused_and_untouched(saved, other, message):
    path, _ = saved
    model = other()
    before = _state(model)
    with pytest.raises(ValueError, match=message):
        load(path, model)
    assert all(np.array_equal(model.state_dict()[k], v) for k, v in before.items())


def test_optimizer_problems_leave_model_untouched(saved, path):
    model, opt, before, opt_before = _untouched_pair()
    sgd = hepnn.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="holds Adam state, cannot load it into SGD"):
        load(path, model, optimizer=sgd)
    two_groups = hepnn.optim.Adam([{"params": [model[0].weight, model[0].bias]},
                                   {"params": [model[2].weight, model[2].bias]}])
    with pytest.raises(ValueError, match="param groups do not match"):
        load(path, model, optimizer=two_groups)
    with pytest.raises(ValueError, match="holds no scaler state"):
        load(path, model, optimizer=opt, scaler=Scaler())
    _assert_untouched(model, opt, before, opt_before)
    save(path, _model())  # without optimizer
    with pytest.raises(ValueError, match="holds no optimizer state"):
        load(path, model, optimizer=opt)
    _assert_untouched(model, opt, before, opt_before)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(FileNotFoundError):
        load(str(tmp_path / "nope.safetensors"), _model())
    with pytest.raises(ValueError, match="is a directory"):
        load(str(tmp_path), _model())


@pytest.mark.parametrize("module", ["hepnn.checkpoint"])
def test_docstring_examples(module):
    import importlib

    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0
