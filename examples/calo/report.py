"""How good and how fast a shower generator is: per observable, the separation power and the
1-Wasserstein distance between test showers and generated ones at the same incident energies;
the classifier two-sample test's AUC on the preprocessed voxels; showers/s at batch 1 and at a
large batch (CPU, hepnn's threads).
"""
import statistics
import time

import numpy as np

from hepnn import metrics

from .data import GEOMETRY, VoxelScaler, condition


def _edges(a, b, bins):
    """Equal bins over the reference's central 99.8% (widened a little to hold most of b too)."""
    lo, hi = np.quantile(a, [0.001, 0.999])
    lo, hi = min(lo, np.quantile(b, 0.001)), max(hi, np.quantile(b, 0.999))
    return np.linspace(lo, hi if hi > lo else lo + 1e-6, bins + 1)


def observable_distances(ref_voxels, gen_voxels, energy, bins=40):
    """{observable: (separation power, W1)}; outliers are put into the first or last bin."""
    ref = metrics.shower_observables(ref_voxels, energy, **GEOMETRY)
    gen = metrics.shower_observables(gen_voxels, energy, **GEOMETRY)
    out = {}
    for name, a in ref.items():
        b = gen[name]
        edges = _edges(a, b, bins)
        sep = metrics.separation_power(np.clip(a, edges[0], edges[-1]),
                                       np.clip(b, edges[0], edges[-1]), edges)
        out[name] = (sep, metrics.wasserstein1(a, b))
    return out


def classifier_auc(ref_voxels, gen_voxels, energy, scaler, epochs, seed=0):
    """Classifier two-sample test on (preprocessed voxels, condition)."""
    c = condition(energy)
    feats = [np.concatenate([scaler.transform(v, energy), c], axis=1) for v in (ref_voxels, gen_voxels)]
    return metrics.classifier_two_sample_test(feats[0], feats[1], hidden=(128, 64), epochs=epochs,
                                              seed=seed)


def generation_speed(sample, energy, big_batch, repeats=20):
    """(showers/s at batch 1, showers/s at batch big_batch); `sample(energy)` returns voxels."""
    sample(energy[:1])
    one = []
    for i in range(repeats):
        t = time.perf_counter()
        sample(energy[i % len(energy):i % len(energy) + 1])
        one.append(time.perf_counter() - t)
    big = np.resize(energy, big_batch)
    many = []
    for _ in range(2):
        t = time.perf_counter()
        sample(big)
        many.append(time.perf_counter() - t)
    return 1.0 / statistics.median(one), big_batch / min(many)


def report(name, ref_voxels, energy, sample, scaler: VoxelScaler, c2st_epochs=20, big_batch=10000):
    """Generate showers at the test energies, print the comparison table and the speed, and
    return {"distances": {obs: (sep, W1)}, "auc": float, "speed": (batch 1, batch big_batch)}."""
    gen_voxels = sample(energy)
    dist = observable_distances(ref_voxels, gen_voxels, energy)
    auc = classifier_auc(ref_voxels, gen_voxels, energy, scaler, c2st_epochs)
    speed = generation_speed(sample, energy, big_batch)
    print(f"\n{name}: {len(energy)} test showers vs as many generated at the same energies")
    print("| observable | separation power | W1 |\n|---|---:|---:|")
    for obs, (sep, w1) in dist.items():
        print(f"| {obs} | {sep:.4f} | {w1:.4g} |")
    mean_sep = float(np.mean([s for s, _ in dist.values()]))
    print(f"{name}: mean separation power {mean_sep:.4f}; classifier two-sample AUC {auc:.3f}; "
          f"generation {speed[0]:,.0f} showers/s at batch 1, {speed[1]:,.0f} showers/s at batch "
          f"{big_batch:,} (CPU)")
    return {"distances": dist, "mean_separation": mean_sep, "auc": auc, "speed": speed,
            "generated": gen_voxels}
