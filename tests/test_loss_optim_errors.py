"""Bad calls to the fused losses and optimizer steps: wrong shapes, dtypes, labels, hyper-parameters
and list lengths raise ValueError/TypeError naming the op, and leave every buffer as it was."""
import numpy as np
import pytest

from hepnn import _core

RNG = np.random.default_rng(11)


# ---- losses ---------------------------------------------------------------------------------
def _loss_args(B=7, F=3, dtype=np.float64):
    x = RNG.standard_normal((B, F)).astype(dtype)
    t = RNG.uniform(0, 1, (B, F)).astype(dtype)
    return dict(x=x, t=t, w=RNG.uniform(0.5, 1.5, B).astype(dtype), out=np.full((B, F), np.nan, dtype),
                grad=np.full((B, F), np.nan, dtype), loss=np.full(1, np.nan, dtype))


def _call_elementwise(fn, a, reduction="mean"):
    fn(a["x"], a["t"], a["w"], reduction, a["out"], a["grad"], a["loss"])


def _mutate(a, key, value):
    a = dict(a)
    a[key] = value
    return a


ELEMENTWISE = [("mse_loss", _core.mse_loss), ("bce_with_logits_loss", _core.bce_with_logits_loss)]

BAD_ELEMENTWISE = [
    ("target shape", lambda a: _mutate(a, "t", a["t"][:, :2].copy()), ValueError, "target has shape"),
    ("pred 3-D", lambda a: _mutate(_mutate(a, "x", a["x"][:, :, None].copy()), "t", a["t"][:, :, None].copy()),
     ValueError, "expected (B,) or (B, F)"),
    ("pred int32", lambda a: _mutate(a, "x", a["x"].astype(np.int32)), TypeError, "dtype int32"),
    ("target float32", lambda a: _mutate(a, "t", a["t"].astype(np.float32)), TypeError, "target has dtype float32"),
    ("weight shape", lambda a: _mutate(a, "w", np.ones(6)), ValueError, "weight has shape (6,)"),
    ("weight 2-D", lambda a: _mutate(a, "w", np.ones((7, 1))), ValueError, "weight has shape (7, 1)"),
    ("grad shape", lambda a: _mutate(a, "grad", np.full((7, 2), np.nan)), ValueError, "grad has shape"),
    ("out shape", lambda a: _mutate(a, "out", np.full((7,), np.nan)), ValueError, "out has shape"),
    ("loss size", lambda a: _mutate(a, "loss", np.full(2, np.nan)), ValueError, "exactly 1 element"),
    ("loss dtype", lambda a: _mutate(a, "loss", np.full(1, np.nan, np.float32)), TypeError, "loss has dtype"),
    ("pred strided", lambda a: _mutate(_mutate(a, "x", np.repeat(a["x"], 2, axis=1)[:, ::2]), "t", a["t"]),
     ValueError, "not C-contiguous"),
    ("grad strided", lambda a: _mutate(a, "grad", np.full((7, 6), np.nan)[:, ::2]), ValueError, "not C-contiguous"),
]


@pytest.mark.parametrize("name,fn", ELEMENTWISE, ids=[n for n, _ in ELEMENTWISE])
@pytest.mark.parametrize("what,mutate,exc,msg", BAD_ELEMENTWISE, ids=[b[0] for b in BAD_ELEMENTWISE])
def test_elementwise_loss_rejects(name, fn, what, mutate, exc, msg):
    a = mutate(_loss_args())
    with pytest.raises(exc) as info:
        _call_elementwise(fn, a)
    assert str(info.value).startswith(f"[{name}]"), str(info.value)
    assert msg in str(info.value)
    for key in ("out", "grad", "loss"):
        assert np.isnan(a[key]).all(), f"{key} written by a rejected call"


@pytest.mark.parametrize("name,fn", ELEMENTWISE, ids=[n for n, _ in ELEMENTWISE])
def test_unknown_reduction(name, fn):
    a = _loss_args()
    with pytest.raises(ValueError, match=rf"^\[{name}\] unknown reduction 'avg'"):
        _call_elementwise(fn, a, "avg")


@pytest.mark.parametrize("name,fn", ELEMENTWISE, ids=[n for n, _ in ELEMENTWISE])
def test_weights_summing_to_zero(name, fn):
    a = _loss_args()
    a["w"] = np.array([1.0, -1.0, 0.5, -0.5, 2.0, -2.0, 0.0])
    with pytest.raises(ValueError, match=rf"^\[{name}\] event weights sum to zero"):
        _call_elementwise(fn, a)
    for key in ("grad", "loss"):
        assert np.isnan(a[key]).all(), f"{key} written by a rejected call"
    # "sum" and "none" do not divide by the weights: the same weights are fine there.
    _call_elementwise(fn, a, "sum")
    assert np.isfinite(a["loss"]).all() and np.isfinite(a["grad"]).all()


