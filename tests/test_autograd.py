"""Autograd: every op's gradient vs central finite differences (float64, odd shapes, broadcasting),
the engine's rules (accumulation, retain_graph, non-scalar outputs, no_grad, leaves), and a torch
cross-check of a composite expression when torch is installed."""
import numpy as np
import pytest

import hepnn
from tests.gradcheck import check_grads

RNG = np.random.default_rng(1234)


def rnd(*shape, low=None):
    """Random float64 values; with `low`, values in [low, low + 1) (for log, sqrt, ...)."""
    if low is not None:
        return RNG.random(shape) + low
    return RNG.standard_normal(shape)


def away_from_zero(*shape):
    x = rnd(*shape)
    return np.where(np.abs(x) < 0.1, 0.3 * np.sign(x + 1e-3), x)


# ---- elementwise arithmetic with broadcasting ----
BROADCAST_PAIRS = [((3, 5), (3, 5)), ((3, 5), (5,)), ((3, 1), (1, 5)), ((2, 3, 5), (3, 1)),
                   ((7,), (1,)), ((1, 1), (4, 3))]


@pytest.mark.parametrize("sa,sb", BROADCAST_PAIRS)
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
def test_binary_ops_broadcast(op, sa, sb):
    fns = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
           "div": lambda a, b: a / b}
    b = rnd(*sb, low=0.5) if op == "div" else rnd(*sb)
    out = check_grads(fns[op], [rnd(*sa), b])
    assert out.shape == np.broadcast_shapes(sa, sb)


@pytest.mark.parametrize("fn", [
    lambda a: a + 2.5, lambda a: 2.5 + a, lambda a: a - 1.5, lambda a: 1.5 - a,
    lambda a: a * -3.0, lambda a: -3.0 * a, lambda a: a / 4.0, lambda a: 4.0 / a, lambda a: -a,
    lambda a: a + np.float64(2.0), lambda a: a * np.arange(5.0),
], ids=["add", "radd", "sub", "rsub", "mul", "rmul", "div", "rdiv", "neg", "npscalar", "nparray"])
def test_scalar_and_array_operands(fn):
    check_grads(fn, [rnd(3, 5, low=0.5)])


@pytest.mark.parametrize("fn,low", [
    (lambda a: a.exp(), None), (lambda a: a.log(), 0.2), (lambda a: a.sqrt(), 0.2),
    (lambda a: a ** 3, None), (lambda a: a ** 2, None), (lambda a: a ** 0.5, 0.2),
    (lambda a: a ** -1.5, 0.5), (lambda a: 2.0 ** a, None), (lambda a: hepnn.exp(a) * a, None),
    (lambda a: a.pow(3), None),
], ids=["exp", "log", "sqrt", "pow3", "pow2", "pow_half", "pow_neg", "rpow", "exp_mul", "pow_m"])
def test_unary_math(fn, low):
    check_grads(fn, [rnd(4, 7, low=low)])


def test_pow_tensor_tensor():
    check_grads(lambda a, b: a ** b, [rnd(3, 5, low=0.5), rnd(5)])


def test_abs_and_clamp():
    check_grads(lambda a: a.abs(), [away_from_zero(5, 3)])
    x = rnd(6, 7)
    x = np.where(np.abs(np.abs(x) - 0.5) < 0.05, 0.0, x)  # no element at a clamp bound
    check_grads(lambda a: a.clamp(-0.5, 0.5), [x])
    check_grads(lambda a: a.clamp(min=-0.5), [x])
    check_grads(lambda a: a.clamp(max=0.5), [x])
    with pytest.raises(ValueError, match="clamp"):
        hepnn.tensor(x).clamp()


def test_abs_gradient_is_zero_at_zero():
    x = hepnn.tensor([-2.0, 0.0, 3.0], requires_grad=True)
    x.abs().sum().backward()
    assert x.grad.tolist() == [-1.0, 0.0, 1.0]


def test_where():
    cond = RNG.random((4, 5)) > 0.5
    check_grads(lambda a, b: hepnn.where(hepnn.tensor(cond), a, b), [rnd(4, 5), rnd(5)])
    check_grads(lambda a: hepnn.where(a > 0, a, 0.1 * a), [away_from_zero(3, 4)])


