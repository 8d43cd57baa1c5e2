"""Fast calorimeter simulation with a conditional normalizing flow (rational-quadratic spline
couplings): learn p(shower | incident energy) by exact maximum likelihood, then sample showers.

Representation (50 dimensions instead of 500 voxels): the toy calorimeter has 5 layers x
10 angular x 10 radial voxels (r fastest); the flow models the energy of each (layer, radial
ring) summed over the 10 angular bins, as u = log(1e-4 + E_ring / E_inc) with uniform noise of
1e-4 (dequantisation of empty rings), standardised. Sampling inverts that and spreads a ring's
energy evenly over its angular bins (the showers are azimuthally symmetric on average; angular
fluctuations are not modelled). Context: log(E_inc / 10 GeV).

Reports generation speed at batch 1 and 10,000 (showers/s) and the 1-Wasserstein distance of
each layer's energy between generated and held-out showers, beside the same distance between
two independent simulated samples (the noise floor).

    python examples/calo_flow.py [--quick]
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

import hepnn
from hepnn import flows

HERE = os.path.dirname(os.path.abspath(__file__))
N_LAYERS, N_ALPHA, N_R = 5, 10, 10
EPS = 1e-4


def _toy_showers(n, seed=0):
    """Stand-in for examples/data/calo_showers.py (same layout and signature) when it is absent:
    a Gamma longitudinal profile and an exponential radial profile with Poisson sampling."""
    rng = np.random.default_rng(seed)
    energy = np.exp(rng.uniform(0.0, np.log(100.0), n))
    t_max = np.log(energy / 0.01) - 0.5
    depth = np.array([1.5, 4.5, 8.0, 12.5, 19.5])[None, :]
    a = 1.0 + 0.5 * t_max[:, None] * rng.lognormal(0, 0.08, (n, 1))
    prof = depth ** (a - 1) * np.exp(-0.5 * depth)
    frac = prof / prof.sum(1, keepdims=True) * 0.9
    r = (np.arange(N_R) + 0.5)[None, None, :]
    width = 1.0 + 0.3 * np.arange(N_LAYERS)[None, :, None]
    radial = np.exp(-r / width)
    radial /= radial.sum(-1, keepdims=True)
    mean = energy[:, None, None] * frac[:, :, None] * radial  # (n, layer, r)
    counts = rng.poisson(np.repeat(mean[:, :, None, :] / N_ALPHA * 20.0, N_ALPHA, axis=2))
    vox = (counts / 20.0).reshape(n, -1)
    vox[vox < 5e-3] = 0.0
    return vox.astype(np.float32), energy.astype(np.float32)


def load_generator():
    """(generate, name): the project's toy calorimeter if present, else the local stand-in."""
    sys.path.insert(0, os.path.join(HERE, "data"))
    try:
        import calo_showers
        return calo_showers.generate, "examples/data/calo_showers.py"
    except ImportError:
        return _toy_showers, "local stand-in (calo_showers.py not found)"
    finally:
        sys.path.pop(0)


def rings(voxels):
    """(N, 500) voxels -> (N, 50) energies per (layer, radial ring)."""
    return voxels.reshape(len(voxels), N_LAYERS, N_ALPHA, N_R).sum(2).reshape(len(voxels), -1)


def to_flow_space(voxels, energy, rng):
    e = rings(voxels) / energy[:, None]
    return np.log(EPS + e + rng.uniform(0, EPS, e.shape)).astype(np.float32)


def to_voxels(u, energy, u_max):
    """Back to voxels; u is capped at the training maximum per ring (a flow's tails can reach
    ring energies above the incident energy)."""
    u = np.minimum(u.astype(np.float64), u_max)
    e = np.clip(np.exp(u) - 1.5 * EPS, 0.0, None) * energy[:, None]
    per_voxel = e.reshape(len(u), N_LAYERS, 1, N_R) / N_ALPHA
    return np.broadcast_to(per_voxel, (len(u), N_LAYERS, N_ALPHA, N_R)).reshape(len(u), -1).astype(np.float32)


def context(energy):
    return np.log(energy / 10.0).astype(np.float32)[:, None]


