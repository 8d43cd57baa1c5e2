"""BatchNorm1d / BatchNorm2d against torch.nn with the same weights: several training steps
(outputs, input and weight gradients, running statistics, num_batches_tracked), eval mode,
momentum=None, affine=False, track_running_stats=False; masked particle sets (padding
independence, equality with torch on the packed valid points); state_dict round trips; bad input.
"""
import numpy as np
import pytest

import hepnn
import hepnn.nn.functional as F
from hepnn import _core

torch = pytest.importorskip("torch")

CASES = [  # (hepnn class, torch class, input shape)
    ("BatchNorm1d", (33, 7)),
    ("BatchNorm1d", (9, 5, 17)),
    ("BatchNorm2d", (4, 3, 5, 7)),
]
OPTIONS = [
    {},
    {"momentum": None},
    {"affine": False},
    {"track_running_stats": False},
    {"momentum": 0.37, "eps": 1e-3},
]


def _pair(name, C, dtype, **kw):
    ours = getattr(hepnn.nn, name)(C, dtype=dtype, **kw)
    ref = getattr(torch.nn, name)(C, **kw).to(getattr(torch, np.dtype(dtype).name))
    if ref.affine:
        with torch.no_grad():
            ref.weight.uniform_(0.5, 1.5)
            ref.bias.normal_()
    ours.load_state_dict({k: v.detach().numpy() for k, v in ref.state_dict().items()})
    return ours, ref


def _close(got, ref, dtype, what):
    tol = 2e-5 if dtype == np.float32 else 1e-11
    np.testing.assert_allclose(np.asarray(got, np.float64), np.asarray(ref, np.float64),
                               atol=tol, rtol=tol, err_msg=what)


@pytest.mark.parametrize("name,shape", CASES)
@pytest.mark.parametrize("opts", OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "default")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_torch_over_training_steps(name, shape, opts, dtype):
    rng = np.random.default_rng(sum(shape))
    ours, ref = _pair(name, shape[1], dtype, **opts)
    for step in range(3):
        x = (3.0 + 2.0 * rng.standard_normal(shape)).astype(dtype)
        dy = rng.standard_normal(shape).astype(dtype)
        hx = hepnn.tensor(x, requires_grad=True)
        tx = torch.tensor(x, requires_grad=True)
        hy, ty = ours(hx), ref(tx)
        hy.backward(dy)
        ty.backward(torch.from_numpy(dy))
        _close(hy.numpy(), ty.detach().numpy(), dtype, f"y step {step}")
        _close(hx.grad.numpy(), tx.grad.numpy(), dtype, f"dx step {step}")
        if ref.affine:
            _close(ours.weight.grad.numpy(), ref.weight.grad.numpy(), dtype, f"dweight step {step}")
            _close(ours.bias.grad.numpy(), ref.bias.grad.numpy(), dtype, f"dbias step {step}")
            ours.weight.grad = ours.bias.grad = None
            ref.weight.grad = ref.bias.grad = None
        if ref.track_running_stats:
            _close(ours.running_mean.numpy(), ref.running_mean.numpy(), dtype, f"running_mean {step}")
            _close(ours.running_var.numpy(), ref.running_var.numpy(), dtype, f"running_var {step}")
            assert int(ours.num_batches_tracked.item()) == int(ref.num_batches_tracked) == step + 1
    ours.eval(), ref.eval()
    x = (3.0 + 2.0 * rng.standard_normal(shape)).astype(dtype)
    hx, tx = hepnn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    hy, ty = ours(hx), ref(tx)
    dy = rng.standard_normal(shape).astype(dtype)
    hy.backward(dy)
    ty.backward(torch.from_numpy(dy))
    _close(hy.numpy(), ty.detach().numpy(), dtype, "eval y")
    _close(hx.grad.numpy(), tx.grad.numpy(), dtype, "eval dx")
    if ref.affine:
        _close(ours.weight.grad.numpy(), ref.weight.grad.numpy(), dtype, "eval dweight")
    if ref.track_running_stats:  # eval leaves the statistics alone
        _close(ours.running_mean.numpy(), ref.running_mean.numpy(), dtype, "eval running_mean")
        assert int(ours.num_batches_tracked.item()) == 3


