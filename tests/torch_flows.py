"""PyTorch re-implementation of hepnn.flows for cross-checks (tests/test_flows.py) and the spline
benchmark (bench/bench_spline.py): the rational-quadratic spline in vectorised torch (knots by
cumsum, bins by searchsorted, as in the paper) and a flow's log_prob from a hepnn Flow's weights.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F


def rq_spline(x, w, h, d, bound=3.0, min_width=1e-3, min_height=1e-3, min_derivative=1e-3):
    """(y, log dy/dx) of x (*S) with unnormalised w, h (*S, K) and d (*S, K-1); identity outside
    [-bound, bound]. Differentiable by torch autograd."""
    K = w.shape[-1]
    inside = (x >= -bound) & (x <= bound)
    xin = x.clamp(-bound, bound)
    wn = min_width + (1 - min_width * K) * torch.softmax(w, -1)
    hn = min_height + (1 - min_height * K) * torch.softmax(h, -1)
    pad = (1, 0)
    cw = F.pad(torch.cumsum(wn, -1), pad) * (2 * bound) - bound
    ch = F.pad(torch.cumsum(hn, -1), pad) * (2 * bound) - bound
    one = torch.ones(d.shape[:-1] + (1,), dtype=x.dtype)
    dk = torch.cat([one, min_derivative + F.softplus(d), one], -1)
    k = torch.searchsorted(cw[..., 1:K].contiguous(), xin[..., None].contiguous(), right=True).clamp(0, K - 1)
    g = lambda a, o=0: a.gather(-1, k + o)[..., 0]  # noqa: E731
    xk, wk = g(cw), g(cw, 1) - g(cw)
    yk, hk = g(ch), g(ch, 1) - g(ch)
    d0, d1 = g(dk), g(dk, 1)
    s = hk / wk
    xi = (xin - xk) / wk
    t = xi * (1 - xi)
    den = s + (d0 + d1 - 2 * s) * t
    y = yk + hk * (s * xi * xi + d0 * t) / den
    ld = 2 * torch.log(s) + torch.log(d1 * xi * xi + 2 * s * t + d0 * (1 - xi) ** 2) - 2 * torch.log(den)
    return torch.where(inside, y, x), torch.where(inside, ld, torch.zeros_like(ld))


def _t(a):
    a = a.data if hasattr(a, "data") and not isinstance(a, torch.Tensor) else a
    if isinstance(a, torch.Tensor):
        return a
    return torch.as_tensor(np.asarray(a), dtype=torch.float64)


def _mlp(seq, h):
    from hepnn import nn

    for m in seq:
        if isinstance(m, nn.Linear):
            h = h @ _t(m.weight).T + _t(m.bias)
        elif isinstance(m, nn.ReLU):
            h = torch.relu(h)
        else:
            raise TypeError(f"unexpected conditioner layer {type(m).__name__}")
    return h


def flow_log_prob(flow, x, context=None):
    """log p(x | context) of the hepnn Flow `flow`, recomputed in float64 torch from its weights."""
    from hepnn import flows

    z = _t(x).clone().requires_grad_(False)
    c = None if context is None else _t(context)
    total = torch.zeros(z.shape[0], dtype=torch.float64)
    for t in flow.transforms:
        if isinstance(t, flows.Permutation):
            z = z[:, torch.as_tensor(np.asarray(t.index.data))]
        elif isinstance(t, flows.Standardize):
            z = (z - _t(t.mean)) / _t(t.std)
            total = total - torch.log(_t(t.std)).sum()
        else:
            n_id = t.n_identity
            zi, zt = z[:, :n_id], z[:, n_id:]
            if t._constant_input:
                inp = torch.ones(z.shape[0], 1, dtype=torch.float64)
            else:
                inp = torch.cat([zi] + ([c] if c is not None else []), 1)
            p = _mlp(t.net, inp).reshape(z.shape[0], t.n_transformed, t.params_per_feature)
            if isinstance(t, flows.RQSpline):
                K = t.bins
                yt, ld = rq_spline(zt, p[..., :K], p[..., K:2 * K], p[..., 2 * K:], t.bound,
                                   t.min_width, t.min_height, t.min_derivative)
            else:
                s = torch.tanh(p[..., 0] / t.scale) * t.scale
                yt, ld = zt * torch.exp(s) + p[..., 1], s
            z = torch.cat([zi, yt], 1)
            total = total + ld.sum(1)
    D = z.shape[1]
    return -0.5 * (z * z).sum(1) - 0.5 * D * math.log(2 * math.pi) + total
