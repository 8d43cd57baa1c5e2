"""hepnn.onnx.export: every supported layer and a few HEP-sized MLPs exported, checked with
onnx.checker, run in ONNX Runtime on odd batch sizes and compared with the hepnn model's own
output; the same architecture exported by torch.onnx gives the same outputs; errors are clear."""
import doctest
import importlib
import math
import os
import sys

import numpy as np
import pytest

import hepnn
import hepnn.onnx
from hepnn import nn

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx.reference import ReferenceEvaluator  # noqa: E402
from onnx.reference.ops._op import OpRunUnaryNum  # noqa: E402

BATCHES = (1, 7, 257)
# float32: the brief's 1e-5 relative / 1e-6 absolute; float64: rounding-level.
TOL = {np.float32: (1e-5, 1e-6), np.float64: (1e-12, 1e-12)}
# ONNX float attributes are 32-bit: Selu's constants (and ORT's / the reference's opset-20 Gelu
# constants) carry float32 precision even in a float64 graph.
TOL_F64_F32ATTR = (1e-6, 1e-7)


class _ExactErf(OpRunUnaryNum):
    """The reference evaluator's Erf computes in float32; this one keeps float64."""

    op_domain = ""

    def _run(self, x):
        return (np.vectorize(math.erf, otypes=[x.dtype])(x),)


_ExactErf.__name__ = "Erf"


