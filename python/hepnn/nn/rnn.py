"""Recurrent layers with PyTorch's arguments, parameter names, shapes and init: LSTM, GRU (multi-
layer, bidirectional, batch_first, dropout between layers, variable lengths) and the single-step
LSTMCell, GRUCell. Each layer is one autograd node whose time loop runs in C++ (_ops_rnn).
"""
from __future__ import annotations

import math

import numpy as np

from .. import _backend
from .._ops_rnn import rnn_layer
from .._ops_shape import cat, getitem, reshape, squeeze, transpose, unsqueeze
from ..tensor import Tensor
from . import functional as F
from . import init as _init
from .module import Module
from .parameter import Parameter

_GATES = {"lstm": 4, "gru": 3}


def _positive_int(value, what, op):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < 1:
        raise ValueError(f"[{op}] {what} must be a positive integer, got {value!r}")
    return int(value)


def _lengths_array(lengths, L, B, device, op):
    """lengths (list, array or Tensor of B integers in [0, L]) as an int64 array on `device`."""
    arr = lengths.data if isinstance(lengths, Tensor) else lengths
    arr = np.asarray(_backend.to_device(arr, "cpu"))
    if arr.dtype.kind not in "iu" or arr.shape != (B,):
        raise ValueError(f"[{op}] lengths must be {B} integers (one per sequence), got "
                         f"dtype {arr.dtype} and shape {tuple(arr.shape)}")
    if arr.size and (arr.min() < 0 or arr.max() > L):
        raise ValueError(f"[{op}] lengths must lie in [0, {L}] (the padded length), got "
                         f"min {arr.min()} and max {arr.max()}")
    arr = np.ascontiguousarray(arr, dtype=np.int64)
    return arr if device == "cpu" else _backend.to_device(arr, device)


