"""The fused optimizer steps (sgd, adam/adamw, rmsprop, adagrad) against NumPy float64 reference
implementations of torch.optim's update rules, every option combination, 10 steps on a list of
odd-shaped parameters (small ones spread over the pool, a large one threaded inside its kernel);
and against torch.optim itself for the usual configurations when torch is installed."""
import itertools

import numpy as np
import pytest

from hepnn import _core

# (40001,) is split over threads inside its kernel; (150, 151) + (99, 131) are small parameters whose
# total exceeds one task, so the list itself is spread over the pool.
SHAPES = [(7,), (1,), (33, 5), (257, 3), (150, 151), (99, 131), (40001,)]
STEPS = 10
# atol is relative to the largest element of the tensor: float32 state sums like buf = mu buf + d / avg
# cancel to small values whose absolute rounding error follows the size of the terms, not the sum.
TOL = {np.float32: (5e-6, 2e-5), np.float64: (1e-13, 1e-11)}


def _params(rng, dtype):
    return [rng.standard_normal(s).astype(dtype) for s in SHAPES]


def _grads(rng, dtype):
    return [(0.5 * rng.standard_normal(s)).astype(dtype) for s in SHAPES]


def _assert_lists_close(got, ref, dtype, what):
    atol, rtol = TOL[dtype]
    for i, (g, r) in enumerate(zip(got, ref)):
        g = np.asarray(g, dtype=np.float64)
        err = np.abs(g - r)
        bound = atol * max(1.0, float(np.max(np.abs(r)))) + rtol * np.abs(r)
        bad = ~(err <= bound)
        assert not bad.any(), (
            f"{what}[{i}] shape {r.shape}: {bad.sum()} elements off, worst {np.max(np.where(bad, err, 0))}"
        )


# ---- NumPy float64 references (one parameter, one step) -------------------------------------
def ref_sgd(p, g, buf, *, lr, momentum, dampening, weight_decay, nesterov, maximize, first):
    d = -g if maximize else g.copy()
    if weight_decay:
        d = d + weight_decay * p
    if momentum:
        buf = d.copy() if first else momentum * buf + (1 - dampening) * d
        d = d + momentum * buf if nesterov else buf
    return p - lr * d, buf


def ref_adam(p, g, m, v, vmax, *, step, lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad, maximize):
    d = -g if maximize else g.copy()
    if weight_decay and decoupled:
        p = p * (1 - lr * weight_decay)
    elif weight_decay:
        d = d + weight_decay * p
    m = beta1 * m + (1 - beta1) * d
    v = beta2 * v + (1 - beta2) * d * d
    vhat = v
    if amsgrad:
        vmax = np.maximum(vmax, v)
        vhat = vmax
    mhat = m / (1 - beta1**step)
    denom = np.sqrt(vhat) / np.sqrt(1 - beta2**step) + eps
    return p - lr * mhat / denom, m, v, vmax


def ref_rmsprop(p, g, sq, ga, buf, *, lr, alpha, eps, weight_decay, momentum, centered, maximize):
    d = -g if maximize else g.copy()
    if weight_decay:
        d = d + weight_decay * p
    sq = alpha * sq + (1 - alpha) * d * d
    if centered:
        ga = alpha * ga + (1 - alpha) * d
        avg = np.sqrt(sq - ga * ga) + eps
    else:
        avg = np.sqrt(sq) + eps
    if momentum > 0:
        buf = momentum * buf + d / avg
        return p - lr * buf, sq, ga, buf
    return p - lr * d / avg, sq, ga, buf


def ref_adagrad(p, g, s, *, step, lr, lr_decay, weight_decay, eps, maximize):
    d = -g if maximize else g.copy()
    if weight_decay:
        d = d + weight_decay * p
    s = s + d * d
    clr = lr / (1 + (step - 1) * lr_decay)
    return p - clr * d / (np.sqrt(s) + eps), s


# ---- option grids ---------------------------------------------------------------------------
def _sgd_cases():
    for mom, damp, nest, wd, mx in itertools.product((0.0, 0.9), (0.0, 0.1), (False, True), (0.0, 0.01), (False, True)):
        if nest and (mom == 0.0 or damp != 0.0):
            continue
        yield dict(lr=0.05, momentum=mom, dampening=damp, nesterov=nest, weight_decay=wd, maximize=mx)


def _adam_cases():
    for (b1, b2), wd, dec, ams, mx in itertools.product(
        ((0.9, 0.999), (0.5, 0.9)), (0.0, 0.05), (False, True), (False, True), (False, True)
    ):
        yield dict(lr=0.01, beta1=b1, beta2=b2, eps=1e-8, weight_decay=wd, decoupled=dec, amsgrad=ams, maximize=mx)


