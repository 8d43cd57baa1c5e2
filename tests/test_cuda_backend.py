"""CUDA backend against the CPU backend: every op family runs through hepnn._core once on NumPy
arrays and once on CuPy arrays (on CuPy's current stream) and the results are compared. The op
registry (test_registry.py) covers the references; this file targets CUDA-only paths: tile-shape
selection in GEMM, warp vs block softmax/reduce rows, determinism, NaN labels, stream order."""
import zlib

import numpy as np
import pytest

import hepnn

_core = hepnn._core

if not _core.cuda_built():
    pytest.skip("hepnn was built without the CUDA backend", allow_module_level=True)
if _core.cuda_device_count() == 0:
    pytest.skip("no CUDA device visible", allow_module_level=True)
cp = pytest.importorskip("cupy", reason="CuPy is needed to hand device arrays to hepnn._core")

DTYPES = [np.float32, np.float64]
TOL = {np.float32: (2e-5, 2e-4), np.float64: (1e-12, 1e-10)}
ACTS = ["none", "relu", "leaky_relu", "elu", "selu", "gelu", "gelu_tanh", "sigmoid", "tanh", "softplus"]


def _stream():
    return cp.cuda.get_current_stream().ptr


def _poisoned(shape, dtype):
    a = np.empty(shape, dtype=dtype)
    a.fill(np.nan if np.dtype(dtype).kind == "f" else -(2**31))
    return a


def _run_both(fn, arrays):
    """fn(arrays_dict, stream) is called on NumPy copies (stream 0) and on CuPy copies; returns the
    two dicts, the CuPy one moved back to NumPy, for comparison of any entry."""
    cpu = {k: (None if v is None else np.array(v, copy=True)) for k, v in arrays.items()}
    gpu = {k: (None if v is None else cp.asarray(v)) for k, v in arrays.items()}
    fn(cpu, 0)
    fn(gpu, _stream())
    return cpu, {k: (None if v is None else cp.asnumpy(v)) for k, v in gpu.items()}


def _close(cpu, gpu, names, dtype, scale=1.0):
    atol, rtol = TOL[dtype]
    for name in names:
        ref, got = np.asarray(cpu[name], np.float64), np.asarray(gpu[name], np.float64)
        assert got.shape == ref.shape, name
        bad = ~(np.abs(got - ref) <= scale * (atol + rtol * np.abs(ref)))
        bad &= ~(np.isnan(ref) & np.isnan(got))
        assert not bad.any(), f"{name}: {bad.sum()} of {bad.size} differ; first at {np.argwhere(bad)[0]}"


@pytest.fixture
def rng(request):
    return np.random.default_rng(zlib.crc32(request.node.name.encode()))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ta,tb", [(False, False), (False, True), (True, False), (True, True)])
@pytest.mark.parametrize("mnk", [(1, 1, 1), (7, 33, 5), (65, 1, 257), (130, 67, 0)])
def test_gemm_small_tiles(dtype, ta, tb, mnk, rng):
    m, n, k = mnk
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    for alpha, beta in [(1.0, 0.0), (-0.5, 0.75)]:
        c0 = _poisoned((m, n), dtype) if beta == 0.0 else rng.standard_normal((m, n)).astype(dtype)

        def call(d, s):
            _core.gemm(d["a"], d["b"], d["c"], trans_a=ta, trans_b=tb, alpha=alpha, beta=beta, stream=s)

        cpu, gpu = _run_both(call, {"a": a, "b": b, "c": c0})
        _close(cpu, gpu, ["c"], dtype, scale=max(1.0, np.sqrt(k)))


@pytest.mark.parametrize("ta,tb", [(False, True), (True, False)])
def test_gemm_big_tiles_float32(ta, tb, rng):
    # 11 x 12 tiles of 128 x 128: large enough for the 128x128x8 fp32 configuration.
    m, n, k = 1301, 1409, 37
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(np.float32)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(np.float32)

    def call(d, s):
        _core.gemm(d["a"], d["b"], d["c"], trans_a=ta, trans_b=tb, stream=s)

    cpu, gpu = _run_both(call, {"a": a, "b": b, "c": _poisoned((m, n), np.float32)})
    _close(cpu, gpu, ["c"], np.float32, scale=10.0)


@pytest.fixture
def tf32():
    hepnn.cuda.set_allow_tf32(True)
    yield
    hepnn.cuda.set_allow_tf32(False)