# ---- shapes ----
@pytest.mark.parametrize("fn,shape", [
    (lambda a: a.reshape(5, 3), (3, 5)), (lambda a: a.view(-1), (3, 5)),
    (lambda a: a.reshape((15, 1)), (3, 5)), (lambda a: a.flatten(), (2, 3, 5)),
    (lambda a: a.flatten(1), (2, 3, 5)), (lambda a: a.transpose(0, 2), (2, 3, 5)),
    (lambda a: a.permute(2, 0, 1), (2, 3, 5)), (lambda a: a.T, (3, 5)), (lambda a: a.mT, (2, 3, 5)),
    (lambda a: a.unsqueeze(1), (3, 5)), (lambda a: a.unsqueeze(-1), (3, 5)),
    (lambda a: a.squeeze(), (3, 1, 5, 1)), (lambda a: a.squeeze(1), (3, 1, 5)),
    (lambda a: a.expand(4, 3, 5), (3, 1)), (lambda a: a.transpose(0, 1) * 2.0, (3, 5)),
], ids=["reshape", "view", "reshape_tuple", "flatten", "flatten1", "transpose", "permute", "T",
        "mT", "unsqueeze", "unsqueeze_neg", "squeeze", "squeeze_dim", "expand", "transpose_mul"])
def test_shape_ops(fn, shape):
    check_grads(fn, [rnd(*shape)])


def test_shape_errors():
    x = hepnn.zeros(3, 5)
    with pytest.raises(ValueError, match=r"\[reshape\]"):
        x.reshape(4, 4)
    with pytest.raises(IndexError, match=r"\[transpose\]"):
        x.transpose(0, 2)
    with pytest.raises(ValueError, match=r"\[permute\]"):
        x.permute(0, 0)


# ---- indexing ----
@pytest.mark.parametrize("index", [
    (1,), (slice(1, 4),), (slice(None), 2), (Ellipsis, slice(0, 5, 2)), (-1, slice(None, None, -1)),
    (np.array([0, 2, 2, 4, 0]),), ([3, 3, 1],), (slice(None), np.array([1, 1, 4])),
    (np.array([0, 3]), np.array([1, 1])), (None, 2),
], ids=["int", "slice", "col", "ellipsis_step", "neg_reverse", "int_array_dups", "list", "cols",
        "pairs", "newaxis"])
def test_getitem(index):
    check_grads(lambda a: a[index if len(index) > 1 else index[0]], [rnd(5, 6)])


def test_getitem_with_mask_and_tensor_index():
    x = rnd(5, 6)
    mask = x > 0.2
    check_grads(lambda a: a[hepnn.tensor(mask)], [x])
    check_grads(lambda a: a[a.detach() > 0.2] * 2.0, [x])
    check_grads(lambda a: a[hepnn.tensor([4, 0, 4])], [x])


def test_getitem_duplicates_accumulate():
    x = hepnn.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x[hepnn.tensor([0, 0, 2, 0])].sum().backward()
    assert x.grad.tolist() == [3.0, 0.0, 1.0]


def test_setitem_rules():
    t = hepnn.zeros(3)
    t[1] = 5.0
    t[hepnn.tensor([0, 2])] = hepnn.tensor([1.0, 2.0])
    assert t.tolist() == [1.0, 5.0, 2.0]
    w = hepnn.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="requires grad"):
        w[0] = 1.0
    with hepnn.no_grad():
        w[0] = 1.0
    assert w.tolist() == [1.0, 0.0, 0.0]


# ---- joining ----
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cat(dim):
    shapes = {0: [(2, 3), (1, 3), (4, 3)], 1: [(3, 1), (3, 4), (3, 2)], -1: [(3, 1), (3, 4), (3, 2)]}
    check_grads(lambda *ts: hepnn.cat(ts, dim=dim), [rnd(*s) for s in shapes[dim]])


@pytest.mark.parametrize("dim", [0, 1, 2, -1])
def test_stack(dim):
    check_grads(lambda *ts: hepnn.stack(ts, dim=dim), [rnd(3, 5) for _ in range(3)])