def _rmsprop_cases():
    for alpha, cen, mom, wd, mx in itertools.product((0.99, 0.5), (False, True), (0.0, 0.8), (0.0, 0.01), (False, True)):
        yield dict(lr=0.01, alpha=alpha, eps=1e-8, weight_decay=wd, momentum=mom, centered=cen, maximize=mx)


def _adagrad_cases():
    for lrd, wd, init, mx in itertools.product((0.0, 0.1), (0.0, 0.02), (0.0, 0.3), (False, True)):
        yield dict(lr=0.05, lr_decay=lrd, weight_decay=wd, eps=1e-10, maximize=mx, init=init)


def _ids(cases):
    return [",".join(f"{k}={v}" for k, v in c.items()) for c in cases]


DTYPES = [np.float32, np.float64]
SGD_CASES, ADAM_CASES = list(_sgd_cases()), list(_adam_cases())
RMSPROP_CASES, ADAGRAD_CASES = list(_rmsprop_cases()), list(_adagrad_cases())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("opts", SGD_CASES, ids=_ids(SGD_CASES))
def test_sgd_matches_reference(opts, dtype):
    rng = np.random.default_rng(1)
    params = _params(rng, dtype)
    ref_p = [p.astype(np.float64) for p in params]
    use_buf = opts["momentum"] != 0.0
    # Poisoned buffers: with first=True the kernel must overwrite them, never read them.
    bufs = [np.full(s, np.nan, dtype) for s in SHAPES] if use_buf else None
    ref_b = [None] * len(SHAPES)
    for step in range(1, STEPS + 1):
        grads = _grads(rng, dtype)
        g_before = [g.copy() for g in grads]
        _core.sgd_step(params, grads, bufs, first=step == 1, **opts)
        for i, g in enumerate(grads):
            ref_p[i], ref_b[i] = ref_sgd(ref_p[i], g.astype(np.float64), ref_b[i], first=step == 1, **opts)
            np.testing.assert_array_equal(g, g_before[i])  # gradients are read-only
        _assert_lists_close(params, ref_p, dtype, f"sgd step {step} params")
        if use_buf:
            _assert_lists_close(bufs, ref_b, dtype, f"sgd step {step} momentum_bufs")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("opts", ADAM_CASES, ids=_ids(ADAM_CASES))
def test_adam_matches_reference(opts, dtype):
    rng = np.random.default_rng(2)
    params = _params(rng, dtype)
    m = [np.zeros(s, dtype) for s in SHAPES]
    v = [np.zeros(s, dtype) for s in SHAPES]
    vmax = [np.zeros(s, dtype) for s in SHAPES] if opts["amsgrad"] else None
    ref = [[p.astype(np.float64), np.zeros(s), np.zeros(s), np.zeros(s)] for p, s in zip(params, SHAPES)]
    for step in range(1, STEPS + 1):
        grads = _grads(rng, dtype)
        _core.adam_step(params, grads, m, v, vmax, step, **opts)
        for i, g in enumerate(grads):
            ref[i] = list(ref_adam(*ref[i][:1], g.astype(np.float64), *ref[i][1:], step=step, **opts))
        _assert_lists_close(params, [r[0] for r in ref], dtype, f"adam step {step} params")
        _assert_lists_close(m, [r[1] for r in ref], dtype, f"adam step {step} exp_avgs")
        _assert_lists_close(v, [r[2] for r in ref], dtype, f"adam step {step} exp_avg_sqs")
        if vmax is not None:
            _assert_lists_close(vmax, [r[3] for r in ref], dtype, f"adam step {step} max_exp_avg_sqs")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("opts", RMSPROP_CASES, ids=_ids(RMSPROP_CASES))
def test_rmsprop_matches_reference(opts, dtype):
    rng = np.random.default_rng(3)
    params = _params(rng, dtype)
    sq = [np.zeros(s, dtype) for s in SHAPES]
    ga = [np.zeros(s, dtype) for s in SHAPES] if opts["centered"] else None
    buf = [np.zeros(s, dtype) for s in SHAPES] if opts["momentum"] > 0 else None
    ref = [[p.astype(np.float64), np.zeros(s), np.zeros(s), np.zeros(s)] for p, s in zip(params, SHAPES)]
    for step in range(1, STEPS + 1):
        grads = _grads(rng, dtype)
        _core.rmsprop_step(params, grads, sq, ga, buf, **opts)
        for i, g in enumerate(grads):
            ref[i] = list(ref_rmsprop(ref[i][0], g.astype(np.float64), *ref[i][1:], **opts))
        _assert_lists_close(params, [r[0] for r in ref], dtype, f"rmsprop step {step} params")
        _assert_lists_close(sq, [r[1] for r in ref], dtype, f"rmsprop step {step} square_avgs")
        if ga is not None:
            _assert_lists_close(ga, [r[2] for r in ref], dtype, f"rmsprop step {step} grad_avgs")
        if buf is not None:
            _assert_lists_close(buf, [r[3] for r in ref], dtype, f"rmsprop step {step} momentum_bufs")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("opts", ADAGRAD_CASES, ids=_ids(ADAGRAD_CASES))