@pytest.mark.parametrize("ta,tb", [(False, False), (False, True), (True, False), (True, True)])
@pytest.mark.parametrize("mnk", [(301, 259, 1037), (1, 7, 3), (64, 96, 20000), (257, 129, 8)])
def test_gemm_tf32_opt_in(ta, tb, mnk, rng, tf32):
    """TF32 products: within TF32 rounding of the float64 result (2^-11 per input), and farther
    from it than the fp32 path is (so the tensor cores really ran). (64, 96, 20000) is split-K."""
    m, n, k = mnk
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(np.float32)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(np.float32)
    ref = (a.T if ta else a).astype(np.float64) @ (b.T if tb else b).astype(np.float64)
    c = cp.full((m, n), np.nan, np.float32)
    _core.gemm(cp.asarray(a), cp.asarray(b), c, trans_a=ta, trans_b=tb, stream=_stream())
    err_tf32 = np.abs(cp.asnumpy(c) - ref).max()
    assert err_tf32 <= 4 * 2.0 ** -10 * np.sqrt(k) * 4, err_tf32
    hepnn.cuda.set_allow_tf32(False)
    _core.gemm(cp.asarray(a), cp.asarray(b), c, trans_a=ta, trans_b=tb, stream=_stream())
    err_fp32 = np.abs(cp.asnumpy(c) - ref).max()
    if k >= 100:
        assert err_tf32 > 5 * err_fp32, (err_tf32, err_fp32)


def test_linear_layer_tf32_opt_in(rng, tf32):
    x = rng.standard_normal((333, 129)).astype(np.float32)
    hepnn.manual_seed(0)
    layer = hepnn.nn.Linear(129, 65)
    ref = np.maximum(x.astype(np.float64) @ layer.weight.numpy().T.astype(np.float64) + layer.bias.numpy(), 0)
    layer.to("cuda")
    out = hepnn.nn.functional.relu(layer(hepnn.tensor(x, device="cuda"))).cpu().numpy()
    assert np.abs(out - ref).max() <= 2.0 ** -10 * np.sqrt(129) * 16


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_batched_broadcast(dtype, rng):
    a = rng.standard_normal((5, 9, 13)).astype(dtype)
    b = rng.standard_normal((13, 3)).astype(dtype)  # 2-D: broadcast over the batch (stride 0)

    def call(d, s):
        _core.gemm(d["a"], d["b"], d["c"], stream=s)

    cpu, gpu = _run_both(call, {"a": a, "b": b, "c": _poisoned((5, 9, 3), dtype)})
    _close(cpu, gpu, ["c"], dtype, scale=4.0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ACTS)
def test_activation(dtype, act, rng):
    x = (3.0 * rng.standard_normal(1031)).astype(dtype)
    x[:3] = [0.0, 25.0, -25.0]  # kink, past the softplus threshold, saturation
    dy = rng.standard_normal(x.shape).astype(dtype)
    alpha = 0.1 if act == "leaky_relu" else 0.7

    def call(d, s):
        _core.act_forward(act, d["x"], d["y"], alpha=alpha, stream=s)
        _core.act_backward(act, d["x"], d["y"], d["dy"], d["dx"], alpha=alpha, stream=s)

    arrays = {"x": x, "dy": dy, "y": _poisoned(x.shape, dtype), "dx": _poisoned(x.shape, dtype)}
    cpu, gpu = _run_both(call, arrays)
    _close(cpu, gpu, ["y", "dx"], dtype, scale=4.0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,axis", [((33, 7), 1), ((5, 1500), 1), ((3, 37, 5), 1), ((257,), 0)])
@pytest.mark.parametrize("log", [False, True])
def test_softmax(dtype, shape, axis, log, rng):
    x = (4.0 * rng.standard_normal(shape)).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)

    def call(d, s):
        _core.softmax_forward(d["x"], d["y"], axis, log=log, stream=s)
        _core.softmax_backward(d["y"], d["dy"], d["dx"], axis, log=log, stream=s)

    arrays = {"x": x, "dy": dy, "y": _poisoned(shape, dtype), "dx": _poisoned(shape, dtype)}
    cpu, gpu = _run_both(call, arrays)
    _close(cpu, gpu, ["y", "dx"], dtype, scale=4.0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,axis", [((33, 7), 1), ((3, 2049), 1), ((4, 37, 6), 1), ((9, 5), 0),
                                        ((2, 40001), 1), ((5003, 3), 0)])  # last two: dim split in chunks