def test_state_dict_keys_dtypes_and_round_trip():
    ref = torch.nn.BatchNorm2d(6)
    ref.train()(torch.randn(4, 6, 3, 3))
    ours = hepnn.nn.BatchNorm2d(6)
    assert list(ours.state_dict()) == list(ref.state_dict())
    ours.load_state_dict({k: v.numpy() for k, v in ref.state_dict().items()})
    sd = ours.state_dict()
    assert sd["num_batches_tracked"].dtype == np.int64 and sd["num_batches_tracked"].shape == ()
    assert int(sd["num_batches_tracked"]) == 1
    np.testing.assert_allclose(sd["running_var"], ref.running_var.numpy(), rtol=1e-6)
    ours.double()
    assert ours.running_mean.dtype == np.float64 and ours.num_batches_tracked.dtype == np.int64
    # torch's BatchNorm without running stats has only weight and bias; strict loading works.
    plain = hepnn.nn.BatchNorm1d(3, track_running_stats=False)
    plain.load_state_dict({k: v.numpy() for k, v in torch.nn.BatchNorm1d(3, track_running_stats=False).state_dict().items()})
    assert sorted(plain.state_dict()) == ["bias", "weight"]
    # buffers stay buffers when reassigned (torch's behaviour)
    ours.running_mean = hepnn.zeros(6, dtype=np.float64)
    assert "running_mean" in ours.state_dict()


def test_reset_and_repr():
    bn = hepnn.nn.BatchNorm1d(3)
    bn(hepnn.randn(5, 3))
    bn.reset_running_stats()
    assert bn.running_mean.tolist() == [0.0] * 3 and int(bn.num_batches_tracked.item()) == 0
    assert "momentum=0.1" in repr(bn)


def _particle_batch(rng, N=6, C=4, L=9, dtype=np.float32):
    lengths = rng.integers(2, L + 1, N)
    lengths[0] = L
    mask = np.arange(L)[None, :] < lengths[:, None]
    x = (rng.standard_normal((N, C, L)) * 2 + 1).astype(dtype)
    return x, mask


