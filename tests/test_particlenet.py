"""ParticleNet-lite (examples/taggers/particlenet.py) against its PyTorch twin built from the
naive EdgeConv of tests/torch_graph.py: same weights, real jets from top_qcd_sample.npz, forward
and every parameter gradient; plus the feature builder's padding handling."""
import os
import sys

import numpy as np
import pytest

import hepnn

torch = pytest.importorskip("torch")
from tests import torch_graph as TG  # noqa: E402

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


@pytest.fixture
def pn(monkeypatch):
    monkeypatch.syspath_prepend(EXAMPLES)
    sys.modules.pop("taggers.particlenet", None)
    from taggers import particlenet
    return particlenet


class TorchParticleNetLite(torch.nn.Module):
    def __init__(self, in_features, k, conv_widths, fc_width, n_outputs):
        super().__init__()
        w1, w2 = list(conv_widths[0]), list(conv_widths[1])
        self.k = k
        self.convs = torch.nn.ModuleList([TG.EdgeConv(in_features, w1, shortcut=True),
                                          TG.EdgeConv(w1[-1], w2, shortcut=True)])
        self.head = torch.nn.Sequential(torch.nn.Linear(w2[-1], fc_width), torch.nn.ReLU(),
                                        torch.nn.Linear(fc_width, n_outputs))

    def forward(self, x, mask):
        h = self.convs[0](x, mask, TG.knn(x.detach()[:, :, :2], self.k, mask))
        h = self.convs[1](h, mask, TG.knn(h.detach(), self.k, mask))
        m = mask[..., None]
        return self.head((h * m).sum(1) / m.sum(1).clamp(min=1))


def test_particlenet_lite_matches_torch(pn):
    d = np.load(os.path.join(EXAMPLES, "data", "top_qcd_sample.npz"))
    pick = np.r_[0:4, 1500:1504]
    x, mask, _ = pn.jet_features(d["constituents"][pick], d["n_constituents"][pick])
    assert not mask.all() and np.all(x[~mask] == 0)
    x = x.astype(np.float64)
    kw = dict(in_features=7, k=8, conv_widths=((16, 16), (24, 24)), fc_width=12, n_outputs=1)
    model = pn.ParticleNetLite(**kw, dtype=np.float64)
    torch.manual_seed(0)
    tmodel = TorchParticleNetLite(**kw).double()
    assert list(model.state_dict()) == list(tmodel.state_dict())
    model.load_state_dict({k: v.detach().numpy() for k, v in tmodel.state_dict().items()})
    out = model(hepnn.tensor(x), mask)
    (out * out).sum().backward()
    tout = tmodel(torch.tensor(x), torch.tensor(mask))
    (tout ** 2).sum().backward()
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-9, atol=1e-11)
    tparams = dict(tmodel.named_parameters())
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), tparams[name].grad.numpy(), rtol=1e-8, atol=1e-10,
                                   err_msg=name)