def _run_onnx(path, x, input_name="input"):
    """Output of the ONNX file on x, and which runtime produced it. ONNX Runtime has no float64
    kernels for Elu, Selu, Erf, Softplus, LeakyRelu(16); such float64 graphs go to onnx's
    reference evaluator (NumPy, float64) instead."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    try:
        sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    except ort.capi.onnxruntime_pybind11_state.NotImplemented:
        assert x.dtype == np.float64, "ONNX Runtime must run every float32 export"
        return ReferenceEvaluator(path, new_ops=[_ExactErf]).run(None, {input_name: x})[0], "reference"
    return sess.run(None, {input_name: x})[0], "ort"


def _hepnn_out(model, x):
    model.eval()
    with hepnn.no_grad():
        return model(hepnn.tensor(x)).numpy()


def _inputs(n_in, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return {b: (2.5 * rng.standard_normal((b, n_in))).astype(dtype) for b in BATCHES}


def _check_file(path):
    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    return m


def _assert_matches(model, path, n_in, dtype, tol=None):
    rtol, atol = tol or TOL[dtype]
    for b, x in _inputs(n_in, dtype).items():
        want = _hepnn_out(model, x)
        got, _ = _run_onnx(path, x)
        assert got.dtype == dtype and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=f"batch {b}")


LAYERS = {
    "linear": (lambda: nn.Linear(9, 5), ["Gemm"]),
    "linear_nobias": (lambda: nn.Linear(9, 5, bias=False), ["Gemm"]),
    "relu": (nn.ReLU, ["Relu"]),
    "leaky_relu": (lambda: nn.LeakyReLU(0.25), ["LeakyRelu"]),
    "elu": (lambda: nn.ELU(0.75), ["Elu"]),
    "selu": (nn.SELU, ["Selu"]),
    "gelu": (nn.GELU, ["Div", "Erf", "Add", "Mul", "Mul"]),
    "gelu_tanh": (lambda: nn.GELU("tanh"), ["Mul", "Mul", "Mul", "Add", "Mul", "Tanh", "Add", "Mul", "Mul"]),
    "sigmoid": (nn.Sigmoid, ["Sigmoid"]),
    "tanh": (nn.Tanh, ["Tanh"]),
    "softplus": (nn.Softplus, ["Softplus"]),
    "softmax": (lambda: nn.Softmax(dim=-1), ["Softmax"]),
    "softmax_dim1": (lambda: nn.Softmax(dim=1), ["Softmax"]),
    "softmax_dim0": (lambda: nn.Softmax(dim=0), ["Softmax"]),
    "log_softmax": (lambda: nn.LogSoftmax(dim=-1), ["LogSoftmax"]),
    "dropout": (lambda: nn.Dropout(0.3), []),
}


def _tol(dtype, names, opset):
    gelu_op = opset >= 20 and any(n.startswith("gelu") for n in names)
    if dtype == np.float64 and ("selu" in names or gelu_op):
        return TOL_F64_F32ATTR
    return TOL[dtype]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layer", list(LAYERS))
def test_each_layer_after_a_linear(tmp_path, layer, dtype):
    make, ops = LAYERS[layer]
    hepnn.manual_seed(1)
    model = nn.Sequential(nn.Linear(13, 9), make()).to(dtype=dtype)
    if layer.startswith("linear"):
        model = nn.Sequential(nn.Linear(13, 9), nn.Tanh(), make()).to(dtype=dtype)
        ops = ["Gemm", "Tanh"] + ops
    else:
        ops = ["Gemm"] + ops
    path = str(tmp_path / f"{layer}.onnx")
    assert hepnn.onnx.export(model, np.zeros((3, 13)), path) == path
    m = _check_file(path)
    assert [n.op_type for n in m.graph.node] == ops
    assert m.opset_import[0].version == 17
    _assert_matches(model, path, 13, dtype, _tol(dtype, [layer], 17))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_is_one_op_from_opset_20(tmp_path, approximate, dtype):
    model = nn.Sequential(nn.Linear(6, 11), nn.GELU(approximate), nn.Linear(11, 2)).to(dtype=dtype)
    path = hepnn.onnx.export(model, np.zeros((1, 6)), str(tmp_path / "g.onnx"), opset=20)
    m = _check_file(path)
    assert [n.op_type for n in m.graph.node] == ["Gemm", "Gelu", "Gemm"]
    assert onnx.helper.get_attribute_value(m.graph.node[1].attribute[0]) == approximate.encode()
    _assert_matches(model, path, 6, dtype, _tol(dtype, ["gelu"], 20))


ACTS = {
    "relu": nn.ReLU, "gelu": nn.GELU, "gelu_tanh": lambda: nn.GELU("tanh"), "selu": nn.SELU,
    "elu": nn.ELU, "softplus": nn.Softplus, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh,
    "leaky_relu": lambda: nn.LeakyReLU(0.125),
}


def _mlp(sizes, act, head=None, dtype=np.float32):
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(ACTS[act]())
    if head is not None:
        layers.append(head)
    return nn.Sequential(*layers).to(dtype=dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mlp_30_128_128_128_1_relu(tmp_path, dtype):
    hepnn.manual_seed(2)
    model = _mlp([30, 128, 128, 128, 1], "relu", dtype=dtype)
    path = hepnn.onnx.export(model, np.zeros((4, 30)), str(tmp_path / "mlp.onnx"))
    m = _check_file(path)
    assert [n.op_type for n in m.graph.node] == ["Gemm", "Relu"] * 3 + ["Gemm"]
    _assert_matches(model, path, 30, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("act", list(ACTS))
def test_mlp_12_64_64_1(tmp_path, act, dtype):
    hepnn.manual_seed(3)
    model = _mlp([12, 64, 64, 1], act, dtype=dtype)
    path = hepnn.onnx.export(model, np.zeros((2, 12)), str(tmp_path / f"{act}.onnx"))
    _check_file(path)
    _assert_matches(model, path, 12, dtype, _tol(dtype, [act], 17))


@pytest.mark.parametrize("head", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_classifier_with_softmax_head(tmp_path, head, dtype):
    hepnn.manual_seed(4)
    model = _mlp([12, 64, 64, 5], "gelu", nn.Softmax(-1) if head == "softmax" else nn.LogSoftmax(1), dtype)
    path = hepnn.onnx.export(model, np.zeros((2, 12)), str(tmp_path / "cls.onnx"))
    _check_file(path)
    _assert_matches(model, path, 12, dtype)


def test_graph_layout_names_dtypes_and_dynamic_batch(tmp_path):
    hepnn.manual_seed(5)
    model = nn.Sequential(nn.Linear(7, 3), nn.ReLU(), nn.Linear(3, 2)).double()
    path = hepnn.onnx.export(model, np.zeros((5, 7)), str(tmp_path / "m.onnx"),
                             input_names=["features"], output_names="score")
    m = _check_file(path)
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in m.graph.initializer}
    assert sorted(inits) == ["0.bias", "0.weight", "2.bias", "2.weight"]
    for k, v in model.state_dict().items():
        assert inits[k].dtype == np.float64 and inits[k].shape == v.shape  # out x in, as in hepnn
        np.testing.assert_array_equal(inits[k], v)
    gemm = m.graph.node[0]
    assert {a.name: onnx.helper.get_attribute_value(a) for a in gemm.attribute}["transB"] == 1
    (inp,), (out,) = m.graph.input, m.graph.output
    assert inp.name == "features" and out.name == "score"
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
    assert [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim] == ["batch", 7]
    assert [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim] == ["batch", 2]
    assert m.producer_name == "hepnn"
    x = _inputs(7, np.float64)[257]
    got, _ = _run_onnx(path, x, "features")
    np.testing.assert_allclose(got, _hepnn_out(model, x), rtol=1e-12, atol=1e-12)


def test_fixed_batch_when_dynamic_batch_is_false(tmp_path):
    model = nn.Sequential(nn.Linear(4, 2), nn.Sigmoid())
    path = hepnn.onnx.export(model, np.zeros((7, 4), np.float32), str(tmp_path / "m.onnx"), dynamic_batch=False)
    m = _check_file(path)
    assert [d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim] == [7, 4]
    assert [d.dim_value for d in m.graph.output[0].type.tensor_type.shape.dim] == [7, 2]
    x = _inputs(4, np.float32)[7]
    np.testing.assert_allclose(_run_onnx(path, x)[0], _hepnn_out(model, x), rtol=1e-5, atol=1e-6)
    with pytest.raises(Exception, match="[Ii]nvalid|dimension|shape"):
        _run_onnx(path, _inputs(4, np.float32)[1])


def test_model_trained_with_fit(tmp_path):
    hepnn.manual_seed(6)
    rng = np.random.default_rng(6)
    X = rng.standard_normal((600, 30)).astype(np.float32)
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(np.float32)
    model = nn.Sequential(nn.Linear(30, 64), nn.ReLU(), nn.Dropout(0.1), nn.Linear(64, 64),
                          nn.SELU(), nn.Linear(64, 1))
    before = model.state_dict()
    hist = hepnn.fit(model, nn.BCEWithLogitsLoss(), hepnn.optim.Adam(model.parameters(), lr=1e-2),
                     (X, y), epochs=3, batch_size=64, seed=0, progress=False)
    assert hist.history["loss"][-1] < hist.history["loss"][0]
    assert not np.allclose(before["0.weight"], model.state_dict()["0.weight"])
    path = hepnn.onnx.export(model, X[:1], str(tmp_path / "trained.onnx"))
    _check_file(path)
    _assert_matches(model, path, 30, np.float32)


def test_dropout_ignored_and_training_flags_restored(tmp_path):
    hepnn.manual_seed(7)
    model = nn.Sequential(nn.Linear(10, 32), nn.Dropout(0.5), nn.ReLU(), nn.Linear(32, 1), nn.Dropout(0.2))
    model.train()
    path = hepnn.onnx.export(model, np.zeros((3, 10)), str(tmp_path / "d.onnx"))
    assert all(m.training for m in model.modules())
    m = _check_file(path)
    assert "Dropout" not in [n.op_type for n in m.graph.node]
    assert m.graph.node[-1].output[0] == "output"
    _assert_matches(model, path, 10, np.float32)  # compared with eval mode
    # A model of nothing but Dropout still has a node between input and output.
    only = nn.Sequential(nn.Dropout(0.4))
    path = hepnn.onnx.export(only, np.zeros((2, 3), np.float32), str(tmp_path / "id.onnx"))
    assert [n.op_type for n in _check_file(path).graph.node] == ["Identity"]
    x = _inputs(3, np.float32)[7]
    np.testing.assert_array_equal(_run_onnx(path, x)[0], x)


@pytest.mark.parametrize("act", ["relu", "leaky_relu", "elu", "selu", "gelu", "gelu_tanh", "sigmoid",
                                 "tanh", "softplus", "softmax", "log_softmax"])
def test_activations_on_extreme_inputs(tmp_path, act):
    """Saturated and overflow-prone regions (|x| up to 80): ONNX's Softplus has no threshold and
    its Sigmoid/Elu/Softmax must stay finite where hepnn's kernels do."""
    model = nn.Sequential(LAYERS[act][0]())
    x = np.linspace(-80.0, 80.0, 7 * 23, dtype=np.float32).reshape(7, 23)
    path = hepnn.onnx.export(model, x, str(tmp_path / "a.onnx"))
    got, runtime = _run_onnx(path, x)
    want = _hepnn_out(model, x)
    assert runtime == "ort" and np.all(np.isfinite(want))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