def test_masked_matches_torch_on_packed_valid_points():
    rng = np.random.default_rng(3)
    x, mask = _particle_batch(rng)
    ours, ref = _pair("BatchNorm1d", 4, np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    hx = hepnn.tensor(x, requires_grad=True)
    hy = ours(hx, mask=mask)
    hy.backward(dy)
    packed = torch.tensor(np.transpose(x, (0, 2, 1))[mask], requires_grad=True)  # (M, C)
    ty = ref(packed)
    ty.backward(torch.from_numpy(np.transpose(dy, (0, 2, 1))[mask]))
    got = np.transpose(hy.numpy(), (0, 2, 1))
    _close(got[mask], ty.detach().numpy(), np.float32, "masked y")
    assert np.all(got[~mask] == 0)
    gx = np.transpose(hx.grad.numpy(), (0, 2, 1))
    _close(gx[mask], packed.grad.numpy(), np.float32, "masked dx")
    assert np.all(gx[~mask] == 0)
    _close(ours.weight.grad.numpy(), ref.weight.grad.numpy(), np.float32, "masked dweight")
    _close(ours.running_var.numpy(), ref.running_var.numpy(), np.float32, "masked running_var")
    ours.eval(), ref.eval()
    _close(np.transpose(ours(hepnn.tensor(x), mask=mask).numpy(), (0, 2, 1))[mask],
           ref(torch.from_numpy(np.transpose(x, (0, 2, 1))[mask])).detach().numpy(),
           np.float32, "masked eval y")


@pytest.mark.parametrize("training", [True, False])
def test_padding_independence(training):
    rng = np.random.default_rng(5)
    x, mask = _particle_batch(rng, dtype=np.float64)
    extra = 7  # more padding, filled with garbage (even NaN): must change nothing
    xp = np.concatenate([x, np.full(x.shape[:2] + (extra,), np.nan)], axis=2)
    xp[:, :, :x.shape[2]][~np.broadcast_to(mask[:, None, :], x.shape)] = 1e6
    mp = np.concatenate([mask, np.zeros((mask.shape[0], extra), bool)], axis=1)
    dy = rng.standard_normal(xp.shape)
    outs = []
    for xi, mi in ((x, mask), (xp, mp)):
        bn = hepnn.nn.BatchNorm1d(4, dtype=np.float64).train(training)
        bn.running_mean.data[:] = [0.1, -0.2, 0.3, 0.0]
        t = hepnn.tensor(xi, requires_grad=True)
        y = bn(t, mask=mi)
        y.backward(np.ascontiguousarray(dy[:, :, :xi.shape[2]]))
        outs.append((y.numpy(), t.grad.numpy(), bn.running_mean.numpy(), bn.running_var.numpy()))
    L = x.shape[2]
    (y0, g0, m0, v0), (y1, g1, m1, v1) = outs
    np.testing.assert_allclose(y1[:, :, :L], y0, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(g1[:, :, :L], g0, rtol=1e-12, atol=1e-12)
    assert np.all(y1[:, :, L:] == 0) and np.all(g1[:, :, L:] == 0)
    np.testing.assert_allclose(m1, m0, rtol=1e-13)
    np.testing.assert_allclose(v1, v0, rtol=1e-13)


def test_deterministic_across_thread_counts():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((64, 96, 50)).astype(np.float32)
    res = []
    for th in (1, 2):
        hepnn.set_num_threads(th)
        bn = hepnn.nn.BatchNorm1d(96)
        t = hepnn.tensor(x, requires_grad=True)
        bn(t).sum().backward()
        res.append((bn(t).numpy(), t.grad.numpy(), bn.running_var.numpy()))
    hepnn.set_num_threads(2)
    for a, b in zip(*res):
        assert np.array_equal(a, b)


def test_functional_batch_norm_matches_torch():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((5, 3, 4))
    rm, rv = rng.standard_normal(3), rng.uniform(0.5, 2, 3)
    w, b = rng.standard_normal(3), rng.standard_normal(3)
    hrm, hrv = hepnn.tensor(rm.copy()), hepnn.tensor(rv.copy())
    trm, trv = torch.tensor(rm), torch.tensor(rv)
    for training in (True, False):
        hy = F.batch_norm(hepnn.tensor(x), hrm, hrv, hepnn.tensor(w), hepnn.tensor(b), training, 0.2, 1e-4)
        ty = torch.nn.functional.batch_norm(torch.tensor(x), trm, trv, torch.tensor(w), torch.tensor(b), training, 0.2, 1e-4)
        np.testing.assert_allclose(hy.numpy(), ty.numpy(), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(hrv.numpy(), trv.numpy(), rtol=1e-12)
    # training without running statistics: batch statistics, nothing updated
    hy = F.batch_norm(hepnn.tensor(x), None, None, training=True)
    ty = torch.nn.functional.batch_norm(torch.tensor(x), None, None, training=True)
    np.testing.assert_allclose(hy.numpy(), ty.numpy(), rtol=1e-12, atol=1e-12)


def test_bad_input():
    bn1, bn2 = hepnn.nn.BatchNorm1d(3), hepnn.nn.BatchNorm2d(3)
    with pytest.raises(ValueError, match=r"\[batch_norm\].*2D or 3D"):
        bn1(hepnn.randn(2, 3, 4, 5))
    with pytest.raises(ValueError, match=r"\[batch_norm\].*4D"):
        bn2(hepnn.randn(2, 3, 4))
    with pytest.raises(ValueError, match=r"\[batch_norm\].*3 channels"):
        bn1(hepnn.randn(4, 5))
    with pytest.raises(ValueError, match=r"\[batch_norm\] expected more than 1 valid value"):
        bn1(hepnn.randn(1, 3))
    with pytest.raises(ValueError, match=r"\[batch_norm\] expected more than 1 valid value"):
        bn1(hepnn.randn(2, 3, 4), mask=np.eye(2, 4, dtype=bool) & (np.arange(2)[:, None] == 0))
    with pytest.raises(TypeError, match=r"\[batch_norm\]"):
        bn1(np.ones((4, 3), np.float32))
    with pytest.raises(TypeError, match=r"\[batch_norm\]"):
        F.batch_norm(hepnn.tensor(np.ones((4, 3), np.int64)), None, None, training=True)
    with pytest.raises(ValueError, match=r"\[batch_norm\] mask has shape"):
        bn1(hepnn.randn(2, 3, 4), mask=np.ones((2, 5), bool))
    with pytest.raises(TypeError, match=r"\[batch_norm\] mask"):
        bn1(hepnn.randn(2, 3, 4), mask=np.ones((2, 4), np.float32))
    with pytest.raises(TypeError, match=r"\[batch_norm\].*dtype"):
        bn1(hepnn.randn(4, 3, dtype=np.float64))  # float32 module, float64 input
    with pytest.raises(ValueError, match=r"\[batch_norm\] eval mode"):
        F.batch_norm(hepnn.randn(4, 3), None, None, training=False)
    for kw in ({"momentum": 1.5}, {"eps": -1.0}, {"num_features": 0}):
        with pytest.raises(ValueError, match="BatchNorm1d"):
            hepnn.nn.BatchNorm1d(**({"num_features": 3} | kw))


def test_kernel_boundary_checks():
    x = np.ones((4, 3, 5), np.float32)
    y, c = np.empty_like(x), np.ones(3, np.float32)
    fwd = _core.batchnorm_forward
    with pytest.raises(ValueError, match=r"\[batch_norm\] x is not C-contiguous"):
        fwd(np.ones((4, 5, 3), np.float32).transpose(0, 2, 1), None, None, None, None, None, True, 0.1, 1e-5, y)
    with pytest.raises(ValueError, match=r"\[batch_norm\] x has shape \(4,\)"):
        fwd(np.ones(4, np.float32), None, None, None, None, None, True, 0.1, 1e-5, np.empty(4, np.float32))
    with pytest.raises(ValueError, match=r"\[batch_norm\] weight has shape"):
        fwd(x, None, np.ones(4, np.float32), None, None, None, True, 0.1, 1e-5, y)
    with pytest.raises(TypeError, match=r"\[batch_norm\] bias has dtype float64"):
        fwd(x, None, None, np.ones(3), None, None, True, 0.1, 1e-5, y)
    with pytest.raises(ValueError, match=r"\[batch_norm\] y has shape"):
        fwd(x, None, None, None, None, None, True, 0.1, 1e-5, np.empty((4, 3), np.float32))
    with pytest.raises(ValueError, match=r"\[batch_norm\] momentum"):
        fwd(x, None, None, None, c.copy(), c.copy(), True, float("nan"), 1e-5, y)
    with pytest.raises(ValueError, match=r"\[batch_norm\] eps"):
        fwd(x, None, None, None, c.copy(), c.copy(), True, 0.1, -1e-5, y)
    with pytest.raises(ValueError, match=r"\[batch_norm\] running_mean and running_var"):
        fwd(x, None, None, None, c.copy(), None, True, 0.1, 1e-5, y)
    with pytest.raises(ValueError, match=r"\[batch_norm\] y shares memory with x"):
        fwd(x, None, None, None, None, None, True, 0.1, 1e-5, x)
    with pytest.raises(ValueError, match=r"\[batch_norm\] expected more than 1"):
        fwd(x[:1], np.zeros((1, 5), bool), None, None, None, None, True, 0.1, 1e-5, y[:1])
    with pytest.raises(TypeError, match=r"\[batch_norm\] x has dtype int32"):
        fwd(x.astype(np.int32), None, None, None, None, None, True, 0.1, 1e-5, y)
    with pytest.raises(ValueError, match=r"\[batch_norm\] dx has shape"):
        _core.batchnorm_backward(x, None, None, c, c, x, True, np.empty(3, np.float32), None, None)


@pytest.mark.parametrize("module", ["hepnn.nn.batchnorm", "hepnn.nn._functional_norm"])
def test_docstring_examples(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


_STANDIN_CHECK = r"""
import numpy as np
from tests.cupy_standin import install
cp = install()
import hepnn

rng = np.random.default_rng(7)
x = rng.standard_normal((5, 3, 8)).astype(np.float32)
mask = rng.random((5, 8)) < 0.7  # a host mask for a device input: moved by the op
dy = rng.standard_normal(x.shape).astype(np.float32)
out = {}
for device in ("cpu", "cuda"):
    bn = hepnn.nn.BatchNorm1d(3, momentum=None).to(device)
    t = hepnn.tensor(x, device=device, requires_grad=True)
    for _ in range(2):
        y = bn(t, mask=mask)
    y.backward(hepnn.tensor(dy, device=device))
    assert y.device == device and t.grad.device == device and bn.running_var.device == device
    bn.eval()
    z = bn(t, mask=mask)
    out[device] = [a.cpu().numpy() for a in (y, t.grad, bn.weight.grad, bn.running_mean, bn.running_var, z)]
    out[device].append(int(bn.num_batches_tracked.item()))
for a, b in zip(out["cpu"], out["cuda"]):
    np.testing.assert_array_equal(a, b)
assert out["cuda"][-1] == 2
print("ok")
"""


def test_python_cuda_path_with_a_cupy_standin():
    """The module on 'cuda' (buffers moved, a host mask moved to the input's device, the counter
    and momentum=None factor on device) against the NumPy-backed CuPy stand-in: the CPU result."""
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    res = subprocess.run([sys.executable, "-c", _STANDIN_CHECK], capture_output=True, text=True,
                         cwd=root, env=os.environ.copy())
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.strip().endswith("ok")


def test_checkpoint_round_trip(tmp_path):
    pytest.importorskip("safetensors")
    from hepnn.checkpoint import load, save

    def net():
        return hepnn.nn.Sequential(hepnn.nn.Linear(4, 6), hepnn.nn.BatchNorm1d(6), hepnn.nn.ReLU())

    model = net()
    for _ in range(3):
        model(hepnn.randn(16, 4))
    save(str(tmp_path / "bn.safetensors"), model)
    fresh = net()
    load(str(tmp_path / "bn.safetensors"), fresh)
    for (k, a), (k2, b) in zip(model.state_dict().items(), fresh.state_dict().items()):
        assert k == k2 and a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    assert int(fresh[1].num_batches_tracked.item()) == 3
    x = hepnn.randn(5, 4)
    np.testing.assert_array_equal(model.eval()(x).numpy(), fresh.eval()(x).numpy())
