"""Registry specs of the graph family: row gather, scatter and segment sum/mean/max (value and
the arg of the first maximum), kNN (exact ties on an integer grid, padded points) and the fused
EdgeConv (mean / max aggregation, relu / gelu, several tiles per event, more neighbours than a
tile holds), each against plain NumPy float64 loops; backward against finite differences."""
import numpy as np

from hepnn import _core
from tests.registry import OpSpec

FEAT_TOL = {np.float32: (1e-5, 1e-5), np.float64: (1e-13, 1e-12)}


# ---- gather ----
def gather_inputs(rng, shape):
    R, F, M = shape
    return {"x": rng.standard_normal((R, F)) * 3 + 0.5, "index": rng.integers(-1, R, M),
            "dy": rng.standard_normal((M, F))}


def gather_forward(inp, be):
    y = be.empty((inp["index"].shape[0], inp["x"].shape[1]), inp["x"].dtype)
    _core.gather_forward(inp["x"], inp["index"], y, stream=be.stream)
    return {"y": y}


def gather_reference(inp):
    x, idx = inp["x"], inp["index"]
    y = np.zeros((idx.shape[0], x.shape[1]))
    for m, r in enumerate(idx):
        if r >= 0:
            y[m] = x[r]
    return {"y": y}


def gather_backward(inp, gout, be):
    dx = be.empty(inp["x"].shape, inp["x"].dtype)
    _core.gather_backward(inp["index"], gout["y"], dx, stream=be.stream)
    return {"x": dx}


# ---- scatter / segment ----
def _segments_of(inp):
    """(segment id per row, number of segments) for either form."""
    if "offsets" in inp:
        off = inp["offsets"]
        seg = np.full(off[-1], -1)
        for s in range(len(off) - 1):
            seg[off[s]:off[s + 1]] = s
        return seg, len(off) - 1
    return inp["index"], int(inp["size"][0])


def reduce_reference(reduce):
    def ref(inp):
        x = inp["x"]
        seg, S = _segments_of(inp)
        y = np.zeros((S, x.shape[1]))
        arg = np.full((S, x.shape[1]), -1)
        for s in range(S):
            rows = [m for m in range(x.shape[0]) if seg[m] == s]
            if not rows:
                continue
            block = x[rows]
            if reduce == "sum":
                y[s] = block.sum(0)
            elif reduce == "mean":
                y[s] = block.mean(0)
            else:
                y[s] = block.max(0)
                arg[s] = np.asarray(rows)[np.argmax(block, axis=0)]  # argmax: the first maximum
        return {"y": y, "arg": arg} if reduce == "max" else {"y": y}
    return ref


def scatter_inputs(rng, shape, ties=False):
    M, F, S = shape
    x = rng.integers(-3, 4, (M, F)).astype(np.float64) if ties else rng.standard_normal((M, F)) * 2 + 0.3
    return {"x": x, "index": rng.integers(-1, S, M), "size": np.array([S])}


def segment_inputs(rng, shape, ties=False):
    M, F, S = shape
    cuts = np.sort(rng.integers(0, M + 1, S - 1))  # repeated cuts make empty segments
    x = rng.integers(-3, 4, (M, F)).astype(np.float64) if ties else rng.standard_normal((M, F)) * 2 + 0.3
    return {"x": x, "offsets": np.concatenate([[0], cuts, [M]]).astype(np.int64)}


def reduce_spec(kind, reduce, shapes, grad_shapes, ties=False):
    segment = kind == "segment"
    keys = "offsets" if segment else "index"

    def make(rng, shape):
        return (segment_inputs if segment else scatter_inputs)(rng, shape, ties)

    def S_of(inp):
        return inp["offsets"].shape[0] - 1 if segment else int(inp["size"][0])

    def forward(inp, be):
        x = inp["x"]
        S = S_of(inp)
        y = be.empty((S, x.shape[1]), x.dtype)
        arg = be.empty((S, x.shape[1]), np.int64) if reduce == "max" else None
        fn = _core.segment_forward if segment else _core.scatter_forward
        fn(x, inp[keys], y, arg, reduce, stream=be.stream)
        return {"y": y, "arg": arg} if reduce == "max" else {"y": y}

    def backward(inp, gout, be):
        out = forward(inp, be)
        dx = be.empty(inp["x"].shape, inp["x"].dtype)
        fn = _core.segment_backward if segment else _core.scatter_backward
        fn(inp[keys], gout["y"], out.get("arg"), dx, reduce, stream=be.stream)
        return {"x": dx}

    return OpSpec(name=f"{kind}_{reduce}{'_ties' if ties else ''}", make_inputs=make, forward=forward,
                  reference=reduce_reference(reduce), shapes=shapes, tol=FEAT_TOL,
                  backward=None if ties else backward, grad_inputs=("x",), grad_outputs=("y",),
                  grad_shapes=grad_shapes)


# ---- kNN ----
def knn_inputs(rng, shape):
    B, N, D, K = shape
    # NOTE: integer coordinates make distances exact in float32 and float64 and full of ties,
    # which must all go to the smaller index.
    coords = rng.integers(-2, 3, (B, N, D)).astype(np.float64)
    mask = rng.random((B, N)) < 0.75
    return {"coords": coords, "mask": mask, "k": np.zeros(K)}


def knn_forward(inp, be):
    c = inp["coords"]
    K = inp["k"].shape[0]
    idx = be.empty(c.shape[:2] + (K,), np.int64)
    _core.knn(c, inp["mask"], idx, stream=be.stream)
    return {"idx": idx}