_STANDIN_CHECK = r"""
import os, sys, tempfile
import numpy as np
from tests.cupy_standin import install
cp = install()
import hepnn, hepnn.onnx
import onnxruntime as ort
from hepnn import nn

hepnn.manual_seed(3)
model = nn.Sequential(nn.Linear(6, 16), nn.GELU(), nn.Dropout(0.2), nn.Linear(16, 2)).to("cuda")
assert model[0].weight.device == "cuda"
x = np.random.default_rng(1).standard_normal((9, 6)).astype(np.float32)
path = hepnn.onnx.export(model, hepnn.tensor(x, device="cuda"), os.path.join(tempfile.mkdtemp(), "m.onnx"))
assert model[0].weight.device == "cuda" and model.training
got = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
model.eval()
with hepnn.no_grad():
    want = model(hepnn.tensor(x, device="cuda")).cpu().numpy()
np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
print("ok")
"""


def test_model_on_cuda_with_a_cupy_standin():
    """A model whose parameters live on the GPU: weights are copied to the host for the file and
    the checks run on the model's device (NumPy-backed CuPy stand-in; no GPU needed)."""
    import subprocess

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    res = subprocess.run([sys.executable, "-c", _STANDIN_CHECK], capture_output=True, text=True, cwd=root,
                         env=os.environ.copy())
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.strip().endswith("ok")