@pytest.mark.parametrize("op", ["sum", "mean", "max"])
def test_reduce(dtype, shape, axis, op, rng):
    # Rounded values make ties, so the first-maximum rule of argmax is exercised.
    x = np.round(3.0 * rng.standard_normal(shape)).astype(dtype)
    out_shape = shape[:axis] + shape[axis + 1:]

    def call(d, s):
        _core.reduce(d["x"], d["y"], axis, op, argmax=d["arg"] if op == "max" else None, stream=s)

    arrays = {"x": x, "y": _poisoned(out_shape, dtype), "arg": _poisoned(out_shape, np.int64)}
    cpu, gpu = _run_both(call, arrays)
    _close(cpu, gpu, ["y"], dtype, scale=4.0)
    if op == "max":
        np.testing.assert_array_equal(gpu["arg"], cpu["arg"])


def test_reduce_max_nan_propagates(rng):
    x = rng.standard_normal((6, 40)).astype(np.float32)
    x[2, 17] = np.nan
    y, arg = cp.empty(6, np.float32), cp.empty(6, np.int64)
    _core.reduce(cp.asarray(x), y, 1, "max", argmax=arg, stream=_stream())
    y, arg = cp.asnumpy(y), cp.asnumpy(arg)
    assert np.isnan(y[2]) and arg[2] == 17
    np.testing.assert_array_equal(np.delete(arg, 2), np.delete(np.argmax(x, axis=1), 2))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ["none", "relu", "gelu", "elu", "sigmoid", "softplus"])
@pytest.mark.parametrize("bio", [(1, 3, 1), (33, 17, 9), (257, 65, 130), (1500, 5, 3)])
def test_linear(dtype, act, bio, rng):
    B, I, O = bio
    x = rng.standard_normal((B, I)).astype(dtype)
    w = (rng.standard_normal((O, I)) / np.sqrt(I)).astype(dtype)
    b = rng.standard_normal(O).astype(dtype)
    dy = rng.standard_normal((B, O)).astype(dtype)

    def call(d, s):
        _core.linear_forward(d["x"], d["w"], d["b"], d["y"], d["z"], act=act, alpha=0.3, stream=s)
        _core.linear_backward(d["x"], d["w"], d["z"], d["y"], d["dy"], d["dx"], d["dw"], d["db"],
                              act=act, alpha=0.3, stream=s)

    arrays = {"x": x, "w": w, "b": b, "dy": dy}
    for name, shape in [("y", (B, O)), ("z", (B, O)), ("dx", (B, I)), ("dw", (O, I)), ("db", (O,))]:
        arrays[name] = _poisoned(shape, dtype)
    cpu, gpu = _run_both(call, arrays)
    _close(cpu, gpu, ["y", "z", "dx", "dw", "db"], dtype, scale=max(1.0, np.sqrt(B)))