def knn_reference(inp):
    c, mask = inp["coords"], inp["mask"]
    B, N, _ = c.shape
    K = inp["k"].shape[0]
    idx = np.full((B, N, K), -1)
    for b in range(B):
        for i in range(N):
            if not mask[b, i]:
                continue
            cand = [(float(np.sum((c[b, i] - c[b, j]) ** 2)), j) for j in range(N) if j != i and mask[b, j]]
            cand.sort()
            for s, (_, j) in enumerate(cand[:K]):
                idx[b, i, s] = j
    return {"idx": idx}


# ---- EdgeConv ----
def edgeconv_inputs(rng, shape):
    B, N, C, K, widths = shape
    inp = {"x": rng.standard_normal((B, N, C)), "idx": rng.integers(-1, N, (B, N, K))}
    fin = 2 * C
    for l, w in enumerate(widths):
        inp[f"w{l}"] = rng.standard_normal((w, fin)) / np.sqrt(fin)
        inp[f"b{l}"] = 0.1 * rng.standard_normal(w)
        fin = w
    return inp


def _layers(inp):
    L = sum(1 for k in inp if k.startswith("w"))
    return [inp[f"w{l}"] for l in range(L)], [inp[f"b{l}"] for l in range(L)]


def _act_np(act, z):
    if act == "relu":
        return np.maximum(z, 0)
    from math import erf
    return z * 0.5 * (1 + np.vectorize(erf)(z / np.sqrt(2)))  # gelu, erf form


def edgeconv_reference(act, agg):
    def ref(inp):
        x, idx = inp["x"], inp["idx"]
        W, b = _layers(inp)
        B, N, _ = x.shape
        y = np.zeros((B, N, W[-1].shape[0]))
        for e in range(B):
            for i in range(N):
                hs = []
                for j in idx[e, i]:
                    if j < 0:
                        continue
                    h = np.concatenate([x[e, i], x[e, j] - x[e, i]])
                    for w, bb in zip(W, b):
                        h = _act_np(act, w @ h + bb)
                    hs.append(h)
                if hs:
                    y[e, i] = np.mean(hs, axis=0) if agg == "mean" else np.max(hs, axis=0)
        return {"y": y}
    return ref


def edgeconv_spec(act, agg, shapes, grad_shapes):
    def forward(inp, be):
        W, b = _layers(inp)
        x = inp["x"]
        y = be.empty(x.shape[:2] + (W[-1].shape[0],), x.dtype)
        pq = be.empty((x.shape[0] * x.shape[1], 2 * W[0].shape[0]), x.dtype)
        _core.edgeconv_forward(x, inp["idx"], W, b, y, pq, act, 0.0, agg, stream=be.stream)
        return {"y": y, "pq": pq}

    def backward(inp, gout, be):
        W, b = _layers(inp)
        pq = forward(inp, be)["pq"]
        dx = be.empty(inp["x"].shape, inp["x"].dtype)
        dW = [be.empty(w.shape, w.dtype) for w in W]
        db = [be.empty(v.shape, v.dtype) for v in b]
        _core.edgeconv_backward(inp["x"], inp["idx"], W, b, pq, gout["y"], dx, dW, db, act, 0.0, agg,
                                stream=be.stream)
        out = {"x": dx}
        out.update({f"w{l}": d for l, d in enumerate(dW)})
        out.update({f"b{l}": d for l, d in enumerate(db)})
        return out

    L = len(grad_shapes[0][4])
    grads = ("x",) + tuple(f"w{l}" for l in range(L)) + tuple(f"b{l}" for l in range(L))
    return OpSpec(name=f"edgeconv_{act}_{agg}", make_inputs=edgeconv_inputs, forward=forward,
                  reference=edgeconv_reference(act, agg), shapes=shapes, backward=backward,
                  grad_inputs=grads, grad_outputs=("y",), grad_shapes=grad_shapes,
                  tol={np.float32: (2e-5, 1e-4), np.float64: (1e-12, 1e-11)})


GATHER_SHAPES = [(7, 5, 11), (1, 1, 1), (33, 129, 300), (3, 2, 0)]
SCATTER_SHAPES = [(11, 5, 7), (1, 1, 1), (301, 33, 17), (5, 3, 40)]
KNN_SHAPES = [(3, 13, 2, 4), (1, 1, 3, 2), (2, 40, 3, 16), (4, 7, 1, 9)]
EDGE_SHAPES = [(3, 13, 5, 4, (7, 6)), (1, 1, 3, 2, (5, 3)), (2, 150, 6, 7, (9, 5, 4)),
               (1, 3, 2, 513, (3,))]
EDGE_GRAD = [(2, 9, 3, 4, (5, 4)), (1, 80, 2, 7, (3, 2))]

SPECS = [
    OpSpec(name="gather", make_inputs=gather_inputs, forward=gather_forward, reference=gather_reference,
           shapes=GATHER_SHAPES, backward=gather_backward, grad_inputs=("x",),
           grad_shapes=[(7, 5, 11), (4, 3, 9)], tol=FEAT_TOL),
    OpSpec(name="knn", make_inputs=knn_inputs, forward=knn_forward, reference=knn_reference,
           shapes=KNN_SHAPES, tol={np.float32: (0, 0), np.float64: (0, 0)}),
]
for _kind in ("scatter", "segment"):
    for _r in ("sum", "mean", "max"):
        SPECS.append(reduce_spec(_kind, _r, SCATTER_SHAPES, [(11, 5, 7), (9, 2, 3)]))
    SPECS.append(reduce_spec(_kind, "max", SCATTER_SHAPES, None, ties=True))
for _act, _agg in (("relu", "mean"), ("relu", "max"), ("gelu", "mean")):
    SPECS.append(edgeconv_spec(_act, _agg, EDGE_SHAPES, EDGE_GRAD))
