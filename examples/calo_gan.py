"""Fast calorimeter simulation with a conditional GAN: a generator MLP maps (noise, log E) to
preprocessed voxels, a discriminator MLP scores (voxels, log E) as real or generated; they are
trained in alternating steps with the non-saturating loss (the generator maximises log D(G(z))).

No gradient penalty (WGAN-GP, R1): it needs the gradient of the discriminator's input gradient,
a double backward that hepnn's autograd does not record (its backward rules return arrays, not
graph nodes). Instead the discriminator is kept in check by label smoothing and a lower learning
rate than the generator's.

    python examples/calo_gan.py [--quick]
"""
import argparse

import numpy as np

import hepnn
from hepnn import nn

from calo import data, loop, report
from calo.nets import MLP


class CaloGAN(nn.Module):
    def __init__(self, n_voxels=data.N_VOXELS, noise=64, hidden=(256, 256)):
        super().__init__()
        self.noise = noise
        self.generator = MLP([noise + 1, *hidden, n_voxels])
        self.discriminator = MLP([n_voxels + 1, *hidden[::-1][:1], 128, 1])

    def generate(self, c):
        return self.generator(hepnn.cat([hepnn.randn(c.shape[0], self.noise), c], dim=1))

    def critic(self, x, c):
        return self.discriminator(hepnn.cat([x, c], dim=1))

    def sample(self, c):
        """Generated (preprocessed) voxels for the (N, 1) conditions c (NumPy in and out)."""
        with hepnn.no_grad():
            return self.generate(hepnn.tensor(c)).numpy()


def make_step(model, opt_g, opt_d, smooth=0.9):
    bce = nn.BCEWithLogitsLoss()

    def step(x, c):
        b = x.shape[0]
        real_label = hepnn.full((b, 1), smooth)  # one-sided label smoothing
        fake_label = hepnn.zeros(b, 1)
        # Discriminator: real showers towards `smooth`, generated ones (constants here) towards 0.
        with hepnn.no_grad():
            fake = model.generate(c)
        d_loss = bce(model.critic(x, c), real_label) + bce(model.critic(fake, c), fake_label)
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        # Generator, non-saturating: maximise log D(G(z)), i.e. label its showers as real.
        g_loss = bce(model.critic(model.generate(c), c), hepnn.ones(b, 1))
        opt_g.zero_grad()
        g_loss.backward()  # also fills the discriminator's grads: cleared before its next step
        opt_g.step()
        return g_loss.item() + d_loss.item()

    return step


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--dequantize", action="store_true",
                    help="train on empty voxels smeared below the readout threshold (see calo/data.py)")
    args = ap.parse_args(argv)
    hepnn.manual_seed(args.seed)
    n_train, n_test = (3000, 1000) if args.quick else (50000, 10000)
    epochs = args.epochs or (10 if args.quick else 60)
    (v_tr, e_tr), (v_te, e_te) = data.showers(n_train, n_test, args.seed)
    scaler = data.VoxelScaler().fit(v_tr, e_tr)
    deq = np.random.default_rng(args.seed) if args.dequantize else None
    x, c = scaler.transform(v_tr, e_tr, deq), data.condition(e_tr)

    model = CaloGAN()
    opt_g = hepnn.optim.Adam(model.generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = hepnn.optim.Adam(model.discriminator.parameters(), lr=1e-4, betas=(0.5, 0.999))
    loop.train(make_step(model, opt_g, opt_d), x, c, epochs, 128, args.seed, "GAN")
    model.eval()

    def sample(energy):
        return scaler.inverse(model.sample(data.condition(energy)), energy)

    return report.report("GAN", v_te, e_te, sample, scaler, c2st_epochs=5 if args.quick else 30,
                         big_batch=2000 if args.quick else 10000)


if __name__ == "__main__":
    main()
