"""Fast calorimeter simulation with a conditional denoising diffusion model (DDPM): showers are
noised over T steps of a linear schedule; an MLP, given the noisy voxels, a sinusoidal embedding
of the step and log E, learns to predict the noise (mean squared error); generation runs the
learned reverse chain from pure noise (ancestral sampling, T network calls per shower batch).

    python examples/calo_diffusion.py [--quick]
"""
import argparse
import math

import numpy as np

import hepnn
from hepnn import nn
from hepnn.nn import functional as F

from calo import data, loop, report
from calo.nets import MLP, sinusoidal_embedding


def linear_schedule(T):
    """(beta_t, alpha_bar_t) for t = 1..T (index t - 1): DDPM's linear betas, 1e-4 to 0.02 at
    T = 1000, scaled by 1000 / T so that alpha_bar_T ~ 5e-5 for any T.
    NOTE: not the cosine schedule: its last beta is clipped at 0.999, which leaves alpha_bar_T
    ~ 1e-6, and the first reverse step's x_0 estimate divides the noise estimate's error by
    sqrt(alpha_bar_T)."""
    scale = 1000.0 / T
    beta = np.linspace(1e-4 * scale, 0.02 * scale, T)
    return beta, np.cumprod(1.0 - beta)


class CaloDiffusion(nn.Module):
    def __init__(self, n_voxels=data.N_VOXELS, steps=100, t_dim=32, hidden=(512, 512, 512)):
        super().__init__()
        self.steps, self.t_dim = steps, t_dim
        self.beta, self.alpha_bar = linear_schedule(steps)
        self.denoiser = MLP([n_voxels + t_dim + 1, *hidden, n_voxels], activation="gelu")

    def predict_noise(self, x_t, t, c):
        """The denoiser's noise estimate at integer steps t (NumPy, 1..T) for condition c.

        NOTE: the MLP learns a correction to sqrt(1 - abar_t) x_t, the exact noise estimate for
        standard normal data (the preprocessed voxels are standardised): at large t, where
        x_t is almost pure noise, the answer is then nearly free, where a plain MLP would have
        to learn an identity map and its errors are the ones the reverse chain amplifies most.
        """
        emb = hepnn.tensor(sinusoidal_embedding(t * (1000.0 / self.steps), self.t_dim))
        skip = np.sqrt(1.0 - self.alpha_bar[t - 1]).astype(np.float32)[:, None]
        return self.denoiser(hepnn.cat([x_t, emb, c], dim=1)) + x_t * skip

    def loss(self, x0, c, rng):
        """E_t,eps |eps - eps_hat(sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, t)|^2, t uniform."""
        b = x0.shape[0]
        t = rng.integers(1, self.steps + 1, b)
        ab = self.alpha_bar[t - 1].astype(np.float32)[:, None]
        eps = rng.standard_normal(x0.shape, dtype=np.float32)
        x_t = hepnn.tensor(np.sqrt(ab) * x0.numpy() + np.sqrt(1.0 - ab) * eps)
        return F.mse_loss(self.predict_noise(x_t, t, c), hepnn.tensor(eps))

    def sample(self, c, rng, lo, hi):
        """Ancestral sampling x_T ~ N(0, 1) -> x_0 for the (N, 1) conditions c (NumPy in and out).

        Each step estimates x_0 from the predicted noise, clips it to [lo, hi] (the training
        data's per-voxel range) and draws x_{t-1} from the Gaussian posterior q(x_{t-1} | x_t, x_0).
        NOTE: without the clip, the large last steps of the cosine schedule (beta near 1)
        amplify the noise estimate's errors into showers of absurd energy.
        """
        n = len(c)
        ct = hepnn.tensor(c)
        x = rng.standard_normal((n, self.denoiser.layers[-1].out_features), dtype=np.float32)
        with hepnn.no_grad():
            for t in range(self.steps, 0, -1):
                beta, ab = self.beta[t - 1], self.alpha_bar[t - 1]
                ab_prev = self.alpha_bar[t - 2] if t > 1 else 1.0
                eps = self.predict_noise(hepnn.tensor(x), np.full(n, t), ct).numpy()
                x0 = np.clip((x - math.sqrt(1.0 - ab) * eps) / math.sqrt(ab), lo, hi)
                x = (math.sqrt(ab_prev) * beta / (1.0 - ab)) * x0 + \
                    (math.sqrt(1.0 - beta) * (1.0 - ab_prev) / (1.0 - ab)) * x
                if t > 1:
                    var = beta * (1.0 - ab_prev) / (1.0 - ab)
                    x += math.sqrt(var) * rng.standard_normal(x.shape, dtype=np.float32)
                x = x.astype(np.float32, copy=False)
        return x


def make_step(model, opt, rng):
    def step(x, c):
        loss = model.loss(x, c, rng)
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
    ap.add_argument("--steps", type=int, default=None, help="diffusion steps T")
    args = ap.parse_args(argv)
    hepnn.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    n_train, n_test = (3000, 1000) if args.quick else (50000, 10000)
    epochs = args.epochs or (8 if args.quick else 60)
    (v_tr, e_tr), (v_te, e_te) = data.showers(n_train, n_test, args.seed)
    scaler = data.make_scaler(args.preprocess, v_tr, e_tr)
    deq = np.random.default_rng(args.seed) if args.dequantize else None
    x, c = scaler.transform(v_tr, e_tr, deq), data.condition(e_tr)
    # The classifier test always sees the same features (standardised sqrt voxels), so its AUC
    # compares across preprocessings.
    c2st_features = data.VoxelScaler().fit(v_tr, e_tr)
    lo, hi = x.min(0), x.max(0)

    model = CaloDiffusion(n_voxels=x.shape[1], steps=args.steps or (50 if args.quick else 100),
                          hidden=(256, 256) if args.quick else (512, 512, 512))
    opt = hepnn.optim.Adam(model.parameters(), lr=1e-3)
    loop.train(make_step(model, opt, rng), x, c, epochs, 128, args.seed, "diffusion")
    model.eval()

    def sample(energy):
        return scaler.inverse(model.sample(data.condition(energy), rng, lo, hi), energy)

    return report.report("diffusion", v_te, e_te, sample, c2st_features, c2st_epochs=5 if args.quick else 30,
                         big_batch=1000 if args.quick else 10000)


if __name__ == "__main__":
    main()
