"""PyTorch CNNs exported with torch.onnx.export(dynamo=False, opset 17) through hepnn.runtime,
against PyTorch and ONNX Runtime to 1e-5 relative: a jet-image CNN (Conv2d-BatchNorm2d-ReLU-
MaxPool-Conv2d-ReLU-AvgPool or AdaptiveAvgPool-Flatten-Linear), a Conv1d model over particle
sequences (dilation, groups, BatchNorm1d that torch cannot fold into a conv, strided max pooling,
adaptive max pooling, which torch exports as a whole-length MaxPool), an encoder-decoder with
padding='same' and ConvTranspose2d, and a model with LayerNorm over one and two axes."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

import hepnn.runtime as rt  # noqa: E402

try:
    import onnxruntime as ort
except ImportError:  # pragma: no cover
    ort = None

tn = torch.nn


def jet_cnn(adaptive):
    head = [tn.AdaptiveAvgPool2d(1), tn.Flatten(), tn.Linear(16, 3)] if adaptive else \
           [tn.AvgPool2d(2), tn.Flatten(), tn.Linear(16 * 4 * 4, 3)]
    return tn.Sequential(tn.Conv2d(1, 8, 3, padding=1), tn.BatchNorm2d(8), tn.ReLU(), tn.MaxPool2d(2),
                         tn.Conv2d(8, 16, 3, padding=1), tn.ReLU(), *head)


def conv1d_net():
    return tn.Sequential(tn.Conv1d(4, 8, 5, padding=2), tn.ReLU(), tn.BatchNorm1d(8),
                         tn.Conv1d(8, 12, 3, dilation=2, groups=2, padding=1), tn.Tanh(),
                         tn.MaxPool1d(3, stride=2, padding=1), tn.Conv1d(12, 6, 1), tn.LeakyReLU(0.1),
                         tn.AdaptiveMaxPool1d(1), tn.Flatten(), tn.Linear(6, 2))


def encoder_decoder():
    return tn.Sequential(tn.Conv2d(3, 6, 4, padding="same"), tn.ELU(), tn.Conv2d(6, 8, 3, stride=2, padding=1),
                         tn.ReLU(), tn.ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1),
                         tn.Sigmoid(), tn.ConvTranspose2d(4, 2, (2, 3), stride=(1, 2), dilation=(2, 1), groups=2))


class LayerNormNet(tn.Module):
    def __init__(self):
        super().__init__()
        self.embed = tn.Linear(5, 16)
        self.ln = tn.LayerNorm(16)
        self.ln2 = tn.LayerNorm((7, 16), eps=1e-3)
        self.out = tn.Linear(16, 1)

    def forward(self, x):
        return self.out(self.ln2(tn.functional.gelu(self.ln(self.embed(x)))))


def randomise_batchnorm(net):
    # Non-trivial running statistics and affine parameters (the defaults make BatchNorm an identity).
    g = torch.Generator().manual_seed(1)
    for m in net.modules():
        if isinstance(m, (tn.BatchNorm1d, tn.BatchNorm2d)):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=g))
            m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
            m.weight.data.copy_(torch.randn(c, generator=g))
            m.bias.data.copy_(torch.randn(c, generator=g))
    return net.eval()


MODELS = {
    "jet_cnn_avgpool": (lambda: jet_cnn(False), (1, 16, 16)),
    "jet_cnn_adaptive": (lambda: jet_cnn(True), (1, 17, 15)),
    "conv1d": (conv1d_net, (4, 31)),
    "encoder_decoder": (encoder_decoder, (3, 12, 10)),
    "layernorm": (LayerNormNet, (7, 5)),
}


@pytest.fixture(scope="module", params=sorted(MODELS))
def exported(request, tmp_path_factory):
    make, shape = MODELS[request.param]
    torch.manual_seed(0)
    net = randomise_batchnorm(make())
    path = tmp_path_factory.mktemp("torch_conv") / f"{request.param}.onnx"
    x = torch.randn(2, *shape)
    torch.onnx.export(net, (x,), str(path), dynamo=False, opset_version=17, input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "B"}, "y": {0: "B"}})
    return request.param, net, path, shape


EXPECTED_OPS = {"jet_cnn_avgpool": {"Conv", "MaxPool", "AveragePool"},
                "jet_cnn_adaptive": {"Conv", "MaxPool", "GlobalAveragePool"},
                "conv1d": {"Conv", "BatchNormalization", "MaxPool"},
                "encoder_decoder": {"Conv", "ConvTranspose"},
                "layernorm": {"LayerNormalization"}}


def test_export_uses_the_ops(exported):
    name, _, path, _ = exported
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert EXPECTED_OPS[name] <= ops, (name, ops)


@pytest.mark.parametrize("b", [1, 5, 32])
def test_matches_torch_and_onnxruntime(exported, b):
    name, net, path, shape = exported
    x = np.random.default_rng(b).standard_normal((b, *shape)).astype(np.float32)
    s = rt.Session(path)
    (y,) = s.run({"x": x})
    with torch.no_grad():
        ty = net(torch.from_numpy(x)).numpy()
    assert y.shape == ty.shape and y.dtype == np.float32
    np.testing.assert_allclose(y, ty, rtol=1e-5, atol=1e-5)
    if ort is not None:
        (oy,) = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})
        np.testing.assert_allclose(y, oy, rtol=1e-5, atol=1e-5)


def test_conv_activation_fused_and_plan_reused(exported):
    name, _, path, shape = exported
    s = rt.Session(path)
    steps = s.model.steps
    if name.startswith("jet_cnn"):
        # BatchNorm folded into the conv by the export; ReLU and MaxPool fused into it.
        assert steps[:2] == ["Conv+Relu+MaxPool", "Conv+Relu"], steps
    x = np.random.default_rng(0).standard_normal((3, *shape)).astype(np.float32)
    first = s.run({"x": x})[0].copy()
    arena = s._s.arena_floats
    np.testing.assert_array_equal(s.run({"x": x})[0], first)  # the same plan and buffers, same result
    assert s._s.arena_floats == arena


class FlatCNN(tn.Module):
    """A small image CNN taking flat (B, 144) rows, so the C API program (2-D inputs) can run it."""

    def __init__(self):
        super().__init__()
        self.net = tn.Sequential(tn.Conv2d(1, 4, 3, padding=1), tn.ReLU(), tn.MaxPool2d(2), tn.Conv2d(4, 8, 3),
                                 tn.ReLU(), tn.AvgPool2d(2), tn.Flatten(), tn.Linear(32, 3))

    def forward(self, x):
        return self.net(x.reshape(-1, 1, 12, 12))


def test_cnn_through_the_c_api_without_steady_state_allocation(tmp_path):
    """tests/cpp/runtime_c_api.cpp on a CNN: output vs torch, 16 threads sharing the model with
    bit-identical results, and no heap allocation in 1000 steady-state runs."""
    from tests.test_runtime_cpp import build_program
    import re
    import subprocess

    exe = build_program()
    torch.manual_seed(0)
    net = FlatCNN().eval()
    model = tmp_path / "cnn.onnx"
    torch.onnx.export(net, (torch.zeros(2, 144),), str(model), dynamo=False, opset_version=17, input_names=["x"],
                      output_names=["y"], dynamic_axes={"x": {0: "B"}, "y": {0: "B"}})
    x = np.random.default_rng(0).standard_normal((5, 144)).astype(np.float32)
    (tmp_path / "x.bin").write_bytes(x.tobytes())
    r = subprocess.run([str(exe), str(model), str(tmp_path / "x.bin"), "5", "144", str(tmp_path / "y.bin")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "OK" in r.stdout, r.stdout + r.stderr
    # NOTE: nothing allocates per run; the conv kernels' thread-local scratch grows once on each
    # pool worker the first time that worker takes a chunk of a layer, which may fall inside the
    # counted runs: a few allocations in 1000 runs (11 per run before the kernels' checks stopped
    # building their messages eagerly).
    allocs = int(re.search(r"allocations_in_1000_runs (\d+)", r.stdout).group(1))
    assert allocs <= 16, r.stdout
    y = np.frombuffer((tmp_path / "y.bin").read_bytes(), np.float32).reshape(5, 3)
    with torch.no_grad():
        np.testing.assert_allclose(y, net(torch.from_numpy(x)).numpy(), rtol=1e-5, atol=1e-5)