@pytest.mark.parametrize("name,fn", ELEMENTWISE, ids=[n for n, _ in ELEMENTWISE])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_nan_prediction_reaches_the_loss(name, fn, reduction):
    a = _loss_args(B=257)
    a["x"][100, 1] = np.nan
    _call_elementwise(fn, a, reduction)
    assert np.isnan(a["loss"][0])
    assert np.isnan(a["grad"][100, 1]) and np.isfinite(np.delete(a["grad"].ravel(), 100 * 3 + 1)).all()


def _ce_args(B=9, C=5, dtype=np.float64):
    return dict(x=RNG.standard_normal((B, C)).astype(dtype), y=RNG.integers(0, C, B).astype(np.int64),
                w=None, out=np.full(B, np.nan, dtype), grad=np.full((B, C), np.nan, dtype), loss=np.full(1, np.nan, dtype))


def _call_ce(a, reduction="mean"):
    _core.cross_entropy_loss(a["x"], a["y"], a["w"], reduction, a["out"], a["grad"], a["loss"])


@pytest.mark.parametrize("label", [-1, 5, 2**40])
def test_cross_entropy_label_out_of_range(label):
    a = _ce_args()
    a["y"][3] = label
    a["y"][6] = -7  # a later bad row: the message names the first
    with pytest.raises(ValueError) as info:
        _call_ce(a)
    assert str(info.value) == f"[cross_entropy_loss] label {label} in row 3 is outside [0, 5)"
    for key in ("out", "grad", "loss"):
        assert np.isnan(a[key]).all(), f"{key} written by a rejected call"


BAD_CE = [
    ("labels int32", lambda a: _mutate(a, "y", a["y"].astype(np.int32)), TypeError, "labels has dtype int32, expected int64"),
    ("labels float", lambda a: _mutate(a, "y", a["y"].astype(np.float64)), TypeError, "labels has dtype float64"),
    ("labels shape", lambda a: _mutate(a, "y", a["y"][:5].copy()), ValueError, "labels has shape (5,), expected (9,)"),
    ("logits 1-D", lambda a: _mutate(a, "x", a["x"][:, 0].copy()), ValueError, "logits has shape (9,)"),
    ("logits int", lambda a: _mutate(a, "x", a["x"].astype(np.int64)), TypeError, "logits has dtype int64"),
    ("out shape", lambda a: _mutate(a, "out", np.full((9, 5), np.nan)), ValueError, "out has shape (9, 5)"),
    ("grad shape", lambda a: _mutate(a, "grad", np.full((9, 4), np.nan)), ValueError, "grad has shape (9, 4)"),
    ("weight dtype", lambda a: _mutate(a, "w", np.ones(9, np.float32)), TypeError, "weight has dtype float32"),
    ("labels strided", lambda a: _mutate(a, "y", np.repeat(a["y"], 2)[::2]), ValueError, "labels is not C-contiguous"),
]


@pytest.mark.parametrize("what,mutate,exc,msg", BAD_CE, ids=[b[0] for b in BAD_CE])
def test_cross_entropy_rejects(what, mutate, exc, msg):
    a = mutate(_ce_args())
    with pytest.raises(exc) as info:
        _call_ce(a)
    assert str(info.value).startswith("[cross_entropy_loss]") and msg in str(info.value), str(info.value)
    for key in ("grad", "loss"):
        assert np.isnan(a[key]).all()


def test_cross_entropy_nan_logit_reaches_the_loss():
    a = _ce_args(B=33, C=11)
    a["x"][20, 4] = np.nan
    _call_ce(a, "none")
    assert np.isnan(a["out"][20]) and np.isfinite(np.delete(a["out"], 20)).all()
    a["x"][20, 0] = np.nan  # also the first element, where the running max starts
    _call_ce(a, "mean")
    assert np.isnan(a["loss"][0])


def test_loss_rejects_non_arrays():
    with pytest.raises(TypeError):
        _core.mse_loss([1.0, 2.0], np.ones(2), None, "mean", None, None, np.zeros(1))


# ---- optimizers -----------------------------------------------------------------------------
SHAPES = [(7,), (33, 5), (3, 1)]


def _state(dtype=np.float64):
    fresh = lambda: [RNG.standard_normal(s).astype(dtype) for s in SHAPES]  # noqa: E731
    return {k: fresh() for k in ("p", "g", "a", "b", "c")}


