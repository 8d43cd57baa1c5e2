"""Training step time of the fast calorimeter simulation models (examples/calo_*.py) at the
examples' sizes, hepnn vs the same models in PyTorch CPU: same widths, batch, optimizer and
thread count; the two frameworks' step loops alternate (interleaved repeats; with 2 threads in
alternating fresh processes) and the medians are compared. One function per model returns its two step functions; MODELS lists them, so a
model is added with one function and one row.

    PYTHONPATH=python python bench/bench_generative.py [--threads 1 2] [--steps 30] [--repeats 7]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

import hepnn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples"))
import calo_diffusion  # noqa: E402
import calo_gan  # noqa: E402
import calo_vae  # noqa: E402
from calo import data  # noqa: E402
from calo.nets import sinusoidal_embedding  # noqa: E402

BATCH = 128


def torch_mlp(torch, widths, activation, alpha=0.2):
    F = torch.nn.functional
    act = {"leaky_relu": lambda x: F.leaky_relu(x, alpha), "gelu": F.gelu}[activation]

    class MLP(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = torch.nn.ModuleList(torch.nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))

        def forward(self, x):
            for i, layer in enumerate(self.layers):
                x = layer(x)
                if i < len(self.layers) - 1:
                    x = act(x)
            return x

    return MLP()


def vae(torch, x, c):
    """The VAE: encoder 501-256-128-32, decoder 17-128-256-500, leaky ReLU, Adam."""
    model = calo_vae.CaloVAE()
    h_step = calo_vae.make_step(model, hepnn.optim.Adam(model.parameters(), lr=1e-3), 1.0)
    latent = model.latent
    enc = torch_mlp(torch, [data.N_VOXELS + 1, 256, 128, 2 * latent], "leaky_relu")
    dec = torch_mlp(torch, [latent + 1, 128, 256, data.N_VOXELS], "leaky_relu")
    log_sigma = torch.nn.Parameter(torch.zeros(data.N_VOXELS))
    opt = torch.optim.Adam([*enc.parameters(), *dec.parameters(), log_sigma], lr=1e-3)

    def t_step(x, c):
        h = enc(torch.cat([x, c], 1))
        mu, logvar = h[:, :latent], h[:, latent:]
        z = mu + (0.5 * logvar).exp() * torch.randn_like(mu)
        pull = (dec(torch.cat([z, c], 1)) - x) * (-log_sigma).exp()
        loss = 0.5 * (pull * pull).sum(1).mean() + log_sigma.sum() + \
            0.5 * (mu * mu + logvar.exp() - logvar - 1).sum(1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    return h_step, t_step


def gan(torch, x, c):
    """The GAN: generator 65-256-256-500, discriminator 501-256-128-1, one D and one G step."""
    model = calo_gan.CaloGAN()
    h_step = calo_gan.make_step(model, hepnn.optim.Adam(model.generator.parameters(), lr=2e-4, betas=(0.5, 0.999)),
                                hepnn.optim.Adam(model.discriminator.parameters(), lr=1e-4, betas=(0.5, 0.999)))
    g = torch_mlp(torch, [model.noise + 1, 256, 256, data.N_VOXELS], "leaky_relu")
    d = torch_mlp(torch, [data.N_VOXELS + 1, 256, 128, 1], "leaky_relu")
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=1e-4, betas=(0.5, 0.999))
    bce = torch.nn.BCEWithLogitsLoss()

    def t_step(x, c):
        b = x.shape[0]
        with torch.no_grad():
            fake = g(torch.cat([torch.randn(b, model.noise), c], 1))
        d_loss = bce(d(torch.cat([x, c], 1)), torch.full((b, 1), 0.9)) + \
            bce(d(torch.cat([fake, c], 1)), torch.zeros(b, 1))
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        g_loss = bce(d(torch.cat([g(torch.cat([torch.randn(b, model.noise), c], 1)), c], 1)), torch.ones(b, 1))
        opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()
        return g_loss.item() + d_loss.item()

    return h_step, t_step


def diffusion(torch, x, c):
    """The diffusion denoiser: 533-512-512-512-500, GELU, plus the skip term sqrt(1 - abar_t) x_t;
    T = 100, noising in NumPy for both."""
    model = calo_diffusion.CaloDiffusion()
    rng = np.random.default_rng(0)
    h_step = calo_diffusion.make_step(model, hepnn.optim.Adam(model.parameters(), lr=1e-3), rng)
    net = torch_mlp(torch, [data.N_VOXELS + model.t_dim + 1, 512, 512, 512, data.N_VOXELS], "gelu")
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)

    def t_step(x, c):
        x0 = x.numpy()
        t = rng.integers(1, model.steps + 1, len(x0))
        ab = model.alpha_bar[t - 1].astype(np.float32)[:, None]
        eps = rng.standard_normal(x0.shape, dtype=np.float32)
        x_t = torch.from_numpy(np.sqrt(ab) * x0 + np.sqrt(1.0 - ab) * eps)
        emb = torch.from_numpy(sinusoidal_embedding(t * (1000.0 / model.steps), model.t_dim))
        skip = torch.from_numpy(np.sqrt(1.0 - ab))
        loss = torch.nn.functional.mse_loss(net(torch.cat([x_t, emb, c], 1)) + x_t * skip,
                                            torch.from_numpy(eps))
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    return h_step, t_step


MODELS = [("VAE", vae), ("GAN", gan), ("diffusion", diffusion)]


def _loop_s(step, batches, steps):
    """(wall, process CPU) seconds per step."""
    t, c = time.perf_counter(), time.process_time()
    for i in range(steps):
        step(*batches[i % len(batches)])
    return (time.perf_counter() - t) / steps, (time.process_time() - c) / steps


def _batches(torch):
    v, e = data.calo_showers.generate(8 * BATCH, seed=0)
    scaler = data.VoxelScaler().fit(v, e)
    x, c = scaler.transform(v, e), data.condition(e)
    chunks = [(x[i:i + BATCH], c[i:i + BATCH]) for i in range(0, len(x), BATCH)]
    return x, c, ([(hepnn.tensor(a), hepnn.tensor(b)) for a, b in chunks],
                  [(torch.from_numpy(a), torch.from_numpy(b)) for a, b in chunks])


def _timings(torch, build, threads, steps, repeats, which=("hepnn", "torch")):
    """{framework: [(wall, cpu) s/step per repeat]}, the frameworks' loops alternating."""
    hepnn.set_num_threads(threads)
    torch.set_num_threads(threads)
    hepnn.manual_seed(0)
    torch.manual_seed(0)
    x, c, (h_batches, t_batches) = _batches(torch)
    h_step, t_step = build(torch, x, c)
    loops = {"hepnn": (h_step, h_batches), "torch": (t_step, t_batches)}
    out = {k: [] for k in which}
    for k in which:
        _loop_s(*loops[k], 3)
    for _ in range(repeats):
        for k in which:
            out[k].append(_loop_s(loops[k][0], loops[k][1], steps))
    return out


