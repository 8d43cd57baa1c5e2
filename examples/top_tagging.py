"""Top-quark jets against QCD jets with three taggers trained on the committed Pythia sample:
ParticleNet-lite (EdgeConv blocks on the constituent cloud), ParT-lite (a masked particle
transformer with a pairwise-feature attention bias and class attention) and a CNN on
pT-weighted jet images as the baseline. Prints accuracy, AUC and the background rejection
1/eps_B at eps_S = 0.3 and 0.5 on the test part; writes the ROC plot into --out.

    python examples/top_tagging.py [--quick] [--models particlenet,part,cnn] [--out top_output]
"""
import argparse
import os
import sys
import time

import numpy as np

import hepnn
import hepnn.plot
from hepnn import metrics, nn

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
from taggers import jets, part, particlenet  # noqa: E402

EFFICIENCIES = (0.3, 0.5)


def cnn_model(size, width=16):
    """conv(w)-pool-conv(2w)-pool-dense on (B, 1, size, size) jet images."""
    flat = 2 * width * (size // 4) ** 2
    return nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(flat, 64), nn.ReLU(), nn.Linear(64, 1))


def taggers(data, quick):
    """name -> builder returning (model, batch function idx -> model arguments)."""
    cons, n, train = data["constituents"], data["n"], data["train"]
    x_pn, m_pn, stats = particlenet.jet_features(cons[train], n[train])
    x_pn, m_pn, _ = particlenet.jet_features(cons, n, stats)
    x_pt, pad_pt = part.particle_features(cons, n)
    img = jets.jet_images(cons, np.arange(cons.shape[1])[None, :] < n[:, None])
    small = dict(k=8, conv_widths=((16, 16), (32, 32)), fc_width=32) if quick else \
        dict(k=16, conv_widths=((32, 32, 32), (64, 64, 64)), fc_width=64)
    part_size = dict(embed_dim=16, num_heads=2, num_layers=1, num_cls_layers=1, pair_hidden=16) if quick \
        else dict(embed_dim=32, num_heads=4, num_layers=2, num_cls_layers=1, pair_hidden=32)
    return {
        "particlenet": lambda: (particlenet.ParticleNetLite(**small),
                                lambda i: (hepnn.tensor(x_pn[i]), m_pn[i])),
        "part": lambda: (part.ParTLite(**part_size),
                         lambda i: (hepnn.tensor(x_pt[i]),
                                    hepnn.tensor(part.pair_features(cons[i], n[i])), pad_pt[i])),
        "cnn": lambda: (cnn_model(img.shape[-1], 8 if quick else 16), lambda i: (hepnn.tensor(img[i]),)),
    }


def scores(model, batch, idx, batch_size=256):
    model.eval()
    with hepnn.no_grad():
        out = [model(*batch(idx[i:i + batch_size])).numpy().ravel() for i in range(0, len(idx), batch_size)]
    return np.concatenate(out)


def train(model, batch, y, tr, va, epochs, batch_size, lr, patience, seed):
    """Adam on the BCE loss with early stopping on the validation loss (best weights restored)."""
    opt = hepnn.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.BCEWithLogitsLoss()
    rng = np.random.default_rng(seed)
    best, best_state, wait, log = np.inf, None, 0, []
    for epoch in range(epochs):
        t0 = time.perf_counter()
        model.train()
        perm = tr[rng.permutation(len(tr))]
        total = 0.0
        for i in range(0, len(perm), batch_size):
            b = perm[i:i + batch_size]
            loss = loss_fn(model(*batch(b)), hepnn.tensor(y[b, None]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(b)
        s = scores(model, batch, va)
        val = float(np.mean(np.logaddexp(0.0, s) - y[va] * s))  # BCE with logits
        dt = time.perf_counter() - t0
        log.append((total / len(tr), val, dt))
        print(f"  epoch {epoch + 1:2d}  loss {total / len(tr):.4f}  val {val:.4f}  "
              f"({len(tr) / dt:.0f} jets/s)")
        if val < best - 1e-4:
            best, best_state, wait = val, model.state_dict(), 0
        else:
            wait += 1
            if wait >= patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    return log


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1,200 jets, small models, 3 epochs (CI)")
    ap.add_argument("--models", default="particlenet,part,cnn")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--particles", type=int, default=None, help="keep the N hardest constituents")
    ap.add_argument("--out", default="top_output")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    hepnn.manual_seed(args.seed)
    epochs = args.epochs or (3 if args.quick else 30)
    max_particles = args.particles or (32 if args.quick else 64)

    cons, mask, _, y = jets.load(max_particles=max_particles)
    n = mask.sum(axis=1)
    if args.quick:
        keep = np.random.default_rng(args.seed).permutation(len(y))[:1200]
        cons, n, y = cons[keep], n[keep], y[keep]
    tr, va, te = hepnn.data.train_val_test_split(np.arange(len(y)), val_size=0.2, test_size=0.3,
                                                  stratify=y, seed=args.seed)
    print(f"{len(y)} jets ({int(y.sum())} top), up to {max_particles} constituents; "
          f"train {len(tr)}, val {len(va)}, test {len(te)}")
    data = {"constituents": cons, "n": n, "train": tr}
    built = taggers(data, args.quick)
    results, curves = {}, {}
    for name in args.models.split(","):
        model, batch = built[name]()
        n_par = sum(p.data.size for p in model.parameters())
        print(f"{name}: {n_par} parameters")
        t0 = time.perf_counter()
        log = train(model, batch, y, tr, va, epochs, 64, 2e-3 if name != "part" else 1e-3,
                    patience=4, seed=args.seed)
        s = scores(model, batch, te)
        auc = metrics.roc_auc_score(y[te], s)
        rej = metrics.background_rejection(y[te], s, np.array(EFFICIENCIES))
        acc = float(np.mean((s > 0) == (y[te] > 0.5)))
        results[name] = dict(accuracy=acc, auc=auc, rejection=[float(r) for r in rej],
                             epochs=len(log), seconds=time.perf_counter() - t0, parameters=n_par)
        curves[name] = (y[te], s)
    print("\n| tagger | parameters | epochs | train time (s) | accuracy | AUC | "
          + " | ".join(f"1/eps_B at eps_S={e}" for e in EFFICIENCIES) + " |")
    print("|" + "---|" * (6 + len(EFFICIENCIES)))
    for name, r in results.items():
        print(f"| {name} | {r['parameters']} | {r['epochs']} | {r['seconds']:.0f} | {r['accuracy']:.3f} | "
              f"{r['auc']:.4f} | " + " | ".join(f"{v:.1f}" for v in r["rejection"]) + " |")
    try:
        os.makedirs(args.out, exist_ok=True)
        path = hepnn.plot.roc_rejection(curves, os.path.join(args.out, "roc.png"), title="top vs QCD jets")
        print(f"\nwrote {path}")
    except ImportError as exc:  # matplotlib is an optional extra
        print(f"\nno ROC plot ({exc})")
    return results


if __name__ == "__main__":
    main()