def test_cat_stack_partial_grad_and_errors():
    a = hepnn.ones(2, 3, requires_grad=True)
    b = hepnn.zeros(1, 3)
    (hepnn.cat([a, b]) * 2.0).sum().backward()
    assert a.grad.tolist() == [[2.0] * 3] * 2 and b.grad is None
    with pytest.raises(ValueError, match=r"\[cat\]"):
        hepnn.cat([hepnn.ones(2, 3), hepnn.ones(2, 4)])
    with pytest.raises(ValueError, match=r"\[stack\]"):
        hepnn.stack([hepnn.ones(2), hepnn.ones(3)])
    with pytest.raises(ValueError, match=r"\[cat\]"):
        hepnn.cat([])


# ---- reductions ----
@pytest.mark.parametrize("dim,keepdim", [(None, False), (0, False), (1, True), (-1, False),
                                         ((0, 2), False), ((0, 2), True), ((2, 1), False)])
@pytest.mark.parametrize("op", ["sum", "mean", "max", "min"])
def test_reductions(op, dim, keepdim):
    x = rnd(3, 5, 7)
    out = check_grads(lambda a: getattr(a, op)(dim=dim, keepdim=keepdim), [x])
    ref = getattr(np, {"max": "amax", "min": "amin"}.get(op, op))(
        x, axis=dim if not isinstance(dim, tuple) else dim, keepdims=keepdim)
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-12)


def test_max_gradient_goes_to_first_maximum():
    x = hepnn.tensor([[1.0, 3.0, 3.0, 2.0], [5.0, 5.0, 0.0, 5.0]], requires_grad=True)
    x.max(dim=1).sum().backward()
    assert x.grad.tolist() == [[0, 1, 0, 0], [1, 0, 0, 0]]
    x.grad = None
    x.max().backward()
    assert x.grad.tolist() == [[0, 0, 0, 0], [1, 0, 0, 0]]


def test_argmax_and_sum_of_ints():
    x = hepnn.tensor([[1.0, 7.0, 3.0], [9.0, 0.0, 9.0]])
    assert x.argmax(dim=1).tolist() == [1, 0]
    assert x.argmax().item() == 3
    assert x.argmin(dim=0, keepdim=True).shape == (1, 3)
    assert hepnn.tensor([1, 2, 3]).sum().item() == 6


# ---- kernel-backed ops (need the _core kernels) ----
@pytest.mark.parametrize("sa,sb", [((3, 5), (5, 7)), ((1, 4), (4, 1)), ((7, 3), (3,)),
                                   ((3,), (3, 4)), ((3,), (3,)), ((2, 3, 5), (5, 4)),
                                   ((3, 5), (2, 5, 4)), ((2, 3, 5), (2, 5, 4)),
                                   ((2, 1, 3, 5), (4, 5, 2)), ((3, 2, 5), (1, 5, 4))])
def test_matmul(sa, sb):
    a, b = rnd(*sa), rnd(*sb)
    out = check_grads(lambda x, y: x @ y, [a, b])
    np.testing.assert_allclose(out.numpy(), np.matmul(a, b), rtol=1e-12, atol=1e-12)


def test_matmul_float32_and_errors():
    a, b = rnd(4, 6).astype(np.float32), rnd(6, 3).astype(np.float32)
    out = hepnn.tensor(a) @ hepnn.tensor(b)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.numpy(), a @ b, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match=r"\[matmul\]"):
        hepnn.ones(2, 3) @ hepnn.ones(2, 3)
    with pytest.raises(TypeError, match=r"\[matmul\]"):
        hepnn.ones(2, 3) @ hepnn.ones(3, 2, dtype="float64")


@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh"])
def test_activation_methods(name):
    out = check_grads(lambda a: getattr(a, name)(), [away_from_zero(5, 7)])
    x = out.numpy()
    assert np.isfinite(x).all()


@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("log", [False, True])
def test_softmax_methods(dim, log):
    x = rnd(3, 5, 4)
    out = check_grads(lambda a: a.log_softmax(dim) if log else a.softmax(dim), [x])
    e = np.exp(x - x.max(axis=dim, keepdims=True))
    ref = e / e.sum(axis=dim, keepdims=True)
    np.testing.assert_allclose(out.numpy(), np.log(ref) if log else ref, rtol=1e-10, atol=1e-12)


