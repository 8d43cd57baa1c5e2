"""The training loop the three generators share: shuffled mini-batches of (preprocessed voxels,
condition), one `step(x, c) -> loss` call per batch, the epoch's mean loss printed."""
import time

import numpy as np

import hepnn


def train(step, x, c, epochs, batch_size, seed, name):
    """Run `epochs` epochs of `step` over (x, c); returns the list of epoch mean losses."""
    rng = np.random.default_rng(seed)
    history = []
    for epoch in range(epochs):
        t = time.perf_counter()
        order = rng.permutation(len(x))
        total, n = 0.0, 0
        for start in range(0, len(x) - batch_size + 1, batch_size):  # full batches only
            idx = order[start:start + batch_size]
            total += step(hepnn.tensor(x[idx]), hepnn.tensor(c[idx]))
            n += 1
        history.append(total / max(n, 1))
        print(f"{name} epoch {epoch + 1:3d}/{epochs}: loss {history[-1]:.4f} "
              f"({time.perf_counter() - t:.1f} s)")
    return history