def _isolated(name, threads, steps, repeats, rounds=3):
    """Each framework in its own fresh process, the processes alternating: with more than one
    thread, one library's idle workers (spinning OpenMP threads, hepnn's pool) would otherwise
    steal the cores from the other's next loop in the same process."""
    out = {"hepnn": [], "torch": []}
    for _ in range(rounds):
        for k in out:
            res = subprocess.run([sys.executable, __file__, "--child", k, "--model", name, "--threads",
                                  str(threads), "--steps", str(steps), "--repeats", str(repeats)],
                                 capture_output=True, text=True, check=True)
            out[k] += [tuple(r) for r in json.loads(res.stdout.strip().splitlines()[-1])]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--child", choices=["hepnn", "torch"], help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    args = ap.parse_args()
    import torch

    builds = dict(MODELS)
    if args.child:
        res = _timings(torch, builds[args.model], args.threads[0], args.steps, args.repeats, (args.child,))
        print(json.dumps(res[args.child]))
        return
    print(f"Training step time, batch {BATCH}, float32, Adam; medians over interleaved repeats of "
          f"{args.steps} steps (1 thread: {args.repeats} repeats in one process; more: 3 rounds of "
          f"{args.repeats // 2 + 1} in fresh processes per framework); hepnn {hepnn.__version__}, torch "
          f"{torch.__version__}; load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
    print("| model | threads | hepnn ms/step | torch ms/step | torch / hepnn (speed-up) | same, by CPU time |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, build in MODELS:
        for th in args.threads:
            if th == 1:
                res = _timings(torch, build, th, args.steps, args.repeats)
            else:
                res = _isolated(name, th, args.steps, args.repeats // 2 + 1)
            h, t = (statistics.median(w for w, _ in res[k]) for k in ("hepnn", "torch"))
            hc, tc = (statistics.median(c for _, c in res[k]) for k in ("hepnn", "torch"))
            print(f"| {name} | {th} | {h * 1e3:.2f} | {t * 1e3:.2f} | {t / h:.2f}x | {tc / hc:.2f}x |")


if __name__ == "__main__":
    main()