# ---- the engine ----
def test_gradients_accumulate_across_backward_calls():
    x = hepnn.tensor([1.0, -2.0], requires_grad=True)
    (x * 3.0).sum().backward()
    (x * x).sum().backward()
    assert x.grad.tolist() == [3.0 + 2.0, 3.0 - 4.0]
    x.grad.zero_()
    (x * 2.0).sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]


def test_shared_subexpression_and_leaf_used_twice():
    check_grads(lambda a: (a * a + a) * (a - 1.0), [rnd(4, 3)])
    x = hepnn.tensor([2.0], requires_grad=True)
    y = x * x
    (y + y * y).sum().backward()  # d/dx (x^2 + x^4) = 2x + 4x^3
    assert x.grad.tolist() == [2 * 2.0 + 4 * 8.0]


def test_leaf_grads_do_not_alias_each_other():
    a = hepnn.tensor([1.0, 2.0], requires_grad=True)
    b = hepnn.tensor([3.0, 4.0], requires_grad=True)
    (a + b).sum().backward()
    a.grad.data += 10.0
    assert b.grad.tolist() == [1.0, 1.0]


def test_retain_graph():
    x = hepnn.tensor([1.5, -0.5], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    assert x.grad.tolist() == [6.0, -2.0]
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()


def test_non_scalar_backward_needs_gradient():
    x = hepnn.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 2.0
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar outputs"):
        y.backward()
    y.backward(hepnn.tensor([1.0, 0.5, -1.0]))
    assert x.grad.tolist() == [2.0, 1.0, -2.0]
    with pytest.raises(RuntimeError, match="shape"):
        (x * 2.0).backward(hepnn.ones(2))


def test_backward_without_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        hepnn.ones(2).sum().backward()


def test_no_grad_context_and_decorator():
    x = hepnn.ones(3, requires_grad=True)
    with hepnn.no_grad():
        assert not hepnn.is_grad_enabled()
        y = x * 2.0
        with hepnn.enable_grad():
            z = x * 2.0
    assert hepnn.is_grad_enabled()
    assert not y.requires_grad and y.is_leaf and z.requires_grad

    @hepnn.no_grad()
    def f(t):
        return t * 3.0

    assert not f(x).requires_grad and hepnn.is_grad_enabled()
    with hepnn.set_grad_enabled(False):
        assert not (x + 1.0).requires_grad
    assert hepnn.is_grad_enabled()


def test_requires_grad_propagation_and_leaves():
    a = hepnn.ones(2, requires_grad=True)
    b = hepnn.ones(2)
    c = a * b
    assert c.requires_grad and not c.is_leaf and c.grad_fn is not None
    assert not (b * 2.0).requires_grad
    c.sum().backward()
    assert c.grad is None and b.grad is None and a.grad is not None
    with pytest.raises(RuntimeError, match="leaf"):
        c.requires_grad = False
    with pytest.raises(RuntimeError, match="floating point"):
        hepnn.tensor([1, 2], requires_grad=True)
    d = c.detach()
    assert d.is_leaf and not d.requires_grad and d.data is c.data
    assert "grad_fn=<MulBackward>" in repr(c)


def test_constant_branch_gets_no_gradient_work():
    a = hepnn.ones(3, requires_grad=True)
    b = hepnn.ones(3)
    y = a * b
    assert y._parents[1] is None  # b needs no gradient, so its rule is skipped


def test_deep_graph_does_not_recurse():
    x = hepnn.tensor([0.5], requires_grad=True, dtype="float64")
    y = x
    for _ in range(5000):
        y = y * 1.0001
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0001 ** 5000], rtol=1e-10)


def test_to_and_clone_are_differentiable():
    x = hepnn.tensor(rnd(3), requires_grad=True)
    y = x.float()
    assert y.dtype == np.float32 and y.requires_grad
    (y * 2.0).sum().backward()
    assert x.grad.dtype == np.float64 and x.grad.tolist() == [2.0] * 3
    check_grads(lambda a: a.clone() * a, [rnd(4)])