def _snapshot(st):
    return {k: [x.copy() for x in v] for k, v in st.items()}


def _assert_unchanged(st, snap):
    for k in st:
        for i, (x, y) in enumerate(zip(st[k], snap[k])):
            np.testing.assert_array_equal(x, y, err_msg=f"{k}[{i}] changed by a rejected call")


def _sgd(st, **kw):
    opts = dict(lr=0.1, momentum=0.9)
    opts.update(kw)
    _core.sgd_step(st["p"], st["g"], st.get("a"), **opts)


def _adam(st, **kw):
    opts = dict(step=1, amsgrad=True)
    opts.update(kw)
    _core.adam_step(st["p"], st["g"], st["a"], st["b"], st.get("c"), **opts)


def _rmsprop(st, **kw):
    opts = dict(centered=True, momentum=0.5)
    opts.update(kw)
    _core.rmsprop_step(st["p"], st["g"], st["a"], st.get("b"), st.get("c"), **opts)


def _adagrad(st, **kw):
    opts = dict(step=1)
    opts.update(kw)
    _core.adagrad_step(st["p"], st["g"], st["a"], **opts)


OPTIMIZERS = {"sgd_step": _sgd, "adam_step": _adam, "rmsprop_step": _rmsprop, "adagrad_step": _adagrad}
NAN, INF = float("nan"), float("inf")

BAD_HYPER = [
    (op, kw, msg)
    for op in OPTIMIZERS
    for kw, msg in [
        (dict(lr=NAN), "lr must be a finite number >= 0, got nan"),
        (dict(lr=-0.1), "lr must be a finite number >= 0, got -0.1"),
        (dict(lr=INF), "lr must be a finite number >= 0, got inf"),
        (dict(weight_decay=-1.0), "weight_decay must be a finite number >= 0"),
        (dict(weight_decay=NAN), "weight_decay must be a finite number >= 0"),
    ]
] + [
    ("sgd_step", dict(momentum=-0.5), "momentum must be a finite number >= 0"),
    ("sgd_step", dict(momentum=NAN), "momentum must be a finite number >= 0"),
    ("sgd_step", dict(dampening=NAN), "dampening must be finite"),
    ("sgd_step", dict(nesterov=True, momentum=0.0), "nesterov momentum requires momentum > 0 and dampening == 0"),
    ("sgd_step", dict(nesterov=True, dampening=0.1), "nesterov momentum requires momentum > 0 and dampening == 0"),
    ("adam_step", dict(beta1=1.0), "beta1 must be in [0, 1), got 1"),
    ("adam_step", dict(beta1=NAN), "beta1 must be in [0, 1)"),
    ("adam_step", dict(beta2=-0.1), "beta2 must be in [0, 1), got -0.1"),
    ("adam_step", dict(eps=-1e-8), "eps must be a finite number > 0, got -1e-08"),
    ("adam_step", dict(eps=0.0), "eps must be a finite number > 0"),
    ("adam_step", dict(step=0), "step counts from 1, got 0"),
    ("rmsprop_step", dict(alpha=1.5), "alpha must be in [0, 1], got 1.5"),
    ("rmsprop_step", dict(eps=-1.0), "eps must be a finite number > 0"),
    ("rmsprop_step", dict(momentum=INF), "momentum must be a finite number >= 0"),
    ("adagrad_step", dict(lr_decay=-0.1), "lr_decay must be a finite number >= 0"),
    ("adagrad_step", dict(eps=NAN), "eps must be a finite number > 0"),
    ("adagrad_step", dict(step=-3), "step counts from 1, got -3"),
]


@pytest.mark.parametrize("op,kw,msg", BAD_HYPER, ids=[f"{o}-{k}" for o, k, _ in BAD_HYPER])
def test_optimizer_rejects_hyper_parameter(op, kw, msg):
    st = _state()
    snap = _snapshot(st)
    with pytest.raises(ValueError) as info:
        OPTIMIZERS[op](st, **kw)
    assert str(info.value).startswith(f"[{op}] {msg}"), str(info.value)
    _assert_unchanged(st, snap)


def _bad_last(key, make):
    """Only the last entry of list `key` is wrong: nothing before it may be updated either."""

    def mutate(st):
        st[key][-1] = make(st[key][-1])

    return mutate


