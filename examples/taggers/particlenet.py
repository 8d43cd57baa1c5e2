"""ParticleNet-lite for the top/QCD jets of examples/data/top_qcd_sample.npz: per-constituent
features, two EdgeConv blocks (kNN in (deta, dphi), then in feature space; ParticleNet's shortcut),
masked mean pooling over the real constituents and a dense head. No batch norm (ParticleNet has
it after every layer; hepnn's lives elsewhere): features are standardised up front instead.
`python examples/taggers/particlenet.py --epochs 3` trains it briefly and prints the test AUC.
"""
import argparse
import os
import time

import numpy as np

import hepnn
from hepnn import nn
from hepnn.nn import functional as F

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "top_qcd_sample.npz")
FEATURES = ("deta", "dphi", "log_pt", "log_e", "log_pt_rel", "log_e_rel", "dr")


def jet_features(constituents, n_constituents, stats=None):
    """(x (B, N, 7) float32, mask (B, N) bool, stats) from constituents (B, N, 4) = pt, deta,
    dphi, e and the counts. x holds FEATURES, standardised with `stats` ((mean, std) over the real
    constituents; computed here when None, so pass the training set's to the test set); padded
    rows are 0. Columns 0, 1 stay (deta, dphi) for the first kNN."""
    c = np.asarray(constituents, np.float64)
    B, N, _ = c.shape
    mask = np.arange(N)[None, :] < np.asarray(n_constituents)[:, None]
    pt, deta, dphi, e = (c[..., i] for i in range(4))
    safe = lambda v: np.log(np.where(mask, np.maximum(v, 1e-8), 1.0))  # noqa: E731
    pt_jet = (pt * mask).sum(1, keepdims=True)
    e_jet = (e * mask).sum(1, keepdims=True)
    x = np.stack([deta, dphi, safe(pt), safe(e), safe(pt / np.maximum(pt_jet, 1e-8)),
                  safe(e / np.maximum(e_jet, 1e-8)), np.hypot(deta, dphi)], axis=-1)
    if stats is None:
        real = x[mask]
        mean, std = real.mean(0), real.std(0) + 1e-6
        mean[:2] = 0.0  # keep (deta, dphi) centred on the jet axis; only rescale them
        std[:2] = real[:, :2].std()
        stats = (mean, std)
    x = np.where(mask[..., None], (x - stats[0]) / stats[1], 0.0)
    return x.astype(np.float32), mask, stats


class ParticleNetLite(nn.Module):
    """Two EdgeConv blocks + masked mean pooling + dense head; forward(x, mask) -> (B, n_outputs)
    logits. State-dict keys: convs.<b>.mlp.<l>.{weight,bias}, convs.<b>.shortcut.*, head.*.

    Example::

        >>> import hepnn
        >>> from taggers.particlenet import ParticleNetLite
        >>> model = ParticleNetLite(k=4, conv_widths=((8, 8), (16,)), fc_width=8)
        >>> model(hepnn.randn(2, 10, 7), mask=[[True] * 10, [True] * 6 + [False] * 4]).shape
        (2, 1)
    """

    def __init__(self, in_features=len(FEATURES), k=16, conv_widths=((32, 32, 32), (64, 64, 64)),
                 fc_width=64, n_outputs=1, dtype=np.float32):
        super().__init__()
        if len(conv_widths) != 2:
            raise ValueError(f"ParticleNetLite: needs two EdgeConv blocks, got {len(conv_widths)}")
        w1, w2 = list(conv_widths[0]), list(conv_widths[1])
        self.convs = nn.ModuleList([
            nn.EdgeConv(in_features, w1, k, coords=[0, 1], shortcut=True, dtype=dtype),
            nn.EdgeConv(w1[-1], w2, k, shortcut=True, dtype=dtype),  # kNN in its input features
        ])
        self.head = nn.Sequential(nn.Linear(w2[-1], fc_width, dtype=dtype), nn.ReLU(),
                                  nn.Linear(fc_width, n_outputs, dtype=dtype))

    def forward(self, x, mask):
        h = x
        for conv in self.convs:
            h = conv(h, mask=mask)
        return self.head(F.masked_mean(h, mask, dim=1))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--jets", type=int, default=3000, help="use the first N jets (shuffled)")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    hepnn.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    d = np.load(DATA)
    order = rng.permutation(len(d["label"]))[:args.jets]
    n_train = int(0.8 * len(order))
    tr, te = order[:n_train], order[n_train:]
    x_tr, m_tr, stats = jet_features(d["constituents"][tr], d["n_constituents"][tr])
    x_te, m_te, _ = jet_features(d["constituents"][te], d["n_constituents"][te], stats)
    y_tr, y_te = d["label"][tr].astype(np.float32), d["label"][te]
    model = ParticleNetLite()
    opt = hepnn.optim.Adam(model.parameters(), lr=args.lr)
    loss_fn = nn.BCEWithLogitsLoss()
    for epoch in range(1, args.epochs + 1):
        t0, total = time.perf_counter(), 0.0
        perm = rng.permutation(n_train)
        model.train()
        for i in range(0, n_train, args.batch_size):
            b = perm[i:i + args.batch_size]
            loss = loss_fn(model(hepnn.tensor(x_tr[b]), m_tr[b]), hepnn.tensor(y_tr[b, None]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(b)
        print(f"epoch {epoch:2d}  train loss {total / n_train:.4f}  ({n_train / (time.perf_counter() - t0):.0f} jets/s)")
    model.eval()
    with hepnn.no_grad():
        scores = np.concatenate([model(hepnn.tensor(x_te[i:i + 256]), m_te[i:i + 256]).numpy().ravel()
                                 for i in range(0, len(te), 256)])
    auc = hepnn.metrics.roc_auc_score(y_te, scores)
    print(f"test AUC {auc:.3f} on {len(te)} jets")
    return auc


if __name__ == "__main__":
    main()
