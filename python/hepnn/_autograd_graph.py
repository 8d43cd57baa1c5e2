"""The general backward pass behind autograd.grad() and backward(create_graph=True): gradients of
chosen inputs only (nodes that lead to none of them are skipped) and, with create_graph, a pass
that is itself recorded: each op's differentiable rule (the DOUBLE table, filled by
_ops_double.py) builds its input gradients from hepnn ops, so they can be differentiated again.
autograd.backward() without create_graph keeps its own raw-array loop (the fast path).
"""
from .autograd import _FREED, GradFn, _initial_grad, _topological_order, constant, set_grad_enabled
from .tensor import Tensor

# first-order rule bw(node, g) -> differentiable rule dbw(node, g, need): g and the returned
# gradients are Tensors; need[i] says whether parent i's gradient is wanted (None otherwise).
DOUBLE = {}


def _load_rules():
    if not DOUBLE:
        from . import _ops_double  # noqa: F401  (registers the rules on import)


def unsupported(name, why=""):
    """The error for an op whose backward cannot be recorded (no silently wrong derivatives)."""
    return RuntimeError(f"[grad] {name} does not support create_graph{why}: its gradient cannot "
                        "be differentiated again (use ops with a differentiable backward rule)")


def _order(roots):
    """One dependencies-first order over the graphs of several roots."""
    order, seen = [], set()
    for r in roots:
        for t in _topological_order(r):
            if id(t) not in seen:
                seen.add(id(t))
                order.append(t)
    return order


def _needed(order, targets):
    """ids of the tensors whose gradient is wanted: all that require grad (targets None), else
    the targets and every node that depends on one."""
    if targets is None:
        return {id(t) for t in order if t._rg}
    need = set()
    for t in order:
        if id(t) in targets or (t._bw is not None and any(
                p is not None and id(p) in need for p in t._parents)):
            need.add(id(t))
    return need


def _cast(pg, dtype, create):
    if pg.dtype == dtype:
        return pg
    return pg.to(dtype=dtype) if create else pg.astype(dtype)


def _run(roots, start, targets, retain, create):
    """One reverse pass from `roots` seeded with `start` (arrays, or Tensors when create).
    targets None: accumulate into the leaves' .grad; else return {id: gradient} for targets."""
    order = _order(roots)
    need = _needed(order, targets)
    if create:
        _load_rules()
        for t in order:  # refuse before any work is done
            if t._bw is not None and id(t) in need and t._bw not in DOUBLE:
                raise unsupported(GradFn(t).name)
    grads = {}
    for r, g in zip(roots, start):
        k = id(r)
        grads[k] = g if k not in grads else grads[k] + g
    captured = {}
    with set_grad_enabled(create):
        for t in reversed(order):
            k = id(t)
            g = grads.pop(k, None)
            if g is None or k not in need:
                continue
            if targets is not None and k in targets:
                captured[k] = g
            bw = t._bw
            if bw is None:
                if targets is None:
                    _accumulate(t, g, create)
                continue
            mask = tuple(p is not None and id(p) in need for p in t._parents)
            if not any(mask):
                continue
            if t._saved is _FREED:
                raise RuntimeError("[grad] trying to backward through the graph a second time "
                                   "(or to use its values after they were freed); specify "
                                   "retain_graph=True on the first call")
            try:
                pgrads = DOUBLE[bw](t, g, mask) if create else bw(t, g)
            except Exception as exc:
                if "does not support create_graph" in str(exc):
                    raise
                raise RuntimeError(f"[grad] {GradFn(t).name} failed: {type(exc).__name__}: "
                                   f"{exc}") from exc
            if not retain and t._saved is not None:
                t._saved = _FREED
            for p, m, pg in zip(t._parents, mask, pgrads):
                if not m or pg is None:
                    continue
                pg = _cast(pg, p.data.dtype, create)
                kp = id(p)
                prev = grads.get(kp)
                grads[kp] = pg if prev is None else prev + pg
    return captured


def _accumulate(leaf, g, create):
    if g.shape != leaf.data.shape:
        raise RuntimeError(f"[backward] gradient of shape {tuple(g.shape)} for a leaf of shape "
                           f"{tuple(leaf.data.shape)}")
    if not create:
        if leaf.grad is None:
            leaf.grad = constant(g.copy())
        else:
            leaf.grad.data += g
        return
    # A recorded gradient: out of place, so the graph holding the old .grad stays valid.
    leaf.grad = g.clone() if leaf.grad is None else leaf.grad + g


def _start(root, gradient, create):
    if create and isinstance(gradient, Tensor) and gradient._rg:
        if gradient.shape != root.shape:
            raise RuntimeError(f"[grad] grad_outputs has shape {tuple(gradient.shape)}, "
                               f"expected {tuple(root.shape)}")
        return gradient
    g = _initial_grad(root, gradient)
    return constant(g) if create else g


def backward_graph(root, gradient, retain):
    """backward(create_graph=True): the leaves' .grad become recorded tensors."""
    if not root._rg:
        raise RuntimeError("[backward] the tensor does not require grad and has no grad_fn")
    _run([root], [_start(root, gradient, True)], None, retain, True)


def _as_list(x, what):
    items = [x] if isinstance(x, Tensor) else list(x)
    for i, t in enumerate(items):
        if not isinstance(t, Tensor):
            raise TypeError(f"[grad] {what}[{i}] is a {type(t).__name__}, expected a hepnn.Tensor")
    return items


def grad(outputs, inputs, grad_outputs, retain_graph, create_graph, allow_unused):
    outs = _as_list(outputs, "outputs")
    ins = _as_list(inputs, "inputs")
    if not outs or not ins:
        raise ValueError("[grad] outputs and inputs must be non-empty")
    for i, t in enumerate(ins):
        if not t._rg:
            raise RuntimeError(f"[grad] inputs[{i}] does not require grad")
    for i, t in enumerate(outs):
        if not t._rg:
            raise RuntimeError(f"[grad] outputs[{i}] does not require grad and has no grad_fn")
    if grad_outputs is None:
        gos = [None] * len(outs)
    else:
        gos = [grad_outputs] if isinstance(grad_outputs, Tensor) else list(grad_outputs)
        if len(gos) != len(outs):
            raise ValueError(f"[grad] {len(gos)} grad_outputs for {len(outs)} outputs")
    create = bool(create_graph)
    retain = create if retain_graph is None else bool(retain_graph)
    start = [_start(o, go, create) for o, go in zip(outs, gos)]
    captured = _run(outs, start, {id(t) for t in ins}, retain, create)
    res = []
    for i, t in enumerate(ins):
        g = captured.get(id(t))
        if g is None:
            if not allow_unused:
                raise RuntimeError(f"[grad] inputs[{i}] was not used to compute the outputs; "
                                   "pass allow_unused=True to get None for it")
            res.append(None)
        else:
            res.append(g if create else constant(g.copy()))
    return tuple(res)
