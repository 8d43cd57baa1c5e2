"""Op table, recurrent part: one LSTM or GRU layer (one or both directions) as one autograd node
whose forward and backward are one _core call per direction (the time loop runs in C++).
The node's value packs y, h_n (and c_n) into one buffer that the kernels write in place; the
three outputs are views of it, so their gradients meet in one backward call.
"""
import numpy as np

from . import _backend, _core
from ._ops_shape import getitem, reshape
from .autograd import result_n

_GATES = {"lstm": 4, "gru": 3}


def _xp(arr):
    return np if type(arr) is np.ndarray else _backend.xp_of(arr)


def _contig(arr):
    return arr if arr.flags.c_contiguous else _xp(arr).ascontiguousarray(arr)


def _data(t):
    return None if t is None else _contig(t.data)


def rnn_layer(mode, x, params, h0=None, c0=None, lengths=None):
    """One recurrent layer over x (L, B, I), time-major.

    mode: "lstm" or "gru"; params: one (w_ih, w_hh, b_ih, b_hh) tuple of Tensors per direction
    (biases may be None); h0, c0: Tensors (D, B, H) or None (zeros; c0 only for LSTM); lengths:
    int64 array (B,) on x's device or None. Steps t >= lengths[b] keep row b's state and give
    zero output. Returns (y (L, B, D*H), h_n (D, B, H), c_n (D, B, H) or None).

    Example:
        >>> import hepnn
        >>> from hepnn._ops_rnn import rnn_layer
        >>> p = [(hepnn.randn(12, 2), hepnn.randn(12, 4), None, None)]
        >>> y, h, _ = rnn_layer("gru", hepnn.randn(5, 3, 2), p)
        >>> y.shape, h.shape
        ((5, 3, 4), (1, 3, 4))
    """
    lstm = mode == "lstm"
    xd = _contig(x.data)
    L, B, _ = xd.shape
    H = params[0][1].data.shape[1]
    D = len(params)
    xp = _xp(xd)
    n_y, n_h = L * B * D * H, D * B * H
    packed = xp.empty(n_y + n_h * (2 if lstm else 1), dtype=xd.dtype)
    y = packed[:n_y].reshape(L, B, D * H)
    hn = packed[n_y:n_y + n_h].reshape(D, B, H)
    cn = packed[n_y + n_h:].reshape(D, B, H) if lstm else None
    h0d = _data(h0)
    c0d = _data(c0) if lstm else None
    stream = _backend.stream_of(xd)
    work = []
    for d, (w_ih, w_hh, b_ih, b_hh) in enumerate(params):
        wd = (_data(w_ih), _data(w_hh), _data(b_ih), _data(b_hh))
        gates = xp.empty((L, B, _GATES[mode] * H), dtype=xd.dtype)
        hs = xp.empty((L, B, H), dtype=xd.dtype)
        aux = xp.empty((L, B, H), dtype=xd.dtype)
        h0_d = None if h0d is None else h0d[d]
        if lstm:
            c0_d = None if c0d is None else c0d[d]
            _core.lstm_forward(xd, *wd, h0_d, c0_d, lengths, d == 1, y, hn[d], cn[d], gates, hs, aux,
                               stream)
        else:
            _core.gru_forward(xd, *wd, h0_d, lengths, d == 1, y, hn[d], gates, hs, aux, stream)
        work.append((wd, gates, hs, aux))
    parents = [x, h0, c0 if lstm else None] + [p for ps in params for p in ps]
    saved = (mode, xd, h0d, c0d, lengths, work, (n_y, n_h))
    node = result_n(packed, _rnn_bw, parents, saved)
    y_t = reshape(getitem(node, slice(0, n_y)), (L, B, D * H))
    h_t = reshape(getitem(node, slice(n_y, n_y + n_h)), (D, B, H))
    c_t = reshape(getitem(node, slice(n_y + n_h, None)), (D, B, H)) if lstm else None
    return y_t, h_t, c_t


def _rnn_bw(node, g):
    mode, xd, h0d, c0d, lengths, work, (n_y, n_h) = node._saved
    lstm = mode == "lstm"
    px, ph0, pc0 = node._parents[:3]
    pw = node._parents[3:]
    L, B, _ = xd.shape
    D = len(work)
    H = work[0][0][1].shape[1]
    xp = _xp(xd)
    g = _contig(g)
    gy = g[:n_y].reshape(L, B, D * H)
    ghn = g[n_y:n_y + n_h].reshape(D, B, H)
    gcn = g[n_y + n_h:].reshape(D, B, H) if lstm else None
    stream = _backend.stream_of(xd)
    dx = xp.empty_like(xd) if px is not None else None
    dh0 = xp.empty_like(h0d) if ph0 is not None else None
    dc0 = xp.empty_like(c0d) if pc0 is not None else None
    grads = [dx, dh0, dc0]
    for d, ((w_ih, w_hh, b_ih, b_hh), gates, hs, aux) in enumerate(work):
        want = pw[4 * d:4 * d + 4]
        dw_ih, dw_hh = xp.empty_like(w_ih), xp.empty_like(w_hh)
        db_ih = xp.empty_like(b_ih) if want[2] is not None else None
        db_hh = xp.empty_like(b_hh) if want[3] is not None else None
        h0_d = None if h0d is None else h0d[d]
        dh0_d = None if dh0 is None else dh0[d]
        if lstm:
            c0_d = None if c0d is None else c0d[d]
            dc0_d = None if dc0 is None else dc0[d]
            _core.lstm_backward(xd, w_ih, w_hh, h0_d, c0_d, lengths, d == 1, gates, hs, aux, gy, ghn[d],
                                gcn[d], dx, d > 0, dw_ih, dw_hh, db_ih, db_hh, dh0_d, dc0_d, stream)
        else:
            _core.gru_backward(xd, w_ih, w_hh, h0_d, lengths, d == 1, gates, hs, aux, gy, ghn[d], dx, d > 0,
                               dw_ih, dw_hh, db_ih, db_hh, dh0_d, stream)
        grads += [dw_ih if want[0] is not None else None, dw_hh if want[1] is not None else None,
                  db_ih, db_hh]
    return grads
