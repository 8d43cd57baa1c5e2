"""Fused losses beyond the registry: unweighted results against torch.nn.functional (values and
autograd gradients), and a loss that is bit-identical whatever the thread count."""
import zlib

import numpy as np
import pytest

from hepnn import _core

SHAPES = [(1, 1), (7, 3), (257, 1), (20001, 3)]


def _run(fn, x, second, weight, reduction):
    per_sample = x.shape if fn is not _core.cross_entropy_loss else (x.shape[0],)
    out = np.full(per_sample, np.nan, x.dtype) if reduction == "none" else None
    grad = np.full(x.shape, np.nan, x.dtype)
    loss = np.full(1, np.nan, x.dtype)
    fn(x, second, weight, reduction, out, grad, loss)
    return out, grad, loss


def _inputs(kind, shape, dtype, rng):
    if kind == "cross_entropy_loss":
        B, C = shape[0], max(2, shape[1] + 2)
        return (3 * rng.standard_normal((B, C))).astype(dtype), rng.integers(0, C, B).astype(np.int64)
    x = (3 * rng.standard_normal(shape)).astype(dtype)
    t = rng.uniform(0, 1, shape).astype(dtype) if kind == "bce_with_logits_loss" else rng.standard_normal(shape).astype(dtype)
    return x, t


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("kind", ["mse_loss", "bce_with_logits_loss", "cross_entropy_loss"])
def test_unweighted_matches_torch(kind, shape, reduction, dtype):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(zlib.crc32(f"{kind}{shape}{reduction}".encode()))
    x, second = _inputs(kind, shape, dtype, rng)
    out, grad, loss = _run(getattr(_core, kind), x, second, None, reduction)
    tx = torch.from_numpy(x.copy()).requires_grad_(True)
    ts = torch.from_numpy(second)
    tfn = {"mse_loss": F.mse_loss, "bce_with_logits_loss": F.binary_cross_entropy_with_logits,
           "cross_entropy_loss": F.cross_entropy}[kind]
    tl = tfn(tx, ts, reduction=reduction)
    tl.sum().backward()
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    if reduction == "none":
        np.testing.assert_allclose(out, tl.detach().numpy(), rtol=rtol, atol=rtol)
    else:
        np.testing.assert_allclose(loss[0], tl.item(), rtol=rtol, atol=rtol)
    scale = np.max(np.abs(tx.grad.numpy()))
    np.testing.assert_allclose(grad, tx.grad.numpy(), rtol=rtol, atol=rtol * scale)


@pytest.mark.parametrize("kind", ["mse_loss", "bce_with_logits_loss", "cross_entropy_loss"])
def test_loss_is_identical_for_any_thread_count(kind):
    rng = np.random.default_rng(3)
    x, second = _inputs(kind, (50001, 3), np.float32, rng)
    w = rng.uniform(0.1, 2.0, x.shape[0]).astype(np.float32)
    saved = _core.get_num_threads()
    results = []
    try:
        for n in (1, 2, 5):
            _core.set_num_threads(n)
            results.append(_run(getattr(_core, kind), x, second, w, "mean"))
    finally:
        _core.set_num_threads(saved)
    for _, grad, loss in results[1:]:
        assert loss[0] == results[0][2][0]
        np.testing.assert_array_equal(grad, results[0][1])