# ---- Module subclasses ----------------------------------------------------------------------
class Chain(nn.Module):
    """A user model whose forward is a plain chain of its children."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(8, 16), nn.ELU())
        self.head = nn.Linear(16, 3)
        self.out = nn.LogSoftmax(-1)

    def forward(self, x):
        return self.out(self.head(self.body(x)))


class Listed(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 1)])

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)
        self.act = nn.ReLU()

    def forward(self, x):
        return x + self.act(self.fc(x))


class ExtraOp(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 1)

    def forward(self, x):
        return self.fc(x).sigmoid()


class Concat(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 4)
        self.fc2 = nn.Linear(12, 1)

    def forward(self, x):
        return self.fc2(hepnn.cat([x, self.fc1(x)], 1))


class Square(nn.Module):
    def forward(self, x):
        return x * x


class MyReLU(nn.ReLU):
    def forward(self, x):
        return super().forward(x) * 2.0


@pytest.mark.parametrize("cls,n_out", [(Chain, 3), (Listed, 1)])
def test_module_subclass_with_a_chain_forward(tmp_path, cls, n_out):
    hepnn.manual_seed(8)
    model = cls()
    path = hepnn.onnx.export(model, np.zeros((2, 8)), str(tmp_path / "c.onnx"))
    m = _check_file(path)
    assert m.graph.output[0].type.tensor_type.shape.dim[1].dim_value == n_out
    _assert_matches(model, path, 8, np.float32)


@pytest.mark.parametrize("model,name", [
    (Residual(), "Residual"), (ExtraOp(), "ExtraOp"), (Concat(), "Concat"),
    (nn.Sequential(nn.Linear(8, 8), Residual()), "Residual"),
])
def test_custom_forward_that_is_not_a_chain_is_refused(tmp_path, model, name):
    path = tmp_path / "x.onnx"
    with pytest.raises(NotImplementedError, match=rf"{name}.*not its children applied in order.*supported are Linear"):
        hepnn.onnx.export(model, np.ones((2, 8)), path)
    assert not os.listdir(tmp_path)


@pytest.mark.parametrize("model,name", [
    (nn.Sequential(nn.Linear(8, 4), Square()), r"layer 1 \(Square\) is not supported"),
    (nn.Sequential(nn.Linear(8, 4), MyReLU()), r"layer 1 \(MyReLU\) is not supported"),
    (nn.ModuleList([nn.Linear(8, 1)]), r"ModuleList"),
])
def test_unsupported_layer_is_named(tmp_path, model, name):
    with pytest.raises(NotImplementedError, match=name):
        hepnn.onnx.export(model, np.ones((2, 8)), tmp_path / "x.onnx")
    assert not os.listdir(tmp_path)


# ---- errors -----------------------------------------------------------------------------------
def test_example_input_shape_mismatch(tmp_path):
    model = nn.Sequential(nn.Linear(30, 4), nn.ReLU(), nn.Linear(4, 1))
    with pytest.raises(ValueError, match=r"example_input has 29 features.*first Linear expects 30"):
        hepnn.onnx.export(model, np.zeros((3, 29)), tmp_path / "x.onnx")
    # (2, 3, 30) is fine now: Linear acts on the last dim (tests/test_onnx_export_layers.py)
    for bad in (np.zeros(30), np.zeros((0, 30)), np.zeros((2, 0))):
        with pytest.raises(ValueError, match="at least 2-D"):
            hepnn.onnx.export(model, bad, tmp_path / "x.onnx")
    broken = nn.Sequential(nn.Linear(30, 4), nn.Linear(5, 1))  # the model itself does not chain
    with pytest.raises(ValueError, match=r"layer 1 \(Linear\) rejects its input of shape \(3, 4\)"):
        hepnn.onnx.export(broken, np.zeros((3, 30)), tmp_path / "x.onnx")
    with pytest.raises(ValueError, match=r"layer 1 \(Softmax\).*dim 2 is out of range"):
        hepnn.onnx.export(nn.Sequential(nn.Linear(30, 4), nn.Softmax(2)), np.zeros((3, 30)), tmp_path / "x.onnx")
    assert not os.listdir(tmp_path)


def test_bad_paths(tmp_path):
    model = nn.Sequential(nn.Linear(3, 1))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        hepnn.onnx.export(model, np.zeros((1, 3)), tmp_path / "missing" / "m.onnx")
    with pytest.raises(IsADirectoryError, match="is a directory"):
        hepnn.onnx.export(model, np.zeros((1, 3)), tmp_path)
    assert not os.listdir(tmp_path)


def test_overwrite_is_atomic_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"old contents")
    model = nn.Sequential(nn.Linear(3, 2), nn.Tanh())
    assert hepnn.onnx.export(model, np.zeros((1, 3)), path) == path  # a PathLike comes back as given
    assert os.listdir(tmp_path) == ["m.onnx"]
    _check_file(str(path))


def test_bad_arguments(tmp_path):
    model = nn.Sequential(nn.Linear(3, 1))
    x = np.zeros((1, 3))
    p = tmp_path / "m.onnx"
    with pytest.raises(ValueError, match="opset"):
        hepnn.onnx.export(model, x, p, opset=12)
    with pytest.raises(ValueError, match="opset"):
        hepnn.onnx.export(model, x, p, opset=onnx.defs.onnx_opset_version() + 1)
    with pytest.raises(ValueError, match="input_names must hold exactly one"):
        hepnn.onnx.export(model, x, p, input_names=("a", "b"))
    with pytest.raises(ValueError, match="output_names must hold exactly one"):
        hepnn.onnx.export(model, x, p, output_names=[""])
    with pytest.raises(ValueError, match="both named"):
        hepnn.onnx.export(model, x, p, input_names="x", output_names="x")
    with pytest.raises(TypeError, match="hepnn.nn.Module"):
        hepnn.onnx.export(lambda t: t, x, p)
    with pytest.raises(TypeError, match="only float32 and float64"):
        hepnn.onnx.export(nn.Sequential(nn.ReLU()), np.zeros((1, 3), np.float16), p)
    assert not os.listdir(tmp_path)


def test_missing_onnx_package_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match=r"pip install 'hepnn\[onnx\]'"):
        hepnn.onnx.export(nn.Sequential(nn.Linear(3, 1)), np.zeros((1, 3)), tmp_path / "m.onnx")


def test_example_input_may_be_a_tensor_of_another_dtype(tmp_path):
    model = nn.Sequential(nn.Linear(5, 2)).double()
    path = hepnn.onnx.export(model, hepnn.randn(3, 5), str(tmp_path / "m.onnx"))  # float32 example
    assert _check_file(path).graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
    torch = pytest.importorskip("torch")
    path = hepnn.onnx.export(model, torch.zeros(3, 5), str(tmp_path / "t.onnx"))
    _check_file(path)


# ---- the same architecture exported by PyTorch ------------------------------------------------
def _torch_twin(torch, model):
    tnn = torch.nn
    table = {
        nn.Linear: lambda m: tnn.Linear(m.in_features, m.out_features, bias=m.bias is not None),
        nn.ReLU: lambda m: tnn.ReLU(), nn.SELU: lambda m: tnn.SELU(), nn.Sigmoid: lambda m: tnn.Sigmoid(),
        nn.Tanh: lambda m: tnn.Tanh(), nn.Softplus: lambda m: tnn.Softplus(),
        nn.LeakyReLU: lambda m: tnn.LeakyReLU(m.negative_slope), nn.ELU: lambda m: tnn.ELU(m.alpha),
        nn.GELU: lambda m: tnn.GELU(approximate=m.approximate), nn.Softmax: lambda m: tnn.Softmax(m.dim),
        nn.LogSoftmax: lambda m: tnn.LogSoftmax(m.dim), nn.Dropout: lambda m: tnn.Dropout(m.p),
    }
    tmodel = tnn.Sequential(*[table[type(m)](m) for m in model])
    tmodel.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
    return tmodel.eval()


ARCHS = {
    "relu_30_128_128_128_1": lambda: _mlp([30, 128, 128, 128, 1], "relu"),
    **{f"{a}_12_64_64_1": (lambda a=a: _mlp([12, 64, 64, 1], a)) for a in ACTS},
    "gelu_12_64_64_4_softmax": lambda: _mlp([12, 64, 64, 4], "gelu", nn.Softmax(-1)),
}


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch: the TorchScript exporter is legacy
@pytest.mark.parametrize("arch", list(ARCHS))
def test_same_outputs_as_torch_onnx_export(tmp_path, arch):
    torch = pytest.importorskip("torch")
    hepnn.manual_seed(9)
    model = ARCHS[arch]()
    n_in = model[0].in_features
    ours = hepnn.onnx.export(model, np.zeros((2, n_in)), str(tmp_path / "hepnn.onnx"))
    theirs = str(tmp_path / "torch.onnx")
    tmodel = _torch_twin(torch, model)
    with torch.no_grad():
        torch.onnx.export(tmodel, (torch.zeros(2, n_in),), theirs, dynamo=False, opset_version=17,
                          input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
    for b, x in _inputs(n_in, np.float32).items():
        a, _ = _run_onnx(ours, x)
        t, _ = _run_onnx(theirs, x)
        np.testing.assert_allclose(a, t, rtol=1e-5, atol=1e-6, err_msg=f"{arch} batch {b}")
        with torch.no_grad():
            np.testing.assert_allclose(a, tmodel(torch.from_numpy(x)).numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("module", ["hepnn.onnx", "hepnn.onnx.export"])
def test_docstring_examples(module):
    importlib.import_module("hepnn.onnx")
    result = doctest.testmod(sys.modules[module])
    assert result.attempted > 0 and result.failed == 0
