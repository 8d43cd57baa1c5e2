"""Central finite-difference gradient check for hepnn functions of tensors (float64), shared by
test_autograd.py and test_functional.py."""
import numpy as np

import hepnn


def numerical_grads(fn, arrays, upstream, eps=1e-6):
    """d(sum(fn(*arrays) * upstream))/d(arrays[i]) by central differences, for every i."""
    grads = []
    with hepnn.no_grad():
        for i, a in enumerate(arrays):
            g = np.zeros_like(a)
            for idx in np.ndindex(a.shape):
                vals = []
                for step in (eps, -eps):
                    shifted = [x.copy() for x in arrays]
                    shifted[i][idx] += step
                    out = fn(*[hepnn.tensor(x) for x in shifted])
                    vals.append(float((out.numpy() * upstream).sum()))
                g[idx] = (vals[0] - vals[1]) / (2 * eps)
            grads.append(g)
    return grads


def check_grads(fn, arrays, seed=0, eps=1e-6, atol=1e-6, rtol=1e-5):
    """Backward of fn on float64 leaves vs central finite differences, with a random upstream
    gradient (so every output element is weighted differently). Returns the forward output."""
    arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
    leaves = [hepnn.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*leaves)
    upstream = np.random.default_rng(seed).standard_normal(out.shape)
    out.backward(hepnn.tensor(upstream))
    expected = numerical_grads(fn, arrays, upstream, eps)
    for i, (leaf, num) in enumerate(zip(leaves, expected)):
        assert leaf.grad is not None, f"input {i} got no gradient"
        assert leaf.grad.shape == leaf.shape, f"input {i}: grad shape {leaf.grad.shape}"
        assert leaf.grad.dtype == np.float64
        np.testing.assert_allclose(leaf.grad.numpy(), num, atol=atol, rtol=rtol,
                                   err_msg=f"gradient of input {i}")
    return out