def test_adagrad_matches_reference(opts, dtype):
    opts = dict(opts)
    init = opts.pop("init")
    rng = np.random.default_rng(4)
    params = _params(rng, dtype)
    sums = [np.full(s, init, dtype) for s in SHAPES]
    ref = [[p.astype(np.float64), np.full(s, init)] for p, s in zip(params, SHAPES)]
    for step in range(1, STEPS + 1):
        grads = _grads(rng, dtype)
        _core.adagrad_step(params, grads, sums, step, **opts)
        for i, g in enumerate(grads):
            ref[i] = list(ref_adagrad(ref[i][0], g.astype(np.float64), ref[i][1], step=step, **opts))
        _assert_lists_close(params, [r[0] for r in ref], dtype, f"adagrad step {step} params")
        _assert_lists_close(sums, [r[1] for r in ref], dtype, f"adagrad step {step} state_sums")


def test_results_do_not_depend_on_thread_count():
    rng = np.random.default_rng(5)
    p0, g = _params(rng, np.float32), _grads(rng, np.float32)
    results = []
    saved = _core.get_num_threads()
    try:
        for n in (1, 3):
            _core.set_num_threads(n)
            p = [x.copy() for x in p0]
            _core.adam_step(p, g, [np.zeros_like(x) for x in p], [np.zeros_like(x) for x in p], None, 1, lr=0.1)
            results.append(p)
    finally:
        _core.set_num_threads(saved)
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_empty_list_is_a_no_op():
    _core.sgd_step([], [], None, lr=0.1)
    _core.adam_step([], [], [], [], None, 1)


# ---- torch.optim cross-checks ---------------------------------------------------------------
TORCH_CASES = [
    ("SGD", dict(lr=0.1), {}),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3), {}),
    ("Adam", dict(), {}),
    ("Adam", dict(lr=0.01, weight_decay=0.01, amsgrad=True), {}),
    ("AdamW", dict(), {}),
    ("RMSprop", dict(), {}),
    ("RMSprop", dict(momentum=0.9, centered=True), {}),
    ("Adagrad", dict(), {}),
    ("Adagrad", dict(lr_decay=0.05, initial_accumulator_value=0.1), {}),
]