def _loss_case(kind, dtype, rng, B=257, F=3, C=11):
    if kind == "cross_entropy_loss":
        x = (2.0 * rng.standard_normal((B, C))).astype(dtype)
        t = rng.integers(0, C, B).astype(np.int64)
        return x, t, (B,)
    x = (2.0 * rng.standard_normal((B, F))).astype(dtype)
    t = rng.random((B, F)).astype(dtype) if kind == "bce_with_logits_loss" else rng.standard_normal((B, F)).astype(dtype)
    return x, t, (B, F)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["mse_loss", "bce_with_logits_loss", "cross_entropy_loss"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_loss(dtype, kind, reduction, weighted, rng):
    x, t, out_shape = _loss_case(kind, dtype, rng)
    w = rng.uniform(0.1, 2.0, x.shape[0]).astype(dtype) if weighted else None
    fn = getattr(_core, kind)

    def call(d, s):
        fn(d["x"], d["t"], d["w"], reduction, d["out"] if reduction == "none" else None, d["grad"],
           d["loss"], stream=s)

    arrays = {"x": x, "t": t, "w": w, "out": _poisoned(out_shape, dtype),
              "grad": _poisoned(x.shape, dtype), "loss": _poisoned((1,), dtype)}
    cpu, gpu = _run_both(call, arrays)
    _close(cpu, gpu, ["grad", "loss"] + (["out"] if reduction == "none" else []), dtype, scale=8.0)


def test_loss_deterministic_and_stream_ordered(rng):
    x = rng.standard_normal((100003, 2)).astype(np.float32)
    t = rng.standard_normal((100003, 2)).astype(np.float32)
    w = rng.uniform(0.5, 1.5, 100003).astype(np.float32)
    with cp.cuda.Stream(non_blocking=True) as stream:
        xg, tg, wg = cp.asarray(x), cp.asarray(t), cp.asarray(w)
        losses = []
        for _ in range(3):
            loss = cp.full(1, np.nan, np.float32)
            _core.mse_loss(xg, tg, wg, "mean", None, None, loss, stream=stream.ptr)
            losses.append(cp.asnumpy(loss))
    assert losses[0] == losses[1] == losses[2]
    ref = np.sum(w[:, None] * (x.astype(np.float64) - t) ** 2) / (2 * np.sum(w, dtype=np.float64))
    assert abs(float(losses[0][0]) - ref) <= 1e-5 * abs(ref)


def test_cross_entropy_bad_label_gives_nan(rng):
    x = cp.asarray(rng.standard_normal((5, 4)).astype(np.float64))
    labels = cp.asarray(np.array([0, 3, 4, 1, -1], dtype=np.int64))
    out, grad, loss = cp.empty(5), cp.empty((5, 4)), cp.empty(1)
    _core.cross_entropy_loss(x, labels, None, "none", out, grad, loss, stream=_stream())
    out, grad = cp.asnumpy(out), cp.asnumpy(grad)
    assert np.isnan(out[[2, 4]]).all() and np.isfinite(out[[0, 1, 3]]).all()
    assert np.isnan(grad[[2, 4]]).all() and np.isfinite(grad[[0, 1, 3]]).all()
    _core.cross_entropy_loss(x, labels, None, "mean", None, None, loss, stream=_stream())
    assert np.isnan(cp.asnumpy(loss)[0])


def _optim_state(rng, dtype, shapes, names):
    d = {}
    for i, shape in enumerate(shapes):
        d[f"p{i}"] = rng.standard_normal(shape).astype(dtype)
        d[f"g{i}"] = rng.standard_normal(shape).astype(dtype)
        for name in names:
            if name in ("v", "vmax", "sq", "ss"):  # running squares: positive
                v = 0.5 + rng.random(shape)
            else:  # small grad_avg keeps the centered variance sq - ga^2 positive
                v = (0.1 if name == "ga" else 1.0) * rng.standard_normal(shape)
            d[f"{name}{i}"] = v.astype(dtype)
    return d


OPTIM_SHAPES = [(7, 3), (33,), (1,)]


def _lists(d, prefix):
    return [d[f"{prefix}{i}"] for i in range(len(OPTIM_SHAPES))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", [
    ("sgd", dict(lr=0.1, momentum=0.9, weight_decay=0.01, nesterov=True)),
    ("sgd", dict(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01)),
    ("sgd", dict(lr=0.05, momentum=0.0, maximize=True)),
    ("adam", dict(lr=1e-2, weight_decay=0.1, amsgrad=True)),
    ("adam", dict(lr=1e-2, weight_decay=0.1, decoupled=True, maximize=True)),
    ("rmsprop", dict(lr=1e-2, alpha=0.9, weight_decay=0.05, momentum=0.8, centered=True)),
    ("rmsprop", dict(lr=1e-2)),
    ("adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.02)),
])
def test_optimizers(dtype, case, rng):
    name, kw = case
    state = {"sgd": ["buf"], "adam": ["m", "v", "vmax"], "rmsprop": ["sq", "ga", "buf"], "adagrad": ["ss"]}[name]
    arrays = _optim_state(rng, dtype, OPTIM_SHAPES, state)

    def call(d, s):
        p, g = _lists(d, "p"), _lists(d, "g")
        for step in (1, 2, 3):
            if name == "sgd":
                _core.sgd_step(p, g, _lists(d, "buf"), first=step == 1, stream=s, **kw)
            elif name == "adam":
                vmax = _lists(d, "vmax") if kw.get("amsgrad") else None
                _core.adam_step(p, g, _lists(d, "m"), _lists(d, "v"), vmax, step, stream=s, **kw)
            elif name == "rmsprop":
                _core.rmsprop_step(p, g, _lists(d, "sq"), _lists(d, "ga"), _lists(d, "buf"), stream=s, **kw)
            else:
                _core.adagrad_step(p, g, _lists(d, "ss"), step, stream=s, **kw)

    cpu, gpu = _run_both(call, arrays)
    _close(cpu, gpu, sorted(arrays), dtype, scale=8.0)