class _RNNBase(Module):
    mode = ""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device: str = "cpu", dtype=np.float32):
        super().__init__()
        op = self.mode
        self.input_size = _positive_int(input_size, "input_size", op)
        self.hidden_size = _positive_int(hidden_size, "hidden_size", op)
        self.num_layers = _positive_int(num_layers, "num_layers", op)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout <= 1.0:
            raise ValueError(f"[{op}] dropout must be a number in [0, 1], got {dropout!r}")
        self.bias, self.batch_first = bool(bias), bool(batch_first)
        self.dropout, self.bidirectional = float(dropout), bool(bidirectional)
        D, G, H = 1 + self.bidirectional, _GATES[op], self.hidden_size
        for layer in range(self.num_layers):
            width = self.input_size if layer == 0 else H * D
            for sfx in ("", "_reverse")[:D]:
                setattr(self, f"weight_ih_l{layer}{sfx}", Parameter(np.empty((G * H, width), dtype=dtype)))
                setattr(self, f"weight_hh_l{layer}{sfx}", Parameter(np.empty((G * H, H), dtype=dtype)))
                if self.bias:
                    setattr(self, f"bias_ih_l{layer}{sfx}", Parameter(np.empty((G * H,), dtype=dtype)))
                    setattr(self, f"bias_hh_l{layer}{sfx}", Parameter(np.empty((G * H,), dtype=dtype)))
        self.reset_parameters()
        if device != "cpu":
            self.to(device)

    def reset_parameters(self) -> None:
        """torch's init: every weight and bias from U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            _init.uniform_(p, -bound, bound)

    def _params(self, layer):
        out = []
        for sfx in ("", "_reverse")[:1 + self.bidirectional]:
            get = lambda kind: getattr(self, f"{kind}_l{layer}{sfx}", None)
            out.append((get("weight_ih"), get("weight_hh"), get("bias_ih"), get("bias_hh")))
        return out

    def _state(self, t, name, B, dtype, device):
        op, D = self.mode, 1 + self.bidirectional
        expect = (self.num_layers * D, B, self.hidden_size)
        if not isinstance(t, Tensor):
            raise TypeError(f"[{op}] {name} must be a Tensor, got {type(t).__name__}")
        if tuple(t.shape) != expect:
            raise ValueError(f"[{op}] {name} has shape {tuple(t.shape)}, expected {expect}")
        if t.dtype != dtype or t.device != device:
            raise TypeError(f"[{op}] {name} is {t.dtype} on {t.device}, the input is {dtype} on {device}")
        return t

    def forward(self, input, hx=None, lengths=None):
        """input (L, B, input_size), (B, L, input_size) with batch_first, or (L, input_size)
        unbatched; hx the initial state(s) (num_layers * D, B, hidden_size) or None (zeros);
        lengths (B,) valid steps per sequence or None: later steps keep the state and give zero
        output (torch's pack_padded_sequence / pad_packed_sequence, padded to L)."""
        op, D, H = self.mode, 1 + self.bidirectional, self.hidden_size
        lstm = op == "lstm"
        if not isinstance(input, Tensor):
            raise TypeError(f"[{op}] input must be a Tensor, got {type(input).__name__}")
        if input.ndim not in (2, 3) or input.shape[-1] != self.input_size:
            raise ValueError(f"[{op}] input has shape {tuple(input.shape)}, expected (L, B, "
                             f"{self.input_size}){' with batch_first (B, L, .)' if self.batch_first else ''}"
                             f" or unbatched (L, {self.input_size})")
        if input.dtype.kind != "f" or input.dtype != self.weight_hh_l0.dtype:
            raise TypeError(f"[{op}] input has dtype {input.dtype}, the parameters {self.weight_hh_l0.dtype}")
        if input.device != self.weight_hh_l0.device:
            raise TypeError(f"[{op}] input is on {input.device}, the parameters on {self.weight_hh_l0.device}")
        unbatched = input.ndim == 2
        x = unsqueeze(input, 1) if unbatched else (transpose(input, 0, 1) if self.batch_first else input)
        L, B = x.shape[0], x.shape[1]
        h0 = c0 = None
        if hx is not None:
            if lstm and not (isinstance(hx, (tuple, list)) and len(hx) == 2):
                raise TypeError(f"[{op}] hx must be a tuple (h_0, c_0)")
            states = list(hx) if lstm else [hx]
            if unbatched:
                states = [unsqueeze(s, 1) if isinstance(s, Tensor) and s.ndim == 2 else s for s in states]
            states = [self._state(s, n, B, input.dtype, input.device) for s, n in zip(states, ("h_0", "c_0"))]
            h0, c0 = (states + [None])[:2]
        lens = None if lengths is None else _lengths_array(lengths, L, B, input.device, op)
        hs, cs = [], []
        for layer in range(self.num_layers):
            if layer > 0 and self.dropout > 0 and self.training:
                x = F.dropout(x, self.dropout, True)
            part = slice(layer * D, (layer + 1) * D)
            x, h, c = rnn_layer(op, x, self._params(layer), None if h0 is None else getitem(h0, part),
                                None if c0 is None else getitem(c0, part), lens)
            hs.append(h)
            cs.append(c)
        h_n = hs[0] if len(hs) == 1 else cat(hs, 0)
        c_n = (cs[0] if len(cs) == 1 else cat(cs, 0)) if lstm else None
        if unbatched:
            x, h_n = squeeze(x, 1), squeeze(h_n, 1)
            c_n = squeeze(c_n, 1) if lstm else None
        elif self.batch_first:
            x = transpose(x, 0, 1)
        return (x, (h_n, c_n)) if lstm else (x, h_n)

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s


class LSTM(_RNNBase):
    """Multi-layer LSTM with torch's gate order (i, f, g, o), arguments and parameter names.

    ``forward(input, (h_0, c_0)=None, lengths=None)`` returns ``output, (h_n, c_n)``; output is
    (L, B, D*H) (batch_first: (B, L, D*H)), h_n and c_n (num_layers*D, B, H). ``lengths`` gives
    each sequence's valid steps, like a packed sequence (padded steps give zero output).

    Example::

        >>> import hepnn
        >>> lstm = hepnn.nn.LSTM(16, 32, num_layers=2, batch_first=True)
        >>> out, (h, c) = lstm(hepnn.randn(8, 20, 16), lengths=[20, 5, 7, 20, 1, 9, 3, 12])
        >>> out.shape, h.shape, c.shape
        ((8, 20, 32), (2, 8, 32), (2, 8, 32))
    """

    mode = "lstm"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0, device: str = "cpu", dtype=np.float32):
        if proj_size:
            raise ValueError(f"[lstm] proj_size is not supported, got {proj_size!r}")
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, device, dtype)