def wasserstein1(a, b):
    """1-Wasserstein distance of two 1-d samples: the area between their empirical CDFs."""
    a, b = np.sort(np.asarray(a, np.float64)), np.sort(np.asarray(b, np.float64))
    grid = np.concatenate([a, b])
    grid.sort()
    fa = np.searchsorted(a, grid[:-1], side="right") / a.size
    fb = np.searchsorted(b, grid[:-1], side="right") / b.size
    return float(np.sum(np.abs(fa - fb) * np.diff(grid)))


def layer_energies(voxels):
    return voxels.reshape(len(voxels), N_LAYERS, -1).sum(-1)


def sampler(flow, u_max):
    def sample(energy):
        with hepnn.no_grad():
            u = flow.sample(len(energy), hepnn.tensor(context(energy))).numpy()
        return to_voxels(u, energy, u_max)
    return sample


def showers_per_second(sample, energy, repeats):
    sample(energy)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        sample(energy)
        times.append(time.perf_counter() - t0)
    return len(energy) / statistics.median(times)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=None, help="default: 4 quick, 20 full")
    args = ap.parse_args(argv)
    epochs = args.epochs or (4 if args.quick else 20)
    hepnn.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    generate, source = load_generator()
    n_train, n_test = (3000, 2000) if args.quick else (40000, 10000)
    vox_tr, e_tr = generate(n_train, seed=args.seed + 1)
    vox_te, e_te = generate(n_test, seed=args.seed + 2)
    vox_ref, _ = generate(n_test, seed=args.seed + 2 + 1000)  # noise floor: a second sample
    u_tr = to_flow_space(vox_tr, e_tr, rng)

    # Standardisation is the first transform, so log_prob is the density of u itself.
    std = flows.Standardize.fit(u_tr)
    body = flows.build_flow(u_tr.shape[1], context_features=1, layers=3 if args.quick else 6,
                            bins=8, hidden=64 if args.quick else 128, bound=4.0, seed=args.seed)
    flow = flows.Flow([std] + list(body.transforms))
    n_val = len(u_tr) // 10
    hist = flows.fit_flow(flow, u_tr[n_val:], context(e_tr[n_val:]), val=(u_tr[:n_val], context(e_tr[:n_val])),
                          epochs=epochs, batch_size=256, lr=2e-3, seed=args.seed,
                          callbacks=[hepnn.EarlyStopping(patience=5, restore_best_weights=True)])
    sample = sampler(flow, u_tr.max(0))
    gen = sample(e_te)
    ref_layers, gen_layers, floor_layers = (layer_energies(v) for v in (vox_te, gen, vox_ref))
    w1 = [wasserstein1(gen_layers[:, k], ref_layers[:, k]) for k in range(N_LAYERS)]
    floor = [wasserstein1(floor_layers[:, k], ref_layers[:, k]) for k in range(N_LAYERS)]
    speed1 = showers_per_second(sample, e_te[:1], 20 if args.quick else 100)
    speed_big = showers_per_second(sample, np.resize(e_te, 10000), 2 if args.quick else 5)

    print(f"data: {source}; {len(u_tr) - n_val} training showers, flow over {u_tr.shape[1]} ring energies")
    print(f"trained {len(hist.history['loss'])} epochs: val NLL {hist.history['val_loss'][-1]:.2f} "
          f"(first epoch {hist.history['val_loss'][0]:.2f})")
    print("layer energy W1 [GeV] generated vs held out: " + " ".join(f"{v:.3f}" for v in w1))
    print("  noise floor (two simulated samples):       " + " ".join(f"{v:.3f}" for v in floor))
    print(f"mean E_vis / E_inc: generated {gen.sum(1).mean() / e_te.mean():.3f}, "
          f"simulated {vox_te.sum(1).mean() / e_te.mean():.3f}")
    print(f"generation: {speed1:,.0f} showers/s at batch 1, {speed_big:,.0f} showers/s at batch 10,000 "
          f"({hepnn.get_num_threads()} threads)")
    return {"w1": w1, "floor": floor, "val_nll": hist.history["val_loss"], "speed": (speed1, speed_big),
            "generated": gen, "reference": vox_te}


if __name__ == "__main__":
    main()