def test_parameter_subclass_is_a_tensor_operand():
    w = hepnn.nn.Parameter(np.ones((2, 2)))
    x = hepnn.tensor(np.full((2, 2), 3.0))
    (x * w + w).sum().backward()
    assert w.grad.tolist() == [[4.0, 4.0], [4.0, 4.0]]


def test_device_mismatch_message():
    if not hepnn.cuda.is_available():
        pytest.skip("needs a CUDA device")
    with pytest.raises(RuntimeError, match="different devices"):
        hepnn.ones(2) + hepnn.ones(2, device="cuda")


def test_composite_matches_torch():
    torch = pytest.importorskip("torch")
    xs = [rnd(6, 5), rnd(5, 4), rnd(4), rnd(6, 4, low=0.5)]
    hs = [hepnn.tensor(a, requires_grad=True) for a in xs]
    ts = [torch.tensor(a, requires_grad=True) for a in xs]

    def expr(x, w, b, s, lib):
        h = (x @ w + b).tanh()
        h = h * s.sqrt() - (h ** 2).mean(dim=0, keepdim=True)
        h = lib.cat([h, h[:, :2].exp()], 1).log_softmax(1)
        return h.max(dim=1)[0].sum() if lib is torch else h.max(dim=1).sum()

    yh = expr(*hs, hepnn)
    yt = expr(*ts, torch)
    yh.backward()
    yt.backward()
    np.testing.assert_allclose(yh.item(), yt.item(), rtol=1e-12)
    for h, t in zip(hs, ts):
        np.testing.assert_allclose(h.grad.numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_numpy_operand_on_the_left_keeps_the_graph():
    x = hepnn.ones(2, requires_grad=True, dtype="float64")
    y = np.array([1.0, 2.0]) * x + np.float64(1.0)
    assert isinstance(y, hepnn.Tensor) and y.requires_grad
    y.sum().backward()
    assert x.grad.tolist() == [1.0, 2.0]


def test_inplace_operators():
    t = hepnn.tensor([1.0, 2.0])
    storage = t.data
    t += 1.0
    t *= hepnn.tensor([2.0, 3.0])
    t -= 1.0
    t /= 2.0
    assert t.data is storage and t.tolist() == [1.5, 4.0]
    assert t.add_(1.0) is t and t.tolist() == [2.5, 5.0]
    w = hepnn.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        w -= 0.1
    with hepnn.no_grad():
        w -= 0.5  # the manual SGD step updates the leaf itself
    assert w.tolist() == [0.5, 1.5] and w.is_leaf and w.requires_grad
    total = hepnn.zeros(())
    total += (w * w).sum()  # accumulating a tracked value stays differentiable
    total.backward()
    assert w.grad.tolist() == [1.0, 3.0]


def test_no_grad_bare_decorator():
    @hepnn.no_grad
    def f(t):
        return t * 2.0

    assert not f(hepnn.ones(1, requires_grad=True)).requires_grad


def test_graph_without_saved_values_can_be_run_twice():
    x = hepnn.ones(3, requires_grad=True)
    y = (x + 1.0).sum()
    y.backward()
    y.backward()
    assert x.grad.tolist() == [2.0, 2.0, 2.0]


def test_float32_gradients_stay_float32():
    x = hepnn.tensor(rnd(4, 5).astype(np.float32), requires_grad=True)
    w = hepnn.tensor(rnd(5, 3).astype(np.float32), requires_grad=True)
    h = (x @ w).tanh() * 2.0 + 1.0
    y = (h.clamp(-1.5, 2.5) ** 2 / 3.0).abs().sqrt().exp().log().mean(dim=0).max()
    y = y + hepnn.where(x > 0, x, 0.5).sum() + x[[0, 0, 2]].softmax(1).sum() + 2.0 ** x.sum()
    y.backward()
    assert y.dtype == np.float32 and x.grad.dtype == np.float32 and w.grad.dtype == np.float32
    assert np.isfinite(x.grad.numpy()).all() and np.isfinite(w.grad.numpy()).all()


def test_leaf_data_replaced_with_another_shape_is_reported():
    w = hepnn.ones(3, requires_grad=True)
    y = (w * 2.0).sum()
    w.data = np.ones(4, dtype=np.float32)
    with pytest.raises(RuntimeError, match=r"\[backward\] MulBackward failed"):
        y.backward()
    x = hepnn.ones(3, requires_grad=True)
    y = x.clone()
    x.data = np.ones(4, dtype=np.float32)
    with pytest.raises(RuntimeError, match="gradient of shape"):
        y.sum().backward()


# ---- kinematics math and composite reductions ----
@pytest.mark.parametrize("name,low", [("sin", None), ("cos", None), ("sinh", None),
                                      ("cosh", None), ("log1p", 0.0), ("expm1", None)])
def test_kinematics_math(name, low):
    x = rnd(5, 7, low=low)
    out = check_grads(lambda a: getattr(a, name)(), [x])
    np.testing.assert_allclose(out.numpy(), getattr(np, name)(x), rtol=1e-14)


def test_atan2_maximum_minimum():
    y, x = rnd(4, 5), rnd(5)
    out = check_grads(lambda a, b: hepnn.atan2(a, b), [y, x])
    np.testing.assert_allclose(out.numpy(), np.arctan2(y, x), rtol=1e-14)
    a, b = rnd(4, 5), rnd(4, 1)
    out = check_grads(lambda p, q: hepnn.maximum(p, q), [a, b])
    np.testing.assert_allclose(out.numpy(), np.maximum(a, b))
    out = check_grads(lambda p, q: p.minimum(q), [a, b])
    np.testing.assert_allclose(out.numpy(), np.minimum(a, b))
    check_grads(lambda p: hepnn.maximum(p, 0.1), [a])
    t = hepnn.tensor([1.0, 2.0], requires_grad=True)
    s = hepnn.tensor([1.0, 3.0], requires_grad=True)
    hepnn.maximum(t, s).sum().backward()
    assert t.grad.tolist() == [1.0, 0.0] and s.grad.tolist() == [0.0, 1.0]  # tie -> first


@pytest.mark.parametrize("dim,keepdim,correction", [(None, False, 1), (0, False, 1),
                                                    ((0, 2), True, 0), (-1, False, 1)])
def test_var_std(dim, keepdim, correction):
    x = rnd(3, 4, 5)
    out = check_grads(lambda a: a.var(dim, keepdim, correction), [x])
    np.testing.assert_allclose(out.numpy(), np.var(x, axis=dim, keepdims=keepdim, ddof=correction),
                               rtol=1e-12)
    out = check_grads(lambda a: a.std(dim=dim, keepdim=keepdim, correction=correction), [x])
    np.testing.assert_allclose(out.numpy(), np.std(x, axis=dim, keepdims=keepdim, ddof=correction),
                               rtol=1e-12)


def test_invariant_mass_matches_torch():
    torch = pytest.importorskip("torch")
    pt, eta, phi, m = RNG.random(6) * 50 + 20, rnd(6), RNG.uniform(-3, 3, 6), RNG.random(6) * 5

    def mass(pt, eta, phi, m, lib):
        px, py, pz = pt * phi.cos(), pt * phi.sin(), pt * eta.sinh()
        e = (px ** 2 + py ** 2 + pz ** 2 + m ** 2).sqrt()
        return ((e.sum() ** 2) - px.sum() ** 2 - py.sum() ** 2 - pz.sum() ** 2).sqrt()

    hs = [hepnn.tensor(a, requires_grad=True) for a in (pt, eta, phi, m)]
    ts = [torch.tensor(a, requires_grad=True) for a in (pt, eta, phi, m)]
    yh, yt = mass(*hs, hepnn), mass(*ts, torch)
    yh.backward()
    yt.backward()
    np.testing.assert_allclose(yh.item(), yt.item(), rtol=1e-12)
    for h, t in zip(hs, ts):
        np.testing.assert_allclose(h.grad.numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_gradient_takes_the_dtype_of_its_tensor_in_mixed_precision_ops():
    w = hepnn.tensor(0.5, requires_grad=True)  # float32
    x = hepnn.tensor(np.linspace(0, 1, 5))  # float64
    (w * x).sum().backward()
    assert w.grad.dtype == np.float32
    np.testing.assert_allclose(w.grad.item(), 2.5, rtol=1e-6)