class GRU(_RNNBase):
    """Multi-layer GRU with torch's gates (r, z, n), n = tanh(W_in x + b_in + r * (W_hn h + b_hn)).

    ``forward(input, h_0=None, lengths=None)`` returns ``output, h_n`` with torch's shapes;
    ``lengths`` gives each sequence's valid steps, like a packed sequence.

    Example::

        >>> import hepnn
        >>> gru = hepnn.nn.GRU(4, 10, bidirectional=True)
        >>> out, h = gru(hepnn.randn(30, 3, 4))
        >>> out.shape, h.shape
        ((30, 3, 20), (2, 3, 10))
    """

    mode = "gru"


class _CellBase(Module):
    mode = ""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device: str = "cpu",
                 dtype=np.float32):
        super().__init__()
        op = self.mode + "_cell"
        self.input_size = _positive_int(input_size, "input_size", op)
        self.hidden_size = _positive_int(hidden_size, "hidden_size", op)
        self.bias = bool(bias)
        G, H = _GATES[self.mode], self.hidden_size
        self.weight_ih = Parameter(np.empty((G * H, self.input_size), dtype=dtype))
        self.weight_hh = Parameter(np.empty((G * H, H), dtype=dtype))
        self.bias_ih = Parameter(np.empty((G * H,), dtype=dtype)) if bias else None
        self.bias_hh = Parameter(np.empty((G * H,), dtype=dtype)) if bias else None
        bound = 1.0 / math.sqrt(H)
        for p in self.parameters():
            _init.uniform_(p, -bound, bound)
        if device != "cpu":
            self.to(device)

    def _step(self, input, states):
        op = self.mode + "_cell"
        if not isinstance(input, Tensor):
            raise TypeError(f"[{op}] input must be a Tensor, got {type(input).__name__}")
        if input.ndim not in (1, 2) or input.shape[-1] != self.input_size:
            raise ValueError(f"[{op}] input has shape {tuple(input.shape)}, expected (B, {self.input_size})")
        if input.dtype != self.weight_hh.dtype or input.device != self.weight_hh.device:
            raise TypeError(f"[{op}] input is {input.dtype} on {input.device}, the parameters "
                            f"{self.weight_hh.dtype} on {self.weight_hh.device}")
        unbatched = input.ndim == 1
        x = reshape(input, (1, 1 if unbatched else input.shape[0], self.input_size))
        B = x.shape[1]
        prepared = []
        for s in states:
            if s is None:
                prepared.append(None)
                continue
            if not isinstance(s, Tensor) or s.shape != ((self.hidden_size,) if unbatched else (B, self.hidden_size)):
                raise ValueError(f"[{op}] the state has shape {getattr(s, 'shape', None)}, expected "
                                 f"{(B, self.hidden_size)}")
            if s.dtype != input.dtype or s.device != input.device:
                raise TypeError(f"[{op}] the state is {s.dtype} on {s.device}, the input {input.dtype} on {input.device}")
            prepared.append(reshape(s, (1, B, self.hidden_size)))
        params = [(self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)]
        _, h, c = rnn_layer(self.mode, x, params, *prepared)
        shape = (self.hidden_size,) if unbatched else (B, self.hidden_size)
        return reshape(h, shape), (None if c is None else reshape(c, shape))


class LSTMCell(_CellBase):
    """One LSTM step: ``h', c' = cell(input, (h, c))`` with torch's names and init.

    Example::

        >>> import hepnn
        >>> cell = hepnn.nn.LSTMCell(3, 5)
        >>> h, c = cell(hepnn.randn(2, 3))
        >>> h.shape, c.shape
        ((2, 5), (2, 5))
    """

    mode = "lstm"

    def forward(self, input, hx=None):
        if hx is not None and not (isinstance(hx, (tuple, list)) and len(hx) == 2):
            raise TypeError("[lstm_cell] hx must be a tuple (h, c)")
        return self._step(input, (None, None) if hx is None else tuple(hx))


class GRUCell(_CellBase):
    """One GRU step: ``h' = cell(input, h)`` with torch's names and init.

    Example::

        >>> import hepnn
        >>> cell = hepnn.nn.GRUCell(3, 5)
        >>> cell(hepnn.randn(2, 3)).shape
        (2, 5)
    """

    mode = "gru"

    def forward(self, input, hx=None):
        return self._step(input, (hx,))[0]
