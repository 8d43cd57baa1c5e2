"""A PyTorch model with the non-layer operators torch.onnx emits for particle-physics code, exported
with torch.onnx.export(dynamo=False, opset 17): a per-particle MLP, a masked mean over particles
with a (B, N) bool mask, torch.where, a max over particles, topk of the particles' first feature,
and x.view(x.shape[0], -1) (a Shape -> Gather -> Unsqueeze -> Concat -> Reshape subgraph). Runs in
hepnn.runtime and matches PyTorch and ONNX Runtime to 1e-5."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

import hepnn.runtime as rt  # noqa: E402

try:
    import onnxruntime as ort
except ImportError:  # pragma: no cover
    ort = None

B_EXPORT, N, F, K = 2, 9, 5, 3


class ParticleNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.phi = torch.nn.Sequential(torch.nn.Linear(F, 16), torch.nn.ReLU(), torch.nn.Linear(16, 16))
        self.rho = torch.nn.Linear(16 + 16 + K + 4 * F, 2)

    def forward(self, x, mask):
        h = self.phi(x)                                   # (B, N, 16)
        m = mask.unsqueeze(-1).to(h.dtype)
        mean = (h * m).sum(1) / m.sum(1).clamp(min=1.0)  # masked mean over particles
        hmax = torch.where(mask.unsqueeze(-1), h, torch.full_like(h, -1e4)).max(1).values
        pt = x[..., 0].masked_fill(~mask, -1e4)
        vals, idx = pt.topk(K, dim=1)
        lead = x[:, :4].reshape(x.shape[0], -1)           # the shape subgraph
        z = torch.cat([mean, hmax, vals.exp().log1p(), lead.view(x.shape[0], -1)], 1)
        return torch.sigmoid(self.rho(z)), idx


def batch(rng, b):
    x = rng.standard_normal((b, N, F)).astype(np.float32)
    mask = rng.random((b, N)) < 0.7
    mask[:, :K] = True  # at least K real particles per event
    return x, mask


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    net = ParticleNet().eval()
    path = tmp_path_factory.mktemp("torch") / "particles.onnx"
    x, mask = batch(np.random.default_rng(0), B_EXPORT)
    torch.onnx.export(net, (torch.from_numpy(x), torch.from_numpy(mask)), str(path), dynamo=False, opset_version=17,
                      input_names=["x", "mask"], output_names=["p", "idx"],
                      dynamic_axes={"x": {0: "B"}, "mask": {0: "B"}, "p": {0: "B"}, "idx": {0: "B"}})
    return net, path


def test_export_uses_the_non_layer_ops(exported):
    import onnx
    ops = {n.op_type for n in onnx.load(str(exported[1])).graph.node}
    for op in ("Shape", "Gather", "Concat", "Reshape", "Where", "ReduceSum", "ReduceMax", "TopK", "Cast", "Not"):
        assert op in ops, (op, ops)


@pytest.mark.parametrize("b", [1, 7, 64])
def test_matches_torch_and_onnxruntime(exported, b):
    net, path = exported
    x, mask = batch(np.random.default_rng(b), b)
    s = rt.Session(path)
    assert s.model.input_dtypes == [np.float32, np.bool_]
    p, idx = s.run({"x": x, "mask": mask})
    with torch.no_grad():
        tp, tidx = net(torch.from_numpy(x), torch.from_numpy(mask))
    assert p.dtype == np.float32 and idx.dtype == np.int64
    np.testing.assert_allclose(p, tp.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(idx, tidx.numpy())
    if ort is not None:
        op, oidx = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x, "mask": mask})
        np.testing.assert_allclose(p, op, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(idx, oidx)


def test_shape_subgraph_folds_for_the_batch(exported):
    s = rt.Session(exported[1])
    x, mask = batch(np.random.default_rng(3), 5)
    s.run({"x": x, "mask": mask})
    live = s._s.live_steps
    assert live < len(s.model.steps)  # Shape and its arithmetic ran at plan time
    x2, mask2 = batch(np.random.default_rng(4), 11)  # a new batch size replans
    s.run({"x": x2, "mask": mask2})
    assert s._s.live_steps == live
