"""Shared by the runtime's hostile-file tests: models with random bytes overwritten."""
import numpy as np

ERRORS = (RuntimeError, ValueError)  # what the runtime raises for a refused model or input


def flipped_sessions(rt, data, rng, tries):
    """Yield a Session for each of `tries` copies of `data` with 1-3 random bytes overwritten that
    the loader accepts; the refused ones must raise one of ERRORS (anything else fails the test)."""
    for _ in range(tries):
        bad = bytearray(data)
        for pos in rng.integers(0, len(bad), size=rng.integers(1, 4)):
            bad[pos] = int(rng.integers(0, 256))
        try:
            s = rt.Session(bytes(bad))
        except ERRORS:
            continue
        yield s


def run_ones(s, shapes):
    """Run s on all-ones inputs of each shape (input dtypes from the model); refusals are fine."""
    for shape in shapes:
        try:
            s.run({n: np.ones(shape, d) for n, d in zip(s.input_names, s.model.input_dtypes)})
        except ERRORS:
            pass