BAD_LISTS = [
    ("grads shorter", lambda st: st["g"].pop(), ValueError, "grads has 2 arrays, params has 3"),
    ("state longer", lambda st: st["a"].append(np.zeros(3)), ValueError, "has 4 arrays, params has 3"),
    ("grad shape", _bad_last("g", lambda x: np.zeros((1, 3))), ValueError, "grads[2] has shape (1, 3), expected (3, 1)"),
    ("state shape", _bad_last("a", lambda x: np.zeros(3)), ValueError, "[2] has shape (3,), expected (3, 1)"),
    ("grad dtype", _bad_last("g", lambda x: x.astype(np.float32)), TypeError, "grads[2] has dtype float32"),
    ("state dtype", _bad_last("a", lambda x: x.astype(np.float32)), TypeError, "[2] has dtype float32"),
    ("param int", _bad_last("p", lambda x: x.astype(np.int64)), TypeError, "params[2] has dtype int64"),
    ("param strided", _bad_last("p", lambda x: np.repeat(x, 2, axis=0)[::2]), ValueError,
     "params[2] is not C-contiguous"),
    ("grad strided", _bad_last("g", lambda x: np.repeat(x, 2, axis=0)[::2]), ValueError,
     "grads[2] is not C-contiguous"),
]


@pytest.mark.parametrize("op", list(OPTIMIZERS))
@pytest.mark.parametrize("what,mutate,exc,msg", BAD_LISTS, ids=[b[0] for b in BAD_LISTS])
def test_optimizer_rejects_lists(op, what, mutate, exc, msg):
    st = _state()
    mutate(st)
    snap = _snapshot(st)
    with pytest.raises(exc) as info:
        OPTIMIZERS[op](st)
    assert str(info.value).startswith(f"[{op}]") and msg in str(info.value), str(info.value)
    _assert_unchanged(st, snap)


@pytest.mark.parametrize("op,kw,msg", [
    ("sgd_step", dict(), "momentum_bufs is None, but momentum != 0 needs it"),
    ("adam_step", dict(), "max_exp_avg_sqs is None, but amsgrad needs it"),
    ("rmsprop_step", dict(momentum=0.0), "grad_avgs is None, but centered needs it"),
])
def test_optimizer_missing_state_list(op, kw, msg):
    st = _state()
    st.pop("a" if op == "sgd_step" else ("c" if op == "adam_step" else "b"))
    snap = _snapshot(st)
    with pytest.raises(ValueError, match=rf"^\[{op}\] {msg}"):
        OPTIMIZERS[op](st, **kw)
    _assert_unchanged(st, snap)


@pytest.mark.parametrize("op", list(OPTIMIZERS))
def test_optimizer_rejects_a_buffer_passed_twice(op):
    st = _state()
    st["g"][1] = st["p"][1]
    snap = _snapshot(st)
    with pytest.raises(ValueError, match=rf"^\[{op}\] grads\[1\] is the same buffer as params\[1\]"):
        OPTIMIZERS[op](st)
    _assert_unchanged(st, snap)
    st = _state()
    st["a"][0] = st["g"][0]  # the first state list (momentum_bufs, exp_avgs, square_avgs, state_sums)
    with pytest.raises(ValueError, match=r"\[0\] is the same buffer as grads\[0\]"):
        OPTIMIZERS[op](st)


def test_state_lists_not_needed_are_ignored():
    st = _state()
    _core.sgd_step(st["p"], st["g"], None, lr=0.1)  # no momentum, no buffers
    _core.rmsprop_step(st["p"], st["g"], [np.abs(x) for x in st["a"]], None, None)
    _core.adam_step(st["p"], st["g"], st["a"], [np.abs(x) for x in st["b"]], None, 1)


@pytest.mark.parametrize("op", list(OPTIMIZERS))
@pytest.mark.parametrize("key", ["p", "a"])
def test_optimizer_refuses_read_only_buffers(op, key):
    st = _state()
    st[key][2].flags.writeable = False
    snap = _snapshot(st)
    with pytest.raises(ValueError, match=rf"^\[{op}\] \w+\[2\] is read-only"):
        OPTIMIZERS[op](st)
    _assert_unchanged(st, snap)


def test_optimizer_accepts_read_only_gradients():
    st = _state()
    for g in st["g"]:
        g.flags.writeable = False
    before = [p.copy() for p in st["p"]]
    _core.sgd_step(st["p"], st["g"], None, lr=0.1)
    for p, b, g in zip(st["p"], before, st["g"]):
        np.testing.assert_allclose(p, b - 0.1 * g, rtol=1e-15)


@pytest.mark.parametrize("op", list(OPTIMIZERS))
def test_optimizer_refuses_non_arrays(op):
    st = _state()
    st["p"][1] = [[1.0, 2.0]]
    with pytest.raises(TypeError, match=rf"^\[{op}\] params\[1\] is not an array"):
        OPTIMIZERS[op](st)
