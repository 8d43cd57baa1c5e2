"""The one table of exportable leaf layers: for each hepnn class, its emitter, how the export
check calls it, the keyword it takes a padding mask by, how many tensors it returns and which
input axis is the batch. A new exportable layer is one entry here plus its emitter."""
from __future__ import annotations

from typing import Callable, NamedTuple

from .. import nn
from . import _emit, _emit_attention, _emit_conv, _emit_graph, _emit_norm, _emit_rnn


class Leaf(NamedTuple):
    emit: Callable                 # (GraphBuilder, scope, layer, x) -> value name or tuple of names
    call: Callable | None = None   # (layer, x, mask) -> Tensor(s), for the check; None: layer(x[, mask=])
    mask: str | None = None        # the forward keyword of the padding mask; None: takes none
    outputs: int = 1
    batch_axis: Callable = lambda layer: 0
    refuse: Callable = lambda layer: None  # (layer) -> why it cannot be exported, or None


def _mha_call(m, x, mask):
    return m(x, x, x, key_padding_mask=mask)[0]


def _rnn_call(m, x, mask):
    out, h = m(x)
    return (out, h) if m.mode == "gru" else (out, h[0], h[1])


def _pool_refusal(m):
    if getattr(m, "return_indices", False):
        return "has return_indices=True; export keeps the pooled values only"
    if getattr(m, "ceil_mode", False):
        return "has ceil_mode=True, which hepnn does not run"
    return None


def _norm_refusal(m):
    if m.running_mean is None or m.running_var is None:
        return ("has track_running_stats=False, so it normalises with each batch's own statistics even "
                "at inference; export needs running statistics")
    return None


def _seq_axis(m):
    return 0 if m.batch_first else 1


LEAVES = {
    **{cls: Leaf(fn) for cls, fn in _emit.EMITTERS.items()},
    **{cls: Leaf(fn, refuse=_pool_refusal) for cls, fn in _emit_conv.EMITTERS.items()},
    **{cls: Leaf(fn, refuse=_norm_refusal) for cls, fn in _emit_norm.EMITTERS.items() if cls is not nn.LayerNorm},
    nn.LayerNorm: Leaf(_emit_norm.EMITTERS[nn.LayerNorm]),
    nn.GRU: Leaf(_emit_rnn.rnn, call=_rnn_call, outputs=2, batch_axis=_seq_axis),
    nn.LSTM: Leaf(_emit_rnn.rnn, call=_rnn_call, outputs=3, batch_axis=_seq_axis),
    nn.MultiheadAttention: Leaf(_emit_attention.mha, call=_mha_call, mask="key_padding_mask",
                                batch_axis=_seq_axis),
    nn.TransformerEncoderLayer: Leaf(_emit_attention.encoder_layer, mask="src_key_padding_mask",
                                     batch_axis=lambda m: _seq_axis(m.self_attn)),
    nn.TransformerEncoder: Leaf(_emit_attention.encoder, mask="src_key_padding_mask",
                                batch_axis=lambda m: _seq_axis(m.layers[0].self_attn)),
    nn.DeepSets: Leaf(_emit_graph.deep_sets, mask="mask"),
    nn.EdgeConv: Leaf(_emit_graph.edge_conv, mask="mask"),
}

# hepnn layers that are not exported, and why (checked before anything runs).
REFUSED = {
    nn.GRUCell: "is a single recurrent step; export a GRU (the whole sequence) instead",
    nn.LSTMCell: "is a single recurrent step; export an LSTM (the whole sequence) instead",
    nn.GraphNetBlock: "takes edge lists (senders, receivers, offsets) built outside the model, which the "
                      "one-input export cannot take",
    nn.MessagePassing: "takes edge lists (senders, receivers) built outside the model, which the one-input "
                       "export cannot take",
    nn.ParticleAttentionBlock: "(ParT's block: class attention, head scales, an attn_mask pair bias) has no "
                               "exporter yet",
}

SUPPORTED_TEXT = ("Linear, the activations, Dropout, Conv1d/2d, ConvTranspose2d, Max/AvgPool1d/2d, "
                  "AdaptiveAvg/MaxPool, Flatten, BatchNorm1d/2d, LayerNorm, GRU, LSTM, "
                  "MultiheadAttention, TransformerEncoder(Layer), DeepSets and EdgeConv, inside "
                  "Sequential or Module subclasses whose forward applies their registered children "
                  "in order")