def _hepnn_optimizer(name, kw, params):
    """Steps the hepnn kernels with torch's defaults for `name`; returns step(grads)."""
    zeros = lambda: [np.zeros_like(p) for p in params]  # noqa: E731
    state = {"step": 0}
    if name == "SGD":
        bufs = zeros() if kw.get("momentum", 0.0) else None

        def step(grads):
            state["step"] += 1
            _core.sgd_step(params, grads, bufs, kw["lr"], momentum=kw.get("momentum", 0.0),
                           dampening=kw.get("dampening", 0.0), weight_decay=kw.get("weight_decay", 0.0),
                           nesterov=kw.get("nesterov", False), first=state["step"] == 1)
    elif name in ("Adam", "AdamW"):
        m, v = zeros(), zeros()
        vmax = zeros() if kw.get("amsgrad") else None
        wd = kw.get("weight_decay", 0.01 if name == "AdamW" else 0.0)

        def step(grads):
            state["step"] += 1
            _core.adam_step(params, grads, m, v, vmax, state["step"], lr=kw.get("lr", 1e-3), weight_decay=wd,
                            decoupled=name == "AdamW", amsgrad=kw.get("amsgrad", False))
    elif name == "RMSprop":
        sq = zeros()
        ga = zeros() if kw.get("centered") else None
        buf = zeros() if kw.get("momentum", 0.0) > 0 else None

        def step(grads):
            _core.rmsprop_step(params, grads, sq, ga, buf, momentum=kw.get("momentum", 0.0),
                               centered=kw.get("centered", False))
    else:
        sums = [np.full_like(p, kw.get("initial_accumulator_value", 0.0)) for p in params]

        def step(grads):
            state["step"] += 1
            _core.adagrad_step(params, grads, sums, state["step"], lr_decay=kw.get("lr_decay", 0.0))
    return step


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,kw,_", TORCH_CASES, ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(TORCH_CASES)])
def test_matches_torch_optim(name, kw, _, dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(6)
    shapes = [(7,), (33, 5), (257, 3)]
    params = [rng.standard_normal(s).astype(dtype) for s in shapes]
    tparams = [torch.nn.Parameter(torch.from_numpy(p.copy())) for p in params]
    topt = getattr(torch.optim, name)(tparams, **kw)
    step = _hepnn_optimizer(name, kw, params)
    for _k in range(STEPS):
        grads = [(0.5 * rng.standard_normal(s)).astype(dtype) for s in shapes]
        for tp, g in zip(tparams, grads):
            tp.grad = torch.from_numpy(g.copy())
        topt.step()
        step(grads)
    # Same operations in the same dtype: float64 agrees to rounding, float32 to a few ulps per step.
    tol = 1e-12 if dtype == np.float64 else 1e-5
    for p, tp in zip(params, tparams):
        np.testing.assert_allclose(p, tp.detach().numpy(), rtol=tol, atol=tol)


def _random_config(rng):
    """A random torch.optim configuration and the matching hepnn step (float64 buffers)."""
    kind = str(rng.choice(["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"]))
    mx, wd = bool(rng.integers(2)), float(rng.choice([0.0, 0.03]))
    if kind == "SGD":
        mom = float(rng.choice([0.0, 0.7]))
        nest = bool(rng.integers(2)) and mom > 0
        damp = 0.0 if nest else float(rng.choice([0.0, 0.2]))
        kw = dict(lr=0.05, momentum=mom, dampening=damp, nesterov=nest, weight_decay=wd, maximize=mx)

        def make(ps):
            bufs = [np.zeros_like(p) for p in ps] if mom else None
            return lambda gs, k: _core.sgd_step(ps, gs, bufs, first=k == 1, **kw)
    elif kind in ("Adam", "AdamW"):
        ams, b1, b2 = bool(rng.integers(2)), float(rng.choice([0.9, 0.3, 0.0])), float(rng.choice([0.999, 0.6]))
        kw = dict(lr=0.02, betas=(b1, b2), eps=1e-6, weight_decay=wd, amsgrad=ams, maximize=mx)

        def make(ps):
            m, v = [np.zeros_like(p) for p in ps], [np.zeros_like(p) for p in ps]
            vm = [np.zeros_like(p) for p in ps] if ams else None
            return lambda gs, k: _core.adam_step(ps, gs, m, v, vm, k, lr=0.02, beta1=b1, beta2=b2, eps=1e-6,
                                                 weight_decay=wd, decoupled=kind == "AdamW", amsgrad=ams, maximize=mx)
    elif kind == "RMSprop":
        cen, mom, al = bool(rng.integers(2)), float(rng.choice([0.0, 0.5])), float(rng.choice([0.99, 0.3]))
        kw = dict(lr=0.01, alpha=al, eps=1e-6, weight_decay=wd, momentum=mom, centered=cen, maximize=mx)

        def make(ps):
            sq = [np.zeros_like(p) for p in ps]
            ga = [np.zeros_like(p) for p in ps] if cen else None
            bf = [np.zeros_like(p) for p in ps] if mom else None
            return lambda gs, k: _core.rmsprop_step(ps, gs, sq, ga, bf, **kw)
    else:
        lrd, iav = float(rng.choice([0.0, 0.1])), float(rng.choice([0.0, 0.2]))
        kw = dict(lr=0.05, lr_decay=lrd, weight_decay=wd, initial_accumulator_value=iav, eps=1e-10, maximize=mx)

        def make(ps):
            ss = [np.full_like(p, iav) for p in ps]
            return lambda gs, k: _core.adagrad_step(ps, gs, ss, k, lr=0.05, lr_decay=lrd, weight_decay=wd,
                                                    eps=1e-10, maximize=mx)
    return kind, kw, make


@pytest.mark.parametrize("seed", range(40))
def test_random_configurations_match_torch_optim(seed):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(100 + seed)
    kind, kw, make = _random_config(rng)
    shapes = [(5,), (3, 4)]
    params = [rng.standard_normal(s) for s in shapes]
    tparams = [torch.nn.Parameter(torch.from_numpy(p.copy())) for p in params]
    topt = getattr(torch.optim, kind)(tparams, **kw)
    step = make(params)
    for k in range(1, 8):
        grads = [rng.standard_normal(s) for s in shapes]
        for tp, g in zip(tparams, grads):
            tp.grad = torch.from_numpy(g.copy())
        topt.step()
        step(grads, k)
    for p, tp in zip(params, tparams):
        np.testing.assert_allclose(p, tp.detach().numpy(), rtol=1e-12, atol=1e-13, err_msg=f"{kind} {kw}")
