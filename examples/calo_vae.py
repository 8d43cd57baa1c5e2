"""Fast calorimeter simulation with a conditional variational autoencoder: an encoder MLP maps
(preprocessed voxels, log E) to a Gaussian posterior over a small latent space, the decoder maps
(latent, log E) to the mean of a Gaussian over the voxels (with a learned width per voxel: the
sampling fluctuations a small latent space cannot encode); trained on the negative ELBO, it
generates showers by decoding prior samples at the requested energies and drawing from that
Gaussian.

    python examples/calo_vae.py [--quick]
"""
import argparse

import numpy as np

import hepnn
from hepnn import nn

from calo import data, loop, report
from calo.nets import MLP


class CaloVAE(nn.Module):
    def __init__(self, n_voxels=data.N_VOXELS, latent=16, hidden=(256, 128), n_noisy=None):
        super().__init__()
        self.latent = latent
        # Features past n_noisy are sampled at the decoder mean (see sample()).
        self.n_noisy = n_voxels if n_noisy is None else int(n_noisy)
        self.encoder = MLP([n_voxels + 1, *hidden, 2 * latent])
        self.decoder = MLP([latent + 1, *hidden[::-1], n_voxels])
        self.log_sigma = nn.Parameter(np.zeros(n_voxels, dtype=np.float32))

    def loss(self, x, c, beta=1.0):
        """Negative ELBO per shower (up to a constant): -log N(x; decoder(z), sigma^2) + beta KL(q(z|x) || N(0, 1))."""
        h = self.encoder(hepnn.cat([x, c], dim=1))
        mu, logvar = h[:, :self.latent], h[:, self.latent:]
        # Reparameterisation: the noise is a constant, so the gradient flows through mu, logvar.
        z = mu + (0.5 * logvar).exp() * hepnn.randn(*mu.shape)
        rec = self.decoder(hepnn.cat([z, c], dim=1))
        pull = (rec - x) * (-self.log_sigma).exp()
        nll = (pull * pull).sum(dim=1).mean() * 0.5 + self.log_sigma.sum()
        kl = ((mu * mu + logvar.exp() - logvar - 1.0).sum(dim=1)).mean() * 0.5
        return nll + beta * kl

    def sample(self, c):
        """Draws from the decoder's Gaussian at prior samples z, for the (N, 1) conditions c
        (NumPy in and out); features n_noisy and up are the decoder mean.

        NOTE: the decoder's noise is independent per feature; on the five layer energies of
        calo.data.LayerScaler it would decorrelate them and widen E_total / E_inc (about 3x in
        quick mode); their shower-to-shower spread comes from the latent instead."""
        with hepnn.no_grad():
            z = hepnn.randn(len(c), self.latent)
            mean = self.decoder(hepnn.cat([z, hepnn.tensor(c)], dim=1))
            noise = (self.log_sigma.exp() * hepnn.randn(*mean.shape)).numpy()
            noise[:, self.n_noisy:] = 0.0
            return mean.numpy() + noise


def make_step(model, opt, beta):
    def step(x, c):
        loss = model.loss(x, c, beta)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()
    return step


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--preprocess", choices=("layer", "sqrt"), default="layer",
                    help="voxel preprocessing (calo/data.py): per-layer energy fractions and layer "
                         "energies (default), or the standardised sqrt(E_voxel / E_inc)")
    ap.add_argument("--dequantize", action="store_true",
                    help="train on empty voxels smeared below the readout threshold (see calo/data.py)")
    ap.add_argument("--beta", type=float, default=1.0)
    args = ap.parse_args(argv)
    hepnn.manual_seed(args.seed)
    n_train, n_test = (3000, 1000) if args.quick else (50000, 10000)
    epochs = args.epochs or (4 if args.quick else 60)
    (v_tr, e_tr), (v_te, e_te) = data.showers(n_train, n_test, args.seed)
    scaler = data.make_scaler(args.preprocess, v_tr, e_tr)
    deq = np.random.default_rng(args.seed) if args.dequantize else None
    x, c = scaler.transform(v_tr, e_tr, deq), data.condition(e_tr)
    # The classifier test always sees the same features (standardised sqrt voxels), so its AUC
    # compares across preprocessings.
    c2st_features = data.VoxelScaler().fit(v_tr, e_tr)

    model = CaloVAE(n_voxels=x.shape[1], n_noisy=data.N_VOXELS)
    opt = hepnn.optim.Adam(model.parameters(), lr=1e-3)
    loop.train(make_step(model, opt, args.beta), x, c, epochs, 128, args.seed, "VAE")
    model.eval()

    def sample(energy):
        return scaler.inverse(model.sample(data.condition(energy)), energy)

    return report.report("VAE", v_te, e_te, sample, c2st_features, c2st_epochs=5 if args.quick else 30,
                         big_batch=2000 if args.quick else 10000)


if __name__ == "__main__":
    main()
