"""Runs every registered op (tests/ops/*.py) forward against its NumPy float64 reference and its
backward against central finite differences, on every available backend and dtype."""
import zlib

import numpy as np
import pytest

from tests.registry import all_specs, available_backends

SPECS = all_specs()
BACKENDS = {b.name: b for b in available_backends()}


def _cast(inputs, dtype):
    return {k: (v.astype(dtype) if v.dtype.kind == "f" else v) for k, v in inputs.items()}


def _to_backend(inputs, backend):
    return {k: backend.asarray(v) for k, v in inputs.items()}


def _seed(*parts):
    # crc32, not hash(): string hashes change per process, and a failing case must reproduce.
    return zlib.crc32("|".join(str(p) for p in parts).encode())


def _forward_cases():
    for spec in SPECS:
        for shape in spec.shapes:
            for dtype in spec.dtypes:
                for be in spec.backends:
                    yield pytest.param(spec, shape, dtype, be, id=f"{spec.name}-{shape}-{np.dtype(dtype).name}-{be}")


def _grad_cases():
    for spec in SPECS:
        if spec.backward is None:
            continue
        for shape in spec.grad_shapes or spec.shapes[:2]:
            for be in spec.backends:
                yield pytest.param(spec, shape, be, id=f"{spec.name}-{shape}-{be}")


def _backend(name):
    if name not in BACKENDS:
        pytest.skip(f"backend {name} not available (no CUDA build, GPU or CuPy)")
    return BACKENDS[name]


def assert_close(got, ref, atol, rtol, what):
    got = np.asarray(got, dtype=np.float64)
    assert got.shape == ref.shape, f"{what}: shape {got.shape} != reference {ref.shape}"
    err = np.abs(got - ref)
    bound = atol + rtol * np.abs(ref)
    bad = ~(err <= bound)  # NaN counts as bad
    if bad.any():
        i = np.unravel_index(np.argmax(np.where(bad, err - bound, -np.inf) if not np.isnan(got).any() else np.isnan(got)), got.shape)
        pytest.fail(f"{what}: {bad.sum()} of {bad.size} elements off; worst at {i}: got {got[i]}, ref {ref[i]}")


@pytest.mark.parametrize("spec,shape,dtype,backend", list(_forward_cases()))
def test_forward(spec, shape, dtype, backend):
    be = _backend(backend)
    rng = np.random.default_rng(_seed(spec.name, shape))
    inputs = _cast(spec.make_inputs(rng, shape), dtype)
    ref = spec.reference({k: (v.astype(np.float64) if v.dtype.kind == "f" else v) for k, v in inputs.items()})
    out = spec.forward(_to_backend(inputs, be), be)
    atol, rtol = spec.tol[dtype]
    for key, r in ref.items():
        assert_close(be.numpy(out[key]), np.asarray(r, dtype=np.float64), atol, rtol, f"{spec.name} output {key!r}")


@pytest.mark.parametrize("spec,shape,backend", list(_grad_cases()))
def test_gradient(spec, shape, backend):
    be = _backend(backend)
    rng = np.random.default_rng(_seed(spec.name, shape, "grad"))
    inputs = _cast(spec.make_inputs(rng, shape), np.float64)
    ref_out = spec.reference(inputs)
    keys = spec.grad_outputs or tuple(ref_out)
    gouts = {k: rng.standard_normal(np.shape(ref_out[k])) for k in keys}

    def objective(inp):
        out = spec.forward(_to_backend(inp, be), be)
        return sum(float(np.sum(be.numpy(out[k]) * gouts[k])) for k in keys)

    grads = spec.backward(_to_backend(inputs, be), {k: be.asarray(v) for k, v in gouts.items()}, be)
    atol, rtol = spec.grad_tol
    for name in spec.grad_inputs:
        x = inputs[name]
        g = be.numpy(grads[name]).astype(np.float64)
        assert g.shape == x.shape, f"{spec.name} d{name}: shape {g.shape} != {x.shape}"
        flat = x.reshape(-1)
        idx = rng.choice(flat.size, size=min(flat.size, 48), replace=False)
        for i in idx:
            h = 1e-6 * max(1.0, abs(flat[i]))
            plus, minus = dict(inputs), dict(inputs)
            xp_, xm_ = flat.copy(), flat.copy()
            xp_[i] += h
            xm_[i] -= h
            plus[name], minus[name] = xp_.reshape(x.shape), xm_.reshape(x.shape)
            fd = (objective(plus) - objective(minus)) / (2 * h)
            got = g.reshape(-1)[i]
            assert abs(got - fd) <= atol + rtol * abs(fd) + 1e-6 * abs(fd), (
                f"{spec.name} d{name}[{i}]: kernel {got!r}, finite difference {fd!r}"
            )
