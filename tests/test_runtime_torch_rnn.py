"""Recurrent and transformer models exported by torch.onnx.export(dynamo=False, opset 17) run in
hepnn.runtime and match ONNX Runtime (and PyTorch) to 1e-5 relative: GRU and LSTM taggers
(batch_first, 2 layers, one- and bidirectional, a Linear head on the last step, the final states
as outputs) and a 2-layer torch.nn.TransformerEncoder with a src_key_padding_mask."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
from onnx import helper, numpy_helper  # noqa: E402

import hepnn.runtime as rt  # noqa: E402

try:
    import onnxruntime as ort
except ImportError:  # pragma: no cover
    ort = None

F, HID, D_MODEL, HEADS, FF, SEQ = 5, 9, 64, 4, 128, 30


class RnnTagger(torch.nn.Module):
    def __init__(self, cell, bidirectional):
        super().__init__()
        self.rnn = cell(F, HID, num_layers=2, batch_first=True, bidirectional=bidirectional)
        self.head = torch.nn.Linear(HID * (2 if bidirectional else 1), 3)

    def forward(self, x):
        y, state = self.rnn(x)
        states = state if isinstance(state, tuple) else (state,)
        return (self.head(y[:, -1]), *states)


def export(net, args, path, names, dynamic):
    torch.onnx.export(net.eval(), args, str(path), dynamo=False, opset_version=17, input_names=names[0],
                      output_names=names[1], dynamic_axes=dynamic)
    return path


def compare(path, feeds, torch_out, rtol=1e-5, atol=1e-6):
    got = rt.Session(str(path)).run(feeds)
    assert len(got) == len(torch_out)
    for g, t in zip(got, torch_out):
        np.testing.assert_allclose(g, t, rtol=rtol, atol=atol)
    if ort is not None:
        want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)
    return got


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("cell", [torch.nn.GRU, torch.nn.LSTM], ids=["gru", "lstm"])
def test_rnn_tagger_matches_torch_and_onnxruntime(tmp_path, cell, bidirectional):
    torch.manual_seed(1)
    net = RnnTagger(cell, bidirectional)
    outs = ["logits", "h_n"] + (["c_n"] if cell is torch.nn.LSTM else [])
    dyn = {"x": {0: "B", 1: "L"}, "logits": {0: "B"}, **{o: {1: "B"} for o in outs[1:]}}
    path = export(net, (torch.randn(2, 4, F),), tmp_path / "rnn.onnx", (["x"], outs), dyn)
    op = "GRU" if cell is torch.nn.GRU else "LSTM"
    assert sum(n.op_type == op for n in onnx.load(str(path)).graph.node) == 2
    rng = np.random.default_rng(7)
    for b, length in [(1, 1), (7, 13), (64, 30)]:
        x = rng.standard_normal((b, length, F)).astype(np.float32)
        with torch.no_grad():
            want = [t.numpy() for t in net(torch.from_numpy(x))]
        got = compare(path, {"x": x}, want)
        assert got[1].shape == ((4 if bidirectional else 2), b, HID)


def encoder(norm_first=False):
    torch.manual_seed(2)
    layer = torch.nn.TransformerEncoderLayer(D_MODEL, HEADS, FF, dropout=0.0, batch_first=True, norm_first=norm_first)
    return torch.nn.TransformerEncoder(layer, 2, enable_nested_tensor=False).eval()


def padded_batch(rng, b, length):
    x = rng.standard_normal((b, length, D_MODEL)).astype(np.float32)
    lengths = rng.integers(1, length + 1, size=b)
    mask = np.arange(length)[None, :] >= lengths[:, None]  # True marks padding
    return x, mask


@pytest.fixture(scope="module")
def encoder_file(tmp_path_factory):
    net = encoder()
    # NOTE: torch's legacy exporter bakes the sequence length into the attention's reshapes, so
    # the file is for L = 30 (ONNX Runtime refuses other lengths too); the batch stays dynamic.
    x, mask = padded_batch(np.random.default_rng(0), 2, SEQ)
    path = tmp_path_factory.mktemp("enc") / "encoder.onnx"
    export(net, (torch.from_numpy(x), {"src_key_padding_mask": torch.from_numpy(mask)}), path, (["x", "mask"], ["y"]),
           {"x": {0: "B"}, "mask": {0: "B"}, "y": {0: "B"}})
    return net, path


def decompose_layernorm(src, dst):
    """The same graph with each LayerNormalization (last axis) spelled as ReduceMean/Sub/Mul/Sqrt/
    Div/Add, so the rest of the encoder is checked whether or not the runtime has the fused op."""
    m = onnx.load(str(src))
    nodes = []
    for k, n in enumerate(m.graph.node):
        if n.op_type != "LayerNormalization":
            nodes.append(n)
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        assert attrs.get("axis", -1) == -1
        eps = f"ln{k}_eps"
        m.graph.initializer.append(numpy_helper.from_array(np.array(attrs.get("epsilon", 1e-5), np.float32), eps))
        x, scale, bias = n.input
        t = [f"ln{k}_{i}" for i in range(7)]
        nodes += [helper.make_node("ReduceMean", [x], [t[0]], axes=[-1]),
                  helper.make_node("Sub", [x, t[0]], [t[1]]),
                  helper.make_node("Mul", [t[1], t[1]], [t[2]]),
                  helper.make_node("ReduceMean", [t[2]], [t[3]], axes=[-1]),
                  helper.make_node("Add", [t[3], eps], [t[4]]),
                  helper.make_node("Sqrt", [t[4]], [t[5]]),
                  helper.make_node("Div", [t[1], t[5]], [t[6]]),
                  helper.make_node("Mul", [t[6], scale], [t[6] + "s"]),
                  helper.make_node("Add", [t[6] + "s", bias], [n.output[0]])]
    del m.graph.node[:]
    m.graph.node.extend(nodes)
    onnx.save(m, str(dst))
    return dst


def check_encoder(net, path):
    rng = np.random.default_rng(5)
    for b in (1, 5, 64):
        x, mask = padded_batch(rng, b, SEQ)
        with torch.no_grad():
            want = net(torch.from_numpy(x), src_key_padding_mask=torch.from_numpy(mask)).numpy()
        compare(path, {"x": x, "mask": mask}, [want], rtol=1e-5, atol=1e-5)


def test_encoder_matches_torch_and_onnxruntime(encoder_file):
    net, path = encoder_file
    try:
        rt.Model(str(path))
    except (RuntimeError, ValueError) as e:
        if "'LayerNormalization' is not supported" in str(e):
            pytest.skip("the runtime does not have LayerNormalization yet")
        raise
    check_encoder(net, path)


def test_encoder_with_layernorm_spelled_out(encoder_file, tmp_path):
    net, path = encoder_file
    check_encoder(net, decompose_layernorm(path, tmp_path / "encoder_primitive.onnx"))
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert {"Mod", "Where", "Softmax", "MatMul"} <= ops, ops
